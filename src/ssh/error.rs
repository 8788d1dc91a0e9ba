//! What can go wrong talking to a machine over SSH, split so callers can
//! tell "still booting, try again" from "stop, something is wrong".

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum SshError {
    #[error("the pinned host key `{0}` is not an OpenSSH public key line")]
    BadPinnedKey(String),
    #[error("cannot resolve {host}")]
    Resolve {
        host: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot connect to {addr}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("SSH handshake with {addr} failed")]
    Handshake {
        addr: String,
        #[source]
        source: ssh2::Error,
    },
    #[error("{addr} did not accept SSH connections within {waited_secs}s")]
    Unreachable {
        addr: String,
        waited_secs: u64,
        #[source]
        source: Box<SshError>,
    },
    #[error(
        "HOST KEY MISMATCH for {addr}: expected {expected} ({expected_type}), the server presented {presented} ({presented_type}); the machine was replaced or someone is intercepting the connection, so box refuses to connect"
    )]
    HostKeyMismatch {
        addr: String,
        expected: String,
        expected_type: String,
        presented: String,
        presented_type: String,
    },
    #[error("the server at {addr} presented no host key")]
    NoHostKey { addr: String },
    #[error("cannot read the identity file {path}")]
    Identity {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{addr} refused the key {path} for user `{user}`")]
    Auth {
        addr: String,
        user: String,
        path: PathBuf,
        #[source]
        source: ssh2::Error,
    },
    #[error("SSH {what} failed")]
    Protocol {
        what: &'static str,
        #[source]
        source: ssh2::Error,
    },
    #[error("SSH {what} failed")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot {op} {path} on the machine")]
    Remote {
        op: &'static str,
        path: String,
        #[source]
        source: ssh2::Error,
    },
    #[error("cannot {op} {path}")]
    Local {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A session handed to OpenSSH to forward the agent.
    #[error(transparent)]
    Agent(#[from] super::agent::AgentError),
}

impl SshError {
    /// True for failures a booting machine produces (nothing listening yet,
    /// connection reset, sshd closing during the handshake). Auth failures
    /// and key mismatches are never transient.
    pub fn is_transient(&self) -> bool {
        match self {
            SshError::Connect { source, .. } => matches!(
                source.kind(),
                std::io::ErrorKind::ConnectionRefused
                    | std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::TimedOut
                    | std::io::ErrorKind::WouldBlock
                    | std::io::ErrorKind::UnexpectedEof
                    | std::io::ErrorKind::BrokenPipe
                    | std::io::ErrorKind::HostUnreachable
                    | std::io::ErrorKind::NetworkUnreachable
            ),
            SshError::Handshake { .. } | SshError::NoHostKey { .. } => true,
            _ => false,
        }
    }

    pub(crate) fn protocol(what: &'static str) -> impl FnOnce(ssh2::Error) -> SshError {
        move |source| SshError::Protocol { what, source }
    }

    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SshError {
        move |source| SshError::Io { what, source }
    }
}
