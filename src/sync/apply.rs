//! Carrying out a plan on the guest over the open session: one command
//! removes what is gone, one tar stream on one channel carries everything
//! new or changed (far fewer round trips than a file per SFTP request).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind, Manifest};
use super::plan::{hex, Plan};
use super::{Skipped, SyncError};
use crate::ssh::{quote, Session};

/// How a folder is written on the guest.
pub struct Remote<'a> {
    pub dest: &'a str,
    /// `user` or `user:group` the files end up owned by.
    pub owner: &'a str,
    /// Run the guest side through `sudo -n` (another owner than the login user).
    pub elevate: bool,
}

impl Remote<'_> {
    fn sudo(&self) -> &'static str {
        if self.elevate {
            "sudo -n "
        } else {
            ""
        }
    }

    /// A shell prefix that creates the destination (as root if it must)
    /// and enters it.
    fn enter(&self) -> String {
        let d = quote(self.dest);
        let sudo = self.sudo();
        // `cd` first: the folder usually exists, and a process less counts
        // for `--watch` latency.
        format!(
            "{{ cd {d} 2>/dev/null || {{ {{ {sudo}mkdir -p {d} 2>/dev/null || sudo -n sh -c 'mkdir -p \"$1\" && chown \"$2\" \"$1\"' sh {d} {u}; }} && cd {d}; }}; }}",
            u = quote(self.owner)
        )
    }
}

#[derive(Debug, Default, Clone)]
pub struct Applied {
    pub sent_files: u64,
    pub sent_bytes: u64,
    pub deleted: u64,
    /// Files that could not be read when their turn came.
    pub skipped: Vec<Skipped>,
}

/// True when the destination exists on the guest (a recreated guest has
/// lost what the manifest says was sent).
pub fn remote_exists(session: &Session, dest: &str) -> Result<bool, SyncError> {
    let out = session
        .capture(&format!("test -d {}", quote(dest)))
        .map_err(SyncError::Ssh)?;
    Ok(out.status == 0)
}

pub fn apply(
    session: &Session,
    remote: &Remote<'_>,
    root: &Path,
    plan: &Plan,
    local: &BTreeMap<String, Entry>,
    manifest: &mut Manifest,
) -> Result<Applied, SyncError> {
    let mut applied = Applied::default();
    let locked = locked_dirs(plan, manifest);
    let unlock = if locked.is_empty() {
        String::new()
    } else {
        let dirs: Vec<String> = locked.iter().map(|d| quote(d)).collect();
        // Not fatal: a folder gone from the guest is recreated by tar, and
        // any real trouble shows in tar's own errors.
        format!(
            " && {{ {}chmod u+wx -- {} 2>/dev/null; true; }}",
            remote.sudo(),
            dirs.join(" ")
        )
    };
    if !plan.delete.is_empty() {
        // `rm -rf` as a user cannot empty a folder that is read-only for
        // that user: open up what is about to go first.
        let closed: Vec<String> = plan
            .delete
            .iter()
            .filter(|p| holds_closed_dir(p, manifest))
            .map(|p| quote(p))
            .collect();
        let open_up = if closed.is_empty() {
            String::new()
        } else {
            format!(
                " && {{ {}chmod -R u+rwx -- {} 2>/dev/null; true; }}",
                remote.sudo(),
                closed.join(" ")
            )
        };
        let cmd = format!(
            "{}{unlock}{open_up} && {}xargs -0 rm -rf --",
            remote.enter(),
            remote.sudo()
        );
        let list = plan.delete.clone();
        let (status, err, ()) = exec_feed(session, &cmd, move |w| {
            for p in &list {
                w.write_all(p.as_bytes())?;
                w.write_all(b"\0")?;
            }
            Ok(())
        })?;
        if status != 0 {
            return Err(SyncError::Remote {
                step: "delete",
                status,
                stderr: err,
            });
        }
        for p in &plan.delete {
            manifest.entries.remove(p);
            let prefix = format!("{p}/");
            let children: Vec<String> = manifest
                .entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect();
            for c in children {
                manifest.entries.remove(&c);
            }
        }
        applied.deleted = plan.delete.len() as u64;
    }
    for p in &plan.touched {
        if let (Some(new), Some(old)) = (local.get(p), manifest.entries.get(p)) {
            let mut e = new.clone();
            e.hash = old.hash.clone();
            manifest.entries.insert(p.clone(), e);
        }
    }
    // The folders opened up go in the stream again: tar puts their mode
    // back once it has written into them.
    let mut send: Vec<String> = plan.send.clone();
    if !locked.is_empty() {
        let reopened = locked
            .iter()
            .filter(|d| local.get(*d).is_some_and(|e| e.kind == Kind::Dir));
        let all: BTreeSet<String> = send.drain(..).chain(reopened.cloned()).collect();
        send = all.into_iter().collect();
    }
    if send.is_empty() {
        return Ok(applied);
    }
    let cmd = format!(
        "{}{unlock} && {}tar -x -p -f -",
        remote.enter(),
        remote.sudo()
    );
    let (user, group) = match remote.owner.split_once(':') {
        Some((u, g)) => (u.to_string(), g.to_string()),
        None => (remote.owner.to_string(), remote.owner.to_string()),
    };
    let entries: Vec<(String, Entry)> = send
        .iter()
        .filter_map(|p| local.get(p).map(|e| (p.clone(), e.clone())))
        .collect();
    let root_owned = root.to_path_buf();
    let (status, err, stream) = exec_feed(session, &cmd, move |w| {
        write_tar(w, &root_owned, &entries, &user, &group)
    })?;
    if status != 0 {
        return Err(SyncError::Remote {
            step: "extract",
            status,
            stderr: err,
        });
    }
    applied.skipped = stream.skipped;
    for (path, hash, bytes) in stream.sent {
        if let Some(e) = local.get(&path) {
            let mut e = e.clone();
            e.hash = hash;
            manifest.entries.insert(path, e);
            applied.sent_files += 1;
            applied.sent_bytes += bytes;
        }
    }
    Ok(applied)
}

