//! `.box/` folders written by release 1 (state schema 1) keep working:
//! `status` reads them, `up` resumes what they recorded, `destroy` removes
//! everything they name. The fixtures are real state, captured from that
//! release (see fixtures/state-v1/README.md); a change to the state's
//! types that renames or drops a field fails here.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::cloud::Sim;
use crate::support;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/fixtures/state-v1")
        .join(name)
}

/// The environment id of the folder the cloudstack fixture was made in; it
/// is part of resource names and tags (see `boxcli::project::environment_id`).
const FIXTURE_ENV: &str = "hm81hi";

/// Copies a fixture's project into `root/shop`, its `dot-box/` (git ignores
/// `.box/` folders) becoming `.box/` with the modes box gives its files.
/// The fixture's environment id becomes this folder's, as if the project
/// had been made here (the cloud's copy must get the same).
fn project(root: &Path, name: &str) -> PathBuf {
    let dir = root.join("shop");
    let env = boxcli::project::environment_id(&dir);
    copy_tree(&fixture(name).join("shop"), &dir, &env);
    fs::rename(dir.join("dot-box"), dir.join(".box")).unwrap();
    for private in ["keys/id_ed25519", "project.json"] {
        set_mode(&dir.join(".box").join(private), 0o600);
    }
    for entry in fs::read_dir(dir.join(".box/machines")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            set_mode(&path, 0o600);
        }
    }
    dir
}

fn copy_tree(from: &Path, to: &Path, env: &str) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target, env);
        } else {
            let text = fs::read_to_string(entry.path()).unwrap();
            fs::write(&target, text.replace(FIXTURE_ENV, env)).unwrap();
        }
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn stdout(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "box failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Machine name -> status, from `box status --json`.
fn statuses(json: &str) -> Vec<(String, String)> {
    let rows: Value = serde_json::from_str(json).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_string(),
                r["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn a_local_project_from_release_1_shows_its_status_and_is_destroyed() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let dir = project(tmp.path(), "local");
    let cmd = |args: &[&str]| {
        support::box_cmd(&home)
            .current_dir(&dir)
            .args(args)
            .output()
            .unwrap()
    };

    // The recorded QEMUs are long gone: box finds them dead by their pid,
    // plain `status` too (it reads this host's process table, no network).
    assert_eq!(
        stdout(&cmd(&["status"])),
        "MACHINE  PROVIDER    STATE        SSH\n\
         web      local       dead         -  ports 127.0.0.1:18080->80\n\
         db       local       dead         -\n"
    );
    assert_eq!(
        statuses(&stdout(&cmd(&["status", "--refresh", "--json"]))),
        [("web".into(), "dead".into()), ("db".into(), "dead".into())]
    );

    stdout(&cmd(&["destroy", "--force"]));
    let left: Vec<String> = fs::read_dir(dir.join(".box"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "lock" && n != ".gitignore")
        .collect();
    assert!(left.is_empty(), "destroy left {left:?} in .box/");
    assert_eq!(
        statuses(&stdout(&cmd(&["status", "--json"]))),
        [
            ("web".into(), "not-created".into()),
            ("db".into(), "not-created".into())
        ]
    );
}

#[test]
fn a_cloudstack_project_from_release_1_resumes_its_jobs_and_destroy_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    fs::create_dir_all(&home).unwrap();
    let dir = project(tmp.path(), "cloudstack");
    let env = boxcli::project::environment_id(&dir);
    let cloud = tmp.path().join("cloud");
    copy_tree(&fixture("cloudstack/cloud"), &cloud, &env);
    let sim = Sim::start_with_state(&[], Some(&cloud));
    let cmd = |args: &[&str]| sim.cmd(&home, &dir).args(args).output().unwrap();

    // `db` was being halted and `worker` deployed when box was stopped.
    assert_eq!(
        stdout(&cmd(&["status"])),
        "MACHINE  PROVIDER    STATE        SSH\n\
         web      cloudstack  running      box@127.10.0.3:2223  ports 127.10.0.3:8080->80\n\
         db       cloudstack  running      box@127.10.0.3:2222\n\
         nat      cloudstack  running      box@127.10.0.4:22\n\
         worker   cloudstack  creating     -\n"
    );
    let before = sim.census(&home);
    assert_eq!(
        before.vm_names,
        ["db", "nat", "web", "worker"].map(|m| format!("shop-{m}-{env}"))
    );

    // `up` takes the recorded VMs, IPs and rules up again: nothing doubles.
    stdout(&cmd(&["up", "--no-connect"]));
    // Only `worker`, whose deploy box stopped waiting for, gets something
    // new: the forward and firewall rule of its SSH port.
    let after = sim.census(&home);
    assert_eq!(after.vm_names, before.vm_names);
    assert_eq!(
        (
            after.pf_rules,
            after.fw_rules,
            after.keypairs,
            after.extra_ips
        ),
        (
            before.pf_rules + 1,
            before.fw_rules + 1,
            before.keypairs,
            before.extra_ips
        )
    );
    assert!(statuses(&stdout(&cmd(&["status", "--json"])))
        .iter()
        .all(|(_, s)| s == "running"));
    let worker: Value =
        serde_json::from_slice(&fs::read(dir.join(".box/machines/worker.json")).unwrap()).unwrap();
    assert_eq!(worker["id"], "d4447df3-bfd5-485b-bb71-e91dfbeedf59");

    stdout(&cmd(&["destroy", "--force"]));
    let empty = sim.census(&home);
    assert!(
        empty.vm_names.is_empty()
            && (
                empty.pf_rules,
                empty.fw_rules,
                empty.keypairs,
                empty.groups,
                empty.extra_ips
            ) == (0, 0, 0, 0, 0),
        "left on the cloud: {empty:?}"
    );
    assert!(!dir.join(".box/machines/worker.json").exists());
    assert!(!dir.join(".box/project.json").exists());
}
