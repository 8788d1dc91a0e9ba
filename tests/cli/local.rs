//! The local QEMU provider end to end: the real `box` on real guests
//! (TCG, isolated), from `box up` to `box destroy`, and its failure modes.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::{guest, support};

/// The issue's 2-machine project: `web` syncs the project folder and runs
/// a `once` and an `always` provisioner; `db` comes up first.
const TWO_MACHINES: &str = r#"
[project]
name = "shop"

[defaults]
box = "debian-12"
cpus = 1
memory = 512
user = "box"
accel = "auto"

[local]
isolated = true

[[machine]]
name = "web"
primary = true
depends_on = ["db"]
sync = [{ from = ".", to = "/srv/app", exclude = [".box/"] }]

[[machine.provision]]
name = "once"
shell = "echo ran >> /var/tmp/once-count"
run = "once"

[[machine.provision]]
name = "always"
shell = "echo ran >> /var/tmp/always-count"
run = "always"

[[machine]]
name = "db"
"#;

/// A project folder with its own `BOX_HOME`; kills any QEMU it leaves
/// behind, so a failed test never leaks guests.
pub(crate) struct Project {
    _tmp: tempfile::TempDir,
    pub(crate) root: PathBuf,
    home: PathBuf,
    boxes: PathBuf,
}

impl Project {
    pub(crate) fn new(boxfile: &str, boxes: PathBuf) -> Project {
        support::require("qemu-system-x86_64");
        support::require("qemu-img");
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("shop");
        let home = tmp.path().join("home");
        fs::create_dir_all(&root).unwrap();
        fs::create_dir_all(&home).unwrap();
        fs::write(root.join("Boxfile"), boxfile).unwrap();
        Project {
            _tmp: tmp,
            root,
            home,
            boxes,
        }
    }

    pub(crate) fn cmd(&self) -> assert_cmd::Command {
        let mut c = support::box_cmd(&self.home);
        c.current_dir(&self.root)
            .env("BOX_BOXES_DIR", &self.boxes)
            // /dev/kvm may open here while guests hang under it.
            .env("BOX_QEMU_ACCEL", "tcg")
            .env("BOX_ISOLATED", "1")
            .timeout(std::time::Duration::from_secs(1800));
        c
    }

    pub(crate) fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().unwrap()
    }

    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`box {}` failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a shell command on a machine with `box ssh`.
    pub(crate) fn sh(&self, machine: &str, script: &str) -> String {
        self.ok(&["ssh", machine, "-c", script])
    }

    pub(crate) fn state(&self, machine: &str) -> serde_json::Value {
        let path = self.root.join(format!(".box/machines/{machine}.json"));
        serde_json::from_slice(&fs::read(&path).unwrap()).unwrap()
    }

    /// QEMU processes (machines and hub) that belong to this project.
    pub(crate) fn qemu_pids(&self) -> Vec<u32> {
        qemu_pids_mentioning(&self.root.to_string_lossy())
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for pid in self.qemu_pids() {
            unsafe_kill(pid);
        }
    }
}

pub(crate) fn qemu_pids_mentioning(needle: &str) -> Vec<u32> {
    pids_mentioning(&["qemu-system", needle])
}

/// Processes whose command line contains every one of `needles`.
pub(crate) fn pids_mentioning(needles: &[&str]) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let text = String::from_utf8_lossy(&cmdline);
        if needles.iter().all(|n| text.contains(n)) {
            pids.push(pid);
        }
    }
    pids
}

