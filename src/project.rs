//! Finding the project: the folder holding the Boxfile, at or above the
//! current folder (like git and Vagrant do).

use std::path::{Path, PathBuf};

pub const BOXFILE: &str = "Boxfile";
pub const BOXFILE_LOCAL: &str = "Boxfile.local";

/// The nearest folder at or above `start` that holds a Boxfile.
pub fn find_root(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .find(|dir| dir.join(BOXFILE).is_file())
        .map(Path::to_path_buf)
}

/// The environment id: stable for one user, workstation and project path,
/// so a teammate's VMs of the same project never collide with ours and a
/// lost `.box/` can be rebuilt by finding our VMs by tag.
pub fn environment_id(root: &Path) -> String {
    use sha2::{Digest, Sha256};
    let user = local_user();
    let host = hostname();
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0]);
    h.update(host.as_bytes());
    h.update([0]);
    h.update(root.to_string_lossy().as_bytes());
    let digest = h.finalize();
    // 6 base-36 chars: ~31 bits, plenty for the VMs of one account.
    let mut n = u64::from_be_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    let mut out = String::new();
    for _ in 0..6 {
        let d = (n % 36) as u8;
        out.push(if d < 10 {
            (b'0' + d) as char
        } else {
            (b'a' + d - 10) as char
        });
        n /= 36;
    }
    out
}

pub fn local_user() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "user".to_string())
}

pub fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".to_string())
}
