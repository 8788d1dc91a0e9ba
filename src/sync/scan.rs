//! The host side of a sync folder as box sees it: the paths to send after
//! the Boxfile's excludes, `.gitignore` rules and `.box/` are taken out.
//!
//! Besides a full scan it can list single folders, which is what keeps
//! `--watch` fast on big trees: a change costs the folders it touched.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ignore::overrides::{Override, OverrideBuilder};
use ignore::{WalkBuilder, WalkState};

use super::manifest::{Entry, Kind};
use super::SyncError;

pub type Tree = BTreeMap<String, Entry>;

/// The rules of one sync folder, built once.
pub struct Scanner {
    root: PathBuf,
    overrides: Override,
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

    fn builder(&self, start: &Path) -> WalkBuilder {
        let mut walk = WalkBuilder::new(start);
        // `parents`: a folder listed on its own still obeys the .gitignore
        // files above it, exactly as in a full scan.
        walk.hidden(false)
            .parents(true)
            .ignore(false)
            .git_ignore(true)
            .git_global(false)
            .git_exclude(false)
            .require_git(false)
            .follow_links(false)
            .overrides(self.overrides.clone())
            // box's own state never leaves the host.
            .filter_entry(|e| e.file_name() != ".box");
        walk
    }

    fn relative(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.root).ok()?.to_str()?;
        (!rel.is_empty()).then(|| rel.replace('\\', "/"))
    }

    /// Every path under the root, keyed by its `/`-separated relative path.
    pub fn full(&self) -> Tree {
        let found = Mutex::new(BTreeMap::new());
        let mut walk = self.builder(&self.root);
        walk.threads(2);
        walk.build_parallel().run(|| {
            Box::new(|result| {
                let Ok(entry) = result else {
                    return WalkState::Continue;
                };
                if let (Some(rel), Some(e)) = (self.relative(entry.path()), entry_of(entry.path()))
                {
                    if let Ok(mut map) = found.lock() {
                        map.insert(rel, e);
                    }
                }
                WalkState::Continue
            })
        });
        found.into_inner().unwrap_or_default()
    }

    /// The paths under the folder `rel` ("" for the root): its direct
    /// children when `recursive` is false. The caller vouches that `rel`
    /// itself is not excluded.
    pub fn folder(&self, rel: &str, recursive: bool, out: &mut Tree) {
        let start = if rel.is_empty() {
            self.root.clone()
        } else {
            self.root.join(rel)
        };
        let mut walk = self.builder(&start);
        if !recursive {
            walk.max_depth(Some(1));
        }
        for entry in walk.build().flatten() {
            if entry.depth() == 0 {
                continue;
            }
            if let (Some(rel), Some(e)) = (self.relative(entry.path()), entry_of(entry.path())) {
                out.insert(rel, e);
            }
        }
    }
}

/// The manifest entry of one path (`lstat`: links are not followed).
pub fn entry_of(path: &Path) -> Option<Entry> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(path).ok()?;
    let ft = meta.file_type();
    let mtime_ns = meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128;
    let mode = meta.mode() & 0o7777;
    if ft.is_symlink() {
        let target = std::fs::read_link(path).ok()?;
        Some(Entry {
            kind: Kind::Symlink,
            size: 0,
            mtime_ns: 0,
            mode: 0o777,
            hash: None,
            target: Some(target.to_str()?.to_string()),
        })
    } else if ft.is_dir() {
        Some(Entry {
            kind: Kind::Dir,
            size: 0,
            mtime_ns: 0,
            mode,
            hash: None,
            target: None,
        })
    } else if ft.is_file() {
        Some(Entry {
            kind: Kind::File,
            size: meta.len(),
            mtime_ns,
            mode,
            hash: None,
            target: None,
        })
    } else {
        // Sockets, fifos and devices have no meaning on another machine.
        None
    }
}