pub(crate) fn unsafe_kill(pid: u32) {
    let _ = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status();
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

#[test]
fn two_local_machines_up_reach_each_other_halt_restart_snapshot_and_destroy() {
    let p = Project::new(TWO_MACHINES, guest::boxes_dir());
    fs::write(p.root.join("README.md"), "hello from the host\n").unwrap();

    let up = p.run(&["up"]);
    assert!(
        up.status.success(),
        "box up failed:\n{}\nweb console:\n{}",
        String::from_utf8_lossy(&up.stderr),
        fs::read_to_string(p.root.join(".box/machines/web/console.log")).unwrap_or_default()
    );

    // The synced folder, the provisioners, and the pinned host key.
    assert_eq!(
        p.ok(&["ssh", "web", "--", "cat", "/srv/app/README.md"]),
        "hello from the host\n"
    );
    assert_eq!(p.sh("web", "wc -l < /var/tmp/once-count").trim(), "1");
    let web = p.state("web");
    assert_eq!(web["status"], "running");
    assert_eq!(web["ssh"]["host"], "127.0.0.1");
    let host_key = web["ssh"]["host_key"].as_str().unwrap().to_string();
    // cloud-init writes the key files it is given 0600.
    let guest_key = p.sh("web", "sudo cat /etc/ssh/ssh_host_ed25519_key.pub");
    assert_eq!(
        guest_key.split_whitespace().nth(1),
        host_key.split_whitespace().nth(1),
        "the guest's host key is the one box generated and pinned"
    );
    // The login user has passwordless sudo.
    assert_eq!(p.sh("web", "sudo -n id -u").trim(), "0");

    // The private network: each machine reaches the other by name.
    let db_addr = p.sh("web", "getent hosts db | cut -d' ' -f1");
    assert_eq!(db_addr.trim(), "10.76.0.11");
    p.sh("web", "timeout 20 bash -c '</dev/tcp/db/22'");
    p.sh("db", "timeout 20 bash -c '</dev/tcp/web/22'");
    // Isolated: nothing outside the host is reachable (QEMU restrict=on).
    let out = p.run(&[
        "ssh",
        "web",
        "-c",
        "timeout 10 bash -c '</dev/tcp/10.0.2.2/22'",
    ]);
    assert!(
        !out.status.success(),
        "an isolated guest reached the host gateway"
    );

    // `box logs` shows the serial console.
    let logs = p.ok(&["logs", "db"]);
    assert!(logs.contains("Linux version"), "{logs}");

    // Halt: both QEMUs and the hub are gone; state says stopped.
    p.ok(&["halt"]);
    assert!(p.qemu_pids().is_empty(), "QEMU left after halt");
    assert_eq!(p.state("web")["status"], "stopped");

    // Up again: the same overlay and identity; `once` does not run again.
    p.ok(&["up"]);
    assert_eq!(p.sh("web", "wc -l < /var/tmp/once-count").trim(), "1");
    assert_eq!(p.sh("web", "wc -l < /var/tmp/always-count").trim(), "2");
    assert_eq!(p.state("web")["ssh"]["host_key"], host_key.as_str());
    assert_eq!(
        p.sh("web", "getent hosts db | cut -d' ' -f1").trim(),
        "10.76.0.11"
    );

    // Snapshots of a running machine.
    p.ok(&["snapshot", "save", "web", "before"]);
    p.sh("web", "touch /home/box/after-snapshot && sync");
    p.ok(&["snapshot", "restore", "web", "before"]);
    p.sh("web", "test ! -e /home/box/after-snapshot");
    let list = p.ok(&["snapshot", "list", "web"]);
    assert!(list.starts_with("before\t"), "{list}");
    p.ok(&["snapshot", "delete", "web", "before"]);
    assert_eq!(p.ok(&["snapshot", "list", "web"]), "");

    // Destroy: no machine files, no sockets, no QEMU left.
    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty(), "QEMU left after destroy");
    assert_eq!(
        files_under(&p.root.join(".box/machines")),
        Vec::<String>::new()
    );
    assert!(!p.root.join(".box/run").exists());
}

/// A tiny blank disk as a box: QEMU starts but no guest ever boots.
fn blank_box_store() -> tempfile::TempDir {
    let store = tempfile::tempdir().unwrap();
    let img = store.path().join("blank.qcow2");
    let ok = std::process::Command::new("qemu-img")
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&img)
        .arg("64M")
        .status()
        .unwrap();
    assert!(ok.success());
    let home = tempfile::tempdir().unwrap();
    let out = support::box_cmd(home.path())
        .env("BOX_BOXES_DIR", store.path())
        .args(["box", "add"])
        .arg(&img)
        .args(["--name", "blank"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store
}

#[test]
fn a_guest_silent_on_its_console_is_reported_as_never_booting_and_stopped() {
    let store = blank_box_store();
    let p = Project::new(
        "[project]\nname = \"mute\"\n\n[[machine]]\nname = \"m\"\nbox = \"blank\"\n",
        store.path().to_path_buf(),
    );
    let out = p
        .cmd()
        .env("BOX_BOOT_STAGE_TIMEOUT", "5")
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("never reached its boot stage"), "{stderr}");
    assert!(stderr.contains("hint: see `box logs m`"), "{stderr}");
    assert!(p.qemu_pids().is_empty(), "the hung QEMU was left running");
    // Nothing to clean but files: destroy leaves no machine folder.
    p.ok(&["destroy", "--force"]);
    assert!(!p.root.join(".box/machines/m").exists());
}

