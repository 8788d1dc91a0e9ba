//! The on-disk store: `<root>/<name>/<version>/local/` holds `box.json` and
//! the box's files; the guest crate's `store` reads them. New boxes are assembled in `<root>/.tmp/` and renamed
//! into place, and a lock file per name serialises changes, so parallel
//! `box` processes (and tests) never see half a box.
//!
//! Machines whose overlay uses a box register under the box's `users/`
//! folder; `remove` and `prune` keep a box while such a machine exists,
//! because deleting a backing file would break the machine.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use guest::store::{BoxProvider, Meta, META_FILE, META_SCHEMA};
use sha2::{Digest, Sha256};

use super::checksum::{hash_file, hex, Algorithm};
use super::{check_name, check_version, version, BoxError, BoxImage, BoxRef};
use crate::config::Paths;
use crate::fsutil::write_atomic;
use crate::output::Printer;

/// Staging folders older than this belong to a dead process.
const STALE_SECS: u64 = 24 * 3600;

/// The local box store: the guest crate's reader, and the writing here.
#[derive(Debug, Clone)]
pub struct Store {
    reader: guest::store::Store,
    root: PathBuf,
}

/// The lock on one box name; released when dropped or when the process dies.
#[derive(Debug)]
pub struct BoxLock {
    name: String,
    _file: File,
}

/// A folder inside the store where a new box is assembled; deleted on drop
/// unless installed.
pub(crate) struct Staging {
    dir: tempfile::TempDir,
}

impl Staging {
    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// What a source contributes to a new box; file names are relative to the staging folder.
#[derive(Debug, Clone, Default)]
pub(crate) struct NewBox {
    pub name: String,
    pub version: String,
    pub disk: String,
    pub kernel: Option<String>,
    pub initrd: Option<String>,
    pub cmdline: Option<String>,
    pub cloudstack_template: Option<String>,
    pub source: String,
    /// The disk's sha256 when the caller already computed it.
    pub sha256: Option<String>,
}

fn write_err(path: &Path) -> impl FnOnce(io::Error) -> BoxError + '_ {
    move |source| BoxError::Write {
        path: path.to_path_buf(),
        source,
    }
}

fn read_err(path: &Path) -> impl FnOnce(io::Error) -> BoxError + '_ {
    move |source| BoxError::Read {
        path: path.to_path_buf(),
        source,
    }
}

impl Store {
    /// The user's store: `$BOX_BOXES_DIR`, else `<data dir>/boxes`.
    pub fn open(paths: &Paths) -> Result<Store, BoxError> {
        let root = match std::env::var_os("BOX_BOXES_DIR").filter(|v| !v.is_empty()) {
            Some(dir) => PathBuf::from(dir),
            None => paths.data_dir.join("boxes"),
        };
        Store::at(root)
    }

