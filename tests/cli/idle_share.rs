//! Idle stop and expiry (issue 13 §4) and pairing on a teammate's machine
//! (§5), end to end: the real `box`, real QEMU guests whose watcher powers
//! them off, the simulator's `--backing qemu`, and a teammate with their
//! own BOX_HOME, key and checkout.
//!
//! The two guest tests boot one machine each and run in parallel. Their
//! waits are loops with a generous deadline as a safety net against a
//! hang, never a timed assertion.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cloud::{Census, Sim};
use crate::harness::{Output, Test};
use crate::support;

/// Longest wait for a guest to stop itself: 2 minutes idle, a 30 s timer,
/// a TCG power-off on a busy host; far above what it takes.
const STOP_DEADLINE: Duration = Duration::from_secs(20 * 60);

#[test]
fn idle_stop_and_expires_are_durations_checked_at_their_line_and_column() {
    let t = Test::new();
    let p = t.project(
        "durations",
        r#"[defaults]
idle_stop = "2 hours"

[[machine]]
name = "web"
expires = "30m1h"

[[machine]]
name = "db"
idle_stop = "90"
"#,
    );
    let out = p.run(["validate"]).code(1);
    out.stderr_has("Boxfile:2:13")
        .stderr_has("`2 hours` is not a valid `idle_stop`: a duration has no spaces")
        .stderr_has("Boxfile:6:11")
        .stderr_has("`30m1h` is not a valid `expires`")
        .stderr_has("Boxfile:10:13")
        .stderr_has("`90` is not a valid `idle_stop`: `90` needs a unit")
        .stderr_has("help: write a number and a unit");

    let p = t.project(
        "good",
        r#"[defaults]
idle_stop = "1h30m"
expires = "1d"

[[machine]]
name = "web"
idle_stop = "off"
"#,
    );
    p.run(["validate"]).success();
}

/// Polls until `done` says yes, or panics after `deadline` with `what`.
fn wait_for(what: &str, deadline: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < deadline,
            "{what}: not after {}s",
            deadline.as_secs()
        );
        std::thread::sleep(Duration::from_secs(10));
    }
}

fn status_of(json: &Value, machine: &str) -> String {
    json.as_array()
        .and_then(|rows| rows.iter().find(|r| r["name"] == machine))
        .map(|r| r["status"].as_str().unwrap_or_default().to_string())
        .unwrap_or_default()
}

#[test]
fn a_local_guest_with_idle_stop_powers_itself_off_and_box_status_shows_it_stopped() {
    let boxes = crate::guest::boxes_dir();
    let p = crate::local::Project::new(
        r#"
[project]
name = "idle"

[defaults]
memory = 512
idle_stop = "2m"
expires = "8h"

[local]
isolated = true

[[machine]]
name = "web"
"#,
        boxes,
    );
    let began = Instant::now();
    p.ok(&["up"]);
    let status = p.ok(&["status"]);
    assert!(
        status.contains("running") && status.contains("stops after 2m idle, expires in 7h"),
        "{status}"
    );
    // The watcher is installed and its timer runs (cloud-init enables it in
    // its last stage, which may end after `box up`); this session is the last.
    let out = p.sh(
        "web",
        "cloud-init status --wait >/dev/null 2>&1; systemctl is-enabled box-idle.timer; systemctl is-active box-idle.timer",
    );
    assert_eq!(out, "enabled\nactive\n");
    // A session that marks itself as `box status --refresh`'s probe does is
    // not counted, even while it spans a sample.
    let out = p.sh(
        "web",
        "touch /run/box-idle/probes/$PPID; sleep 45; cat /run/box-idle/state",
    );
    assert!(out.contains("sessions=0\n"), "{out}");

    // Plain `box status` never connects; `--refresh` reads the idle time
    // over SSH as a probe, which the watcher does not count as a session.
    let mut idle_seen = None;
    let mut ls_idle_seen = None;
    wait_for("the idle guest stopping itself", STOP_DEADLINE, || {
        // `box ls` reads the same idle time from your own running machines.
        let ls: Value = serde_json::from_str(&p.ok(&["ls", "--json"])).unwrap();
        if let Some(idle) = ls
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["machine"] == "web" && r["project"] == "idle")
            .and_then(|r| r["idle_secs"].as_u64())
        {
            ls_idle_seen = Some(idle);
        }
        let json: Value = serde_json::from_str(&p.ok(&["status", "--refresh", "--json"])).unwrap();
        let web = json
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "web")
            .unwrap()
            .clone();
        if let Some(idle) = web["idle_secs"].as_u64() {
            idle_seen = Some(idle);
        }
        web["status"] == "stopped"
    });
    assert!(
        idle_seen.is_some(),
        "box status --refresh showed no idle time"
    );
    assert!(ls_idle_seen.is_some(), "box ls showed no idle time");
    eprintln!(
        "local guest stopped itself {}s after `box up` began",
        began.elapsed().as_secs()
    );
    let console =
        std::fs::read_to_string(p.root.join(".box/machines/web/console.log")).unwrap_or_default();
    assert!(
        console.contains("box-idle: idle for")
            && console.contains("(idle_stop = 120s); powering off"),
        "the watcher says why on the console:\n{}",
        &console[console.len().saturating_sub(3000)..]
    );
    let status = p.ok(&["status"]);
    assert!(
        status.contains("stopped") && !status.contains("stops after"),
        "{status}"
    );

    // `box up` starts it again as usual, with a fresh idle period.
    p.ok(&["up"]);
    let out = p.sh("web", "cat /run/box-idle/state 2>/dev/null; echo up");
    assert!(out.ends_with("up\n"), "{out}");
    p.ok(&["destroy", "--force"]);
}

