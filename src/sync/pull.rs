//! Files back from the guest: `box sync --pull` and a sync entry's `pull`.
//!
//! The guest folder is listed with one `find`, each path compared with the
//! manifest (what both sides held after the last sync) and with the host;
//! only what changed in the guest comes back, in one tar stream. A path
//! that changed on both sides is a conflict: listed, and left alone unless
//! forced.
//!
//! What the guest sends is checked, never trusted: only regular files that
//! were asked for, at clean relative paths, written below the host folder
//! through real folders only (never through a link), each to a temp file
//! renamed into place. Links that lead out of the folder, and special
//! files, are refused.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind, Manifest};
use super::plan::{hash_file, hex};
use super::scan::{entry_of, IgnoreCheck, Scanner};
use super::{Skipped, SyncError};
use crate::boxfile::SyncFolder;
use crate::ssh::{quote, Session};

/// A path the guest and the host both changed since the last sync.
#[derive(Debug, Clone)]
pub struct Conflict {
    /// Relative to the folder, `/`-separated.
    pub path: String,
    pub why: &'static str,
}

/// What one folder's pull did.
#[derive(Debug, Clone, Default)]
pub struct PullReport {
    pub from: PathBuf,
    pub to: String,
    pub pulled_files: u64,
    pub pulled_bytes: u64,
    /// Folders and links created or changed.
    pub pulled_other: u64,
    pub deleted: u64,
    pub conflicts: Vec<Conflict>,
    /// Guest paths box will not bring back (special files, links out of
    /// the folder, a link on the host in the way), with the reason.
    pub refused: Vec<Skipped>,
    pub elapsed: Duration,
}

impl PullReport {
    /// `/guest -> /host: 3 pulled (1.2 KiB), 1 deleted, 1 conflict in 42 ms`
    pub fn summary(&self) -> String {
        let mut extra = String::new();
        if !self.conflicts.is_empty() {
            extra.push_str(&format!(", {} conflict(s)", self.conflicts.len()));
        }
        if !self.refused.is_empty() {
            extra.push_str(&format!(", {} refused", self.refused.len()));
        }
        format!(
            "{} -> {}: {} pulled ({}), {} deleted{extra} in {} ms",
            self.to,
            self.from.display(),
            self.pulled_files + self.pulled_other,
            super::human_bytes(self.pulled_bytes),
            self.deleted,
            self.elapsed.as_millis()
        )
    }
}

/// A `pull` path as written (`dist/`, `./a/b`), made canonical: relative,
/// `/`-separated, no `.`, `..`, empty or trailing parts, not `.box`.
pub fn pull_path(given: &str) -> Result<String, &'static str> {
    if given.starts_with('/') {
        return Err("must be relative to the sync folder");
    }
    let mut parts = Vec::new();
    for part in given.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("leads out of the folder (`..`)"),
            ".box" => return Err("is box's own state folder"),
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return Err("names the whole folder: list what to bring back, e.g. `dist/`");
    }
    Ok(parts.join("/"))
}

