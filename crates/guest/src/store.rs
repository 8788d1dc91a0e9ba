//! The box store, read side: `<root>/<name>/<version>/local/` holds
//! `box.json` and the box's files. Finding a box and reading its metadata
//! is all a guest needs; adding, locking and removing boxes is box's own
//! business and stays in the application.

use std::cmp::Ordering;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The metadata file in each box's folder.
pub const META_FILE: &str = "box.json";
/// The newest `box.json` schema this crate reads.
pub const META_SCHEMA: u32 = 1;

/// The kernel command line of a box that carries its own kernel, when its
/// metadata does not say otherwise.
pub const DEFAULT_CMDLINE: &str = "root=/dev/vda rw console=ttyS0";

/// Which kind of machine a box is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BoxProvider {
    /// A QEMU guest on this computer; every box in the store is one today.
    #[default]
    Local,
}

impl BoxProvider {
    pub fn as_str(self) -> &'static str {
        match self {
            BoxProvider::Local => "local",
        }
    }
}

impl fmt::Display for BoxProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `box.json`, as written by the store's owner and read here.
#[derive(Debug, Serialize, Deserialize)]
pub struct Meta {
    pub schema: u32,
    pub name: String,
    pub version: String,
    pub provider: BoxProvider,
    pub disk: String,
    #[serde(default)]
    pub kernel: Option<String>,
    #[serde(default)]
    pub initrd: Option<String>,
    #[serde(default)]
    pub cmdline: Option<String>,
    #[serde(default)]
    pub cloudstack_template: Option<String>,
    pub sha256: String,
    #[serde(default)]
    pub source: String,
    #[serde(default)]
    pub added: u64,
    /// Where `box box publish` uploaded this box as a CloudStack template.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<Published>,
}

/// One upload of a box to a CloudStack zone (`box box publish`): a machine
/// with this box in that zone deploys this template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    /// The API endpoint of the cloud, e.g. `https://cloud.example/client/api`.
    pub endpoint: String,
    pub zone_id: String,
    pub zone_name: String,
    /// The project the template belongs to, when published into one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    pub template_id: String,
    pub template_name: String,
    /// What was uploaded: `sha256` of the disk, hex (the box's own).
    pub sha256: String,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// One box in the store, with absolute paths, ready to boot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoxImage {
    pub name: String,
    pub version: String,
    pub provider: BoxProvider,
    /// The qcow2 disk; machines use it as the backing file of their overlay.
    pub disk: PathBuf,
    /// For QEMU's direct kernel boot; `None` means boot the disk's own loader.
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    /// e.g. `root=/dev/vda rw console=ttyS0`.
    pub cmdline: Option<String>,
    /// The CloudStack template this box corresponds to, e.g. `Debian 12`.
    pub cloudstack_template: Option<String>,
    /// Hex sha256 of `disk`.
    pub sha256: String,
    /// Where the box came from (a path, a URL, `recipe:NAME`).
    pub source: String,
    /// Seconds since the Unix epoch when it was added.
    pub added: u64,
    /// The CloudStack templates it was published as.
    pub published: Vec<Published>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the box metadata {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("`{name}` is not a valid box name (letters, digits, `.`, `_` and `-`)")]
    BadName { name: String },
    #[error("`{version}` is not a valid box version (letters, digits, `.`, `_` and `-`)")]
    BadVersion { version: String },
}

/// Names and versions become folder names: keep them to a safe alphabet.
fn valid_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

pub fn check_name(name: &str) -> Result<(), StoreError> {
    if valid_component(name) {
        Ok(())
    } else {
        Err(StoreError::BadName {
            name: name.to_string(),
        })
    }
}

pub fn check_version(version: &str) -> Result<(), StoreError> {
    if valid_component(version) {
        Ok(())
    } else {
        Err(StoreError::BadVersion {
            version: version.to_string(),
        })
    }
}

/// Compares dot- or dash-separated versions part by part, numerically where
/// both parts are numbers (`12.10` after `12.9`). A build versioned by the
/// clock alone (`YYYYMMDD.HHMMSS`, from before its recipe had a version) is
/// older than any build of a versioned recipe (`12.0.YYYYMMDD`), which
/// replaced it: read as numbers, 20261130 would outrank 12.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (is_clock_version(a), is_clock_version(b)) {
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let split = |s: &str| -> Vec<String> { s.split(['.', '-', '_']).map(str::to_string).collect() };
    let (pa, pb) = (split(a), split(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let ord = match (x.parse::<u64>(), y.parse::<u64>()) {
            (Ok(nx), Ok(ny)) => nx.cmp(&ny),
            _ => x.cmp(y),
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len())
}

/// `YYYYMMDD.HHMMSS`, maybe with a `-N` suffix: what a build of a recipe
/// without a version, or an add of a source without one, is named.
fn is_clock_version(v: &str) -> bool {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|c| c.is_ascii_digit());
    let base = v.split('-').next().unwrap_or_default();
    match base.split_once('.') {
        Some((date, time)) => digits(date, 8) && digits(time, 6),
        None => false,
    }
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Read {
        path: path.to_path_buf(),
        source,
    }
}

