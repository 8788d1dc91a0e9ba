//! Small changes over SFTP, for `--watch`: the session's one sftp-server
//! process writes them, so a saved file costs a few requests and no new
//! process on the guest (starting `sh` and `tar` per change is most of the
//! latency on a busy machine). Anything this path cannot do exactly
//! (symlinks, folders to remove, another owner, big batches) goes through
//! the tar stream instead.

use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};
use ssh2::{FileStat, OpenFlags, OpenType, Sftp};

use super::apply::Applied;
use super::manifest::{Kind, Manifest};
use super::plan::{hex, Plan};
use super::scan::Tree;
use super::Skipped;

const MAX_FILES: usize = 64;
const MAX_BYTES: u64 = 8 * 1024 * 1024;

/// True when the plan is small and simple enough for SFTP.
pub fn fits(plan: &Plan, local: &Tree, manifest: &Manifest) -> bool {
    if plan.send.len() > MAX_FILES || plan.delete.len() > MAX_FILES {
        return false;
    }
    let mut bytes = 0;
    for p in &plan.send {
        match local.get(p) {
            Some(e) if e.kind == Kind::File => bytes += e.size,
            Some(e) if e.kind == Kind::Dir => {}
            _ => return false,
        }
    }
    // Removing a folder needs `rm -rf`.
    let deletes_ok = plan
        .delete
        .iter()
        .all(|p| manifest.entries.get(p).is_some_and(|e| e.kind != Kind::Dir));
    bytes <= MAX_BYTES && deletes_ok
}

fn join(dest: &str, rel: &str) -> String {
    format!("{}/{rel}", dest.trim_end_matches('/'))
}

/// Applies a plan that [`fits`]. An error leaves the manifest describing
/// what was done; the caller retries with the tar stream.
pub fn apply(
    sftp: &Sftp,
    dest: &str,
    root: &Path,
    plan: &Plan,
    local: &Tree,
    manifest: &mut Manifest,
) -> Result<Applied, ssh2::Error> {
    let mut applied = Applied::default();
    for p in &plan.delete {
        let remote = join(dest, p);
        if let Err(e) = sftp.unlink(Path::new(&remote)) {
            // Already gone is what we wanted.
            if sftp.lstat(Path::new(&remote)).is_ok() {
                return Err(e);
            }
        }
        manifest.entries.remove(p);
        applied.deleted += 1;
    }
    for p in &plan.touched {
        if let (Some(new), Some(old)) = (local.get(p), manifest.entries.get(p)) {
            let mut e = new.clone();
            e.hash = old.hash.clone();
            manifest.entries.insert(p.clone(), e);
        }
    }
    for p in &plan.send {
        let Some(entry) = local.get(p) else { continue };
        let remote = join(dest, p);
        match entry.kind {
            Kind::Dir => {
                if sftp.mkdir(Path::new(&remote), entry.mode as i32).is_err() {
                    sftp.setstat(Path::new(&remote), perm(entry.mode, None))?;
                }
                manifest.entries.insert(p.clone(), entry.clone());
                applied.sent_files += 1;
            }
            Kind::File => {
                let full = root.join(p);
                let mut body = Vec::with_capacity(entry.size as usize);
                let read = std::fs::File::open(&full).and_then(|mut f| f.read_to_end(&mut body));
                match read {
                    Ok(_) => {}
                    // Gone since the scan: the next scan sees it gone.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => {
                        applied.skipped.push(Skipped {
                            path: full,
                            reason: format!("cannot be read: {e}"),
                        });
                        continue;
                    }
                }
                let mut f = sftp.open_mode(
                    Path::new(&remote),
                    OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
                    entry.mode as i32,
                    OpenType::File,
                )?;
                f.write_all(&body)
                    .map_err(|e| ssh2::Error::new(ssh2::ErrorCode::Session(-7), leak(e)))?;
                f.setstat(perm(entry.mode, Some(entry.mtime_ns)))?;
                // Changed while being read: sent, but not recorded as current.
                if body.len() as u64 == entry.size {
                    let mut e = entry.clone();
                    e.hash = Some(hex(&Sha256::digest(&body)));
                    manifest.entries.insert(p.clone(), e);
                }
                applied.sent_files += 1;
                applied.sent_bytes += body.len() as u64;
            }
            Kind::Symlink => {}
        }
    }
    Ok(applied)
}

fn perm(mode: u32, mtime_ns: Option<i128>) -> FileStat {
    let t = mtime_ns.map(|ns| (ns / 1_000_000_000).max(0) as u64);
    FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode),
        atime: t,
        mtime: t,
    }
}

/// ssh2::Error wants a static message; write errors are rare and the
/// caller falls back to the tar stream anyway.
fn leak(_e: std::io::Error) -> &'static str {
    "SFTP write failed"
}