/// Brings back what changed in the guest folder of `folder`: everything
/// that a push would send (`paths` = `None`), or what lies at or below
/// `paths` (relative to the folder, see [`pull_path`]), ignored or not.
/// With `force` the guest's version wins a conflict.
pub fn pull(
    session: &Session,
    machine_dir: &Path,
    folder: &SyncFolder,
    paths: Option<&[String]>,
    force: bool,
) -> Result<PullReport, SyncError> {
    let start = Instant::now();
    let root = &folder.from;
    let owner = folder.owner.as_deref();
    let file = Manifest::path(machine_dir, &folder.to);
    let mut manifest = Manifest::load(
        &file,
        root,
        &folder.to,
        owner,
        session.host_key_fingerprint(),
    );
    let login = session.user();
    // Files another user owns may be unreadable for the login user.
    let sudo = if login != "root" && owner.is_some_and(|o| o.split(':').next() != Some(login)) {
        "sudo -n "
    } else {
        ""
    };
    let scanner = Scanner::new(root, &folder.exclude)?;
    let mut ignore = IgnoreCheck::new(&scanner);
    let mut report = PullReport {
        from: root.clone(),
        to: folder.to.clone(),
        ..PullReport::default()
    };
    let Some(listing) = list_guest(session, &folder.to, paths, sudo)? else {
        // Never synced there yet (a first `box sync` pulls before it
        // pushes): nothing to bring back, and nothing to delete.
        if paths.is_none() {
            return Err(SyncError::Remote {
                step: "pull",
                status: 1,
                stderr: format!(
                    "the guest folder {} does not exist (hint: `box sync` sends the folder)",
                    folder.to
                ),
            });
        }
        report.elapsed = start.elapsed();
        return Ok(report);
    };
    report.refused = listing.refused;

    // The paths this pull looks at: in the guest now, or at the last sync.
    let mut guest: BTreeMap<String, Entry> = BTreeMap::new();
    for (p, e) in listing.entries {
        if in_scope(&p, e.kind == Kind::Dir, paths, &mut ignore)? {
            guest.insert(p, e);
        }
    }
    let mut candidates: BTreeSet<String> = guest.keys().cloned().collect();
    for (p, e) in manifest.entries.iter().chain(&manifest.pulled) {
        if in_scope(p, e.kind == Kind::Dir, paths, &mut ignore)? {
            candidates.insert(p.clone());
        }
    }

    let mut host: HashMap<String, Option<Entry>> = HashMap::new();
    for p in &candidates {
        match host_entry(root, p) {
            Ok(h) => {
                host.insert(p.clone(), h);
            }
            Err(reason) => {
                guest.remove(p);
                report.refused.push(Skipped {
                    path: root.join(p),
                    reason,
                });
            }
        }
    }
    let base = |p: &str| -> Option<Entry> {
        manifest
            .entries
            .get(p)
            .or_else(|| manifest.pulled.get(p))
            .cloned()
    };

    // Guest files whose content decides something: hashed on the guest.
    let to_hash: Vec<String> = guest
        .iter()
        .filter(|(p, g)| {
            g.kind == Kind::File && {
                let b = base(p);
                let h = host.get(*p).cloned().flatten();
                let unsettled = |o: &Option<Entry>| {
                    o.as_ref().is_some_and(|o| {
                        o.kind == Kind::File && o.size == g.size && !same_time(g, o)
                    })
                };
                unsettled(&b) || unsettled(&h)
            }
        })
        .map(|(p, _)| p.clone())
        .collect();
    let guest_hash = hash_guest(session, &folder.to, &to_hash, sudo)?;

    let mut deletes = Vec::new();
    let mut writes = Vec::new();
    let mut settled = Vec::new();
    for p in &candidates {
        let Some(h) = host.get(p).cloned() else {
            continue;
        };
        let g = guest.get(p);
        let b = base(p);
        let gh = guest_hash.get(p);
        let guest_changed = match (g, &b) {
            (None, None) => false,
            (Some(g), Some(b)) => !unchanged(g, b, same_time(g, b), || gh == b.hash.as_ref()),
            _ => true,
        };
        if !guest_changed {
            continue;
        }
        let host_changed = match (&h, &b) {
            (None, None) => false,
            (Some(h), Some(b)) => !unchanged(h, b, h.mtime_ns == b.mtime_ns, || {
                hash_file(&root.join(p)) == b.hash
            }),
            _ => true,
        };
        let alike = host_changed && same_content(root, p, h.as_ref(), g, gh);
        if alike {
            // Changed the same way on both sides: only the record catches up.
            settled.push((p.clone(), h));
            continue;
        }
        if host_changed && !force {
            report.conflicts.push(Conflict {
                path: p.clone(),
                why: match (g, &h, &b) {
                    (None, _, _) => "deleted in the guest, changed on the host",
                    (_, None, _) => "changed in the guest, deleted on the host",
                    (_, _, None) => "created on both sides",
                    _ => "changed on both sides",
                },
            });
            continue;
        }
        match g {
            None => deletes.push((p.clone(), h)),
            Some(g) => {
                if g.kind == Kind::Symlink {
                    if let Some(reason) = escaping_link(p, g) {
                        report.refused.push(Skipped {
                            path: root.join(p),
                            reason,
                        });
                        continue;
                    }
                }
                writes.push((p.clone(), g.clone(), h));
            }
        }
    }

    let mut record =
        |p: &str, e: Option<Entry>, ignore: &mut IgnoreCheck| -> Result<(), SyncError> {
            manifest.entries.remove(p);
            manifest.pulled.remove(p);
            if let Some(e) = e {
                if ignore.ignored(p, e.kind == Kind::Dir)? {
                    manifest.pulled.insert(p.to_string(), e);
                } else {
                    manifest.entries.insert(p.to_string(), e);
                }
            }
            Ok(())
        };

    for (p, h) in settled {
        let h = h.map(|mut h| {
            if h.kind == Kind::File {
                h.hash = hash_file(&root.join(&p));
            }
            h
        });
        record(&p, h, &mut ignore)?;
    }

    // Deepest first, so a folder is empty when its turn comes.
    deletes.sort_by(|a, b| b.0.cmp(&a.0));
    for (p, h) in &deletes {
        let full = root.join(p);
        let done = match h {
            None => Ok(()),
            Some(h) if h.kind == Kind::Dir => std::fs::remove_dir(&full),
            Some(_) => std::fs::remove_file(&full),
        };
        match done {
            Ok(()) => {
                record(p, None, &mut ignore)?;
                if h.is_some() {
                    report.deleted += 1;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::DirectoryNotEmpty => {
                let prefix = format!("{p}/");
                if !report.conflicts.iter().any(|c| c.path.starts_with(&prefix)) {
                    report.conflicts.push(Conflict {
                        path: p.clone(),
                        why: "deleted in the guest, holds files on the host the guest never had",
                    });
                }
            }
            Err(e) => report.refused.push(Skipped {
                path: full,
                reason: format!("cannot be removed: {e}"),
            }),
        }
    }

    // Folders and links first (shallow first), then the files' content.
    let mut files = Vec::new();
    for (p, g, h) in writes {
        let full = root.join(&p);
        let done = match g.kind {
            Kind::File => {
                files.push((p, g));
                continue;
            }
            Kind::Dir => make_dir(root, &p, g.mode, h.as_ref()),
            Kind::Symlink => make_link(root, &p, g.target.as_deref().unwrap_or_default()),
        };
        match done.and_then(|()| host_entry(root, &p)) {
            Ok(now) => {
                record(&p, now, &mut ignore)?;
                report.pulled_other += 1;
            }
            Err(reason) => report.refused.push(Skipped { path: full, reason }),
        }
    }
    if !files.is_empty() {
        let fetched = fetch(session, &folder.to, root, &files, sudo)?;
        for (p, result) in fetched {
            match result {
                Ok((bytes, hash)) => match host_entry(root, &p) {
                    Ok(Some(mut now)) => {
                        now.hash = Some(hash);
                        record(&p, Some(now), &mut ignore)?;
                        report.pulled_files += 1;
                        report.pulled_bytes += bytes;
                    }
                    Ok(None) => {}
                    Err(reason) => report.refused.push(Skipped {
                        path: root.join(&p),
                        reason,
                    }),
                },
                Err(reason) => report.refused.push(Skipped {
                    path: root.join(&p),
                    reason,
                }),
            }
        }
    }
    manifest.save(&file)?;
    report.refused.sort_by(|a, b| a.path.cmp(&b.path));
    report.elapsed = start.elapsed();
    Ok(report)
}

fn in_scope(
    rel: &str,
    is_dir: bool,
    paths: Option<&[String]>,
    ignore: &mut IgnoreCheck,
) -> Result<bool, SyncError> {
    Ok(match paths {
        None => !ignore.ignored(rel, is_dir)?,
        Some(ps) => {
            !rel.split('/').any(|c| c == ".box")
                && ps.iter().any(|p| {
                    rel == p
                        || (rel.len() > p.len()
                            && rel.starts_with(p.as_str())
                            && rel.as_bytes()[p.len()] == b'/')
                })
        }
    })
}

/// Same mtime as recorded: exactly (a pulled file, whose host copy got
/// the guest's time) or to the second (a pushed file: tar keeps seconds).
fn same_time(g: &Entry, b: &Entry) -> bool {
    const NS: i128 = 1_000_000_000;
    g.mtime_ns == b.mtime_ns || g.mtime_ns == b.mtime_ns.div_euclid(NS) * NS
}

/// `now` is what the last sync left (`b`): the same kind, mode or link
/// target; for a file the same size, and the same time or, when only the
/// time moved, the same content (`same_hash`, asked only then).
fn unchanged(now: &Entry, b: &Entry, same_time: bool, same_hash: impl FnOnce() -> bool) -> bool {
    if now.kind != b.kind {
        return false;
    }
    match now.kind {
        Kind::Dir => now.mode == b.mode,
        Kind::Symlink => now.target == b.target,
        Kind::File => {
            now.size == b.size
                && now.mode == b.mode
                && (same_time || (b.hash.is_some() && same_hash()))
        }
    }
}

/// Both sides hold the same thing now (both changed it the same way).
fn same_content(
    root: &Path,
    rel: &str,
    h: Option<&Entry>,
    g: Option<&Entry>,
    guest_hash: Option<&String>,
) -> bool {
    match (h, g) {
        (None, None) => true,
        (Some(h), Some(g)) if h.kind == g.kind => match h.kind {
            Kind::Dir => true,
            Kind::Symlink => h.target == g.target,
            Kind::File => {
                h.size == g.size
                    && guest_hash.is_some()
                    && hash_file(&root.join(rel)).as_ref() == guest_hash
            }
        },
        _ => false,
    }
}

/// Why a guest link is not brought back: it points out of the folder
/// (absolute, or climbing above the root with `..`).
fn escaping_link(rel: &str, g: &Entry) -> Option<String> {
    let target = g.target.as_deref().unwrap_or_default();
    let refuse = || {
        Some(format!(
            "is a link leading out of the folder (to `{target}`); box brings back only links that stay inside"
        ))
    };
    if target.starts_with('/') || target.is_empty() {
        return refuse();
    }
    let mut depth = rel.split('/').count() as i64 - 1;
    for part in target.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                depth -= 1;
                if depth < 0 {
                    return refuse();
                }
            }
            _ => depth += 1,
        }
    }
    None
}

