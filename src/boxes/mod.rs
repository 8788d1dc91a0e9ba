//! Boxes: the machine images machines start from.
//!
//! The local store keeps them by name, version and provider under
//! `$BOX_BOXES_DIR` or `<data dir>/boxes`; recipes (embedded from the
//! repository's `boxes/` folder) say how to get a box that is missing, by
//! download or by a build from Debian packages.
//!
//! The provider side only needs [`Store::open`], [`Store::ensure`] (async)
//! and [`BoxImage`]; the rest serves `box box ...`.

mod add;
mod checksum;
mod download;
mod import;
mod recipe;
mod store;
mod version;

use std::path::PathBuf;

use serde::Serialize;

use crate::provider::ProviderKind;

pub use add::AddOptions;
pub use checksum::Checksum;
pub use recipe::Recipe;
pub use store::{BoxLock, Store};

/// The kernel command line of a box that carries its own kernel, when its
/// metadata does not say otherwise.
pub const DEFAULT_CMDLINE: &str = "root=/dev/vda rw console=ttyS0";

/// One box in the store, with absolute paths, ready for a provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxImage {
    pub name: String,
    pub version: String,
    /// Every box in the store is for the local provider today.
    pub provider: ProviderKind,
    /// The qcow2 disk; machines use it as the backing file of their overlay.
    pub disk: PathBuf,
    /// For QEMU's direct kernel boot; `None` means boot the disk's own loader.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// e.g. `root=/dev/vda rw console=ttyS0`.
    pub cmdline: Option<String>,
    /// The CloudStack template this box corresponds to, e.g. `Debian 12`.
    pub cloudstack_template: Option<String>,
    /// Hex sha256 of `disk`.
    pub sha256: String,
    /// Where the box came from (a path, a URL, `recipe:NAME`).
    pub source: String,
    /// Seconds since the Unix epoch when it was added.
    pub added: u64,
}

/// A box by name and version, e.g. one a machine uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BoxRef {
    pub name: String,
    pub version: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BoxError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the box metadata {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("`{name}` is not a valid box name (letters, digits, `.`, `_` and `-`)")]
    BadName { name: String },
    #[error("`{version}` is not a valid box version (letters, digits, `.`, `_` and `-`)")]
    BadVersion { version: String },
    #[error("box `{name}` is not in the store and no recipe knows it")]
    Unknown { name: String },
    #[error("box `{name}` is not in the store")]
    NotInStore { name: String },
    #[error("box `{name}` version {version} is already in the store")]
    Exists { name: String, version: String },
    #[error("box `{name}` version {version} is used by {users}")]
    InUse {
        name: String,
        version: String,
        users: String,
    },
    #[error("checksum mismatch for {what}: expected {expected}, got {actual}")]
    ChecksumMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("`{text}` is not a checksum; expected `sha256:HEX` or `sha512:HEX`")]
    BadChecksum { text: String },
    #[error("{path} is neither a qcow2 image nor a Vagrant box: {reason}")]
    NotABox { path: PathBuf, reason: String },
    #[error("the box is for provider `{provider}`; box reads `libvirt` boxes (qcow2)")]
    WrongProvider { provider: String },
    #[error("`{program}` failed: {message}")]
    Tool { program: String, message: String },
    #[error("`{program}` is needed to {purpose} but is not installed")]
    Missing {
        program: String,
        purpose: String,
        package: String,
    },
    #[error("downloading {url} failed: {message}")]
    Download { url: String, message: String },
    #[error("the recipe {path} is not valid: {message}")]
    BadRecipe { path: PathBuf, message: String },
    #[error("building box `{name}` failed ({status}); its log is {log}\n{tail}")]
    Build {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },
}

impl BoxError {
    /// The next step for the user, when there is an obvious one.
    pub fn hint(&self) -> Option<String> {
        match self {
            BoxError::Unknown { .. } => Some(format!(
                "add it with `box box add NAME|FILE|URL`; boxes with recipes: {}",
                recipe::embedded_names().join(", ")
            )),
            BoxError::Exists { .. } => Some("pass --force to replace it".into()),
            BoxError::NotInStore { .. } => Some("`box box list` shows the boxes there are".into()),
            BoxError::InUse { .. } => Some("destroy those machines first (`box destroy`)".into()),
            BoxError::Missing { package, .. } => Some(format!("apt-get install {package}")),
            BoxError::Download { .. } => {
                Some("run the same command again to resume the download".into())
            }
            _ => None,
        }
    }
}

/// Turns a store error into an `anyhow` error that carries its `hint:`.
pub fn with_hint(e: BoxError) -> anyhow::Error {
    match e.hint() {
        // The variants with a hint have no source, so the message loses nothing;
        // `hints_of` only finds a `Hinted` that is itself in the chain.
        Some(hint) => crate::error::Hinted::new(e.to_string(), hint).into(),
        None => anyhow::Error::new(e),
    }
}

/// Names and versions become folder names: keep them to a safe alphabet.
fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub(crate) fn check_name(name: &str) -> Result<(), BoxError> {
    if valid_component(name) {
        Ok(())
    } else {
        Err(BoxError::BadName {
            name: name.to_string(),
        })
    }
}

pub(crate) fn check_version(version: &str) -> Result<(), BoxError> {
    if valid_component(version) {
        Ok(())
    } else {
        Err(BoxError::BadVersion {
            version: version.to_string(),
        })
    }
}

/// A program on `PATH` (or in the sbin folders, where `mkfs.ext4` lives).
pub(crate) fn which(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// The sha256 of a (large) file, computed off the async threads.
pub(crate) async fn hash_async(path: PathBuf) -> Result<String, BoxError> {
    let p = path.clone();
    tokio::task::spawn_blocking(move || checksum::hash_file(&p, checksum::Algorithm::Sha256))
        .await
        .map_err(|e| BoxError::Read {
            path,
            source: std::io::Error::other(e),
        })?
}