/// `box` as a teammate: their own BOX_HOME and checkout, the same cloud.
fn teammate(t: &Test, home: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = support::box_command(home)
        .envs(t.sim().env())
        .current_dir(dir)
        .args(args)
        .output()
        .expect("box runs");
    Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn tag<'a>(vm: &'a Value, key: &str) -> Option<&'a str> {
    vm["tags"]
        .as_array()?
        .iter()
        .find(|t| t["key"] == key)
        .and_then(|t| t["value"].as_str())
}

const TEAM_BOXFILE: &str = r#"
[project]
name = "pair"
provider = "cloudstack"

[defaults]
idle_stop = "2m"
expires = "8h"

[cloudstack]
zone = "Sim-Advanced"
template = "Debian 12"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
"#;

#[test]
fn a_teammate_reaches_a_shared_sim_machine_by_env_until_unshared_and_the_idle_vm_ends_stopped() {
    support::require(if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    });
    support::require("qemu-img");
    let keygen = support::require("ssh-keygen");
    let boxes = crate::guest::boxes_dir();
    let boxes_arg = boxes.to_string_lossy().into_owned();
    let accel = std::env::var("BOX_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let t = Test::new().with_simulator(Sim::start_full(
        &["--backing", "qemu", "--boxes-dir", &boxes_arg],
        None,
        &[("BOX_QEMU_ACCEL", &accel)],
    ));
    let owner = t.project("owner", TEAM_BOXFILE);
    let began = Instant::now();
    owner.run(["up"]).success();
    let env = owner.machine("web")["provider_data"]["env"]
        .as_str()
        .expect("the environment id is recorded")
        .to_string();

    // The teammate: another home, another checkout of the same Boxfile, a key.
    let mate = tempfile::tempdir().unwrap();
    let mate_home = mate.path().join("home");
    let checkout = mate.path().join("pair");
    std::fs::create_dir_all(&mate_home).unwrap();
    std::fs::create_dir_all(&checkout).unwrap();
    std::fs::write(checkout.join("Boxfile"), TEAM_BOXFILE).unwrap();
    let key = mate.path().join("alice");
    let made = std::process::Command::new(keygen)
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "alice@laptop", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(made.success());
    let key_arg = key.to_string_lossy().into_owned();
    let ssh_as_alice = [
        "ssh",
        "--env",
        &env,
        "web",
        "--identity",
        &key_arg,
        "-c",
        "echo paired as $(whoami)",
    ];

    // Not shared yet: the host key is pinned from the tag, the key refused.
    teammate(&t, &mate_home, &checkout, &ssh_as_alice)
        .assert_failed()
        .stderr_has("refused the key");

    let pubkey = format!("{key_arg}.pub");
    owner
        .run(["share", "web", "--key", &pubkey])
        .success()
        .stderr_has("shared with alice");
    assert_eq!(owner.machine("web")["shared"][0]["name"], "alice");
    let vm = &t.list("listVirtualMachines")[0];
    assert_eq!(tag(vm, "box:shared"), Some("alice"));
    assert!(
        tag(vm, "box:expires").is_some_and(|v| v.ends_with('Z')),
        "{vm}"
    );
    assert!(
        tag(vm, "box:ssh").is_some_and(|v| v.starts_with("127.")),
        "{vm}"
    );

    teammate(&t, &mate_home, &checkout, &ssh_as_alice)
        .assert_succeeded()
        .stdout_has("paired as box");
    // A wrong pin is never trusted: the teammate's box reads it from the tag only.
    assert!(!mate_home.join(".ssh/known_hosts").exists());

    owner
        .run(["unshare", "web", "alice"])
        .success()
        .stderr_has("no longer shared with alice");
    assert_eq!(tag(&t.list("listVirtualMachines")[0], "box:shared"), None);
    // The watcher's first sample may come after `box up` (cloud-init
    // enables it in its last stage): until then there is no idle time.
    wait_for(
        "box status --refresh showing the idle time",
        STOP_DEADLINE,
        || {
            let status = owner.run(["status", "--refresh"]).success();
            status.stdout.contains(" of 2m, expires in 7h")
        },
    );
    teammate(&t, &mate_home, &checkout, &ssh_as_alice)
        .assert_failed()
        .stderr_has("refused the key");

    // No session left: the guest powers off, and the simulated cloud says Stopped.
    wait_for("the idle VM ending Stopped", STOP_DEADLINE, || {
        t.list("listVirtualMachines")[0]["state"] == "Stopped"
    });
    eprintln!(
        "sim VM stopped itself {}s after `box up` began",
        began.elapsed().as_secs()
    );
    let refreshed = owner
        .run(["status", "--refresh", "--json"])
        .success()
        .json();
    assert_eq!(status_of(&refreshed, "web"), "stopped");
    teammate(&t, &mate_home, &checkout, &ssh_as_alice)
        .assert_failed()
        .stderr_has("is Stopped");

    owner.run(["destroy", "--force"]).success();
    assert_eq!(t.census(), Census::empty());
}

trait Ends {
    fn assert_failed(self) -> Self;
    fn assert_succeeded(self) -> Self;
}

impl Ends for Output {
    fn assert_failed(self) -> Self {
        assert!(!self.status.success(), "box succeeded:\n{self}");
        self
    }
    fn assert_succeeded(self) -> Self {
        assert!(
            self.status.success(),
            "box failed ({}):\n{self}",
            self.status
        );
        self
    }
}