/// The host entry at `rel`, never looking through a link: a link or a
/// non-folder above it means box will not write there.
fn host_entry(root: &Path, rel: &str) -> Result<Option<Entry>, String> {
    match parents(root, rel, false)? {
        Some(_) => entry_of(&root.join(rel)),
        None => Ok(None),
    }
}

/// Creates the missing folders above `rel`: real folders, never through a
/// link. Returns the folder that holds `rel`.
fn make_parents(root: &Path, rel: &str) -> Result<PathBuf, String> {
    parents(root, rel, true).map(|d| d.unwrap_or_else(|| root.to_path_buf()))
}

/// Walks the folders above `rel`, each of which must be a real folder on
/// the host (a link there is an error: box never writes through one). A
/// missing one is created when `create`, else the walk ends with `None`.
/// Returns the folder that holds `rel`.
fn parents(root: &Path, rel: &str, create: bool) -> Result<Option<PathBuf>, String> {
    let mut dir = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len() - 1] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.file_type().is_symlink() => {
                return Err(format!(
                    "lies below {}, a link on the host; box never writes through a link",
                    dir.display()
                ))
            }
            Ok(_) => {
                return Err(format!(
                    "lies below {}, which is not a folder on the host",
                    dir.display()
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                std::fs::create_dir(&dir)
                    .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(format!("cannot be read on the host: {e}")),
        }
    }
    Ok(Some(dir))
}

