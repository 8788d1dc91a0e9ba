//! `Boxfile.lock`: what each machine was built from, so everyone who runs
//! `box up` on the same Boxfile gets the same image.
//!
//! The lock sits beside the Boxfile and is committed, like `Cargo.lock`.
//! It is plain TOML with a `version` field, one table per machine, sorted,
//! so a change reads well in a diff:
//!
//! ```toml
//! version = 1
//!
//! [machine.web.local]
//! box = "debian-12"
//! version = "12.0.20261201"
//! sha256 = "9f86d08..."
//!
//! [machine.db.cloudstack.zone-1]
//! zone_id = "2d1c..."
//! template_id = "7a3b..."
//! template_name = "Debian 12"
//! template_checksum = "{SHA-256}5e88..."
//! service_offering_id = "c1f0..."
//! ```
//!
//! The file format lives here; [`Session`] is how a command (`box up`,
//! `box lock`) reads and changes it while providers resolve machines.

mod session;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use session::{stale, Policy, Session};

/// The file's name, beside the Boxfile.
pub const FILE_NAME: &str = "Boxfile.lock";
/// The newest format this box writes and reads.
pub const FORMAT: u32 = 1;

const HEADER: &str = "\
# Boxfile.lock: what each machine is built from. Written by box; commit it.
# `box lock --update [MACHINE...]` moves machines to what is available now.
";

/// The whole file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lockfile {
    pub version: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub machine: BTreeMap<String, MachineLock>,
}

impl Default for Lockfile {
    fn default() -> Self {
        Lockfile {
            version: FORMAT,
            machine: BTreeMap::new(),
        }
    }
}

/// One machine: what it was built from on each provider it has run on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MachineLock {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<LocalLock>,
    /// By zone name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cloudstack: BTreeMap<String, ZoneLock>,
}

impl MachineLock {
    fn is_empty(&self) -> bool {
        self.local.is_none() && self.cloudstack.is_empty()
    }
}

/// A local machine's box.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalLock {
    #[serde(rename = "box")]
    pub box_name: String,
    pub version: String,
    /// Hex sha256 of the box's disk image.
    pub sha256: String,
}

/// A CloudStack machine's template and offerings in one zone, as ids.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ZoneLock {
    pub zone_id: String,
    pub template_id: String,
    pub template_name: String,
    /// As the cloud reports it (e.g. `{SHA-256}hex` or an MD5); clouds that
    /// report none leave it out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template_checksum: Option<String>,
    pub service_offering_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk_offering_id: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockfileError {
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
    #[error("{path} is not a valid lock file: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{path} has format version {found}, newer than this box reads (up to {FORMAT})")]
    Newer { path: PathBuf, found: u32 },
}

impl LockfileError {
    pub fn hint(&self) -> Option<String> {
        match self {
            LockfileError::Newer { .. } => Some(
                "it was written by a newer box: upgrade box, or delete the file and run `box lock` to write one this box reads".into(),
            ),
            LockfileError::Invalid { .. } => Some(
                "fix it by hand, or delete it and run `box lock` to write it again".into(),
            ),
            _ => None,
        }
    }
}

/// The lock file of the project whose Boxfile is in `root`.
pub fn path_in(root: &Path) -> PathBuf {
    root.join(FILE_NAME)
}

impl Lockfile {
    /// Reads the lock file, `None` when there is none. Older formats are
    /// read as they were written; a newer one is an error.
    pub fn load(path: &Path) -> Result<Option<Lockfile>, LockfileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(LockfileError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Lockfile::parse(&text, path).map(Some)
    }

    fn parse(text: &str, path: &Path) -> Result<Lockfile, LockfileError> {
        let invalid = |message: String| LockfileError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        // The version first, so a newer format is named as such rather
        // than reported as whatever of it this box fails to parse.
        #[derive(Deserialize)]
        struct Version {
            version: Option<i64>,
        }
        let v: Version = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        match v.version {
            None => Err(invalid("it has no `version`".into())),
            Some(n) if n < 1 => Err(invalid(format!("`version = {n}` is not a format"))),
            Some(n) if n > i64::from(FORMAT) => Err(LockfileError::Newer {
                path: path.to_path_buf(),
                found: u32::try_from(n).unwrap_or(u32::MAX),
            }),
            // Format 1 is the only one so far; a format 2 would convert here.
            Some(_) => toml::from_str(text).map_err(|e| invalid(e.to_string())),
        }
    }

