//! The host side of a sync folder as box sees it: the paths to send after
//! the Boxfile's excludes, `.gitignore` rules and `.box/` are taken out.
//!
//! Besides a full scan it can list single folders, which is what keeps
//! `--watch` fast on big trees: a change costs the folders it touched.
//!
//! box reads the `.gitignore` files itself (see [`ignore_file`]) instead of
//! letting the walker open them: a synced folder may come from anyone, and
//! its `.gitignore` may be a fifo, a link to `/dev/zero` or gigabytes long.
//! The rules that apply are those of the sync folder and of the folders
//! above it up to the root of its git repository, as git applies them.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::{DirEntry, WalkBuilder, WalkState};

use super::manifest::Entry;
use super::{Skipped, SyncError};
use crate::error::Hinted;

pub type Tree = BTreeMap<String, Entry>;

/// A `.gitignore` larger than this is refused: real ones are a few KiB.
pub const IGNORE_FILE_LIMIT: u64 = 1024 * 1024;

/// What a scan found.
#[derive(Debug, Default)]
pub struct Scan {
    pub tree: Tree,
    /// Paths left out because they cannot be read or sent, with the reason.
    pub skipped: Vec<Skipped>,
    /// Relative paths whose content is unknown (an unreadable folder): what
    /// the manifest holds below them is neither deleted nor resent.
    pub unknown: Vec<String>,
}

/// The rules of one sync folder, built once.
pub struct Scanner {
    root: PathBuf,
    overrides: Override,
}

/// The `.gitignore` rules in force in one folder: its own file's, then its
/// parent's, and so on up. The innermost rule that matches decides.
struct Rules {
    gitignore: Gitignore,
    parent: Option<Arc<Rules>>,
}

fn ignored(rules: &Option<Arc<Rules>>, path: &Path, is_dir: bool) -> bool {
    let mut r = rules.as_deref();
    while let Some(rules) = r {
        let m = rules.gitignore.matched(path, is_dir);
        if m.is_ignore() {
            return true;
        }
        if m.is_whitelist() {
            return false;
        }
        r = rules.parent.as_deref();
    }
    false
}

/// `rules` with the `.gitignore` of `dir` (if any) on top.
fn push_rules(rules: Option<Arc<Rules>>, dir: &Path) -> Result<Option<Arc<Rules>>, SyncError> {
    Ok(match ignore_file(dir)? {
        Some(gitignore) => Some(Arc::new(Rules {
            gitignore,
            parent: rules,
        })),
        None => rules,
    })
}

/// The rules of `dir/.gitignore`, read only when it is a regular file of at
/// most [`IGNORE_FILE_LIMIT`] bytes, never through a link, never blocking
/// on a fifo. Anything else is an error: its rules cannot be known, and
/// sending what they might have kept back is worse than stopping.
fn ignore_file(dir: &Path) -> Result<Option<Gitignore>, SyncError> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = dir.join(".gitignore");
    let refuse = |what: String| {
        SyncError::IgnoreFile(Hinted::new(
            format!(
                "{} {what}: box reads a .gitignore only when it is a regular file \
                 of at most 1 MiB",
                path.display()
            ),
            "make it a readable regular file (a copy, not a link), or delete it; \
             box stops rather than send what its rules may keep back",
        ))
    };
    let meta = match std::fs::symlink_metadata(&path) {
        Ok(m) => m,
        // An unreadable folder is reported by the walk that lists it.
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
            ) =>
        {
            return Ok(None)
        }
        Err(e) => return Err(refuse(format!("cannot be read: {e}"))),
    };
    check_ignore_file(&meta).map_err(refuse)?;
    // Checked again on the open file: the path may have been swapped.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    let meta = file
        .metadata()
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    check_ignore_file(&meta).map_err(refuse)?;
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(IGNORE_FILE_LIMIT + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| refuse(format!("cannot be read: {e}")))?;
    if bytes.len() as u64 > IGNORE_FILE_LIMIT {
        return Err(refuse("is larger than 1 MiB".to_string()));
    }
    let mut builder = GitignoreBuilder::new(dir);
    for (i, line) in bytes.split(|&b| b == b'\n').enumerate() {
        // As the ignore crate reads them: a line that is not UTF-8 is
        // skipped, and so is a pattern that does not parse.
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        let line = if i == 0 {
            line.trim_start_matches('\u{feff}')
        } else {
            line
        };
        let _ = builder.add_line(Some(path.clone()), line);
    }
    let gitignore = builder
        .build()
        .map_err(|e| refuse(format!("cannot be used: {e}")))?;
    Ok(Some(gitignore))
}

fn check_ignore_file(meta: &std::fs::Metadata) -> Result<(), String> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        Err("is a symbolic link".to_string())
    } else if !ft.is_file() {
        Err("is not a regular file".to_string())
    } else if meta.len() > IGNORE_FILE_LIMIT {
        Err("is larger than 1 MiB".to_string())
    } else {
        Ok(())
    }
}

