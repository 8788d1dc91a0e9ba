//! `box box publish`: a box from the local store uploaded to the simulated
//! cloud through `getUploadParamsForTemplate` and the signed POST, recorded
//! in the box's metadata, and deployed by machines with that box.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use crate::cloud::{Census, Sim};
use crate::harness::Test;
use crate::support;

const CLOUD_BOXFILE: &str = r#"
[project]
name = "pub"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
box = "debian-12"
"#;

/// A box store under `dir` holding `disk` as box `debian-12`.
fn store_with(t: &Test, dir: &Path, disk: &Path) -> PathBuf {
    let store = dir.join("store");
    let args: Vec<&std::ffi::OsStr> = vec![
        "box".as_ref(),
        "add".as_ref(),
        disk.as_os_str(),
        "--name".as_ref(),
        "debian-12".as_ref(),
    ];
    t.run(args).env("BOX_BOXES_DIR", &store).success();
    store
}

/// A small, valid qcow2 (no backing file).
fn tiny_qcow2(dir: &Path) -> PathBuf {
    support::require("qemu-img");
    let disk = dir.join("tiny.qcow2");
    let ok = Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("8M")
        .status()
        .unwrap();
    assert!(ok.success());
    disk
}

fn boxes(t: &Test, store: &Path) -> Vec<Value> {
    let out = t
        .run(["box", "list", "--json"])
        .env("BOX_BOXES_DIR", store)
        .success();
    serde_json::from_str::<Value>(&out.stdout)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap()
}

fn own_templates(t: &Test) -> Vec<Value> {
    t.sim()
        .list(t.home(), "listTemplates", &["templatefilter=self"])
}

#[test]
fn publish_uploads_waits_until_ready_records_it_and_republishing_is_a_no_op() {
    let t = Test::new().simulator(&[]);
    let work = tempfile::tempdir().unwrap();
    let store = store_with(&t, work.path(), &tiny_qcow2(work.path()));
    let sha = boxes(&t, &store)[0]["sha256"].as_str().unwrap().to_string();

    let out = t
        .run(["box", "publish", "debian-12", "--zone", "Sim-Advanced"])
        .env("BOX_BOXES_DIR", &store)
        .success();
    out.stderr_has("published box `debian-12`");

    let published = &boxes(&t, &store)[0]["published"];
    assert_eq!(published.as_array().unwrap().len(), 1, "{published}");
    let record = &published[0];
    assert_eq!(record["zone_name"], "Sim-Advanced");
    assert_eq!(record["sha256"], sha.as_str());
    let id = record["template_id"].as_str().unwrap().to_string();
    let listed = own_templates(&t);
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["isready"], true);
    assert_eq!(listed[0]["checksum"], format!("{{SHA-256}}{sha}"));

    // The same bits again: nothing uploaded, nothing registered.
    t.run(["box", "publish", "debian-12", "--zone", "Sim-Advanced"])
        .env("BOX_BOXES_DIR", &store)
        .success()
        .stderr_has("nothing to do");
    assert_eq!(own_templates(&t).len(), 1);

    // A machine with the box deploys the published template, not `Debian 12`.
    let p = t.project("pub", CLOUD_BOXFILE);
    p.run(["up", "--no-connect"])
        .env("BOX_BOXES_DIR", &store)
        .success();
    let vms = t.list("listVirtualMachines");
    assert_eq!(vms.len(), 1);
    assert_eq!(vms[0]["templateid"], id.as_str());
    let lock = std::fs::read_to_string(p.dir().join("Boxfile.lock")).unwrap();
    assert!(
        lock.contains(&id),
        "Boxfile.lock pins the published template:\n{lock}"
    );
    p.run(["destroy", "--force"])
        .env("BOX_BOXES_DIR", &store)
        .success();

    // The template gone from the cloud: an error naming it, not other bits.
    t.run(["api", "deleteTemplate", &format!("id={id}")])
        .success();
    p.run(["up", "--no-connect"])
        .env("BOX_BOXES_DIR", &store)
        .failure()
        .stderr_has("no longer has")
        .stderr_has("hint: run `box box publish debian-12 --zone Sim-Advanced` again");
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn an_expired_upload_signature_is_refused_and_leaves_no_template_and_no_record() {
    // Signed POSTs expire at once.
    let t = Test::new().simulator(&["--upload-ttl", "0s"]);
    let work = tempfile::tempdir().unwrap();
    let store = store_with(&t, work.path(), &tiny_qcow2(work.path()));

    let out = t
        .run(["box", "publish", "debian-12", "--zone", "Sim-Advanced"])
        .env("BOX_BOXES_DIR", &store)
        .failure();
    out.stderr_has("signature has expired").stderr_has("hint: ");
    assert!(
        own_templates(&t).is_empty(),
        "the template of the failed upload is deleted"
    );
    assert!(
        boxes(&t, &store)[0]
            .get("published")
            .is_none_or(|p| p.as_array().is_none_or(Vec::is_empty)),
        "nothing recorded"
    );
}

/// End to end: the test box with a marker file written into its disk is
/// published to a qemu-backed simulator, deployed from that template, and
/// the machine shows the marker: it runs the published bits.
#[test]
fn published_box_boots_on_the_qemu_backed_cloud_and_shows_its_marker() {
    support::require("qemu-img");
    support::require("debugfs");
    let cached = crate::guest::boxes_dir();
    let test_box = crate::guest::test_box(&cached);
    let work = tempfile::tempdir().unwrap();

    // A copy of the test box's disk with /etc/box-published-marker in it.
    let marker = format!("published-{}", std::process::id());
    let raw = work.path().join("root.raw");
    let run = |cmd: &mut Command| {
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{cmd:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(Command::new("qemu-img")
        .args(["convert", "-O", "raw"])
        .arg(test_box["disk"].as_str().unwrap())
        .arg(&raw));
    let marker_file = work.path().join("marker");
    std::fs::write(&marker_file, format!("{marker}\n")).unwrap();
    run(Command::new("debugfs")
        .arg("-w")
        .arg("-R")
        .arg(format!(
            "write {} /etc/box-published-marker",
            marker_file.display()
        ))
        .arg(&raw));
    let disk = work.path().join("disk.qcow2");
    run(Command::new("qemu-img")
        .args(["convert", "-O", "qcow2"])
        .arg(&raw)
        .arg(&disk));
    std::fs::remove_file(&raw).unwrap();

    let t = Test::new().with_simulator(Sim::start_qemu_backed(&[]));
    let store = store_with(&t, work.path(), &disk);
    t.run(["box", "publish", "debian-12", "--zone", "Sim-Advanced"])
        .env("BOX_BOXES_DIR", &store)
        .success();

    let p = t.project("pub", CLOUD_BOXFILE);
    p.run(["up"]).env("BOX_BOXES_DIR", &store).success();
    let out = p
        .run([
            "ssh",
            "web",
            "--",
            "cat /etc/box-published-marker /etc/os-release",
        ])
        .env("BOX_BOXES_DIR", &store)
        .success();
    out.stdout_has(&marker).stdout_has("bookworm");
    p.run(["destroy", "--force"])
        .env("BOX_BOXES_DIR", &store)
        .success();
    assert_eq!(t.census(), Census::empty());
}