    /// The file's text: a short header, then the tables in name order.
    pub fn to_text(&self) -> String {
        let out = Lockfile {
            version: FORMAT,
            machine: self
                .machine
                .iter()
                .filter(|(_, m)| !m.is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        // BTreeMaps serialise sorted: the same lock is always the same text.
        let body = toml::to_string(&out).unwrap_or_else(|_| format!("version = {FORMAT}\n"));
        format!("{HEADER}{body}")
    }

    /// Writes the file atomically: readers see the old or the new one.
    pub fn save(&self, path: &Path) -> Result<(), LockfileError> {
        crate::fsutil::write_atomic(path, self.to_text().as_bytes(), 0o644).map_err(|source| {
            LockfileError::Write {
                path: path.to_path_buf(),
                source,
            }
        })
    }
}

/// The numbers of a box version, read leniently for semver requirements:
/// `12.0.20261201` as is, `1.2` as `1.2.0`, a clock version
/// `20261201.020304` as `20261201.20304.0`; a suffix after `-` (a second
/// build the same day) is ignored. `None` when it starts with no number.
pub fn semver_of(version: &str) -> Option<semver::Version> {
    let core = version.split(['-', '+']).next().unwrap_or(version);
    let mut parts = core.split(['.', '_']).map(|p| p.parse::<u64>());
    let major = parts.next()?.ok()?;
    let minor = parts.next().and_then(Result::ok).unwrap_or(0);
    let patch = parts.next().and_then(Result::ok).unwrap_or(0);
    Some(semver::Version::new(major, minor, patch))
}

/// Whether box version `version` meets `req` (no requirement: any).
pub fn meets(req: Option<&semver::VersionReq>, version: &str) -> bool {
    match req {
        None => true,
        Some(req) => semver_of(version).is_some_and(|v| req.matches(&v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Lockfile {
        let mut lock = Lockfile::default();
        lock.machine.insert(
            "web".into(),
            MachineLock {
                local: Some(LocalLock {
                    box_name: "debian-12".into(),
                    version: "12.0.20261201".into(),
                    sha256: "ab".repeat(32),
                }),
                cloudstack: BTreeMap::new(),
            },
        );
        let mut zones = BTreeMap::new();
        zones.insert(
            "Zone One".into(),
            ZoneLock {
                zone_id: "z1".into(),
                template_id: "t1".into(),
                template_name: "Debian 12".into(),
                template_checksum: Some("{SHA-256}00ff".into()),
                service_offering_id: "so1".into(),
                disk_offering_id: None,
            },
        );
        lock.machine.insert(
            "db".into(),
            MachineLock {
                local: None,
                cloudstack: zones,
            },
        );
        lock
    }

    #[test]
    fn lock_round_trips_through_its_text() {
        let lock = sample();
        let text = lock.to_text();
        let back = Lockfile::parse(&text, Path::new("Boxfile.lock")).unwrap();
        assert_eq!(back, lock);
        // Sorted by machine name, whatever order they were added in.
        assert!(text.find("[machine.db").unwrap() < text.find("[machine.web").unwrap());
        assert!(text.contains("version = 1\n"), "{text}");
        assert!(
            text.contains("[machine.db.cloudstack.\"Zone One\"]"),
            "{text}"
        );
        assert!(text.contains("box = \"debian-12\""), "{text}");
        assert!(!text.contains("disk_offering_id"), "{text}");
        // The same lock is the same text.
        assert_eq!(text, back.to_text());
    }

    #[test]
    fn a_format_1_lock_without_the_optional_fields_still_loads() {
        // As an older box wrote it: no header, no checksum or disk offering,
        // and a key this box does not know.
        let text = r#"
version = 1

[machine.web.cloudstack.z]
zone_id = "1"
template_id = "2"
template_name = "Debian 12"
service_offering_id = "3"
written_by = "box 0.1"
"#;
        let lock = Lockfile::parse(text, Path::new("Boxfile.lock")).unwrap();
        let zone = &lock.machine["web"].cloudstack["z"];
        assert_eq!(zone.template_id, "2");
        assert_eq!(zone.template_checksum, None);
        assert_eq!(zone.disk_offering_id, None);
    }

    #[test]
    fn a_lock_from_a_newer_box_is_named_as_such() {
        let err = Lockfile::parse(
            "version = 2\n[machine.web.future]\nx = 1\n",
            Path::new("Boxfile.lock"),
        )
        .unwrap_err();
        assert!(
            matches!(err, LockfileError::Newer { found: 2, .. }),
            "{err}"
        );
        assert!(err.hint().unwrap().contains("newer box"));
        let err = Lockfile::parse("[machine]\n", Path::new("Boxfile.lock")).unwrap_err();
        assert!(err.to_string().contains("no `version`"), "{err}");
    }

    #[test]
    fn box_versions_meet_semver_requirements_leniently() {
        let req = semver::VersionReq::parse(">= 1.2, < 2").unwrap();
        assert!(meets(Some(&req), "1.2"));
        assert!(meets(Some(&req), "1.9.3-2"));
        assert!(!meets(Some(&req), "2.0.0"));
        assert!(!meets(Some(&req), "latest"));
        assert!(meets(None, "latest"));
        assert_eq!(
            semver_of("20261201.020304"),
            Some(semver::Version::new(20261201, 20304, 0))
        );
    }
}
