//! Machine disks with `qemu-img`: a copy-on-write overlay over the box
//! image (a few MB per machine, not a copy), and internal snapshots of a
//! stopped machine.

use std::path::Path;

use serde::Deserialize;
use tokio::process::Command;

#[derive(Debug, thiserror::Error)]
pub enum DiskError {
    #[error("cannot run `qemu-img`")]
    Spawn(#[source] std::io::Error),
    #[error("`qemu-img {args}` failed: {stderr}")]
    Failed { args: String, stderr: String },
    #[error("`qemu-img info` printed something box cannot read: {0}")]
    Info(String),
}

async fn qemu_img(args: &[&str]) -> Result<Vec<u8>, DiskError> {
    let out = Command::new("qemu-img")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(DiskError::Spawn)?;
    if !out.status.success() {
        return Err(DiskError::Failed {
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

#[derive(Debug, Deserialize)]
pub struct Info {
    pub format: String,
    #[serde(rename = "virtual-size")]
    pub virtual_size: u64,
    #[serde(default)]
    pub snapshots: Vec<SnapshotEntry>,
}

#[derive(Debug, Deserialize)]
pub struct SnapshotEntry {
    pub name: String,
    #[serde(rename = "date-sec", default)]
    pub date_sec: u64,
}

/// Image facts; `-U` reads an image a running QEMU holds locked.
pub async fn info(path: &Path) -> Result<Info, DiskError> {
    let p = path.to_string_lossy();
    let out = qemu_img(&["info", "-U", "--output=json", &p]).await?;
    serde_json::from_slice(&out).map_err(|e| DiskError::Info(e.to_string()))
}

/// Creates `overlay` backed by `base`, grown to `size_gib` if that is
/// larger than the base (a disk is never shrunk).
pub async fn create_overlay(
    base: &Path,
    overlay: &Path,
    size_gib: Option<u32>,
) -> Result<(), DiskError> {
    let base_info = info(base).await?;
    let mut size = base_info.virtual_size;
    if let Some(gib) = size_gib {
        size = size.max(u64::from(gib) * 1024 * 1024 * 1024);
    }
    let b = base.to_string_lossy();
    let o = overlay.to_string_lossy();
    let size = size.to_string();
    qemu_img(&[
        "create",
        "-q",
        "-f",
        "qcow2",
        "-F",
        &base_info.format,
        "-b",
        &b,
        &o,
        &size,
    ])
    .await?;
    Ok(())
}

pub async fn snapshot_create(disk: &Path, name: &str) -> Result<(), DiskError> {
    qemu_img(&["snapshot", "-c", name, &disk.to_string_lossy()])
        .await
        .map(drop)
}

pub async fn snapshot_apply(disk: &Path, name: &str) -> Result<(), DiskError> {
    qemu_img(&["snapshot", "-a", name, &disk.to_string_lossy()])
        .await
        .map(drop)
}

pub async fn snapshot_delete(disk: &Path, name: &str) -> Result<(), DiskError> {
    qemu_img(&["snapshot", "-d", name, &disk.to_string_lossy()])
        .await
        .map(drop)
}
