//! What box last sent to a guest folder: one entry per path, so the next
//! sync sends only what changed without asking the guest.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SyncError;
use crate::fsutil::write_atomic;

const SCHEMA: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    File,
    Dir,
    Symlink,
}

/// One path as it was on the host when it was sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    #[serde(rename = "k")]
    pub kind: Kind,
    #[serde(rename = "s", default)]
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    #[serde(rename = "t", default)]
    pub mtime_ns: i128,
    #[serde(rename = "m", default)]
    pub mode: u32,
    /// SHA-256 of a file's content, hex; consulted when size and mtime disagree.
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// A symbolic link's target.
    #[serde(rename = "l", default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

impl Entry {
    pub fn file(size: u64, mtime_ns: i128, mode: u32) -> Entry {
        Entry {
            kind: Kind::File,
            size,
            mtime_ns,
            mode,
            hash: None,
            target: None,
        }
    }

    pub fn dir(mode: u32) -> Entry {
        Entry {
            kind: Kind::Dir,
            size: 0,
            mtime_ns: 0,
            mode,
            hash: None,
            target: None,
        }
    }

    /// A link: its own mode means nothing on Linux, 0777 by convention.
    pub fn symlink(target: &str) -> Entry {
        Entry {
            kind: Kind::Symlink,
            size: 0,
            mtime_ns: 0,
            mode: 0o777,
            hash: None,
            target: Some(target.to_string()),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Manifest {
    pub schema: u32,
    pub from: PathBuf,
    pub to: String,
    #[serde(default)]
    pub owner: Option<String>,
    /// Fingerprint of the machine's host key when this was sent: a
    /// recreated machine has a new one, and gets everything again.
    #[serde(default)]
    pub host_key: String,
    /// Relative paths with `/` separators.
    pub entries: BTreeMap<String, Entry>,
    /// Paths brought back from the guest that the push leaves out (ignored
    /// ones, e.g. a `dist/` listed in `pull`), as both sides held them
    /// after the pull: the next pull's base. The push never reads these.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pulled: BTreeMap<String, Entry>,
}

impl Manifest {
    pub fn empty(from: &Path, to: &str, owner: Option<&str>, host_key: &str) -> Manifest {
        Manifest {
            schema: SCHEMA,
            from: from.to_path_buf(),
            to: to.to_string(),
            owner: owner.map(str::to_string),
            host_key: host_key.to_string(),
            entries: BTreeMap::new(),
            pulled: BTreeMap::new(),
        }
    }

    /// Where the manifest of a folder lives in the machine's state folder.
    pub fn path(machine_dir: &Path, to: &str) -> PathBuf {
        let digest = Sha256::digest(to.as_bytes());
        let name: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
        machine_dir.join("sync").join(format!("{name}.json"))
    }

    /// The manifest for this folder pair, or an empty one when there is
    /// none or it describes another source, destination, owner or machine.
    pub fn load(
        file: &Path,
        from: &Path,
        to: &str,
        owner: Option<&str>,
        host_key: &str,
    ) -> Manifest {
        let fresh = Manifest::empty(from, to, owner, host_key);
        let Ok(bytes) = std::fs::read(file) else {
            return fresh;
        };
        // A corrupt manifest only costs a full resend.
        match serde_json::from_slice::<Manifest>(&bytes) {
            Ok(m)
                if m.schema == SCHEMA
                    && m.from == from
                    && m.to == to
                    && m.owner.as_deref() == owner
                    && m.host_key == host_key =>
            {
                m
            }
            _ => fresh,
        }
    }

    pub fn save(&self, file: &Path) -> Result<(), SyncError> {
        let bytes = serde_json::to_vec(self).map_err(|e| SyncError::Manifest {
            path: file.to_path_buf(),
            source: std::io::Error::other(e),
        })?;
        write_atomic(file, &bytes, 0o600).map_err(|source| SyncError::Manifest {
            path: file.to_path_buf(),
            source,
        })
    }
}

/// Forgets what was sent to a machine, so its next sync sends everything
/// (for a guest whose disk went back in time, e.g. a snapshot restore).
pub fn forget(machine_dir: &Path) -> std::io::Result<()> {
    match std::fs::remove_dir_all(machine_dir.join("sync")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