/// Makes way for a new entry at `full`: what is there was compared and is
/// safe to replace (or forced); a folder goes only when empty.
fn clear(full: &Path) -> Result<(), String> {
    match std::fs::symlink_metadata(full) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(full)
            .map_err(|e| format!("a host folder is in the way and cannot be removed: {e}")),
        Ok(_) => std::fs::remove_file(full).map_err(|e| format!("cannot be replaced: {e}")),
        Err(_) => Ok(()),
    }
}

fn make_dir(root: &Path, rel: &str, mode: u32, host: Option<&Entry>) -> Result<(), String> {
    make_parents(root, rel)?;
    let full = root.join(rel);
    if host.is_none_or(|h| h.kind != Kind::Dir) {
        clear(&full)?;
        std::fs::create_dir(&full).map_err(|e| format!("cannot be created: {e}"))?;
    }
    std::fs::set_permissions(&full, std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(|e| format!("cannot set its mode: {e}"))
}

fn make_link(root: &Path, rel: &str, target: &str) -> Result<(), String> {
    let dir = make_parents(root, rel)?;
    let full = root.join(rel);
    // A link made aside and renamed into place: never a moment without one.
    let tmp = dir.join(format!(".box-pull-{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp).map_err(|e| format!("cannot be created: {e}"))?;
    if let Ok(m) = std::fs::symlink_metadata(&full) {
        if m.is_dir() {
            clear(&full)?;
        }
    }
    std::fs::rename(&tmp, &full).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("cannot be created: {e}")
    })
}

/// What a `find` of the guest folder found.
#[derive(Default)]
struct Listing {
    entries: BTreeMap<String, Entry>,
    refused: Vec<Skipped>,
}

/// Lists the guest folder (or the given paths in it) with one command;
/// `None` when the folder does not exist in the guest.
fn list_guest(
    session: &Session,
    dest: &str,
    paths: Option<&[String]>,
    sudo: &str,
) -> Result<Option<Listing>, SyncError> {
    let (starts, mindepth) = match paths {
        None => (".".to_string(), " -mindepth 1"),
        Some(ps) => (
            ps.iter()
                .map(|p| quote(&format!("./{p}")))
                .collect::<Vec<_>>()
                .join(" "),
            "",
        ),
    };
    // Paths that do not exist are no error: nothing to bring back there.
    // Nor are paths below a guest link: the link is not followed out.
    let cmd = format!(
        "cd {d} || exit 97; \
         real() {{ q=$1; while :; do q=${{q%/*}}; [ \"$q\" = . ] && return 0; [ -h \"$q\" ] && return 1; done; }}; \
         set --; for p in {starts}; do if {{ [ -e \"$p\" ] || [ -h \"$p\" ]; }} && real \"$p\"; then set -- \"$@\" \"$p\"; fi; done; \
         [ $# -eq 0 ] || exec {sudo}find -P \"$@\"{mindepth} -printf '%y %s %T@ %m %p\\0%l\\0'",
        d = quote(dest)
    );
    let out = session.capture(&cmd).map_err(SyncError::Ssh)?;
    if out.status == 97 {
        return Ok(None);
    }
    if out.status != 0 {
        return Err(SyncError::Remote {
            step: "listing",
            status: out.status,
            stderr: out.stderr_text(),
        });
    }
    parse_listing(&out.stdout, dest).map(Some)
}

fn parse_listing(out: &[u8], dest: &str) -> Result<Listing, SyncError> {
    let mut listing = Listing::default();
    let bad = |what: &str| SyncError::Remote {
        step: "listing",
        status: 1,
        stderr: format!("the machine sent {what}"),
    };
    let mut fields = out.split(|&b| b == 0);
    while let Some(meta) = fields.next() {
        if meta.is_empty() {
            break;
        }
        let link = fields.next().ok_or_else(|| bad("a truncated listing"))?;
        let mut parts = meta.splitn(5, |&b| b == b' ');
        let (Some(kind), Some(size), Some(time), Some(mode), Some(path)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("a listing line box cannot read"));
        };
        let path = path.strip_prefix(b"./").unwrap_or(path);
        let Ok(rel) = std::str::from_utf8(path) else {
            listing.refused.push(Skipped {
                path: PathBuf::from(format!("{dest}/{}", String::from_utf8_lossy(path))),
                reason: "its name is not valid UTF-8".to_string(),
            });
            continue;
        };
        if rel.is_empty()
            || rel
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(bad(&format!(
                "the path `{rel}`, which is not inside the folder"
            )));
        }
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let size: u64 = text(size).parse().map_err(|_| bad("a bad size"))?;
        let mode = u32::from_str_radix(&text(mode), 8).map_err(|_| bad("a bad mode"))? & 0o7777;
        let mtime_ns = parse_time(&text(time)).ok_or_else(|| bad("a bad time"))?;
        let entry = match kind {
            b"f" => Entry::file(size, mtime_ns, mode),
            b"d" => Entry::dir(mode),
            b"l" => {
                let Ok(target) = std::str::from_utf8(link) else {
                    listing.refused.push(Skipped {
                        path: PathBuf::from(format!("{dest}/{rel}")),
                        reason: "its link target is not valid UTF-8".to_string(),
                    });
                    continue;
                };
                Entry::symlink(target)
            }
            other => {
                let what = match other {
                    b"p" => "a named pipe (fifo)",
                    b"s" => "a socket",
                    b"c" | b"b" => "a device",
                    _ => "not a file, folder or link",
                };
                listing.refused.push(Skipped {
                    path: PathBuf::from(format!("{dest}/{rel}")),
                    reason: format!("is {what}; box brings back only files, folders and links"),
                });
                continue;
            }
        };
        listing.entries.insert(rel.to_string(), entry);
    }
    Ok(listing)
}