/// Folders on the guest that the plan writes into or removes from, but
/// whose mode as last sent lacks `u+wx`: a guest user other than root
/// cannot write there until they are opened up (`chmod u+wx`).
fn locked_dirs(plan: &Plan, manifest: &Manifest) -> BTreeSet<String> {
    let closed = |e: &Entry| e.kind == Kind::Dir && e.mode & 0o300 != 0o300;
    let mut out = BTreeSet::new();
    if !manifest.entries.values().any(closed) {
        return out;
    }
    for p in plan.send.iter().chain(&plan.delete) {
        let mut d = parent(p);
        while !d.is_empty() {
            if manifest.entries.get(d).is_some_and(closed) {
                out.insert(d.to_string());
            }
            d = parent(d);
        }
    }
    out
}

/// True when `path` is, or holds, a folder whose mode as last sent lacks
/// `u+rwx` (`rm -rf` could not empty it as a user).
fn holds_closed_dir(path: &str, manifest: &Manifest) -> bool {
    let prefix = format!("{path}/");
    std::iter::once((path, manifest.entries.get(path)))
        .chain(
            manifest
                .entries
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, e)| (k.as_str(), Some(e))),
        )
        .any(|(_, e)| e.is_some_and(|e| e.kind == Kind::Dir && e.mode & 0o700 != 0o700))
}

fn parent(rel: &str) -> &str {
    rel.rsplit_once('/').map_or("", |(p, _)| p)
}

/// What went into the tar stream: each path with its content hash and size.
#[derive(Default)]
struct Streamed {
    sent: Vec<(String, Option<String>, u64)>,
    skipped: Vec<Skipped>,
}

fn write_tar(
    w: &mut dyn Write,
    root: &Path,
    entries: &[(String, Entry)],
    user: &str,
    group: &str,
) -> std::io::Result<Streamed> {
    let mut out = Streamed::default();
    let mut builder = tar::Builder::new(w);
    for (path, entry) in entries {
        let mut header = tar::Header::new_gnu();
        let _ = header.set_username(user);
        let _ = header.set_groupname(group);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(entry.mode);
        let full = root.join(path);
        match entry.kind {
            Kind::Dir => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_size(0);
                header.set_mtime(now_secs());
                builder.append_data(&mut header, path, std::io::empty())?;
                out.sent.push((path.clone(), None, 0));
            }
            Kind::Symlink => {
                let Some(target) = &entry.target else {
                    continue;
                };
                header.set_entry_type(tar::EntryType::Symlink);
                header.set_size(0);
                header.set_mtime(now_secs());
                append_symlink(&mut builder, &mut header, path, target.as_bytes())?;
                out.sent.push((path.clone(), None, 0));
            }
            Kind::File => {
                // The file may have changed or gone since the scan: send
                // what is there now, but only record it if it is intact.
                let file = match std::fs::File::open(&full) {
                    Ok(f) => f,
                    // Gone since the scan: the next scan sees it gone.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        out.skipped.push(Skipped {
                            path: full,
                            reason: format!("cannot be read: {e}"),
                        });
                        continue;
                    }
                };
                let size = file.metadata().map(|m| m.len()).unwrap_or(entry.size);
                header.set_entry_type(tar::EntryType::Regular);
                header.set_size(size);
                header.set_mtime((entry.mtime_ns / 1_000_000_000).max(0) as u64);
                let mut reader = Hashing {
                    inner: file.take(size),
                    hasher: Sha256::new(),
                    read: 0,
                };
                {
                    let padded = (&mut reader).chain(std::io::repeat(0)).take(size);
                    builder.append_data(&mut header, path, padded)?;
                }
                let intact = reader.read == size && size == entry.size;
                if intact {
                    let hash = hex(&reader.hasher.finalize());
                    out.sent.push((path.clone(), Some(hash), size));
                }
            }
        }
    }
    builder.finish()?;
    Ok(out)
}

