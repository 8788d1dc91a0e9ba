//! A small QMP client: enough to power a guest down, quit QEMU, run the
//! monitor commands behind snapshots, and hand QEMU a file descriptor
//! (`getfd`) to save or load a machine's state through.

use std::os::fd::{AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Interest};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;

#[derive(Debug, thiserror::Error)]
pub enum QmpError {
    #[error("cannot connect to the QEMU monitor at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the QEMU monitor connection failed")]
    Io(#[from] std::io::Error),
    #[error("the QEMU monitor did not answer `{command}` within {0:?}", .timeout)]
    Timeout { command: String, timeout: Duration },
    #[error("the QEMU monitor closed the connection")]
    Closed,
    #[error("the QEMU monitor sent something that is not JSON: {0}")]
    Protocol(String),
    #[error("QEMU refused `{command}`: {message}")]
    Refused { command: String, message: String },
}

pub struct Qmp {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

impl Qmp {
    /// Connects and leaves capabilities negotiation mode.
    pub async fn connect(path: &Path) -> Result<Qmp, QmpError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| QmpError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (r, w) = stream.into_split();
        let mut qmp = Qmp {
            reader: BufReader::new(r),
            writer: w,
        };
        // The greeting.
        qmp.read_message("greeting", DEFAULT_TIMEOUT).await?;
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    async fn read_message(&mut self, command: &str, timeout: Duration) -> Result<Value, QmpError> {
        let mut line = String::new();
        let n = tokio::time::timeout(timeout, self.reader.read_line(&mut line))
            .await
            .map_err(|_| QmpError::Timeout {
                command: command.to_string(),
                timeout,
            })??;
        if n == 0 {
            return Err(QmpError::Closed);
        }
        serde_json::from_str(&line).map_err(|_| QmpError::Protocol(line.trim().to_string()))
    }

    pub async fn execute(&mut self, command: &str, args: Option<Value>) -> Result<Value, QmpError> {
        self.execute_within(command, args, DEFAULT_TIMEOUT).await
    }

    /// Sends a command and returns its `return` value, skipping events.
    pub async fn execute_within(
        &mut self,
        command: &str,
        args: Option<Value>,
        timeout: Duration,
    ) -> Result<Value, QmpError> {
        let bytes = message(command, args)?;
        self.writer.write_all(&bytes).await?;
        self.answer(command, timeout).await
    }

    /// Gives QEMU a file descriptor under `name` (QMP `getfd`, the
    /// descriptor sent beside the command as SCM_RIGHTS), for a later
    /// `fd:NAME` migration URI. QEMU gets its own copy.
    pub async fn send_fd(&mut self, name: &str, fd: BorrowedFd<'_>) -> Result<(), QmpError> {
        let bytes = message("getfd", Some(json!({ "fdname": name })))?;
        let stream: &UnixStream = self.writer.as_ref();
        let sent = stream
            .async_io(Interest::WRITABLE, || {
                send_with_fd(stream.as_raw_fd(), &bytes, fd)
            })
            .await?;
        if sent < bytes.len() {
            // The descriptor went with the first byte; the rest is plain text.
            self.writer.write_all(&bytes[sent..]).await?;
        }
        self.answer("getfd", DEFAULT_TIMEOUT).await.map(drop)
    }

    /// Reads until the answer to `command`, skipping events.
    async fn answer(&mut self, command: &str, timeout: Duration) -> Result<Value, QmpError> {
        loop {
            let reply = self.read_message(command, timeout).await?;
            if let Some(ret) = reply.get("return") {
                return Ok(ret.clone());
            }
            if let Some(err) = reply.get("error") {
                return Err(QmpError::Refused {
                    command: command.to_string(),
                    message: err
                        .get("desc")
                        .and_then(Value::as_str)
                        .unwrap_or("unknown error")
                        .to_string(),
                });
            }
            // An asynchronous event: not our answer.
        }
    }

    /// Runs a human monitor command (`savevm`, `loadvm`...). Their failures
    /// come back as text, not as QMP errors.
    pub async fn hmp(&mut self, line: &str, timeout: Duration) -> Result<String, QmpError> {
        let out = self
            .execute_within(
                "human-monitor-command",
                Some(json!({ "command-line": line })),
                timeout,
            )
            .await?;
        let text = out.as_str().unwrap_or_default().trim().to_string();
        let lower = text.to_ascii_lowercase();
        if lower.contains("error") || lower.starts_with("could not") {
            return Err(QmpError::Refused {
                command: line.to_string(),
                message: text,
            });
        }
        Ok(text)
    }
}

fn message(command: &str, args: Option<Value>) -> Result<Vec<u8>, QmpError> {
    let mut msg = json!({ "execute": command });
    if let Some(args) = args {
        msg["arguments"] = args;
    }
    let mut bytes = serde_json::to_vec(&msg).map_err(|e| QmpError::Protocol(e.to_string()))?;
    bytes.push(b'\n');
    Ok(bytes)
}

/// One `sendmsg(2)` of `bytes` with `fd` attached as SCM_RIGHTS; returns
/// how many bytes went (WouldBlock when the socket is full).
fn send_with_fd(socket: i32, bytes: &[u8], fd: BorrowedFd<'_>) -> std::io::Result<usize> {
    let raw = fd.as_raw_fd();
    let fd_len = std::mem::size_of::<i32>() as u32;
    // SAFETY: CMSG_SPACE only computes a size.
    let space = unsafe { libc::CMSG_SPACE(fd_len) } as usize;
    // u64 words keep the control buffer aligned for `cmsghdr`.
    let mut control = vec![0u64; space.div_ceil(8)];
    let mut iov = libc::iovec {
        iov_base: bytes.as_ptr() as *mut libc::c_void,
        iov_len: bytes.len(),
    };
    // SAFETY: msghdr is plain data; every pointer set below outlives the
    // sendmsg call, and the control buffer is `space` bytes long, enough
    // for one cmsghdr carrying one int (CMSG_SPACE).
    let sent = unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = space as _;
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(fd_len) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(cmsg) as *mut i32, raw);
        libc::sendmsg(socket, &msg, libc::MSG_NOSIGNAL)
    };
    if sent < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    #[tokio::test]
    async fn execute_skips_events_and_returns_the_answer() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("qmp.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            s.write_all(b"{\"QMP\": {\"version\": {}}}\n")
                .await
                .unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = s.read(&mut buf).await.unwrap();
            s.write_all(b"{\"return\": {}}\n").await.unwrap();
            let n = s.read(&mut buf).await.unwrap();
            let got = String::from_utf8_lossy(&buf[..n]).to_string();
            s.write_all(b"{\"event\": \"POWERDOWN\"}\n{\"return\": \"Error: no snapshot\"}\n")
                .await
                .unwrap();
            got
        });
        let mut qmp = Qmp::connect(&path).await.unwrap();
        let err = qmp.hmp("loadvm x", DEFAULT_TIMEOUT).await.unwrap_err();
        assert!(err.to_string().contains("no snapshot"), "{err}");
        let sent = server.await.unwrap();
        assert!(sent.contains("human-monitor-command"), "{sent}");
        assert!(sent.contains("loadvm x"), "{sent}");
    }
}