/// Answers "would a scan leave this path out?" for paths found elsewhere
/// (in the guest, for a pull), reading each host folder's `.gitignore`
/// once. A folder missing on the host adds no rules.
pub struct IgnoreCheck<'a> {
    scanner: &'a Scanner,
    rules: HashMap<PathBuf, Option<Arc<Rules>>>,
}

impl<'a> IgnoreCheck<'a> {
    pub fn new(scanner: &'a Scanner) -> Self {
        IgnoreCheck {
            scanner,
            rules: HashMap::new(),
        }
    }

    /// True when `rel` (`/`-separated, below the root) or a folder above
    /// it is excluded, ignored, or `.box`.
    pub fn ignored(&mut self, rel: &str, is_dir: bool) -> Result<bool, SyncError> {
        let parts: Vec<&str> = rel.split('/').collect();
        let mut path = self.scanner.root.clone();
        for (i, part) in parts.iter().enumerate() {
            let parent = path.clone();
            path.push(part);
            let dir = i + 1 < parts.len() || is_dir;
            if *part == ".box" || self.scanner.overrides.matched(&path, dir).is_ignore() {
                return Ok(true);
            }
            let rules = self.rules_in(&parent)?;
            if ignored(&rules, &path, dir) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The rules in force for the children of `dir` (at or below the root).
    fn rules_in(&mut self, dir: &Path) -> Result<Option<Arc<Rules>>, SyncError> {
        if let Some(r) = self.rules.get(dir) {
            return Ok(r.clone());
        }
        let r = match dir.parent() {
            Some(parent) if dir != self.scanner.root => {
                let above = self.rules_in(parent)?;
                push_rules(above, dir)?
            }
            // The root's own rules and those above it, as a scan sees them.
            _ => self.scanner.rules_above(&dir.join(".box"))?,
        };
        self.rules.insert(dir.to_path_buf(), r.clone());
        Ok(r)
    }
}

/// What one walk collects from its threads.
#[derive(Default)]
struct Found {
    scan: Scan,
    error: Option<SyncError>,
}

impl Scanner {
    pub fn new(root: &Path, excludes: &[String]) -> Result<Scanner, SyncError> {
        let meta = std::fs::metadata(root).map_err(|source| SyncError::Source {
            path: root.to_path_buf(),
            source,
        })?;
        if !meta.is_dir() {
            return Err(SyncError::Source {
                path: root.to_path_buf(),
                source: std::io::Error::other("not a folder"),
            });
        }
        let mut overrides = OverrideBuilder::new(root);
        for pattern in excludes {
            overrides
                .add(&format!("!{pattern}"))
                .map_err(|e| SyncError::Exclude {
                    pattern: pattern.clone(),
                    reason: e.to_string(),
                })?;
        }
        let overrides = overrides.build().map_err(|e| SyncError::Exclude {
            pattern: excludes.join(", "),
            reason: e.to_string(),
        })?;
        Ok(Scanner {
            root: root.to_path_buf(),
            overrides,
        })
    }

    /// The rules in force in the parent of `start`: those of the folders
    /// from the repository root (or the sync folder, outside a repository)
    /// down to that parent.
    fn rules_above(&self, start: &Path) -> Result<Option<Arc<Rules>>, SyncError> {
        let top = self
            .root
            .ancestors()
            .find(|d| std::fs::symlink_metadata(d.join(".git")).is_ok())
            .unwrap_or(&self.root);
        let Some(parent) = start.parent() else {
            return Ok(None);
        };
        let Ok(below_top) = parent.strip_prefix(top) else {
            // `start` is the top itself.
            return Ok(None);
        };
        let mut rules = push_rules(None, top)?;
        let mut dir = top.to_path_buf();
        for part in below_top.components() {
            dir.push(part);
            rules = push_rules(rules, &dir)?;
        }
        Ok(rules)
    }

    fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?.to_str()?;
        (!rel.is_empty()).then(|| rel.replace('\\', "/"))
    }

    /// Every path under the root, keyed by its `/`-separated relative path.
    pub fn full(&self) -> Result<Scan, SyncError> {
        self.walk(&self.root, None, 2)
    }

    /// The paths under the folder `rel` ("" for the root): its direct
    /// children when `recursive` is false. The caller vouches that `rel`
    /// itself is not excluded.
    pub fn folder(&self, rel: &str, recursive: bool, out: &mut Scan) -> Result<(), SyncError> {
        let start = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let found = self.walk(&start, (!recursive).then_some(1), 1)?;
        out.tree.extend(found.tree);
        out.skipped.extend(found.skipped);
        out.unknown.extend(found.unknown);
        Ok(())
    }

    /// Walks from `start` (itself not reported) down to `max_depth`.
    fn walk(
        &self,
        start: &Path,
        max_depth: Option<usize>,
        threads: usize,
    ) -> Result<Scan, SyncError> {
        // The rules in force in each folder walked so far, set when the
        // folder is visited: before its children are listed and filtered.
        let rules: Arc<Mutex<HashMap<PathBuf, Option<Arc<Rules>>>>> = Arc::default();
        if let Some(parent) = start.parent() {
            let above = self.rules_above(start)?;
            lock(&rules).insert(parent.to_path_buf(), above);
        }
        let mut walk = WalkBuilder::new(start);
        walk.hidden(false)
            .parents(false)
            .ignore(false)
            .git_ignore(false)
            .git_global(false)
            .git_exclude(false)
            .require_git(false)
            .follow_links(false)
            .max_depth(max_depth)
            .threads(threads)
            .overrides(self.overrides.clone());
        let filter_rules = Arc::clone(&rules);
        walk.filter_entry(move |e| {
            // box's own state never leaves the host.
            if e.file_name() == ".box" {
                return false;
            }
            let Some(parent) = e.path().parent() else {
                return true;
            };
            let in_force = lock(&filter_rules).get(parent).cloned().flatten();
            let is_dir = e.file_type().is_some_and(|t| t.is_dir());
            !ignored(&in_force, e.path(), is_dir)
        });
        let found = Mutex::new(Found::default());
        walk.build_parallel()
            .run(|| Box::new(|result| self.visit(result, max_depth, &rules, &found)));
        let found = found.into_inner().unwrap_or_else(|e| e.into_inner());
        match found.error {
            Some(e) => Err(e),
            None => Ok(found.scan),
        }
    }

    fn visit(
        &self,
        result: Result<DirEntry, ignore::Error>,
        max_depth: Option<usize>,
        rules: &Mutex<HashMap<PathBuf, Option<Arc<Rules>>>>,
        found: &Mutex<Found>,
    ) -> WalkState {
        let entry = match result {
            Ok(entry) => entry,
            Err(err) => {
                // A folder that cannot be listed (the walk already reported
                // the folder itself): its content is unknown.
                if let Some((path, reason)) = walk_error(&err) {
                    let mut f = lock(found);
                    if let Some(rel) = self
                        .relative(&path)
                        .or_else(|| (path == self.root).then(String::new))
                    {
                        f.scan.tree.remove(&rel);
                        f.scan.unknown.push(rel);
                    }
                    f.scan.skipped.push(Skipped { path, reason });
                }
                return WalkState::Continue;
            }
        };
        let path = entry.path();
        let is_dir = entry.file_type().is_some_and(|t| t.is_dir());
        if is_dir && max_depth.is_none_or(|m| entry.depth() < m) {
            // Rules for the children, read before they are listed.
            let parent_rules = path
                .parent()
                .and_then(|p| lock(rules).get(p).cloned())
                .flatten();
            match push_rules(parent_rules, path) {
                Ok(r) => {
                    lock(rules).insert(path.to_path_buf(), r);
                }
                Err(e) => {
                    lock(found).error.get_or_insert(e);
                    return WalkState::Quit;
                }
            }
        }
        if entry.depth() == 0 {
            return WalkState::Continue;
        }
        let Some(rel) = self.relative(path) else {
            lock(found).scan.skipped.push(Skipped {
                path: path.to_path_buf(),
                reason: "its name is not valid UTF-8".to_string(),
            });
            return WalkState::Skip;
        };
        match entry_of(path) {
            Ok(Some(e)) => {
                lock(found).scan.tree.insert(rel, e);
            }
            Ok(None) => {}
            Err(reason) => {
                let mut f = lock(found);
                f.scan.unknown.push(rel);
                f.scan.skipped.push(Skipped {
                    path: path.to_path_buf(),
                    reason,
                });
                return WalkState::Skip;
            }
        }
        WalkState::Continue
    }
}

/// The path and reason of a walk error (the walker only reports folders it
/// cannot list).
fn walk_error(err: &ignore::Error) -> Option<(PathBuf, String)> {
    match err {
        ignore::Error::WithPath { path, err } => Some((path.clone(), reason_of(err))),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            walk_error(err)
        }
        _ => None,
    }
}

fn reason_of(err: &ignore::Error) -> String {
    match err {
        ignore::Error::Io(e) => format!("cannot be read: {e}"),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            reason_of(err)
        }
        other => other.to_string(),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The manifest entry of one path (`lstat`: links are not followed).
/// `Ok(None)`: nothing to send (gone since it was listed, or a socket,
/// fifo or device, which mean nothing on another machine). `Err`: why it
/// cannot be sent.
pub fn entry_of(path: &Path) -> Result<Option<Entry>, String> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let ft = meta.file_type();
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    let mode = meta.mode() & 0o7777;
    if ft.is_symlink() {
        let target = match std::fs::read_link(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot be read: {e}")),
        };
        let Some(target) = target.to_str() else {
            return Err("its link target is not valid UTF-8".to_string());
        };
        Ok(Some(Entry::symlink(target)))
    } else if ft.is_dir() {
        Ok(Some(Entry::dir(mode)))
    } else if ft.is_file() {
        Ok(Some(Entry::file(meta.len(), mtime_ns, mode)))
    } else {
        Ok(None)
    }
}