    /// A store in `root` (created if missing).
    pub fn at(root: PathBuf) -> Result<Store, BoxError> {
        for dir in [root.join(".tmp"), root.join(".locks")] {
            fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        }
        Ok(Store {
            reader: guest::store::Store::at(root.clone()),
            root,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn entry_dir(&self, name: &str, version: &str) -> PathBuf {
        self.reader.entry_dir(name, version)
    }

    /// Where resumable downloads are kept between runs.
    pub(crate) fn downloads_dir(&self) -> Result<PathBuf, BoxError> {
        let dir = self.root.join(".downloads");
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        Ok(dir)
    }

    /// Where lock files live (never deleted: a waiter may hold one).
    pub(crate) fn locks_dir(&self) -> PathBuf {
        self.root.join(".locks")
    }

    /// Where build logs are kept, so a failed build can be read afterwards.
    pub(crate) fn logs_dir(&self) -> Result<PathBuf, BoxError> {
        let dir = self.root.join(".logs");
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        Ok(dir)
    }

    /// The newest version of `name`, if any.
    pub fn find(&self, name: &str) -> Result<Option<BoxImage>, BoxError> {
        Ok(self.reader.find(name)?)
    }

    /// One version of `name`, if present.
    pub fn find_version(&self, name: &str, version: &str) -> Result<Option<BoxImage>, BoxError> {
        Ok(self.reader.find_version(name, version)?)
    }

    /// Every box, by name, oldest version first.
    pub fn list(&self) -> Result<Vec<BoxImage>, BoxError> {
        Ok(self.reader.list()?)
    }

    /// The versions of one box, oldest first.
    pub fn versions(&self, name: &str) -> Result<Vec<BoxImage>, BoxError> {
        Ok(self.reader.versions(name)?)
    }

    fn subdirs(&self, dir: &Path) -> Result<Vec<String>, BoxError> {
        Ok(self.reader.subdirs(dir)?)
    }

    fn load(&self, dir: &Path) -> Result<BoxImage, BoxError> {
        Ok(self.reader.load(dir)?)
    }

    /// A version from the clock that `name` does not have yet; call it
    /// under the name's lock.
    pub(crate) fn fresh_version(&self, name: &str) -> String {
        self.build_version(name, None)
    }

    /// A version for a new build or download of a recipe: the recipe's
    /// version and the date (see [`version::of_recipe`]), or the clock's
    /// alone; `-2`, `-3`, ... when `name` has it already.
    pub(crate) fn build_version(&self, name: &str, recipe_version: Option<&str>) -> String {
        let now = version::now_secs();
        let base = match recipe_version {
            Some(v) => version::of_recipe(v, now),
            None => version::from_clock(now),
        };
        let mut candidate = base.clone();
        let mut n = 1;
        while self.root.join(name).join(&candidate).exists() {
            n += 1;
            candidate = format!("{base}-{n}");
        }
        candidate
    }

    /// Takes the lock on `name`, waiting for another process that holds it.
    pub fn lock(&self, name: &str, printer: &Printer) -> Result<BoxLock, BoxError> {
        check_name(name)?;
        let path = self.root.join(".locks").join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(write_err(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(fs::TryLockError::WouldBlock) => {
                printer.info(&format!(
                    "waiting for another box command that is adding box `{name}`..."
                ));
                file.lock().map_err(write_err(&path))?;
            }
            Err(fs::TryLockError::Error(source)) => return Err(BoxError::Write { path, source }),
        }
        Ok(BoxLock {
            name: name.to_string(),
            _file: file,
        })
    }

    /// [`Store::lock`] without blocking the async runtime.
    pub async fn lock_async(&self, name: &str, printer: &Printer) -> Result<BoxLock, BoxError> {
        let (store, name, printer) = (self.clone(), name.to_string(), printer.clone());
        tokio::task::spawn_blocking(move || store.lock(&name, &printer))
            .await
            .map_err(|e| BoxError::Write {
                path: self.root.join(".locks"),
                source: io::Error::other(e),
            })?
    }

    /// A fresh folder inside the store to assemble a box in.
    pub(crate) fn staging(&self) -> Result<Staging, BoxError> {
        let tmp = self.root.join(".tmp");
        fs::create_dir_all(&tmp).map_err(write_err(&tmp))?;
        let dir = tempfile::Builder::new()
            .prefix("new-")
            .tempdir_in(&tmp)
            .map_err(write_err(&tmp))?;
        Ok(Staging { dir })
    }

    /// Moves an assembled box into place under `lock`. With `force`, an
    /// existing box of the same name and version is replaced.
    pub(crate) fn install(
        &self,
        lock: &BoxLock,
        staging: Staging,
        new: NewBox,
        force: bool,
    ) -> Result<BoxImage, BoxError> {
        check_name(&new.name)?;
        check_version(&new.version)?;
        debug_assert_eq!(lock.name, new.name);
        let dir = staging.path();
        let sha256 = match new.sha256 {
            Some(s) => s,
            None => hash_file(&dir.join(&new.disk), Algorithm::Sha256)?,
        };
        let meta = Meta {
            schema: META_SCHEMA,
            name: new.name.clone(),
            version: new.version.clone(),
            provider: BoxProvider::Local,
            disk: new.disk,
            kernel: new.kernel,
            initrd: new.initrd,
            cmdline: new.cmdline,
            cloudstack_template: new.cloudstack_template,
            sha256,
            source: new.source,
            added: version::now_secs(),
            published: Vec::new(),
        };
        write_meta(&dir.join(META_FILE), &meta)?;
        // Boxes are shared read-only backing files; a 0700 temp dir would hide them.
        set_mode(dir, 0o755).map_err(write_err(dir))?;

        let target = self.entry_dir(&new.name, &new.version);
        if target.exists() {
            if !force {
                return Err(BoxError::Exists {
                    name: new.name,
                    version: new.version,
                });
            }
            self.delete_entry(&target)?;
        }
        let parent = target.parent().unwrap_or(&self.root).to_path_buf();
        fs::create_dir_all(&parent).map_err(write_err(&parent))?;
        let kept = staging.dir.keep();
        fs::rename(&kept, &target).map_err(|source| {
            let _ = fs::remove_dir_all(&kept);
            BoxError::Write {
                path: target.clone(),
                source,
            }
        })?;
        self.load(&target)
    }

    /// Records where `image` was published, replacing an earlier record for
    /// the same cloud, zone and project. Taken under the box's lock.
    pub fn record_published(
        &self,
        lock: &BoxLock,
        image: &BoxImage,
        entry: guest::store::Published,
    ) -> Result<BoxImage, BoxError> {
        debug_assert_eq!(lock.name, image.name);
        let dir = self.entry_dir(&image.name, &image.version);
        let path = dir.join(META_FILE);
        let bytes = fs::read(&path).map_err(read_err(&path))?;
        let mut meta: Meta = serde_json::from_slice(&bytes).map_err(|e| BoxError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        meta.published.retain(|p| {
            !(p.endpoint == entry.endpoint
                && p.zone_id == entry.zone_id
                && p.project_id == entry.project_id)
        });
        meta.published.push(entry);
        write_meta(&path, &meta)?;
        self.load(&dir)
    }

    /// Renames an entry out of sight first, so readers never see half of it.
    fn delete_entry(&self, entry: &Path) -> Result<(), BoxError> {
        let trash = self.root.join(".tmp").join(format!(
            "old-{}-{}",
            version::now_secs(),
            rand::random::<u32>()
        ));
        fs::rename(entry, &trash).map_err(write_err(entry))?;
        fs::remove_dir_all(&trash).map_err(write_err(&trash))?;
        // Drop the version and name folders once empty; failure means not empty.
        if let Some(version_dir) = entry.parent() {
            let _ = fs::remove_dir(version_dir);
            if let Some(name_dir) = version_dir.parent() {
                let _ = fs::remove_dir(name_dir);
            }
        }
        Ok(())
    }

    /// Records that the machine whose overlay is `user` uses `image`, so
    /// `remove` and `prune` keep it while that file exists.
    pub fn register_use(&self, image: &BoxImage, user: &Path) -> Result<(), BoxError> {
        let dir = self.entry_dir(&image.name, &image.version).join("users");
        fs::create_dir_all(&dir).map_err(write_err(&dir))?;
        let user = absolute(user);
        let path = dir.join(user_key(&user));
        write_atomic(&path, user.to_string_lossy().as_bytes(), 0o644).map_err(write_err(&path))
    }

    /// Forgets a use recorded by [`Store::register_use`] (machine destroyed).
    pub fn unregister_use(&self, image: &BoxImage, user: &Path) -> Result<(), BoxError> {
        let path = self
            .entry_dir(&image.name, &image.version)
            .join("users")
            .join(user_key(&absolute(user)));
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BoxError::Write { path, source }),
        }
    }

    /// The machines (overlay paths) still using a box.
    pub fn users(&self, image: &BoxImage) -> Result<Vec<PathBuf>, BoxError> {
        let dir = self.entry_dir(&image.name, &image.version).join("users");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(BoxError::Read { path: dir, source }),
        };
        let mut users = Vec::new();
        for entry in entries {
            let entry = entry.map_err(read_err(&dir))?;
            let Ok(text) = fs::read_to_string(entry.path()) else {
                continue;
            };
            let user = PathBuf::from(text.trim());
            if user.exists() {
                users.push(user);
            } else {
                // The machine is gone without telling us; forget it.
                let _ = fs::remove_file(entry.path());
            }
        }
        users.sort();
        Ok(users)
    }

    /// Removes one version of a box, or every version.
    pub fn remove(
        &self,
        name: &str,
        version: Option<&str>,
        printer: &Printer,
    ) -> Result<Vec<BoxImage>, BoxError> {
        let _lock = self.lock(name, printer)?;
        let targets: Vec<BoxImage> = match version {
            Some(v) => self.find_version(name, v)?.into_iter().collect(),
            None => self.versions(name)?,
        };
        if targets.is_empty() {
            return Err(BoxError::NotInStore {
                name: match version {
                    Some(v) => format!("{name}` version `{v}"),
                    None => name.to_string(),
                },
            });
        }
        for image in &targets {
            let users = self.users(image)?;
            if !users.is_empty() {
                return Err(in_use(image, &users));
            }
        }
        for image in &targets {
            self.delete_entry(&self.entry_dir(&image.name, &image.version))?;
        }
        Ok(targets)
    }

    /// Removes every version that is neither the newest of its box, nor
    /// used by a machine, nor listed in `in_use`; also clears leftovers of
    /// dead processes. Returns what was removed.
    pub fn prune(&self, in_use: &[BoxRef], printer: &Printer) -> Result<Vec<BoxImage>, BoxError> {
        let mut removed = Vec::new();
        for name in self.subdirs(&self.root)? {
            if check_name(&name).is_err() {
                continue;
            }
            let _lock = self.lock(&name, printer)?;
            let mut versions = self.versions(&name)?;
            versions.pop(); // the newest stays
            for image in versions {
                let listed = in_use
                    .iter()
                    .any(|r| r.name == image.name && r.version == image.version);
                if listed || !self.users(&image)?.is_empty() {
                    continue;
                }
                self.delete_entry(&self.entry_dir(&image.name, &image.version))?;
                removed.push(image);
            }
        }
        self.clear_stale();
        Ok(removed)
    }

    /// Staging folders of processes that died mid-add.
    fn clear_stale(&self) {
        let tmp = self.root.join(".tmp");
        let Ok(entries) = fs::read_dir(&tmp) else {
            return;
        };
        let now = std::time::SystemTime::now();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age.as_secs() > STALE_SECS);
            if old {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// Writes a `box.json`, atomically.
fn write_meta(path: &Path, meta: &Meta) -> Result<(), BoxError> {
    let mut bytes = serde_json::to_vec_pretty(meta).map_err(|e| BoxError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, 0o644).map_err(write_err(path))
}

pub(crate) fn in_use(image: &BoxImage, users: &[PathBuf]) -> BoxError {
    BoxError::InUse {
        name: image.name.clone(),
        version: image.version.clone(),
        users: users
            .iter()
            .map(|u| u.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn user_key(user: &Path) -> String {
    hex(&Sha256::digest(user.to_string_lossy().as_bytes()))[..32].to_string()
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::Level;

    fn add(store: &Store, name: &str, version: &str) -> BoxImage {
        let printer = Printer::new(Level::Quiet);
        let lock = store.lock(name, &printer).unwrap();
        let staging = store.staging().unwrap();
        fs::write(staging.path().join("disk.qcow2"), version.as_bytes()).unwrap();
        let new = NewBox {
            name: name.into(),
            version: version.into(),
            disk: "disk.qcow2".into(),
            source: "test".into(),
            ..NewBox::default()
        };
        store.install(&lock, staging, new, false).unwrap()
    }

    #[test]
    fn newest_version_is_found_and_prune_keeps_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().to_path_buf()).unwrap();
        add(&store, "deb", "1.9");
        let used = add(&store, "deb", "1.2");
        add(&store, "deb", "1.10");
        assert_eq!(store.find("deb").unwrap().unwrap().version, "1.10");
        let overlay = tmp.path().join("overlay.qcow2");
        fs::write(&overlay, b"x").unwrap();
        store.register_use(&used, &overlay).unwrap();
        let printer = Printer::new(Level::Quiet);
        let removed = store.prune(&[], &printer).unwrap();
        assert_eq!(
            removed
                .iter()
                .map(|b| b.version.as_str())
                .collect::<Vec<_>>(),
            ["1.9"]
        );
        assert!(matches!(
            store.remove("deb", Some("1.2"), &printer),
            Err(BoxError::InUse { .. })
        ));
        fs::remove_file(&overlay).unwrap();
        store.remove("deb", Some("1.2"), &printer).unwrap();
        assert_eq!(store.list().unwrap().len(), 1);
    }

    #[test]
    fn existing_version_needs_force() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::at(tmp.path().to_path_buf()).unwrap();
        add(&store, "deb", "1");
        let printer = Printer::new(Level::Quiet);
        let lock = store.lock("deb", &printer).unwrap();
        let staging = store.staging().unwrap();
        fs::write(staging.path().join("disk.qcow2"), b"new").unwrap();
        let new = NewBox {
            name: "deb".into(),
            version: "1".into(),
            disk: "disk.qcow2".into(),
            ..NewBox::default()
        };
        assert!(matches!(
            store.install(&lock, staging, new, false),
            Err(BoxError::Exists { .. })
        ));
        // The refused box left nothing behind.
        assert_eq!(fs::read_dir(tmp.path().join(".tmp")).unwrap().count(), 0);
    }
}
