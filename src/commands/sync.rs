//! `box sync`: mirror the machines' sync folders now, or keep doing it on
//! every change with `--watch`.

use anyhow::Context as _;

use crate::cli::SyncArgs;
use crate::error::ExitStatus;
use crate::sync;

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: SyncArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    if !args.watch {
        // A watcher runs for hours; holding the lock would block `box up`.
        ws.lock()?;
    }
    let machines: Vec<_> = ws
        .select(&args.machines)?
        .into_iter()
        .filter(|m| {
            if m.sync.is_empty() {
                g.printer.verbose(&format!("{}: no sync folders", m.name));
            }
            !m.sync.is_empty()
        })
        .cloned()
        .collect();
    if machines.is_empty() {
        g.printer.info("no machine has sync folders; nothing to do");
        return Ok(ExitStatus::Success);
    }
    let mut targets = Vec::new();
    for m in &machines {
        targets.push(running_target(&ws, &m.name)?);
    }
    let store = ws.ctx.store.clone();
    let printer = g.printer.clone();
    let watch = args.watch;
    let failed = tokio::task::spawn_blocking(move || -> anyhow::Result<usize> {
        // One session per machine, kept for the whole command.
        let mut sessions = Vec::new();
        for (m, t) in machines.into_iter().zip(targets) {
            let s = connect(&t, &m.name, &printer)?;
            sessions.push((m, s));
        }
        let mut failed = 0;
        for (m, s) in &sessions {
            // The manifest is trusted (it is tied to the machine's host key):
            // with nothing changed, nothing runs on the guest.
            if let Err(e) = sync::sync_machine_with(s, m, &store, &printer, false) {
                let e =
                    anyhow::Error::new(e).context(format!("cannot sync folders into `{}`", m.name));
                if watch || sessions.len() == 1 {
                    return Err(e);
                }
                printer.error(&e);
                failed += 1;
            }
        }
        if watch {
            sync::watch::watch(&sessions, &store, &printer)
                .context("watching for changes failed")?;
        }
        Ok(failed)
    })
    .await
    .context("the sync task stopped unexpectedly")??;
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}
