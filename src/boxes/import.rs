//! Reading box files: plain qcow2 images and Vagrant's libvirt `.box`
//! format (a tar, optionally gzipped, holding `metadata.json` and a qcow2
//! `box.img`), so existing public Vagrant boxes work.
//!
//! A `.box` may carry a kernel and initrd beside `box.img` (`vmlinuz`,
//! `initrd.img`, or the names `kernel`/`initrd` in `metadata.json`) for
//! QEMU's direct kernel boot.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

use super::store::{NewBox, Staging};
use super::{BoxError, DEFAULT_CMDLINE};
use crate::provider::ProviderKind;

/// What a file turned out to be, staged and ready to install.
pub(crate) struct Imported {
    pub staging: Staging,
    pub new: NewBox,
}

/// `metadata.json` of a Vagrant box, plus box's own optional fields.
#[derive(Debug, Default, Deserialize)]
struct VagrantMetadata {
    provider: Option<String>,
    format: Option<String>,
    name: Option<String>,
    version: Option<String>,
    kernel: Option<String>,
    initrd: Option<String>,
    cmdline: Option<String>,
    cloudstack_template: Option<String>,
}

enum Kind {
    Qcow2,
    Tar { gzip: bool },
}

fn not_a_box(path: &Path, reason: impl Into<String>) -> BoxError {
    BoxError::NotABox {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn detect(path: &Path) -> Result<Kind, BoxError> {
    let mut head = [0u8; 512];
    let mut file = File::open(path).map_err(|source| BoxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mut n = 0;
    while n < head.len() {
        match file.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(source) => {
                return Err(BoxError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        }
    }
    if head.starts_with(b"QFI\xfb") {
        Ok(Kind::Qcow2)
    } else if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Kind::Tar { gzip: true })
    } else if n >= 262 && &head[257..262] == b"ustar" {
        Ok(Kind::Tar { gzip: false })
    } else {
        Err(not_a_box(path, "unknown format"))
    }
}

/// Checks with `qemu-img` that `path` is a self-contained qcow2 image.
pub(crate) fn check_qcow2(path: &Path) -> Result<(), BoxError> {
    if super::which("qemu-img").is_none() {
        return Err(BoxError::Missing {
            program: "qemu-img".into(),
            purpose: "check box images".into(),
            package: "qemu-utils".into(),
        });
    }
    let output = Command::new("qemu-img")
        .args(["info", "--output=json"])
        .arg(path)
        .output()
        .map_err(|e| BoxError::Tool {
            program: "qemu-img".into(),
            message: e.to_string(),
        })?;
    if !output.status.success() {
        return Err(not_a_box(
            path,
            String::from_utf8_lossy(&output.stderr).trim().to_string(),
        ));
    }
    let info: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|e| BoxError::Tool {
            program: "qemu-img info".into(),
            message: e.to_string(),
        })?;
    let format = info.get("format").and_then(|f| f.as_str()).unwrap_or("");
    if format != "qcow2" {
        return Err(not_a_box(
            path,
            format!("its format is `{format}`, not qcow2"),
        ));
    }
    // A backing file would tie the box to a path on someone else's machine.
    if info.get("backing-filename").is_some() {
        return Err(not_a_box(path, "it has a backing file"));
    }
    Ok(())
}

/// The box name a file suggests: `debian-12.box` gives `debian-12`.
pub(crate) fn name_from_file(file_name: &str) -> String {
    let mut name = file_name.to_string();
    for ext in [".tar.gz", ".tgz", ".tar", ".box", ".qcow2", ".img"] {
        if let Some(stripped) = name.strip_suffix(ext) {
            name = stripped.to_string();
            break;
        }
    }
    let name: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.trim_start_matches('.').to_string()
}

/// Stages `path` as a box; `name` overrides the one from the file.
/// Blocking: it copies or unpacks the whole image.
pub(crate) fn stage(
    path: &Path,
    name: Option<&str>,
    file_name: &str,
    staging: Staging,
) -> Result<Imported, BoxError> {
    match detect(path)? {
        Kind::Qcow2 => {
            check_qcow2(path)?;
            let disk = staging.path().join("disk.qcow2");
            std::fs::copy(path, &disk).map_err(|source| BoxError::Write {
                path: disk.clone(),
                source,
            })?;
            let new = NewBox {
                name: name
                    .map(str::to_string)
                    .unwrap_or_else(|| name_from_file(file_name)),
                disk: "disk.qcow2".into(),
                ..NewBox::default()
            };
            Ok(Imported { staging, new })
        }
        Kind::Tar { gzip } => stage_vagrant(path, name, file_name, gzip, staging),
    }
}

fn stage_vagrant(
    path: &Path,
    name: Option<&str>,
    file_name: &str,
    gzip: bool,
    staging: Staging,
) -> Result<Imported, BoxError> {
    let unpacked = staging.path().join("unpacked");
    let file = File::open(path).map_err(|source| BoxError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let reader: Box<dyn Read> = if gzip {
        Box::new(flate2::read::GzDecoder::new(BufReader::new(file)))
    } else {
        Box::new(BufReader::new(file))
    };
    // `unpack` refuses entries that would land outside `unpacked`.
    tar::Archive::new(reader)
        .unpack(&unpacked)
        .map_err(|e| not_a_box(path, format!("cannot unpack it: {e}")))?;
    let meta_path = unpacked.join("metadata.json");
    let meta: VagrantMetadata = match std::fs::read(&meta_path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| not_a_box(path, format!("metadata.json: {e}")))?,
        Err(_) => return Err(not_a_box(path, "it has no metadata.json")),
    };
    let provider = meta.provider.clone().unwrap_or_default();
    if provider != "libvirt" && provider != ProviderKind::Local.as_str() {
        return Err(BoxError::WrongProvider { provider });
    }
    if let Some(format) = &meta.format {
        if format != "qcow2" {
            return Err(not_a_box(
                path,
                format!("its disk format is `{format}`, not qcow2"),
            ));
        }
    }
    let image = unpacked.join("box.img");
    if !image.is_file() {
        return Err(not_a_box(path, "it has no box.img"));
    }
    check_qcow2(&image)?;
    let move_in = |from: &Path, to: &str| -> Result<String, BoxError> {
        let dest = staging.path().join(to);
        std::fs::rename(from, &dest).map_err(|source| BoxError::Write { path: dest, source })?;
        Ok(to.to_string())
    };
    let disk = move_in(&image, "disk.qcow2")?;
    let carried = |named: &Option<String>, defaults: &[&str]| -> Option<PathBuf> {
        let candidates: Vec<String> = match named {
            Some(n) => vec![n.clone()],
            None => defaults.iter().map(|d| d.to_string()).collect(),
        };
        candidates
            .iter()
            .filter(|c| !c.contains("..") && !c.starts_with('/'))
            .map(|c| unpacked.join(c))
            .find(|p| p.is_file())
    };
    let kernel = match carried(&meta.kernel, &["vmlinuz", "kernel"]) {
        Some(p) => Some(move_in(&p, "vmlinuz")?),
        None => None,
    };
    let initrd = match carried(&meta.initrd, &["initrd.img", "initrd"]) {
        Some(p) => Some(move_in(&p, "initrd.img")?),
        None => None,
    };
    let _ = std::fs::remove_dir_all(&unpacked);
    let new = NewBox {
        name: name
            .map(str::to_string)
            .or(meta.name)
            .unwrap_or_else(|| name_from_file(file_name)),
        version: meta.version.unwrap_or_default(),
        disk,
        cmdline: kernel
            .as_ref()
            .map(|_| meta.cmdline.unwrap_or_else(|| DEFAULT_CMDLINE.to_string())),
        kernel,
        initrd,
        cloudstack_template: meta.cloudstack_template,
        ..NewBox::default()
    };
    Ok(Imported { staging, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_come_from_file_names() {
        assert_eq!(name_from_file("debian-12.box"), "debian-12");
        assert_eq!(name_from_file("my image.qcow2"), "my-image");
        assert_eq!(name_from_file("x.tar.gz"), "x");
    }
}