/// `find`'s `%T@`: seconds, a dot, and a fraction.
fn parse_time(t: &str) -> Option<i128> {
    let (secs, frac) = t.split_once('.').unwrap_or((t, ""));
    let secs: i128 = secs.parse().ok()?;
    let mut ns = String::from(frac);
    ns.truncate(9);
    while ns.len() < 9 {
        ns.push('0');
    }
    let ns: i128 = ns.parse().ok()?;
    Some(if secs < 0 {
        secs * 1_000_000_000 - ns
    } else {
        secs * 1_000_000_000 + ns
    })
}

/// SHA-256 of guest files, hex, by relative path (one command).
fn hash_guest(
    session: &Session,
    dest: &str,
    rels: &[String],
    sudo: &str,
) -> Result<HashMap<String, String>, SyncError> {
    let mut out = HashMap::new();
    if rels.is_empty() {
        return Ok(out);
    }
    let mut input = Vec::new();
    for r in rels {
        input.extend_from_slice(format!("./{r}").as_bytes());
        input.push(0);
    }
    let cmd = format!("cd {} && {sudo}xargs -0 sha256sum -z --", quote(dest));
    // A file gone in between is simply not hashed (its sameness stays unknown).
    let (_status, _err, stdout) = exec_io(session, &cmd, input, |r| {
        let mut v = Vec::new();
        r.read_to_end(&mut v).map(|_| v)
    })?;
    let stdout = stdout.map_err(|source| SyncError::Local {
        what: "the guest's checksums",
        source,
    })?;
    for line in stdout.split(|&b| b == 0) {
        let Ok(line) = std::str::from_utf8(line) else {
            continue;
        };
        if let Some((hash, path)) = line.split_once("  ") {
            let path = path.strip_prefix("./").unwrap_or(path);
            if hash.len() == 64 && rels.iter().any(|r| r == path) {
                out.insert(path.to_string(), hash.to_string());
            }
        }
    }
    Ok(out)
}

