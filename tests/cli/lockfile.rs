//! `Boxfile.lock` and box versions: the first `box up` writes the lock, a
//! new environment is built from what it locks, a locked image or template
//! that changed stops `box up` before anything is created, `box lock
//! --update` moves the lock, `box up --locked` refuses any change; and
//! `box box outdated`/`update` over a store holding several versions.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::harness::Test;
use crate::{guest, support};

fn read_lock(dir: &Path) -> toml::Value {
    let text = fs::read_to_string(dir.join("Boxfile.lock")).expect("Boxfile.lock is written");
    toml::from_str(&text).expect("Boxfile.lock is TOML")
}

/// A folder holding `boxfile` and, when given, a copy of another folder's lock:
/// a teammate's fresh checkout.
fn checkout(root: &Path, name: &str, boxfile: &str, lock_from: Option<&Path>) -> PathBuf {
    let dir = root.join(name);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Boxfile"), boxfile).unwrap();
    if let Some(from) = lock_from {
        fs::copy(from.join("Boxfile.lock"), dir.join("Boxfile.lock")).unwrap();
    }
    dir
}

// ---------------------------------------------------------------- CloudStack

const CLOUD: &str = r#"
[project]
name = "locked"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
template = "Debian 12"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
"#;

const CLOUD_TWO: &str = r#"
[project]
name = "locked"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
template = "Debian 12"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"

[[machine]]
name = "db"
"#;

fn debian_templates(t: &Test) -> Vec<Value> {
    t.sim()
        .list(t.home(), "listTemplates", &["templatefilter=executable"])
        .into_iter()
        .filter(|x| x["name"] == "Debian 12" && x["zonename"] == "Sim-Advanced")
        .collect()
}

