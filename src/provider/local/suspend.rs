//! Suspend and resume: a machine's whole state (memory and devices) saved
//! to a file and loaded back, with QEMU's own migration.
//!
//! QEMU 7.2 (Debian 12) has no `file:` migration URI, and `exec:` kills its
//! helper as soon as the stream ends, so a writer still flushing can lose
//! the tail. box opens the file itself and hands QEMU the descriptor over
//! QMP (`getfd`): `migrate fd:NAME` writes it, `migrate-incoming fd:NAME`
//! (QEMU started with `-incoming defer`) reads it. The vCPUs are stopped
//! first, so the stream is one pass with no dirty-page rounds. The saved
//! state is uncompressed: QEMU already sends zero pages as a flag, and
//! resume speed is the point.

use std::fs::OpenOptions;
use std::os::fd::AsFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use guest::qmp::{Qmp, QmpError};
use serde_json::{json, Value};

/// The saved state's file name in the machine folder.
pub(super) const SAVED: &str = "suspend.state";
/// The name QEMU files the descriptor under between `getfd` and `migrate`.
const FD_NAME: &str = "box-suspend";
/// QEMU throttles migration to 128 MiB/s by default; a save to a local
/// file should go as fast as the disk takes it.
const UNTHROTTLED: u64 = 1 << 40;

#[derive(Debug, thiserror::Error)]
pub enum SuspendError {
    #[error(transparent)]
    Qmp(#[from] QmpError),
    #[error("cannot write the saved state {path}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the saved state {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("QEMU's migration {status}: {reason}")]
    Migration { status: String, reason: String },
    #[error("QEMU's migration did not finish within {0:?}")]
    Timeout(Duration),
}

/// Saves the running machine behind `qmp` into `file` (written beside it
/// and renamed into place once complete). QEMU is left paused, its disk
/// flushed: the caller quits it. On failure the machine runs on.
pub(super) async fn save(qmp: &Path, file: &Path, timeout: Duration) -> Result<u64, SuspendError> {
    let mut q = Qmp::connect(qmp).await?;
    q.execute("stop", None).await?;
    let saved = save_stopped(&mut q, file, timeout).await;
    if saved.is_err() {
        let _ = q.execute("cont", None).await;
    }
    saved
}

async fn save_stopped(q: &mut Qmp, file: &Path, timeout: Duration) -> Result<u64, SuspendError> {
    let tmp = file.with_extension("tmp");
    let write_err = |source| SuspendError::Write {
        path: file.display().to_string(),
        source,
    };
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(write_err)?;
    let done = async {
        q.execute(
            "migrate-set-parameters",
            Some(json!({ "max-bandwidth": UNTHROTTLED })),
        )
        .await?;
        q.send_fd(FD_NAME, out.as_fd()).await?;
        q.execute("migrate", Some(json!({ "uri": format!("fd:{FD_NAME}") })))
            .await?;
        wait_migration(q, timeout).await?;
        out.sync_all().map_err(write_err)?;
        let bytes = out.metadata().map_err(write_err)?.len();
        std::fs::rename(&tmp, file).map_err(write_err)?;
        Ok(bytes)
    }
    .await;
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    done
}

/// Loads `file` into a QEMU started with `-incoming defer` and lets the
/// machine run.
pub(super) async fn restore(
    qmp: &Path,
    file: &Path,
    timeout: Duration,
) -> Result<(), SuspendError> {
    let input = std::fs::File::open(file).map_err(|source| SuspendError::Read {
        path: file.display().to_string(),
        source,
    })?;
    let mut q = Qmp::connect(qmp).await?;
    q.send_fd(FD_NAME, input.as_fd()).await?;
    q.execute(
        "migrate-incoming",
        Some(json!({ "uri": format!("fd:{FD_NAME}") })),
    )
    .await?;
    wait_migration(&mut q, timeout).await?;
    // Without -S QEMU starts the vCPUs itself once the state is in; `cont`
    // makes sure, and is harmless when they already run.
    q.execute("cont", None).await?;
    let started = Instant::now();
    loop {
        let status = q.execute("query-status", None).await?;
        if status.get("running").and_then(Value::as_bool) == Some(true) {
            // The fresh user-mode network knows no guest MAC yet: the first
            // forwarded connection waited for a TCP retransmit (about 3 s).
            // A guest announce (virtio-net gratuitous ARP) teaches it at
            // once; best effort, an older NIC model just ignores it.
            let _ = q
                .execute(
                    "announce-self",
                    Some(json!({ "initial": 10, "max": 100, "rounds": 3, "step": 40 })),
                )
                .await;
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(30) {
            return Err(SuspendError::Migration {
                status: "finished".into(),
                reason: format!(
                    "the machine did not run afterwards (QEMU status {})",
                    status.get("status").and_then(Value::as_str).unwrap_or("?")
                ),
            });
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `query-migrate` (either side) until the migration completes.
async fn wait_migration(q: &mut Qmp, timeout: Duration) -> Result<(), SuspendError> {
    let started = Instant::now();
    loop {
        let info = q.execute("query-migrate", None).await?;
        match info.get("status").and_then(Value::as_str) {
            Some("completed") => return Ok(()),
            Some(status @ ("failed" | "cancelled")) => {
                return Err(SuspendError::Migration {
                    status: status.to_string(),
                    reason: info
                        .get("error-desc")
                        .and_then(Value::as_str)
                        .unwrap_or("no reason given")
                        .to_string(),
                })
            }
            _ => {}
        }
        if started.elapsed() > timeout {
            let _ = q.execute("migrate_cancel", None).await;
            return Err(SuspendError::Timeout(timeout));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