/// A box store in a folder, read only.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// The store in `root`; a missing folder is an empty store.
    pub fn at(root: PathBuf) -> Store {
        Store { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of one version of a box.
    pub fn entry_dir(&self, name: &str, version: &str) -> PathBuf {
        self.root
            .join(name)
            .join(version)
            .join(BoxProvider::Local.as_str())
    }

    /// The newest version of `name`, if any.
    pub fn find(&self, name: &str) -> Result<Option<BoxImage>, StoreError> {
        check_name(name)?;
        Ok(self.versions(name)?.pop())
    }

    /// One version of `name`, if present.
    pub fn find_version(&self, name: &str, version: &str) -> Result<Option<BoxImage>, StoreError> {
        check_name(name)?;
        check_version(version)?;
        let dir = self.entry_dir(name, version);
        if dir.join(META_FILE).is_file() {
            self.load(&dir).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Every box, by name, oldest version first.
    pub fn list(&self) -> Result<Vec<BoxImage>, StoreError> {
        let mut out = Vec::new();
        for name in self.subdirs(&self.root)? {
            if check_name(&name).is_ok() {
                out.extend(self.versions(&name)?);
            }
        }
        Ok(out)
    }

    /// The versions of one box, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<BoxImage>, StoreError> {
        let mut out = Vec::new();
        let name_dir = self.root.join(name);
        if !name_dir.is_dir() {
            return Ok(out);
        }
        for v in self.subdirs(&name_dir)? {
            let dir = self.entry_dir(name, &v);
            if dir.join(META_FILE).is_file() {
                out.push(self.load(&dir)?);
            }
        }
        out.sort_by(|a, b| compare_versions(&a.version, &b.version).then(a.added.cmp(&b.added)));
        Ok(out)
    }

    /// The names of the folders in `dir` that are not hidden, sorted.
    pub fn subdirs(&self, dir: &Path) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(names),
            Err(source) => {
                return Err(StoreError::Read {
                    path: dir.to_path_buf(),
                    source,
                })
            }
        };
        for entry in entries {
            let entry = entry.map_err(read_err(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && entry.path().is_dir() {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Reads the box in `dir` (one of [`Store::entry_dir`]).
    pub fn load(&self, dir: &Path) -> Result<BoxImage, StoreError> {
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(read_err(&path))?;
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        if meta.schema > META_SCHEMA {
            return Err(StoreError::Corrupt {
                path,
                reason: format!("schema {} is newer than this box understands", meta.schema),
            });
        }
        // Only plain file names: a crafted box.json must not point outside its folder.
        let file = |f: &str| -> Result<PathBuf, StoreError> {
            if f.is_empty() || f.contains('/') || f.starts_with('.') {
                return Err(StoreError::Corrupt {
                    path: path.clone(),
                    reason: format!("`{f}` is not a file name"),
                });
            }
            Ok(dir.join(f))
        };
        Ok(BoxImage {
            disk: file(&meta.disk)?,
            kernel: meta.kernel.as_deref().map(file).transpose()?,
            initrd: meta.initrd.as_deref().map(file).transpose()?,
            name: meta.name,
            version: meta.version,
            provider: meta.provider,
            cmdline: meta.cmdline,
            cloudstack_template: meta.cloudstack_template,
            sha256: meta.sha256,
            source: meta.source,
            added: meta.added,
            published: meta.published,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(store: &Store, name: &str, version: &str, disk: &str) {
        let dir = store.entry_dir(name, version);
        fs::create_dir_all(&dir).unwrap();
        let meta = serde_json::json!({
            "schema": 1, "name": name, "version": version, "provider": "local",
            "disk": disk, "sha256": "00", "added": 1,
        });
        fs::write(dir.join(META_FILE), meta.to_string()).unwrap();
    }

    #[test]
    fn find_gives_the_newest_version_with_absolute_paths() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().join("boxes"));
        assert_eq!(store.find("debian-12").unwrap(), None);
        put(&store, "debian-12", "12.9", "disk.qcow2");
        put(&store, "debian-12", "12.10", "disk.qcow2");
        let image = store.find("debian-12").unwrap().unwrap();
        assert_eq!(image.version, "12.10");
        assert_eq!(image.provider, BoxProvider::Local);
        assert_eq!(
            image.disk,
            store.entry_dir("debian-12", "12.10").join("disk.qcow2")
        );
        assert_eq!(store.list().unwrap().len(), 2);
    }

    #[test]
    fn a_box_json_pointing_outside_its_folder_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().to_path_buf());
        put(&store, "evil", "1", "../../../etc/shadow");
        let err = store.find("evil").unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
        assert!(matches!(
            store.find("../x").unwrap_err(),
            StoreError::BadName { .. }
        ));
    }

    #[test]
    fn versions_compare_numerically() {
        assert_eq!(compare_versions("12.10", "12.9"), Ordering::Greater);
        assert_eq!(compare_versions("1.0", "1.0.1"), Ordering::Less);
        assert_eq!(
            compare_versions("20250101.000000", "20241231.235959"),
            Ordering::Greater
        );
        assert_eq!(compare_versions("0", "0"), Ordering::Equal);
    }

    #[test]
    fn a_versioned_recipe_build_is_newer_than_a_clock_versioned_one() {
        assert_eq!(
            compare_versions("12.0.20261201", "20261130.235232"),
            Ordering::Greater
        );
        assert_eq!(
            compare_versions("20261130.235232-2", "12.0.20261201-2"),
            Ordering::Less
        );
        assert_eq!(
            compare_versions("20261201.000000", "20261130.235232-2"),
            Ordering::Greater
        );
    }
}