type Fetched = Vec<(String, Result<(u64, String), String>)>;

/// Brings the content of guest `files` back in one tar stream.
fn fetch(
    session: &Session,
    dest: &str,
    root: &Path,
    files: &[(String, Entry)],
    sudo: &str,
) -> Result<Fetched, SyncError> {
    let mut input = Vec::new();
    for (r, _) in files {
        input.extend_from_slice(format!("./{r}").as_bytes());
        input.push(0);
    }
    let cmd = format!(
        "cd {} && {sudo}tar -c -f - --no-recursion --null --verbatim-files-from -T -",
        quote(dest)
    );
    let want: HashMap<String, Entry> = files.iter().cloned().collect();
    let (status, err, extracted) = exec_io(session, &cmd, input, |r| extract(r, root, want))?;
    let (mut done, missing) = extracted?;
    // tar says why a file could not be read (gone since the listing, or
    // unreadable); each such file is reported, the rest is kept.
    let why = err
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("not sent by the machine")
        .trim()
        .to_string();
    for p in missing {
        done.push((
            p,
            Err(format!(
                "could not be read on the guest (tar exited with {status}: {why})"
            )),
        ));
    }
    Ok(done)
}

/// Writes the files of a tar stream from the guest below `root`. Only the
/// regular files in `want` are accepted, each once; anything else means
/// the stream cannot be trusted and stops the pull. Returns each file's
/// outcome, and the wanted files that never came.
fn extract(
    r: &mut dyn Read,
    root: &Path,
    mut want: HashMap<String, Entry>,
) -> Result<(Fetched, Vec<String>), SyncError> {
    let hostile = |what: String| SyncError::Remote {
        step: "pull",
        status: 1,
        stderr: format!("the machine sent {what}; nothing more was taken from it"),
    };
    let stream = |e: std::io::Error| SyncError::Local {
        what: "the stream of files from the guest",
        source: e,
    };
    let mut done = Vec::new();
    let mut archive = tar::Archive::new(r);
    for entry in archive.entries().map_err(stream)? {
        let mut entry = entry.map_err(stream)?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let rel = name.strip_prefix("./").unwrap_or(&name).to_string();
        let Some(g) = want.remove(&rel) else {
            return Err(hostile(format!("`{name}`, which was not asked for")));
        };
        if !matches!(
            entry.header().entry_type(),
            tar::EntryType::Regular | tar::EntryType::Continuous
        ) {
            return Err(hostile(format!("`{name}` as something other than a file")));
        }
        let result = write_file(root, &rel, &mut entry, g.mode, g.mtime_ns);
        done.push((rel, result));
    }
    let mut missing: Vec<String> = want.into_keys().collect();
    missing.sort();
    Ok((done, missing))
}

