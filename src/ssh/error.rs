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

    /// A failed public-key login. libssh2 reports a transport failure during
    /// it (a timeout on a guest slowed by a busy host, the connection
    /// dropped) through the same call as a refused key; only a real refusal
    /// is an `Auth` error, the rest reads as a failed handshake, which a
    /// booting machine is retried on.
    pub(crate) fn auth(
        addr: &str,
        target: &crate::state::SshTarget,
        source: ssh2::Error,
    ) -> SshError {
        if is_transport_failure(&source) {
            SshError::Handshake {
                addr: addr.to_string(),
                source,
            }
        } else {
            SshError::Auth {
                addr: addr.to_string(),
                user: target.user.clone(),
                path: target.identity_file.clone(),
                source,
            }
        }
    }

    pub(crate) fn protocol(what: &'static str) -> impl FnOnce(ssh2::Error) -> SshError {
        move |source| SshError::Protocol { what, source }
    }

    pub(crate) fn io(what: &'static str) -> impl FnOnce(std::io::Error) -> SshError {
        move |source| SshError::Io { what, source }
    }
}

/// libssh2's codes for a socket that timed out, closed or failed, as
/// opposed to an answer from the server.
fn is_transport_failure(e: &ssh2::Error) -> bool {
    const SOCKET_SEND: i32 = -7;
    const TIMEOUT: i32 = -9;
    const SOCKET_DISCONNECT: i32 = -13;
    const SOCKET_RECV: i32 = -43;
    matches!(
        e.code(),
        ssh2::ErrorCode::Session(SOCKET_SEND | TIMEOUT | SOCKET_DISCONNECT | SOCKET_RECV)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> crate::state::SshTarget {
        crate::state::SshTarget {
            host: "127.0.0.1".into(),
            port: 22,
            user: "box".into(),
            identity_file: PathBuf::from("/k"),
            host_key: String::new(),
        }
    }

    #[test]
    fn a_login_that_times_out_on_the_socket_is_retried_and_a_refused_key_is_not() {
        let timeout = ssh2::Error::new(ssh2::ErrorCode::Session(-9), "Timed out waiting on socket");
        let e = SshError::auth("127.0.0.1:22", &target(), timeout);
        assert!(e.is_transient(), "{e}");
        assert!(matches!(e, SshError::Handshake { .. }));
        let refused = ssh2::Error::new(
            ssh2::ErrorCode::Session(-18),
            "Username/PublicKey combination invalid",
        );
        let e = SshError::auth("127.0.0.1:22", &target(), refused);
        assert!(!e.is_transient());
        assert!(e.to_string().contains("refused the key"), "{e}");
    }
}
