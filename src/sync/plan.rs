//! The difference between the host tree and the manifest: what to delete
//! on the guest and what to send. Size and mtime decide; when only the
//! mtime moved, the content hash settles it so a `touch` sends nothing.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind, Manifest};

#[derive(Debug, Default)]
pub struct Plan {
    /// Paths to remove on the guest, outermost only (removal is recursive).
    pub delete: Vec<String>,
    /// Paths to send, parents before children.
    pub send: Vec<String>,
    /// Files whose mtime moved but whose content did not: only the manifest changes.
    pub touched: Vec<String>,
}

impl Plan {
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.send.is_empty() && self.touched.is_empty()
    }

    /// Leaves `paths` alone: neither sent nor deleted, nor removed with a
    /// folder above them. The manifest keeps its old entry for them, so
    /// the next sync looks at them again.
    pub fn hold(&mut self, paths: &[String]) {
        let held = |p: &str| paths.iter().any(|h| h == p);
        let holds_below = |p: &str| {
            paths.iter().any(|h| {
                h == p || (h.len() > p.len() && h.starts_with(p) && h.as_bytes()[p.len()] == b'/')
            })
        };
        self.delete.retain(|p| !holds_below(p));
        self.send.retain(|p| !held(p));
        self.touched.retain(|p| !held(p));
    }
}

/// `unknown` holds paths whose content the scan could not see (unreadable
/// folders): what the manifest has at or below them is left alone, since
/// "cannot be read" is not "was deleted".
pub fn plan(
    root: &Path,
    local: &BTreeMap<String, Entry>,
    manifest: &Manifest,
    unknown: &[String],
) -> Plan {
    let mut plan = Plan::default();
    let mut deleted: HashSet<&str> = HashSet::new();
    for (path, old) in &manifest.entries {
        if !unknown.is_empty() && at_or_below_any(path, unknown) {
            continue;
        }
        let gone = match local.get(path) {
            None => true,
            Some(new) => new.kind != old.kind,
        };
        if gone && !has_deleted_ancestor(path, &deleted) {
            deleted.insert(path);
            plan.delete.push(path.clone());
        }
    }
    for (path, new) in local {
        let Some(old) = manifest.entries.get(path).filter(|o| o.kind == new.kind) else {
            plan.send.push(path.clone());
            continue;
        };
        match new.kind {
            Kind::Dir => {
                if new.mode != old.mode {
                    plan.send.push(path.clone());
                }
            }
            Kind::Symlink => {
                if new.target != old.target {
                    plan.send.push(path.clone());
                }
            }
            Kind::File => {
                if new.size == old.size && new.mtime_ns == old.mtime_ns && new.mode == old.mode {
                    continue;
                }
                let same_content = new.size == old.size
                    && new.mode == old.mode
                    && old.hash.is_some()
                    && hash_file(&root.join(path)) == old.hash;
                if same_content {
                    plan.touched.push(path.clone());
                } else {
                    plan.send.push(path.clone());
                }
            }
        }
    }
    plan
}

fn at_or_below_any(path: &str, dirs: &[String]) -> bool {
    dirs.iter().any(|d| {
        d.is_empty()
            || path == d
            || (path.len() > d.len()
                && path.starts_with(d.as_str())
                && path.as_bytes()[d.len()] == b'/')
    })
}

fn has_deleted_ancestor(path: &str, deleted: &HashSet<&str>) -> bool {
    let mut p = path;
    while let Some(i) = p.rfind('/') {
        p = &p[..i];
        if deleted.contains(p) {
            return true;
        }
    }
    false
}

pub fn hash_file(path: &Path) -> Option<String> {
    let mut f = std::fs::File::open(path).ok()?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).ok()?;
    Some(hex(&h.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(size: u64, t: i128) -> Entry {
        Entry::file(size, t, 0o644)
    }

    fn dir() -> Entry {
        Entry::dir(0o755)
    }

    #[test]
    fn sends_new_and_changed_and_deletes_only_the_outermost_gone_path() {
        let mut m = Manifest::empty(Path::new("/x"), "/y", None, "k");
        m.entries.insert("a".into(), dir());
        m.entries.insert("a/b".into(), file(1, 1));
        m.entries.insert("c".into(), file(1, 1));
        m.entries.insert("d".into(), file(1, 1));
        let mut local = BTreeMap::new();
        local.insert("c".to_string(), file(2, 1));
        local.insert("d".to_string(), file(1, 1));
        local.insert("e".to_string(), file(1, 1));
        let p = plan(Path::new("/nonexistent"), &local, &m, &[]);
        assert_eq!(p.delete, vec!["a"]);
        assert_eq!(p.send, vec!["c", "e"]);
    }

    #[test]
    fn a_path_that_changed_kind_is_deleted_then_sent() {
        let mut m = Manifest::empty(Path::new("/x"), "/y", None, "k");
        m.entries.insert("a".into(), dir());
        let mut local = BTreeMap::new();
        local.insert("a".to_string(), file(1, 1));
        let p = plan(Path::new("/nonexistent"), &local, &m, &[]);
        assert_eq!(p.delete, vec!["a"]);
        assert_eq!(p.send, vec!["a"]);
    }

    #[test]
    fn a_touched_file_with_the_same_content_is_not_sent() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"hello").unwrap();
        let mut m = Manifest::empty(tmp.path(), "/y", None, "k");
        let mut old = file(5, 1);
        old.hash = hash_file(&tmp.path().join("f"));
        m.entries.insert("f".into(), old);
        let mut local = BTreeMap::new();
        local.insert("f".to_string(), file(5, 2));
        let p = plan(tmp.path(), &local, &m, &[]);
        assert!(p.send.is_empty());
        assert_eq!(p.touched, vec!["f"]);
    }

    #[test]
    fn what_lies_in_an_unreadable_folder_is_neither_deleted_nor_sent() {
        let mut m = Manifest::empty(Path::new("/x"), "/y", None, "k");
        m.entries.insert("a".into(), dir());
        m.entries.insert("a/b".into(), file(1, 1));
        m.entries.insert("ab".into(), file(1, 1));
        let local = BTreeMap::new();
        let p = plan(Path::new("/nonexistent"), &local, &m, &["a".to_string()]);
        assert_eq!(p.delete, vec!["ab"]);
        assert!(p.send.is_empty());
    }
}