/// Writes one file below `root` through a temp file renamed into place,
/// with the guest's mode (never setuid, setgid or sticky) and mtime.
/// Returns its size and SHA-256.
fn write_file(
    root: &Path,
    rel: &str,
    content: &mut dyn Read,
    mode: u32,
    mtime_ns: i128,
) -> Result<(u64, String), String> {
    let dir = make_parents(root, rel)?;
    let full = root.join(rel);
    let mut tmp = tempfile::Builder::new()
        .prefix(".box-pull-")
        .permissions(std::fs::Permissions::from_mode(0o600))
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot be written: {e}"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = content
            .read(&mut buf)
            .map_err(|e| format!("the stream from the guest broke: {e}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        tmp.write_all(&buf[..n])
            .map_err(|e| format!("cannot be written: {e}"))?;
        bytes += n as u64;
    }
    let f = tmp.as_file();
    f.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))
        .map_err(|e| format!("cannot set its mode: {e}"))?;
    let secs = mtime_ns.div_euclid(1_000_000_000) as i64;
    let nanos = mtime_ns.rem_euclid(1_000_000_000) as u32;
    let _ = filetime::set_file_handle_times(
        f,
        None,
        Some(filetime::FileTime::from_unix_time(secs, nanos)),
    );
    if std::fs::symlink_metadata(&full).is_ok_and(|m| m.is_dir()) {
        clear(&full)?;
    }
    // rename replaces a file or a link in the way, never writing through it.
    tmp.persist(&full)
        .map_err(|e| format!("cannot be written: {}", e.error))?;
    Ok((bytes, hex(&hasher.finalize())))
}

