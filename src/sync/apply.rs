//! Carrying out a plan on the guest over the open session: one command
//! removes what is gone, one tar stream on one channel carries everything
//! new or changed (far fewer round trips than a file per SFTP request).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::manifest::{Entry, Kind, Manifest};
use super::plan::{hex, Plan};
use super::SyncError;
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

#[derive(Debug, Default, Clone, Copy)]
pub struct Applied {
    pub sent_files: u64,
    pub sent_bytes: u64,
    pub deleted: u64,
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
    if !plan.delete.is_empty() {
        let cmd = format!("{} && {}xargs -0 rm -rf --", remote.enter(), remote.sudo());
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
    if plan.send.is_empty() {
        return Ok(applied);
    }
    let cmd = format!("{} && {}tar -x -p -f -", remote.enter(), remote.sudo());
    let (user, group) = match remote.owner.split_once(':') {
        Some((u, g)) => (u.to_string(), g.to_string()),
        None => (remote.owner.to_string(), remote.owner.to_string()),
    };
    let send = plan.send.clone();
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

/// What went into the tar stream: each path with its content hash and size.
#[derive(Default)]
struct Streamed {
    sent: Vec<(String, Option<String>, u64)>,
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
                builder.append_link(&mut header, path, target)?;
                out.sent.push((path.clone(), None, 0));
            }
            Kind::File => {
                // The file may have changed or gone since the scan: send
                // what is there now, but only record it if it is intact.
                let Ok(file) = std::fs::File::open(&full) else {
                    continue;
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
