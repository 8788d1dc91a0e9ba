//! The host side of a sync folder as box sees it: the paths to send after
//! the Boxfile's excludes, `.gitignore` rules and `.box/` are taken out.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use ignore::overrides::OverrideBuilder;
use ignore::{WalkBuilder, WalkState};

use super::manifest::{Entry, Kind};
use super::SyncError;

/// Every path under `root` to mirror, keyed by its `/`-separated relative path.
pub fn scan(root: &Path, excludes: &[String]) -> Result<BTreeMap<String, Entry>, SyncError> {
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
    let mut walk = WalkBuilder::new(root);
    walk.hidden(false)
        .parents(false)
        .ignore(false)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .follow_links(false)
        .overrides(overrides)
        .threads(2)
        // box's own state never leaves the host.
        .filter_entry(|e| e.file_name() != ".box");
    let found = Mutex::new(BTreeMap::new());
    walk.build_parallel().run(|| {
        Box::new(|result| {
            let Ok(entry) = result else {
                return WalkState::Continue;
            };
            if entry.depth() == 0 {
                return WalkState::Continue;
            }
            let Ok(rel) = entry.path().strip_prefix(root) else {
                return WalkState::Continue;
            };
            let Some(rel) = rel.to_str() else {
                return WalkState::Continue;
            };
            if let Some(e) = entry_of(entry.path()) {
                if let Ok(mut map) = found.lock() {
                    map.insert(rel.replace('\\', "/"), e);
                }
            }
            WalkState::Continue
        })
    });
    Ok(found.into_inner().unwrap_or_default())
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