/// Runs `cmd` with `input` as its stdin and its stdout read by `consume`
/// on another thread while the data arrives (a pull can be large).
/// Returns the exit code, stderr, and what `consume` returned.
fn exec_io<R: Send>(
    session: &Session,
    cmd: &str,
    input: Vec<u8>,
    consume: impl FnOnce(&mut dyn Read) -> R + Send,
) -> Result<(i32, String, R), SyncError> {
    let pipe = |e| SyncError::Local {
        what: "a pipe",
        source: e,
    };
    let (in_rx, mut in_tx) = UnixStream::pair().map_err(pipe)?;
    let (mut out_rx, out_tx) = UnixStream::pair().map_err(pipe)?;
    std::thread::scope(|s| {
        let feeder = s.spawn(move || {
            let _ = in_tx.write_all(&input);
        });
        let reader = s.spawn(move || {
            let r = consume(&mut out_rx);
            // Whatever the consumer left (tar's padding) is read, so the
            // guest never blocks on a full pipe.
            let _ = std::io::copy(&mut out_rx, &mut std::io::sink());
            r
        });
        let mut out_tx = out_tx;
        let mut err = Vec::new();
        let status = session.exec_with_input(cmd, Some(in_rx.as_raw_fd()), &mut out_tx, &mut err);
        drop(out_tx);
        drop(in_rx);
        let _ = feeder.join();
        let consumed = reader.join().map_err(|_| SyncError::Local {
            what: "the reader of the guest's output",
            source: std::io::Error::other("it stopped unexpectedly"),
        })?;
        let status = status.map_err(SyncError::Ssh)?;
        Ok((status, String::from_utf8_lossy(&err).into_owned(), consumed))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pull_paths_stay_inside_the_folder() {
        assert_eq!(pull_path("dist/").unwrap(), "dist");
        assert_eq!(pull_path("./a//b/").unwrap(), "a/b");
        assert!(pull_path("../x").is_err());
        assert!(pull_path("a/../../x").is_err());
        assert!(pull_path("/etc").is_err());
        assert!(pull_path(".box/x").is_err());
        assert!(pull_path(".").is_err());
    }

    #[test]
    fn links_that_climb_out_of_the_folder_are_refused() {
        assert!(escaping_link("a/l", &Entry::symlink("../b")).is_none());
        assert!(escaping_link("a/l", &Entry::symlink("../../b")).is_some());
        assert!(escaping_link("l", &Entry::symlink("/etc/passwd")).is_some());
        assert!(escaping_link("a/b/l", &Entry::symlink("x/../../y")).is_none());
    }

    #[test]
    fn find_times_keep_their_nanoseconds() {
        assert_eq!(parse_time("12.5"), Some(12_500_000_000));
        assert_eq!(
            parse_time("1700000000.1234567890"),
            Some(1_700_000_000_123_456_789)
        );
        assert_eq!(parse_time("3"), Some(3_000_000_000));
    }

    #[test]
    fn a_listing_with_a_path_out_of_the_folder_is_refused() {
        let out = b"f 1 1.0 644 ./../evil\0\0";
        assert!(parse_listing(out, "/g").is_err());
        let ok = b"f 1 1.0 644 ./a b\0\0p 0 1.0 644 ./fifo\0\0";
        let l = parse_listing(ok, "/g").unwrap();
        assert!(l.entries.contains_key("a b"));
        assert_eq!(l.refused.len(), 1);
        assert!(
            l.refused[0].reason.contains("fifo"),
            "{}",
            l.refused[0].reason
        );
    }

    fn file(size: u64) -> Entry {
        Entry::file(size, 1_000_000_000, 0o640)
    }

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, body) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(body.len() as u64);
            h.set_mode(0o644);
            // set_path refuses `..`; a hostile guest would not ask.
            let bytes = name.as_bytes();
            h.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
            h.set_cksum();
            b.append(&h, *body).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn extract_writes_asked_for_files_with_their_mode_and_nothing_else() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let stream = tar_of(&[("./dist/a.txt", tar::EntryType::Regular, b"hello")]);
        let mut want = HashMap::new();
        want.insert("dist/a.txt".to_string(), file(5));
        let (done, missing) = extract(&mut &stream[..], &root, want).unwrap();
        assert!(missing.is_empty());
        assert_eq!(done.len(), 1);
        assert!(done[0].1.is_ok());
        let written = root.join("dist/a.txt");
        assert_eq!(std::fs::read(&written).unwrap(), b"hello");
        let mode = std::fs::metadata(&written).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o640);
    }

    #[test]
    fn extract_refuses_a_stream_with_paths_that_were_not_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        for hostile in ["../escaped.txt", "./other.txt", "/tmp/abs.txt"] {
            let stream = tar_of(&[(hostile, tar::EntryType::Regular, b"x")]);
            let mut want = HashMap::new();
            want.insert("a.txt".to_string(), file(1));
            let err = extract(&mut &stream[..], &root, want).unwrap_err();
            assert!(err.to_string().contains("pull"), "{err}");
        }
        assert!(!tmp.path().join("escaped.txt").exists());
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
    }

    #[test]
    fn extract_refuses_a_link_where_a_file_was_asked_for() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let stream = tar_of(&[("./a.txt", tar::EntryType::Symlink, b"")]);
        let mut want = HashMap::new();
        want.insert("a.txt".to_string(), file(0));
        assert!(extract(&mut &stream[..], &root, want).is_err());
        assert!(std::fs::symlink_metadata(root.join("a.txt")).is_err());
    }

    #[test]
    fn extract_never_writes_through_a_host_link() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&root).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, root.join("dist")).unwrap();
        let stream = tar_of(&[("./dist/a.txt", tar::EntryType::Regular, b"x")]);
        let mut want = HashMap::new();
        want.insert("dist/a.txt".to_string(), file(1));
        let (done, _) = extract(&mut &stream[..], &root, want).unwrap();
        let why = done[0].1.as_ref().unwrap_err();
        assert!(why.contains("link"), "{why}");
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
    }
}
