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

pub use add::AddOptions;
pub use checksum::Checksum;
pub use guest::store::{BoxImage, BoxProvider, DEFAULT_CMDLINE};
pub use recipe::Recipe;
pub use store::{BoxLock, Store};

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
    /// Reading the store: a bad name, an unreadable or corrupt `box.json`.
    #[error(transparent)]
    Store(#[from] guest::store::StoreError),
    #[error("box `{name}` is not in the store and no recipe knows it")]
    Unknown { name: String },
    #[error("box `{name}` is not in the store")]
    NotInStore { name: String },
    #[error("no version of box `{name}` meets `box_version = \"{wanted}\"`; the store has {have}")]
    NoVersionMeets {
        name: String,
        wanted: String,
        have: String,
    },
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
            BoxError::NoVersionMeets { .. } => Some(
                "add a version that does with `box box add`, or change `box_version` in the Boxfile".into(),
            ),
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

pub(crate) fn check_name(name: &str) -> Result<(), BoxError> {
    Ok(guest::store::check_name(name)?)
}

pub(crate) fn check_version(version: &str) -> Result<(), BoxError> {
    Ok(guest::store::check_version(version)?)
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
