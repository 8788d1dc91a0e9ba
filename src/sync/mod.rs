//! Folder sync, host to guest, over the machine's SSH session.
//!
//! Each `sync` entry of a machine is mirrored: the host tree is scanned
//! (Boxfile excludes, `.gitignore`, never `.box/`), compared with the
//! manifest of what was last sent, and only the difference travels: one
//! remote `rm` for what is gone, one tar stream for what is new or changed.
//! rsync is not needed on either side.

mod apply;
mod manifest;
mod plan;
mod pull;
mod scan;
mod small;
pub mod watch;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::boxfile::{Machine, SyncFolder};
use crate::error::Hinted;
use crate::output::Printer;
use crate::ssh::{Session, SshError};
use crate::state::StateStore;

pub use manifest::Manifest;
pub use pull::{pull_path, Conflict, PullReport};

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("cannot read the sync folder {path}")]
    Source {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("bad exclude pattern `{pattern}`: {reason}")]
    Exclude { pattern: String, reason: String },
    /// A `.gitignore` box will not read (see `scan::ignore_file`).
    #[error("{}", .0.message)]
    IgnoreFile(#[source] Hinted),
    /// Paths left out that the user did not agree to leave out.
    #[error("{}", .0.message)]
    Incomplete(#[source] Hinted),
    #[error("cannot write the sync manifest {path}")]
    Manifest {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create {what}")]
    Local {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("the {step} step on the machine exited with code {status}: {}", .stderr.trim())]
    Remote {
        step: &'static str,
        status: i32,
        stderr: String,
    },
    #[error("sync over SSH failed")]
    Ssh(#[source] SshError),
    #[error("cannot watch {path} for changes")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

/// A host path a sync left out, and why.
#[derive(Debug, Clone)]
pub struct Skipped {
    pub path: PathBuf,
    pub reason: String,
}

/// What one folder's sync did.
#[derive(Debug, Clone)]
pub struct FolderReport {
    pub from: PathBuf,
    pub to: String,
    pub sent_files: u64,
    pub sent_bytes: u64,
    pub deleted: u64,
    /// Paths that could not be read or sent.
    pub skipped: Vec<Skipped>,
    /// The user chose to leave such paths out (`skip_unreadable`).
    pub skip_allowed: bool,
    pub elapsed: Duration,
}

impl FolderReport {
    pub fn changed(&self) -> bool {
        self.sent_files > 0 || self.deleted > 0
    }

    /// `/host -> /guest: 3 sent (1.2 KiB), 1 deleted, 2 skipped in 42 ms`
    /// (skipped only when there are some).
    pub fn summary(&self) -> String {
        let skipped = match self.skipped.len() {
            0 => String::new(),
            n => format!(", {n} skipped"),
        };
        format!(
            "{} -> {}: {} sent ({}), {} deleted{skipped} in {} ms",
            self.from.display(),
            self.to,
            self.sent_files,
            human_bytes(self.sent_bytes),
            self.deleted,
            self.elapsed.as_millis()
        )
    }

    /// Prints each skipped path: a warning, or a verbose line when the user
    /// chose to skip such paths. Returns how many were not agreed to.
    pub fn report_skipped(&self, machine: &str, printer: &Printer) -> usize {
        for s in &self.skipped {
            let line = format!("{machine}: skipped {}: {}", shown(&s.path), s.reason);
            if self.skip_allowed {
                printer.verbose(&line);
            } else {
                printer.warn(&line);
            }
        }
        if self.skip_allowed {
            0
        } else {
            self.skipped.len()
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct SyncReport {
    pub folders: Vec<FolderReport>,
}

/// Syncs every `sync` entry of `machine`, printing one line per folder.
/// It also asks the guest whether each destination still exists (one
/// command per folder), which `up` and `reload` can afford.
pub fn sync_machine(
    session: &Session,
    machine: &Machine,
    store: &StateStore,
    printer: &Printer,
) -> Result<SyncReport, SyncError> {
    sync_machine_with(session, machine, store, printer, true)
}

/// [`sync_machine`], trusting the manifest when `check_remote` is false:
/// with nothing changed, no command runs on the guest at all.
pub fn sync_machine_with(
    session: &Session,
    machine: &Machine,
    store: &StateStore,
    printer: &Printer,
    check_remote: bool,
) -> Result<SyncReport, SyncError> {
    sync_machine_holding(session, machine, store, printer, check_remote, &[])
}

/// [`sync_machine_with`], leaving alone the paths in `hold`: per guest
/// folder (`to`), paths a pull found in conflict, so that neither side's
/// version is lost.
pub fn sync_machine_holding(
    session: &Session,
    machine: &Machine,
    store: &StateStore,
    printer: &Printer,
    check_remote: bool,
    hold: &[(String, Vec<String>)],
) -> Result<SyncReport, SyncError> {
    let mut report = SyncReport::default();
    let mut not_agreed = 0;
    // A mounted folder is the host folder itself: nothing to copy.
    for folder in machine.sync.iter().filter(|f| !f.is_mount()) {
        let mut f = FolderSync::open(machine, folder, store, session);
        f.check_remote = check_remote;
        f.hold = hold
            .iter()
            .filter(|(to, _)| *to == folder.to)
            .flat_map(|(_, paths)| paths.iter().cloned())
            .collect();
        let r = f.run(session)?;
        not_agreed += r.report_skipped(&machine.name, printer);
        printer.machine(&machine.name, &format!("synced {}", r.summary()));
        report.folders.push(r);
    }
    // Everything else was sent; the command still fails so that a missing
    // file is never a surprise found later on the machine.
    if not_agreed > 0 {
        return Err(SyncError::Incomplete(Hinted::new(
            format!("{not_agreed} path(s) could not be read or sent (each is listed above)"),
            "make them readable, or `exclude` them; or set `skip_unreadable = true` \
             on the sync entry to leave such paths out on purpose",
        )));
    }
    Ok(report)
}

/// Brings back what changed in one guest folder (see [`pull::pull`]):
/// everything a push would send, or `paths` in it. Prints one line for
/// the folder and one warning per conflict or refused path.
pub fn pull_folder(
    session: &Session,
    machine: &str,
    folder: &SyncFolder,
    store: &StateStore,
    printer: &Printer,
    paths: Option<&[String]>,
    force: bool,
) -> Result<PullReport, SyncError> {
    let r = pull::pull(session, &store.machine_dir(machine), folder, paths, force)?;
    printer.machine(machine, &format!("pulled {}", r.summary()));
    for c in &r.conflicts {
        printer.warn(&format!(
            "{machine}: conflict: {}: {}; left alone",
            shown(&folder.from.join(&c.path)),
            c.why
        ));
    }
    for s in &r.refused {
        printer.warn(&format!(
            "{machine}: not pulled: {}: {}",
            shown(&s.path),
            s.reason
        ));
    }
    if !r.conflicts.is_empty() {
        printer.warn(&format!(
            "hint: keep the version you want: `box sync --pull --force {machine}` takes the guest's, `box sync --force {machine}` sends the host's"
        ));
    }
    Ok(r)
}

/// Brings back the `pull` paths of every sync entry of `machine` (after
/// provisioning, and on `box sync`).
pub fn pull_listed(
    session: &Session,
    machine: &Machine,
    store: &StateStore,
    printer: &Printer,
    force: bool,
) -> Result<Vec<PullReport>, SyncError> {
    let mut out = Vec::new();
    for folder in machine
        .sync
        .iter()
        .filter(|f| !f.pull.is_empty() && !f.is_mount())
    {
        out.push(pull_folder(
            session,
            &machine.name,
            folder,
            store,
            printer,
            Some(&folder.pull),
            force,
        )?);
    }
    Ok(out)
}

/// Forgets what was sent to `machine`: its next sync sends everything.
/// For a guest whose disk went back in time (a snapshot restore).
pub fn forget(store: &StateStore, machine: &str) -> Result<(), SyncError> {
    let dir = store.machine_dir(machine);
    manifest::forget(&dir).map_err(|source| SyncError::Manifest { path: dir, source })
}

/// One folder's sync state kept in memory between runs (`--watch`), so a
/// change costs the folders it touched, not a manifest reload and a scan.
pub struct FolderSync<'a> {
    pub folder: &'a SyncFolder,
    file: PathBuf,
    manifest: Manifest,
    host_key: String,
    scanner: Option<scan::Scanner>,
    /// Ask the guest whether the destination exists before the next run.
    pub check_remote: bool,
    /// Save the manifest after every run; `--watch` saves when idle
    /// instead (an older manifest only makes the next sync resend more).
    pub save_eagerly: bool,
    unsaved: bool,
    /// Send small changes over SFTP (`--watch`): no process starts on the guest.
    pub prefer_sftp: bool,
    sftp: Option<ssh2::Sftp>,
    /// Paths the push leaves alone this time (pull conflicts).
    pub hold: Vec<String>,
}

/// More changed paths than this in one batch: scan everything instead.
const PARTIAL_LIMIT: usize = 2000;

impl<'a> FolderSync<'a> {
    pub fn open(
        machine: &Machine,
        folder: &'a SyncFolder,
        store: &StateStore,
        session: &Session,
    ) -> Self {
        let owner = folder.owner.as_deref();
        let file = Manifest::path(&store.machine_dir(&machine.name), &folder.to);
        let host_key = session.host_key_fingerprint().to_string();
        let manifest = Manifest::load(&file, &folder.from, &folder.to, owner, &host_key);
        FolderSync {
            folder,
            file,
            manifest,
            host_key,
            scanner: None,
            check_remote: true,
            save_eagerly: true,
            unsaved: false,
            prefer_sftp: false,
            sftp: None,
            hold: Vec::new(),
        }
    }

    /// Scans the whole folder and syncs the difference.
    pub fn run(&mut self, session: &Session) -> Result<FolderReport, SyncError> {
        self.run_scoped(session, None)
    }

    /// Syncs only what `changed` (host paths from file-system events) can
    /// have touched: the folders holding them, and new folders in full.
    pub fn run_changed(
        &mut self,
        session: &Session,
        changed: &[PathBuf],
    ) -> Result<FolderReport, SyncError> {
        let mut rels = Vec::new();
        for p in changed {
            if let Ok(rel) = p.strip_prefix(&self.folder.from) {
                let Some(r) = rel.to_str() else {
                    return self.run_scoped(session, None);
                };
                let r = r.replace('\\', "/");
                if !self.through_link(&r) {
                    rels.push(r);
                    continue;
                }
                // The watcher follows links to folders and reports the
                // link's path; find the real one (or drop a path outside).
                match self.real_rel(&r) {
                    Some(Some(real)) => rels.push(real),
                    Some(None) => {}
                    None => return self.run_scoped(session, None),
                }
            }
        }
        // New ignore rules change what belongs anywhere below them.
        let full = rels.len() > PARTIAL_LIMIT
            || rels
                .iter()
                .any(|r| r.is_empty() || r == ".gitignore" || r.ends_with("/.gitignore"));
        if full {
            return self.run_scoped(session, None);
        }
        let mut dirty = BTreeSet::new();
        for r in &rels {
            // The nearest folder known to be synced: listing it applies the
            // ignore rules to everything new below it.
            let mut d = parent(r);
            while !d.is_empty() && !self.is_dir(d) {
                d = parent(d);
            }
            dirty.insert(d.to_string());
        }
        self.run_scoped(session, Some(dirty))
    }

    /// True when a folder above `rel` is a symbolic link.
    fn through_link(&self, rel: &str) -> bool {
        let mut d = parent(rel);
        while !d.is_empty() {
            if self
                .manifest
                .entries
                .get(d)
                .is_some_and(|e| e.kind == manifest::Kind::Symlink)
            {
                return true;
            }
            d = parent(d);
        }
        false
    }

    /// `rel` with its folder resolved: `Some(None)` when it lies outside
    /// the sync folder, `None` when it cannot be resolved.
    fn real_rel(&self, rel: &str) -> Option<Option<String>> {
        let root = std::fs::canonicalize(&self.folder.from).ok()?;
        let dir = std::fs::canonicalize(self.folder.from.join(parent(rel))).ok()?;
        let name = rel.rsplit('/').next()?;
        Some(match dir.strip_prefix(&root) {
            Ok(d) if d.as_os_str().is_empty() => Some(name.to_string()),
            Ok(d) => d.to_str().map(|d| format!("{d}/{name}")),
            Err(_) => None,
        })
    }

    fn is_dir(&self, rel: &str) -> bool {
        self.manifest
            .entries
            .get(rel)
            .is_some_and(|e| e.kind == manifest::Kind::Dir)
    }

    fn run_scoped(
        &mut self,
        session: &Session,
        dirty: Option<BTreeSet<String>>,
    ) -> Result<FolderReport, SyncError> {
        let start = Instant::now();
        let folder = self.folder;
        let owner = folder.owner.as_deref();
        if std::mem::take(&mut self.check_remote)
            && !self.manifest.entries.is_empty()
            && !apply::remote_exists(session, &folder.to)?
        {
            self.manifest = Manifest::empty(&folder.from, &folder.to, owner, &self.host_key);
        }
        let scanner = match self.scanner.take() {
            Some(s) => s,
            None => scan::Scanner::new(&folder.from, &folder.exclude)?,
        };
        let (found, scoped) = match dirty {
            None => (scanner.full()?, None),
            Some(dirs) => {
                let mut found = scan::Scan::default();
                let mut scope: Vec<(String, bool)> = Vec::new();
                for d in dirs {
                    scanner.folder(&d, false, &mut found)?;
                    scope.push((d, false));
                }
                let new_dirs: Vec<String> = found
                    .tree
                    .iter()
                    .filter(|(p, e)| e.kind == manifest::Kind::Dir && !self.is_dir(p))
                    .map(|(p, _)| p.clone())
                    .collect();
                for d in new_dirs {
                    scanner.folder(&d, true, &mut found)?;
                    scope.push((d, true));
                }
                let mut view = Manifest::empty(&folder.from, &folder.to, owner, &self.host_key);
                view.entries = self
                    .manifest
                    .entries
                    .iter()
                    .filter(|(p, _)| in_scope(p, &scope))
                    .map(|(p, e)| (p.clone(), e.clone()))
                    .collect();
                (found, Some(view))
            }
        };
        self.scanner = Some(scanner);
        let local = &found.tree;
        let mut plan = plan::plan(
            &folder.from,
            local,
            scoped.as_ref().unwrap_or(&self.manifest),
            &found.unknown,
        );
        if !self.hold.is_empty() {
            plan.hold(&self.hold);
        }
        let login = session.user();
        let remote = apply::Remote {
            dest: &folder.to,
            owner: owner.unwrap_or(login),
            elevate: login != "root" && owner.is_some_and(|o| o.split(':').next() != Some(login)),
        };
        let by_sftp = self.prefer_sftp
            && !remote.elevate
            && owner.is_none_or(|o| o == login)
            && !plan.is_empty()
            && small::fits(&plan, local, &self.manifest);
        if by_sftp && self.sftp.is_none() {
            self.sftp = session.sftp().ok();
        }
        let small = match (&self.sftp, by_sftp) {
            (Some(sftp), true) => small::apply(
                sftp,
                &folder.to,
                &folder.from,
                &plan,
                local,
                &mut self.manifest,
            )
            .ok(),
            _ => None,
        };
        let result = if plan.is_empty() {
            Ok(apply::Applied::default())
        } else if let Some(done) = small {
            Ok(done)
        } else {
            apply::apply(
                session,
                &remote,
                &folder.from,
                &plan,
                local,
                &mut self.manifest,
            )
        };
        // Whatever was done before a failure is recorded, so it is not redone.
        if !plan.is_empty() || !self.file.exists() {
            self.unsaved = true;
        }
        if self.save_eagerly || result.is_err() {
            self.flush()?;
        }
        let applied = result?;
        let mut skipped = found.skipped;
        skipped.extend(applied.skipped);
        skipped.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(FolderReport {
            from: folder.from.clone(),
            to: folder.to.clone(),
            sent_files: applied.sent_files,
            sent_bytes: applied.sent_bytes,
            deleted: applied.deleted,
            skipped,
            skip_allowed: folder.skip_unreadable,
            elapsed: start.elapsed(),
        })
    }

    /// Writes the manifest if a run changed it.
    pub fn flush(&mut self) -> Result<(), SyncError> {
        if std::mem::take(&mut self.unsaved) {
            self.manifest.save(&self.file)?;
        }
        Ok(())
    }
}

fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(p, _)| p)
}

/// True when `path` was looked at by a partial scan of `scope`.
fn in_scope(path: &str, scope: &[(String, bool)]) -> bool {
    scope.iter().any(|(d, recursive)| {
        if *recursive {
            path.len() > d.len() && path.starts_with(d.as_str()) && path.as_bytes()[d.len()] == b'/'
        } else {
            parent(path) == d
        }
    })
}

/// A path as text, with the bytes of a name that is not UTF-8 written as
/// `\xff` so the user can find the file.
fn shown(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let mut out = String::new();
    for chunk in path.as_os_str().as_bytes().utf8_chunks() {
        out.push_str(chunk.valid());
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// True when `path` is inside `root` and not under a `.box` folder (box's
/// own state changes must never trigger a sync).
pub(crate) fn relevant(root: &Path, path: &Path) -> bool {
    match path.strip_prefix(root) {
        Ok(rel) => !rel.components().any(|c| c.as_os_str() == ".box"),
        Err(_) => false,
    }
}
