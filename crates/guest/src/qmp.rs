//! A small QMP client: enough to power a guest down, quit QEMU, and run
//! the monitor commands behind snapshots.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
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
        let mut msg = json!({ "execute": command });
        if let Some(args) = args {
            msg["arguments"] = args;
        }
        let mut bytes = serde_json::to_vec(&msg).map_err(|e| QmpError::Protocol(e.to_string()))?;
        bytes.push(b'\n');
        self.writer.write_all(&bytes).await?;
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