#[test]
fn cloudstack_lock_pins_the_template_and_a_replaced_one_stops_up_until_lock_update() {
    let t = Test::new().simulator(&[]);
    let first = t.project("first", CLOUD);
    first.run(["up", "--no-connect"]).success();

    // The first `up` wrote the lock: the zone's template, its checksum, the offering.
    let old = debian_templates(&t).remove(0);
    let old_id = old["id"].as_str().unwrap().to_string();
    let lock = read_lock(first.dir());
    let zone = &lock["machine"]["web"]["cloudstack"]["Sim-Advanced"];
    assert_eq!(lock["version"].as_integer(), Some(1));
    assert_eq!(zone["template_id"].as_str(), Some(old_id.as_str()));
    assert_eq!(zone["template_name"].as_str(), Some("Debian 12"));
    assert_eq!(zone["template_checksum"].as_str(), old["checksum"].as_str());
    assert!(zone["service_offering_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));

    // The operator replaces the template: a new one under the same name, the old one deleted.
    let new_checksum = format!("{{SHA-256}}{}", "ab".repeat(32));
    t.run([
        "api",
        "registerTemplate",
        "name=Debian 12",
        "displaytext=Debian 12 (rebuilt)",
        "url=http://127.0.0.1:9/debian-12.qcow2",
        "format=QCOW2",
        "hypervisor=KVM",
        &format!("ostypeid={}", old["ostypeid"].as_str().unwrap()),
        &format!("checksum={new_checksum}"),
    ])
    .success();
    t.run(["api", "deleteTemplate", &format!("id={old_id}")])
        .success();
    let new = debian_templates(&t).remove(0);
    let new_id = new["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, old_id);

    // A teammate's checkout with the committed lock: refused, nothing created.
    let before = t.census();
    let root = t.home().to_path_buf();
    let second = checkout(&root, "second", CLOUD, Some(first.dir()));
    let out = t
        .project("second", CLOUD)
        .run(["up", "--no-connect"])
        .failure();
    out.stderr_has(&format!(
        "Boxfile.lock: machine `web`: the locked template `Debian 12` ({old_id}) is no longer in zone `Sim-Advanced`; `Debian 12` is now template {new_id}"
    ))
    .stderr_has("nothing was created")
    .stderr_has("hint: if the new template is what you want, run `box lock --update web`");
    assert_eq!(t.census(), before, "nothing was created on the cloud");
    assert_eq!(
        read_lock(&second),
        read_lock(first.dir()),
        "the lock is unchanged"
    );

    // `box up --locked` with a machine the lock lacks: refused, nothing created.
    let third = checkout(&root, "third", CLOUD_TWO, Some(first.dir()));
    t.project("third", CLOUD_TWO)
        .run(["up", "--no-connect", "--locked"])
        .failure()
        .stderr_has("--locked: Boxfile.lock would change for machine `db`: template `Debian 12`")
        .stderr_has("(new entry)");
    assert_eq!(t.census(), before);
    assert_eq!(read_lock(&third), read_lock(first.dir()));

    // `box lock --update` moves the lock to the new template; `--locked` then creates from it.
    let second = t.project("second", CLOUD);
    second
        .run(["lock", "--update"])
        .success()
        .stderr_has(&format!("({old_id}) -> `Debian 12` ({new_id})"));
    let zone = read_lock(second.dir())["machine"]["web"]["cloudstack"]["Sim-Advanced"].clone();
    assert_eq!(zone["template_id"].as_str(), Some(new_id.as_str()));
    assert_eq!(
        zone["template_checksum"].as_str(),
        Some(new_checksum.as_str())
    );
    let locked_text = fs::read_to_string(second.dir().join("Boxfile.lock")).unwrap();
    second.run(["up", "--no-connect", "--locked"]).success();
    assert_eq!(
        fs::read_to_string(second.dir().join("Boxfile.lock")).unwrap(),
        locked_text,
        "--locked never writes the lock"
    );
    let vm = t
        .list("listVirtualMachines")
        .into_iter()
        .find(|v| {
            v["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("locked-web"))
                && v["templateid"] == new_id.as_str()
        })
        .expect("the new environment's VM runs the new template");
    assert_eq!(vm["state"], "Running");

    // A Boxfile that now names the new template by its id asks for it:
    // the lock follows, as for any change of the Boxfile.
    let by_id = CLOUD.replace(
        "template = \"Debian 12\"",
        &format!("template = \"{new_id}\""),
    );
    checkout(&root, "fourth", &by_id, Some(first.dir()));
    t.project("fourth", &by_id)
        .run(["lock"])
        .success()
        .stderr_has(&format!("({old_id}) -> `Debian 12` ({new_id})"));

    // The first environment's machine exists: the stale lock does not stop its `up`.
    first.run(["up", "--no-connect"]).success();

    second.run(["destroy", "--force"]).success();
    first.run(["destroy", "--force"]).success();
}

// ---------------------------------------------------------------- local

const LOCAL: &str = r#"
[project]
name = "pinned"

[defaults]
box = "debian-12"
memory = 512

[local]
isolated = true

[[machine]]
name = "web"
"#;

const LOCAL_TWO: &str = r#"
[project]
name = "pinned"

[defaults]
box = "debian-12"
memory = 512

[local]
isolated = true

[[machine]]
name = "web"

[[machine]]
name = "db"
"#;

/// A store of its own holding the test box (its files linked, not copied),
/// so the test can change it without touching the shared cache.
fn private_store(root: &Path) -> (PathBuf, Value) {
    let cache = guest::boxes_dir();
    let test_box = guest::test_box(&cache);
    let version = test_box["version"].as_str().unwrap();
    let from = cache.join(guest::BOX_NAME).join(version).join("local");
    let store = root.join("boxes");
    let to = store.join(guest::BOX_NAME).join(version).join("local");
    fs::create_dir_all(&to).unwrap();
    for entry in fs::read_dir(&from).unwrap().flatten() {
        let name = entry.file_name();
        if name == "box.json" {
            fs::copy(entry.path(), to.join(&name)).unwrap();
        } else if entry.path().is_file() {
            std::os::unix::fs::symlink(entry.path(), to.join(&name)).unwrap();
        }
    }
    (store, test_box)
}

fn local_box(home: &Path, store: &Path, dir: &Path) -> assert_cmd::Command {
    let mut c = support::box_cmd(home);
    c.current_dir(dir)
        .env("BOX_BOXES_DIR", store)
        .env("BOX_QEMU_ACCEL", "tcg")
        .env("BOX_ISOLATED", "1")
        .timeout(std::time::Duration::from_secs(1800));
    c
}

fn stderr_of(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn local_lock_pins_the_box_and_a_changed_one_stops_up_before_anything_is_made() {
    support::require("qemu-system-x86_64");
    support::require("qemu-img");
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let (store, test_box) = private_store(tmp.path());
    let sha = test_box["sha256"].as_str().unwrap().to_string();
    let version = test_box["version"].as_str().unwrap().to_string();

    // One boot: the first `up` writes the lock.
    let first = checkout(tmp.path(), "first", LOCAL, None);
    let up = local_box(&home, &store, &first)
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    let destroyed = local_box(&home, &store, &first)
        .args(["destroy", "--force"])
        .output()
        .unwrap();
    assert!(up.status.success(), "box up failed:\n{}", stderr_of(&up));
    assert!(destroyed.status.success(), "{}", stderr_of(&destroyed));
    let lock = read_lock(&first);
    let web = &lock["machine"]["web"]["local"];
    assert_eq!(web["box"].as_str(), Some("debian-12"));
    assert_eq!(web["version"].as_str(), Some(version.as_str()));
    assert_eq!(web["sha256"].as_str(), Some(sha.as_str()));

    // The box is replaced in the store under the same version (as
    // `box box add --force` does): its checksum differs.
    let meta_path = store
        .join("debian-12")
        .join(&version)
        .join("local/box.json");
    let mut meta: Value = serde_json::from_slice(&fs::read(&meta_path).unwrap()).unwrap();
    let other = "0".repeat(64);
    meta["sha256"] = Value::from(other.clone());
    fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();

    let second = checkout(tmp.path(), "second", LOCAL, Some(&first));
    let out = local_box(&home, &store, &second)
        .arg("up")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "Boxfile.lock: machine `web`: box `debian-12` {version} in the store has sha256 {other}, but the lock says {sha}; nothing was created"
        )),
        "{err}"
    );
    assert!(
        err.contains("hint: if the new one is what you want, run `box lock --update web`"),
        "{err}"
    );
    assert_nothing_made(&second);
    assert_eq!(read_lock(&second), lock);

    // `box up --locked` with a machine the lock lacks: refused before anything is made.
    let third = checkout(tmp.path(), "third", LOCAL_TWO, Some(&first));
    fs::write(
        &meta_path,
        serde_json::to_vec(&test_box_meta(&meta, &sha)).unwrap(),
    )
    .unwrap();
    let out = local_box(&home, &store, &third)
        .args(["up", "--locked"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains("--locked: Boxfile.lock would change for machine `db`: box `debian-12`"),
        "{err}"
    );
    assert_nothing_made(&third);
    assert_eq!(read_lock(&third), lock, "--locked never writes the lock");
    fs::write(&meta_path, serde_json::to_vec(&meta).unwrap()).unwrap();

    // `box lock --update` takes what the store has now.
    let out = local_box(&home, &store, &second)
        .args(["lock", "--update"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    assert_eq!(
        read_lock(&second)["machine"]["web"]["local"]["sha256"].as_str(),
        Some(other.as_str())
    );

    // A locked box that is gone from the store is named as such.
    fs::remove_dir_all(store.join("debian-12").join(&version)).unwrap();
    let out = local_box(&home, &store, &second)
        .arg("up")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr_of(&out);
    assert!(
        err.contains(&format!(
            "the locked box `debian-12` {version} is not in the box store (versions there: none); nothing was created"
        )),
        "{err}"
    );
    assert_nothing_made(&second);
}

/// No machine folder, state or project key: `up` stopped before making any.
fn assert_nothing_made(dir: &Path) {
    for path in [
        ".box/machines/web",
        ".box/machines/web.json",
        ".box/machines/db",
        ".box/keys",
    ] {
        assert!(!dir.join(path).exists(), "{path} was made");
    }
}

fn test_box_meta(meta: &Value, sha: &str) -> Value {
    let mut m = meta.clone();
    m["sha256"] = Value::from(sha);
    m
}

// ---------------------------------------------------------------- versions

struct Store {
    home: tempfile::TempDir,
    store: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        support::require("qemu-img");
        Store {
            home: tempfile::tempdir().unwrap(),
            store: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut c = support::box_cmd(self.home.path());
        c.env("BOX_BOXES_DIR", self.store.path())
            .current_dir(self.work.path());
        c
    }

    /// A Vagrant box of `version` (its disk size makes each one differ) at `file`.
    fn vagrant(&self, file: &str, version: &str, size_mb: u32) -> PathBuf {
        let disk = self.work.path().join(format!("disk-{version}.qcow2"));
        let ok = std::process::Command::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&disk)
            .arg(format!("{size_mb}M"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let out = self.work.path().join(file);
        crate::boxes::vagrant_box(
            &out,
            &format!(r#"{{"provider":"libvirt","format":"qcow2","version":"{version}"}}"#),
            &disk,
            &[],
        );
        out
    }

    fn add(&self, file: &Path) {
        self.cmd()
            .args(["box", "add", "--name", "tiny"])
            .arg(file)
            .assert()
            .success();
    }
}

const TINY: &str = r#"
[[machine]]
name = "web"
box = "tiny"
box_version = ">= 1.2, < 2"
"#;

#[test]
fn box_outdated_lists_newer_allowed_versions_and_update_fetches_and_moves_the_lock() {
    let s = Store::new();
    fs::write(s.work.path().join("Boxfile"), TINY).unwrap();
    let v12 = s.vagrant("tiny-1.2.box", "1.2.0", 4);
    s.add(&v12);
    s.cmd().arg("lock").assert().success();
    let lock = read_lock(s.work.path());
    assert_eq!(
        lock["machine"]["web"]["local"]["version"].as_str(),
        Some("1.2.0")
    );

    // Two more versions side by side; 2.0.0 is outside the machine's requirement.
    let v13 = s.vagrant("tiny-1.3.box", "1.3.0", 6);
    s.add(&v13);
    let v2 = s.vagrant("tiny-2.0.box", "2.0.0", 8);
    s.add(&v2);
    let versions: Vec<String> = guest::list(s.store.path())
        .iter()
        .map(|b| b["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, ["1.2.0", "1.3.0", "2.0.0"]);

    let out = s.cmd().args(["box", "outdated"]).output().unwrap();
    assert!(out.status.success());
    let table = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(table.contains("MACHINE  BOX   LOCKED  NEWEST"), "{table}");
    assert!(table.contains("web      tiny  1.2.0   1.3.0"), "{table}");
    let out = s
        .cmd()
        .args(["box", "outdated", "--json"])
        .output()
        .unwrap();
    let rows: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        rows,
        serde_json::json!([{"machine": "web", "box": "tiny", "locked": "1.2.0", "newest": "1.3.0"}])
    );

    // `box box prune` here keeps the locked 1.2.0 as well as the newest.
    s.cmd().args(["box", "prune"]).assert().success();
    let versions: Vec<String> = guest::list(s.store.path())
        .iter()
        .map(|b| b["version"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(versions, ["1.2.0", "2.0.0"]);
    s.add(&v13);

    // The newest version's source now holds 1.4.0: update fetches it and
    // moves the lock to the newest version the requirement allows.
    let v14 = s.vagrant("tiny-1.4.box", "1.4.0", 10);
    fs::rename(&v14, &v2).unwrap();
    s.cmd()
        .args(["box", "update", "tiny"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "box `tiny`: newest version 1.4.0",
        ))
        .stderr(predicates::str::contains(
            "`web`: box `tiny` 1.2.0 -> `tiny` 1.4.0",
        ));
    assert_eq!(
        read_lock(s.work.path())["machine"]["web"]["local"]["version"].as_str(),
        Some("1.4.0")
    );
    s.cmd()
        .args(["box", "outdated"])
        .assert()
        .success()
        .stderr(predicates::str::contains(
            "every machine in Boxfile.lock has the newest",
        ));
}

#[test]
fn a_locked_image_found_under_another_version_name_is_the_same_image() {
    let s = Store::new();
    fs::write(
        s.work.path().join("Boxfile"),
        "[[machine]]\nname = \"web\"\nbox = \"tiny\"\n",
    )
    .unwrap();
    let v12 = s.vagrant("tiny-1.2.box", "1.2.0", 4);
    s.add(&v12);
    s.cmd().arg("lock").assert().success();
    // A teammate's lock names the same image (same sha256) as 1.1.9.
    let path = s.work.path().join("Boxfile.lock");
    let text = fs::read_to_string(&path)
        .unwrap()
        .replace("\"1.2.0\"", "\"1.1.9\"");
    fs::write(&path, &text).unwrap();
    s.cmd()
        .arg("lock")
        .assert()
        .success()
        .stderr(predicates::str::contains("Boxfile.lock is up to date"));
    assert_eq!(fs::read_to_string(&path).unwrap(), text);
    // Another image under that name is not.
    let sha = read_lock(s.work.path())["machine"]["web"]["local"]["sha256"]
        .as_str()
        .unwrap()
        .to_string();
    fs::write(&path, text.replace(&sha, &"1".repeat(64))).unwrap();
    s.cmd()
        .arg("lock")
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "the locked box `tiny` 1.1.9 is not in the box store (versions there: 1.2.0); nothing was created",
        ))
        .stderr(predicates::str::contains("box lock --update web"));
}

#[test]
fn a_bad_box_version_requirement_is_reported_at_its_place() {
    let s = Store::new();
    fs::write(
        s.work.path().join("Boxfile"),
        "[[machine]]\nname = \"web\"\nbox_version = \"banana\"\n",
    )
    .unwrap();
    s.cmd()
        .arg("validate")
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "Boxfile:3:15: `banana` is not a version requirement",
        ));
}

#[test]
fn a_lock_from_a_newer_box_is_refused_with_a_clear_error() {
    let s = Store::new();
    fs::write(s.work.path().join("Boxfile"), TINY).unwrap();
    fs::write(s.work.path().join("Boxfile.lock"), "version = 7\n").unwrap();
    s.cmd()
        .arg("lock")
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "has format version 7, newer than this box reads (up to 1)",
        ))
        .stderr(predicates::str::contains(
            "hint: it was written by a newer box",
        ));
}