/// Appends a link whose target is written byte for byte. The tar crate's
/// `append_link` rebuilds the target from its components, which turns `/`
/// into `//` and `a//b/./c` into `a/b/c`.
fn append_symlink<W: Write>(
    builder: &mut tar::Builder<W>,
    header: &mut tar::Header,
    path: &str,
    target: &[u8],
) -> std::io::Result<()> {
    let slot = &mut header.as_old_mut().linkname;
    if target.len() < slot.len() {
        slot.fill(0);
        slot[..target.len()].copy_from_slice(target);
    } else {
        // GNU tar's long-name record for the target, as the tar crate
        // writes one: `././@LongLink`, type `K`, NUL-terminated.
        let mut long = tar::Header::new_gnu();
        let name = b"././@LongLink";
        long.as_old_mut().name[..name.len()].copy_from_slice(name);
        long.set_mode(0o644);
        long.set_uid(0);
        long.set_gid(0);
        long.set_mtime(0);
        long.set_size(target.len() as u64 + 1);
        long.set_entry_type(tar::EntryType::GNULongLink);
        long.set_cksum();
        builder.append(&long, target.chain(&[0u8][..]))?;
        let n = slot.len();
        slot.copy_from_slice(&target[..n]);
    }
    builder.append_data(header, path, std::io::empty())
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// Runs `cmd` with its stdin fed by `produce` on another thread, so the
/// host reads and hashes files while this thread encrypts and sends.
fn exec_feed<R: Send>(
    session: &Session,
    cmd: &str,
    produce: impl FnOnce(&mut dyn Write) -> std::io::Result<R> + Send,
) -> Result<(i32, String, R), SyncError> {
    let (rx, tx) = UnixStream::pair().map_err(|e| SyncError::Local {
        what: "a pipe",
        source: e,
    })?;
    std::thread::scope(|s| {
        let producer = s.spawn(move || {
            let mut w = std::io::BufWriter::with_capacity(256 * 1024, tx);
            let r = produce(&mut w);
            let flushed = w.flush();
            drop(w);
            match (r, flushed) {
                (Ok(r), Ok(())) => Ok(r),
                (Err(e), _) | (_, Err(e)) => Err(e),
            }
        });
        let mut out = Vec::new();
        let mut err = Vec::new();
        let status = session.exec_with_input(cmd, Some(rx.as_raw_fd()), &mut out, &mut err);
        // If the remote side stopped early, the producer gets EPIPE and ends.
        drop(rx);
        let produced = producer.join();
        let status = status.map_err(SyncError::Ssh)?;
        let mut stderr = String::from_utf8_lossy(&err).into_owned();
        stderr.push_str(&String::from_utf8_lossy(&out));
        match produced {
            Ok(Ok(r)) => Ok((status, stderr, r)),
            Ok(Err(e)) if status == 0 => Err(SyncError::Local {
                what: "the stream of files",
                source: e,
            }),
            _ => Err(SyncError::Remote {
                step: "extract",
                status: if status == 0 { 1 } else { status },
                stderr,
            }),
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(target: &str) -> Entry {
        Entry::symlink(target)
    }

    #[test]
    fn link_targets_go_into_the_stream_byte_for_byte() {
        let long_path = format!("{}/l", "d".repeat(120));
        let long_target = format!("/{}", "x".repeat(150));
        let entries = vec![
            ("root".to_string(), link("/")),
            ("odd".to_string(), link("a//b/./c/")),
            ("long".to_string(), link(&long_target)),
            (long_path.clone(), link(&long_target)),
        ];
        let mut out = Vec::new();
        write_tar(&mut out, Path::new("/nonexistent"), &entries, "u", "g").unwrap();
        let mut archive = tar::Archive::new(&out[..]);
        let got: Vec<(String, Vec<u8>)> = archive
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.path().unwrap().to_string_lossy().into_owned(),
                    e.link_name_bytes().unwrap().into_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("root".to_string(), b"/".to_vec()),
                ("odd".to_string(), b"a//b/./c/".to_vec()),
                ("long".to_string(), long_target.as_bytes().to_vec()),
                (long_path, long_target.as_bytes().to_vec()),
            ]
        );
    }
}
