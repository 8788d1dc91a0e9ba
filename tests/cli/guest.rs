//! The test guest image cache, shared by every test that boots QEMU.
//!
//! Building the debian-12 box takes about a minute, so it is built once per
//! machine with the real `box box build` into a store outside the
//! repository and reused; tests pass [`boxes_dir`] as `BOX_BOXES_DIR`. A
//! file lock serialises the build across test threads and test processes,
//! and a stamp of the recipe's files triggers a rebuild when they change.

#![allow(dead_code)]

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::support;

/// The box every QEMU test boots.
pub const BOX_NAME: &str = "debian-12";

/// The cache folder: `$BOX_TEST_CACHE/boxes`, else `/var/cache/box-tests/boxes`.
pub fn cache_root() -> PathBuf {
    std::env::var_os("BOX_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/box-tests"))
}

/// The box the Docker tests boot: debian-12 plus Docker.
pub const DOCKER_BOX_NAME: &str = "debian-12-docker";

/// The repository's recipe folder for the test box.
pub fn recipe_dir() -> PathBuf {
    recipe_dir_of(BOX_NAME)
}

fn recipe_dir_of(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("boxes")
        .join(name)
}

/// A box store holding a current `debian-12` (built on first use).
pub fn boxes_dir() -> PathBuf {
    store_with(BOX_NAME)
}

/// The same store, holding a current `debian-12-docker` too (built on
/// first use, a few minutes).
pub fn docker_boxes_dir() -> PathBuf {
    store_with(DOCKER_BOX_NAME)
}

/// The same store, holding a current `debian-12-postgres` too (built on
/// first use, a few minutes).
pub fn postgres_boxes_dir() -> PathBuf {
    store_with("debian-12-postgres")
}

/// The shared store, with a current build of the recipe `name`.
fn store_with(name: &str) -> PathBuf {
    let root = cache_root();
    let dir = root.join("boxes");
    fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    let lock_path = root.join("build.lock");
    let lock = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap_or_else(|e| panic!("cannot open {}: {e}", lock_path.display()));
    // flock: separate opens conflict, so this serialises threads of one test
    // process as well as other processes.
    lock.lock().expect("lock the test box cache");

    let stamp_path = dir.join(format!(".{name}.recipe-sha256"));
    let stamp = recipe_stamp(name);
    let current = fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp.as_str());
    if !(current && has_box(&dir, name)) {
        support::require("mmdebstrap");
        support::require("mkfs.ext4");
        support::require("qemu-img");
        let home = tempfile::tempdir().unwrap();
        let out = support::box_cmd(home.path())
            .env("BOX_BOXES_DIR", &dir)
            .args(["box", "build"])
            .arg(recipe_dir_of(name))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building the test box failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Older builds are dropped unless a machine still uses them.
        let _ = support::box_cmd(home.path())
            .env("BOX_BOXES_DIR", &dir)
            .args(["box", "prune"])
            .output();
        fs::write(&stamp_path, &stamp).unwrap();
    }
    drop(lock);
    dir
}

/// The newest test box, as `box box list --json` reports it.
pub fn test_box(dir: &Path) -> serde_json::Value {
    list(dir)
        .into_iter()
        .rfind(|b| b["name"] == BOX_NAME)
        .unwrap_or_else(|| panic!("no {BOX_NAME} in {}", dir.display()))
}

/// Every box in a store.
pub fn list(dir: &Path) -> Vec<serde_json::Value> {
    let home = tempfile::tempdir().unwrap();
    let out = support::box_cmd(home.path())
        .env("BOX_BOXES_DIR", dir)
        .args(["box", "list", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice::<serde_json::Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn has_box(dir: &Path, name: &str) -> bool {
    list(dir).iter().any(|b| b["name"] == name)
}

/// A hash of the recipe's files (a derived recipe's `base.sh` link is read
/// through, so a change of debian-12's script rebuilds it too).
fn recipe_stamp(name: &str) -> String {
    let mut h = Sha256::new();
    let mut files: Vec<PathBuf> = fs::read_dir(recipe_dir_of(name))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        h.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        h.update(fs::read(&f).unwrap());
    }
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}
