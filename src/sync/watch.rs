//! `box sync --watch`: file-system notifications, a short debounce, and a
//! sync of only the affected folders over connections kept open.

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use super::{relevant, FolderSync, SyncError};
use crate::boxfile::Machine;
use crate::output::Printer;
use crate::ssh::Session;
use crate::state::StateStore;

/// Quiet time after the last event before syncing (editors write in bursts).
const DEBOUNCE: Duration = Duration::from_millis(20);
/// Quiet time after which manifests are saved and keepalives sent.
const IDLE: Duration = Duration::from_secs(1);
/// Longest a burst of events may delay a sync.
const MAX_DELAY: Duration = Duration::from_millis(200);

/// Watches every sync folder of `machines` and syncs on change, forever
/// (until the process is interrupted or a sync fails).
pub fn watch(
    machines: &[(Machine, Session)],
    store: &StateStore,
    printer: &Printer,
) -> Result<(), SyncError> {
    // An empty path means "events were lost": scan everything.
    let (tx, rx) = mpsc::channel::<PathBuf>();
    let mut watcher =
        notify::recommended_watcher(move |res: notify::Result<notify::Event>| match res {
            // Reads (box's own scans open every folder) change nothing.
            Ok(event) if matches!(event.kind, EventKind::Access(_)) => {}
            Ok(event) if !event.need_rescan() => {
                for p in event.paths {
                    let _ = tx.send(p);
                }
            }
            _ => {
                let _ = tx.send(PathBuf::new());
            }
        })
        .map_err(|source| SyncError::Watch {
            path: PathBuf::from("."),
            source,
        })?;
    let mut roots: Vec<PathBuf> = Vec::new();
    for (m, _) in machines {
        for f in m.sync.iter().filter(|f| !f.is_mount()) {
            if !roots.contains(&f.from) {
                watcher
                    .watch(&f.from, RecursiveMode::Recursive)
                    .map_err(|source| SyncError::Watch {
                        path: f.from.clone(),
                        source,
                    })?;
                roots.push(f.from.clone());
            }
        }
    }
    printer.info(&format!(
        "watching {} folder(s) for changes; Ctrl-C to stop",
        roots.len()
    ));
    // Manifests stay in memory: the first pass above already checked the guest.
    let mut folders: Vec<(usize, FolderSync<'_>)> = Vec::new();
    for (i, (m, session)) in machines.iter().enumerate() {
        for f in m.sync.iter().filter(|f| !f.is_mount()) {
            let mut fs = FolderSync::open(m, f, store, session);
            fs.check_remote = false;
            fs.save_eagerly = false;
            fs.prefer_sftp = true;
            folders.push((i, fs));
        }
    }
    loop {
        let first = match rx.recv_timeout(IDLE) {
            Ok(p) => p,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                for (_, fs) in folders.iter_mut() {
                    fs.flush()?;
                }
                for (_, s) in machines {
                    s.keepalive();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let mut changed = vec![first];
        let started = Instant::now();
        while started.elapsed() < MAX_DELAY {
            match rx.recv_timeout(DEBOUNCE) {
                Ok(p) => changed.push(p),
                Err(_) => break,
            }
        }
        let rescan = changed.iter().any(|p| p.as_os_str().is_empty());
        for (i, fs) in folders.iter_mut() {
            if !rescan && !changed.iter().any(|p| relevant(&fs.folder.from, p)) {
                continue;
            }
            let (m, session) = &machines[*i];
            let mine: Vec<PathBuf> = changed
                .iter()
                .filter(|p| relevant(&fs.folder.from, p))
                .cloned()
                .collect();
            let r = if rescan {
                fs.run(session)?
            } else {
                fs.run_changed(session, &mine)?
            };
            // Reported, not fatal: the watcher keeps going.
            r.report_skipped(&m.name, printer);
            if r.changed() {
                printer.machine(
                    &m.name,
                    &format!(
                        "synced {} ({} ms after the first change)",
                        r.summary(),
                        started.elapsed().as_millis()
                    ),
                );
            }
        }
    }
}
