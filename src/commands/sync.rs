//! `box sync`: mirror the machines' sync folders now, or keep doing it on
//! every change with `--watch`; `--pull` copies what changed in the guest
//! back to the host.

use std::path::{Component, Path, PathBuf};

use anyhow::Context as _;

use crate::boxfile::{Machine, SyncFolder};
use crate::cli::SyncArgs;
use crate::error::{ExitStatus, Hinted};
use crate::sync;

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

/// The folders of one machine a pull looks at: by index in its `sync`,
/// all of it (`None`) or some paths in it.
type Picks = Vec<(usize, Option<Vec<String>>)>;

pub(crate) async fn run(g: &Settings, args: SyncArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    if !args.watch {
        // A watcher runs for hours; holding the lock would block `box up`.
        ws.lock()?;
    }
    // With --pull, machine names come first and paths after them.
    let split = if args.pull {
        args.machines
            .iter()
            .position(|a| ws.ctx.project.machine(a).is_none())
            .unwrap_or(args.machines.len())
    } else {
        args.machines.len()
    };
    let (names, paths) = args.machines.split_at(split);
    let machines: Vec<_> = ws
        .select(names)?
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
    let (machines, picks) = if args.pull {
        pick_all(machines, paths, !names.is_empty())?
    } else {
        let n = machines.len();
        (machines, vec![Vec::new(); n])
    };
    let mut targets = Vec::new();
    for m in &machines {
        targets.push(running_target(&ws, &m.name)?);
    }
    let store = ws.ctx.store.clone();
    let printer = g.printer.clone();
    let watch = args.watch;
    let (pull, force) = (args.pull, args.force);
    let (failed, unsettled) =
        tokio::task::spawn_blocking(move || -> anyhow::Result<(usize, usize)> {
            // One session per machine, kept for the whole command.
            let mut sessions = Vec::new();
            for (m, t) in machines.into_iter().zip(targets) {
                let s = connect(&t, &m.name, &printer)?;
                sessions.push((m, s));
            }
            let mut failed = 0;
            let mut unsettled = 0;
            let single = sessions.len() == 1;
            for ((m, s), picks) in sessions.iter().zip(&picks) {
                let done = if pull {
                    pull_machine(s, m, picks, &store, &printer, force)
                        .with_context(|| format!("cannot pull folders from `{}`", m.name))
                } else {
                    sync_machine(s, m, &store, &printer, force)
                        .with_context(|| format!("cannot sync folders into `{}`", m.name))
                };
                match done {
                    Ok(n) => unsettled += n,
                    Err(e) if watch || single => return Err(e),
                    Err(e) => {
                        printer.error(&e);
                        failed += 1;
                    }
                }
            }
            if watch {
                sync::watch::watch(&sessions, &store, &printer)
                    .context("watching for changes failed")?;
            }
            Ok((failed, unsettled))
        })
        .await
        .context("the sync task stopped unexpectedly")??;
    Ok(if failed == 0 && unsettled == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}

/// Pulls the picked folders of `m`; returns how many paths were left
/// alone (conflicts) or refused.
fn pull_machine(
    s: &crate::ssh::Session,
    m: &Machine,
    picks: &Picks,
    store: &crate::state::StateStore,
    printer: &crate::output::Printer,
    force: bool,
) -> anyhow::Result<usize> {
    let mut unsettled = 0;
    for (i, paths) in picks {
        let r = sync::pull_folder(
            s,
            &m.name,
            &m.sync[*i],
            store,
            printer,
            paths.as_deref(),
            force,
        )?;
        unsettled += r.conflicts.len() + r.refused.len();
    }
    Ok(unsettled)
}

/// The push, after the entries' `pull` paths came back. A path in
/// conflict stays as it is on both sides unless `force` (the host's wins).
fn sync_machine(
    s: &crate::ssh::Session,
    m: &Machine,
    store: &crate::state::StateStore,
    printer: &crate::output::Printer,
    force: bool,
) -> anyhow::Result<usize> {
    let pulled = sync::pull_listed(s, m, store, printer, false)?;
    let mut hold = Vec::new();
    let mut unsettled = 0;
    for r in &pulled {
        unsettled += r.refused.len();
        if !force {
            unsettled += r.conflicts.len();
            hold.push((
                r.to.clone(),
                r.conflicts.iter().map(|c| c.path.clone()).collect(),
            ));
        }
    }
    // The manifest is trusted (it is tied to the machine's host key): with
    // nothing changed, nothing runs on the guest.
    sync::sync_machine_holding(s, m, store, printer, false, &hold)?;
    Ok(unsettled)
}

/// The folders each machine pulls. Without paths: every copied folder.
/// With paths: the folders holding them; a machine named on the command
/// line must hold each path, unnamed ones are left out when they hold none.
fn pick_all(
    machines: Vec<Machine>,
    paths: &[String],
    named: bool,
) -> anyhow::Result<(Vec<Machine>, Vec<Picks>)> {
    let cwd = std::env::current_dir().context("cannot read the current folder")?;
    let mut kept = Vec::new();
    let mut picks = Vec::new();
    let mut first_error = None;
    for m in machines {
        match pick(&m, paths, &cwd) {
            Ok(p) => {
                kept.push(m);
                picks.push(p);
            }
            Err(e) if named => return Err(e),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    match (kept.is_empty(), first_error) {
        (true, Some(e)) => Err(e),
        _ => Ok((kept, picks)),
    }
}

fn pick(m: &Machine, paths: &[String], cwd: &Path) -> anyhow::Result<Picks> {
    let copied = || m.sync.iter().enumerate().filter(|(_, f)| !f.is_mount());
    if paths.is_empty() {
        return Ok(copied().map(|(i, _)| (i, None)).collect());
    }
    let mut picks: Picks = Vec::new();
    for given in paths {
        let found = copied().find_map(|(i, f)| inside(given, f, cwd).map(|rel| (i, rel)));
        let Some((i, rel)) = found else {
            let folders: Vec<String> = copied()
                .map(|(_, f)| format!("{} -> {}", f.from.display(), f.to))
                .collect();
            return Err(Hinted::new(
                format!("`{given}` is not inside a synced folder of `{}`", m.name),
                format!(
                    "give a host path inside a folder's `from` or a guest path inside its `to`: {}",
                    folders.join(", ")
                ),
            )
            .into());
        };
        let rel = match rel.as_str() {
            "" => None,
            r => Some(sync::pull_path(r).map_err(|why| {
                anyhow::Error::from(Hinted::new(
                    format!("cannot pull `{given}`: it {why}"),
                    "give a path inside the synced folder",
                ))
            })?),
        };
        // A folder pulled whole (`None`) needs no paths besides.
        match picks.iter_mut().find(|(j, _)| *j == i) {
            Some((_, slot)) => match (slot, rel) {
                (Some(v), Some(r)) => v.push(r),
                (slot, None) => *slot = None,
                (None, Some(_)) => {}
            },
            None => picks.push((i, rel.map(|r| vec![r]))),
        }
    }
    Ok(picks)
}

/// `given` relative to the folder ("" for the folder itself), when it is
/// a host path inside `from` or an absolute guest path inside `to`.
/// Lexical: `..` that climbs out of the folder makes it not inside.
fn inside(given: &str, f: &SyncFolder, cwd: &Path) -> Option<String> {
    let host = normal(&cwd.join(given));
    if let Ok(rel) = host.strip_prefix(&f.from) {
        return rel.to_str().map(str::to_string);
    }
    if given.starts_with('/') {
        let guest = normal(Path::new(given));
        if let Ok(rel) = guest.strip_prefix(&f.to) {
            return rel.to_str().map(str::to_string);
        }
    }
    None
}

fn normal(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c),
        }
    }
    out
}
