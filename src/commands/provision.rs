//! `box provision`: run the machines' provisioners again (those due by
//! their `run` policy, or exactly the ones named with `--with`).

use anyhow::Context as _;

use crate::cli::ProvisionArgs;
use crate::error::ExitStatus;
use crate::provision;

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: ProvisionArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let machines: Vec<_> = ws.select(&args.machines)?.into_iter().cloned().collect();
    let named = !args.machines.is_empty();
    let mut tasks = Vec::new();
    for m in machines {
        // Unnamed machines without any of the `--with` steps are skipped; a
        // named one lets provision::run report the unknown step.
        if !args.with.is_empty()
            && !named
            && !m.provision.iter().any(|p| args.with.contains(&p.name))
        {
            continue;
        }
        let target = running_target(&ws, &m.name);
        let store = ws.ctx.store.clone();
        let printer = g.printer.clone();
        let with = args.with.clone();
        tasks.push((
            m.name.clone(),
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let target = target?;
                let mut state = store
                    .load_machine(&m.name)?
                    .with_context(|| format!("`{}` has no state", m.name))?;
                let session = connect(&target, &m.name, &printer)?;
                provision::run(&session, &m, &mut state, &store, &with, &printer)
                    .with_context(|| format!("provisioning `{}` failed", m.name))?;
                printer.machine(&m.name, "provisioned");
                Ok(())
            }),
        ));
    }
    if tasks.is_empty() {
        g.printer
            .info("no machine has a provisioner by that name; nothing to do");
        return Ok(ExitStatus::Success);
    }
    let single = tasks.len() == 1;
    let mut failed = 0;
    for (_, task) in tasks {
        let r = task
            .await
            .context("the provisioning task stopped unexpectedly")
            .and_then(|r| r);
        if let Err(e) = r {
            if single {
                return Err(e);
            }
            g.printer.error(&e);
            failed += 1;
        }
    }
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}