#[test]
fn up_without_qemu_installed_names_the_package_to_install() {
    let store = tempfile::tempdir().unwrap();
    let p = Project::new(
        "[project]\nname = \"noqemu\"\n\n[[machine]]\nname = \"m\"\n",
        store.path().to_path_buf(),
    );
    let empty = tempfile::tempdir().unwrap();
    p.cmd()
        .env("PATH", empty.path())
        .args(["up", "--no-connect"])
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "hint: apt-get install qemu-system-x86",
        ));
    assert!(!p.root.join(".box/machines/m").exists());
}

#[test]
fn logs_of_a_machine_never_started_says_how_to_start_it() {
    let store = tempfile::tempdir().unwrap();
    let p = Project::new(
        "[project]\nname = \"quiet\"\n\n[[machine]]\nname = \"m\"\n",
        store.path().to_path_buf(),
    );
    p.cmd()
        .args(["logs"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("hint: run `box up m`"));
}

#[test]
fn a_machine_whose_qemu_died_is_reported_dead_not_running() {
    let p = Project::new(
        "[project]\nname = \"dies\"\n\n[[machine]]\nname = \"m\"\nbox = \"debian-12\"\n",
        guest::boxes_dir(),
    );
    // --no-connect returns once the guest has started to boot.
    p.ok(&["up", "--no-connect"]);
    let pid = p.state("m")["provider_data"]["pid"].as_u64().unwrap() as u32;
    assert_eq!(p.qemu_pids(), vec![pid]);
    unsafe_kill(pid);
    while p.qemu_pids().contains(&pid) {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let status = p.ok(&["status", "--refresh"]);
    assert!(status.contains("dead"), "{status}");
    // `up` brings a dead machine back from its disk.
    p.ok(&["up", "--no-connect"]);
    assert_eq!(p.qemu_pids().len(), 1);
    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty());
}

#[test]
fn logs_prints_the_machine_console_as_recorded() {
    let store = tempfile::tempdir().unwrap();
    let p = Project::new(
        "[project]\nname = \"quiet\"\n\n[[machine]]\nname = \"m\"\n\n[[machine]]\nname = \"n\"\n",
        store.path().to_path_buf(),
    );
    let dir = p.root.join(".box/machines/n");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("console.log"),
        "[    0.000000] Linux version 6.1\nn login: ",
    )
    .unwrap();
    p.cmd()
        .args(["logs", "n"])
        .assert()
        .success()
        .stdout("[    0.000000] Linux version 6.1\nn login: ");
}

/// The `authorized_keys` box put in a machine's cloud-init seed.
fn seed_login_key(seed: &Path) -> String {
    use std::io::Read;
    let fs =
        fatfs::FileSystem::new(fs::File::open(seed).unwrap(), fatfs::FsOptions::new()).unwrap();
    let mut text = String::new();
    fs.root_dir()
        .open_file("user-data")
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let cfg: serde_json::Value =
        serde_json::from_str(text.strip_prefix("#cloud-config\n").unwrap()).unwrap();
    cfg["users"][0]["ssh_authorized_keys"][0]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn machines_created_in_parallel_all_trust_the_one_project_key() {
    let p = Project::new(
        "[project]\nname = \"para\"\n\n[defaults]\nbox = \"debian-12\"\n\n\
         [[machine]]\nname = \"a\"\n\n[[machine]]\nname = \"b\"\n\n[[machine]]\nname = \"c\"\n",
        guest::boxes_dir(),
    );
    p.ok(&["up", "--no-connect"]);
    let key = fs::read_to_string(p.root.join(".box/keys/id_ed25519.pub")).unwrap();
    for m in ["a", "b", "c"] {
        let seed = p.root.join(format!(".box/machines/{m}/seed.img"));
        assert_eq!(seed_login_key(&seed), key.trim(), "machine {m}");
    }
    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty());
}
