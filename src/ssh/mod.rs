//! The SSH layer: one libssh2 session per machine, pinned host keys, and the
//! operations box runs over it (commands, interactive shells, SFTP copies).
//!
//! It only knows an [`SshTarget`](crate::state::SshTarget): which provider
//! made the machine is none of its business. Everything here blocks; async
//! commands call it through `tokio::task::spawn_blocking`.

pub mod agent;
mod error;
pub mod holder;
mod hostkey;
pub mod interactive;
pub mod lines;
mod pump;
pub mod quote;
mod session;
pub mod ssh_config;
pub mod transfer;

pub use error::SshError;
pub use hostkey::{fingerprint, HostKey};
pub use quote::quote;
pub use session::{Output, Session};
