//! The CloudStack provider against `cloudstack-sim` (state only, short
//! jobs): both zone types, name errors, dependencies, idempotent `up`,
//! adoption after `.box/` is lost, SIGKILL at several points, injected
//! faults, and `destroy` leaving nothing behind. The cloud's own lists
//! (through `box api`) are the judge.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support;

use crate::cloud::{Sim, KEY, SECRET};

impl Sim {
    /// Everything a box project may leave on the cloud, as counts.
    pub fn census(&self, home: &Path) -> Census {
        let vms: Vec<Value> = self
            .list(home, "listVirtualMachines", &[])
            .into_iter()
            .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
            .collect();
        let mut names: Vec<String> = vms
            .iter()
            .map(|v| v["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        Census {
            vm_names: names,
            pf_rules: self.list(home, "listPortForwardingRules", &[]).len(),
            fw_rules: self.list(home, "listFirewallRules", &[]).len(),
            keypairs: self.list(home, "listSSHKeyPairs", &[]).len(),
            groups: self
                .list(home, "listSecurityGroups", &[])
                .iter()
                .filter(|g| g["name"] != "default")
                .count(),
            extra_ips: self
                .list(home, "listPublicIpAddresses", &[])
                .iter()
                .filter(|ip| ip["issourcenat"] != Value::Bool(true))
                .count(),
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub struct Census {
    pub vm_names: Vec<String>,
    pub pf_rules: usize,
    pub fw_rules: usize,
    pub keypairs: usize,
    pub groups: usize,
    pub extra_ips: usize,
}

impl Census {
    fn empty() -> Census {
        Census {
            vm_names: vec![],
            pf_rules: 0,
            fw_rules: 0,
            keypairs: 0,
            groups: 0,
            extra_ips: 0,
        }
    }
}

fn project(root: &Path, name: &str, boxfile: &str) -> PathBuf {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Boxfile"), boxfile).unwrap();
    dir
}

const ADVANCED: &str = r#"
[project]
name = "demo"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]
depends_on = ["db"]

[[machine]]
name = "db"
"#;

const THREE: &str = r#"
[project]
name = "trio"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
template = "Debian 12"
service_offering = "Small Instance"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
depends_on = ["app"]

[[machine]]
name = "app"
depends_on = ["db"]

[[machine]]
name = "db"
"#;

fn machine_state(dir: &Path, name: &str) -> Value {
    serde_json::from_slice(
        &std::fs::read(dir.join(".box/machines").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap()
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn advanced_zone_up_forwards_ssh_and_ports_through_the_firewall_and_destroy_removes_all() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(home, "demo", ADVANCED);
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();

    let web = machine_state(&dir, "web");
    assert_eq!(web["status"], "running");
    let ssh = &web["ssh"];
    let source_nat = sim
        .list(home, "listPublicIpAddresses", &[])
        .into_iter()
        .find(|ip| ip["issourcenat"] == true)
        .expect("the network's source NAT IP");
    assert_eq!(ssh["host"], source_nat["ipaddress"], "{ssh}");
    assert_ne!(ssh["port"], 22, "SSH goes through a forwarded public port");
    assert!(ssh["host_key"]
        .as_str()
        .unwrap()
        .starts_with("ssh-ed25519 "));
    assert_eq!(web["ports"][0]["guest"], 80);
    assert_eq!(web["ports"][0]["host"], 8080);

    let c = sim.census(home);
    assert_eq!(c.vm_names.len(), 2, "{c:?}");
    assert!(c.vm_names.iter().all(|n| n.starts_with("demo-")), "{c:?}");
    assert_eq!((c.pf_rules, c.fw_rules, c.keypairs), (3, 3, 1), "{c:?}");
    for rule in sim.list(home, "listFirewallRules", &[]) {
        assert_eq!(
            rule["cidrlist"], "127.0.0.0/8",
            "firewall limited to allow_from: {rule}"
        );
    }
    let vm = &sim.list(home, "listVirtualMachines", &[])[0];
    let tags: Vec<&str> = vm["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["key"].as_str().unwrap())
        .collect();
    for t in ["box:project", "box:machine", "box:owner", "box:env"] {
        assert!(tags.contains(&t), "{t} missing from {tags:?}");
    }

    // `status` and `ssh-config` read state only: they work with the cloud gone.
    let offline = |args: &[&str]| {
        let mut cmd = support::box_cmd(home);
        cmd.current_dir(&dir)
            .env("CLOUDSTACK_API_URL", "http://127.0.0.1:9/client/api")
            .env("CLOUDSTACK_API_KEY", KEY)
            .env("CLOUDSTACK_SECRET_KEY", SECRET)
            .args(args)
            .assert()
            .success()
    };
    offline(&["status"]);
    offline(&["ssh-config", "web"]);

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
    assert!(!dir.join(".box/machines/web.json").exists());
}

#[test]
fn up_twice_creates_nothing_new() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(home, "demo", ADVANCED);
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    let before = sim.census(home);
    let web = machine_state(&dir, "web");
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    assert_eq!(sim.census(home), before);
    assert_eq!(machine_state(&dir, "web")["ssh"], web["ssh"]);
}

#[test]
fn basic_zone_machines_are_reached_on_their_nic_through_the_project_security_group() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(
        home,
        "basic",
        r#"
[project]
name = "basic"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Basic"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]
"#,
    );
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    let web = machine_state(&dir, "web");
    assert_eq!(web["ssh"]["port"], 22);
    let vm = &sim.list(home, "listVirtualMachines", &[])[0];
    assert_eq!(web["ssh"]["host"], vm["nic"][0]["ipaddress"], "{web}");
    let groups: Vec<Value> = sim
        .list(home, "listSecurityGroups", &[])
        .into_iter()
        .filter(|g| g["name"] != "default")
        .collect();
    assert_eq!(groups.len(), 1, "{groups:?}");
    let ingress = groups[0]["ingressrule"].as_array().unwrap();
    let ports: Vec<u64> = ingress
        .iter()
        .map(|r| r["startport"].as_u64().unwrap())
        .collect();
    assert!(ports.contains(&22) && ports.contains(&80), "{ingress:?}");
    assert!(
        ingress.iter().all(|r| r["cidr"] == "127.0.0.0/8"),
        "{ingress:?}"
    );

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn unknown_names_fail_with_a_suggestion_before_anything_is_created() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(
        home,
        "typo",
        &ADVANCED.replace("zone = \"Sim-Advanced\"", "zone = \"Sim-Advanced\"\ntemplate = \"Debain 12\"\nservice_offering = \"Smal Instance\""),
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("unknown template `Debain 12`"), "{err}");
    assert!(err.contains("did you mean `Debian 12`"), "{err}");
    assert!(err.contains("`Smal Instance`"), "{err}");
    assert!(err.contains("nothing was created"), "{err}");
    assert_eq!(sim.census(home), Census::empty());

    let dir = project(
        home,
        "zone",
        &ADVANCED.replace("Sim-Advanced", "Sim-Advancd"),
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(err.contains("did you mean `Sim-Advanced`"), "{err}");
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn three_machines_come_up_in_dependency_order() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(home, "trio", THREE);
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect", "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let events: Vec<(String, String)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            (
                v["machine"].as_str().unwrap().to_string(),
                v["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at = |m: &str, e: &str| {
        events
            .iter()
            .position(|(mm, ee)| mm == m && ee == e)
            .unwrap_or_else(|| panic!("no {m} {e} in {events:?}"))
    };
    assert!(at("db", "ready") < at("app", "starting"), "{events:?}");
    assert!(at("app", "ready") < at("web", "starting"), "{events:?}");
    assert_eq!(sim.census(home).vm_names.len(), 3);
    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn up_after_losing_dot_box_adopts_the_vms_and_never_a_teammates() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    // A teammate: same project, another folder, so another environment id.
    let mate = project(&home.join("mate"), "demo", ADVANCED);
    sim.cmd(home, &mate)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    let dir = project(home, "demo", ADVANCED);
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    let before = sim.census(home);
    assert_eq!(before.vm_names.len(), 4, "{before:?}");
    let web_id = machine_state(&dir, "web")["id"].clone();

    std::fs::remove_dir_all(dir.join(".box")).unwrap();
    let out = sim
        .cmd(home, &dir)
        .args(["status", "--refresh"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(machine_state(&dir, "web")["id"], web_id, "adopted by tag");

    std::fs::remove_dir_all(dir.join(".box")).unwrap();
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();
    let after = sim.census(home);
    assert_eq!(after.vm_names, before.vm_names, "no new VM");
    assert_eq!(
        (after.pf_rules, after.fw_rules),
        (before.pf_rules, before.fw_rules)
    );
    assert_eq!(machine_state(&dir, "web")["id"], web_id);

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    let left = sim.census(home);
    assert_eq!(
        left.vm_names.len(),
        2,
        "only the teammate's VMs are left: {left:?}"
    );
    assert!(
        left.vm_names
            .iter()
            .all(|n| mate_env_names(&mate).contains(n)),
        "{left:?}"
    );
}

fn mate_env_names(mate: &Path) -> Vec<String> {
    ["web", "db"]
        .iter()
        .map(|m| {
            machine_state(mate, m)["provider_data"]["vm_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn sigkill_during_up_then_up_again_leaves_no_duplicate_and_no_orphan() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // Long enough jobs that the kills land inside deploys, rule creations
    // and waits, wherever they land exactly.
    let sim = Sim::start(&["--job-duration", "400ms"]);
    let boxfile = ADVANCED.replace("allow_from", "public_ip = \"auto\"\nallow_from");
    for (i, delay_ms) in [150u64, 500, 900, 1400, 2200].into_iter().enumerate() {
        let dir = project(home, &format!("kill{i}"), &boxfile);
        let mut child = Command::new(assert_cmd::cargo::cargo_bin("box"))
            .current_dir(&dir)
            .env("BOX_HOME", home)
            .env("NO_COLOR", "1")
            .env("CLOUDSTACK_API_URL", &sim.url)
            .env("CLOUDSTACK_API_KEY", KEY)
            .env("CLOUDSTACK_SECRET_KEY", SECRET)
            .args(["up", "--no-connect"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let out = sim
            .cmd(home, &dir)
            .args(["up", "--no-connect"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "resume after a kill at {delay_ms}ms: {}",
            stderr(&out)
        );
    }
    let c = sim.census(home);
    let mut uniq = c.vm_names.clone();
    uniq.dedup();
    assert_eq!(uniq, c.vm_names, "no duplicate VM: {c:?}");
    assert_eq!(c.vm_names.len(), 10, "{c:?}");
    assert_eq!(c.pf_rules, 15, "3 forwards per project: {c:?}");
    assert_eq!(c.fw_rules, 15, "{c:?}");
    assert_eq!(c.keypairs, 5, "{c:?}");
    assert_eq!(c.extra_ips, 5, "one acquired IP per project: {c:?}");

    for i in 0..5 {
        sim.cmd(home, &home.join(format!("kill{i}")))
            .args(["destroy", "--force"])
            .assert()
            .success();
    }
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn transient_faults_are_survived_and_destroy_still_removes_everything() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[
        "--seed",
        "7",
        "--throttle",
        "0.05",
        "--drop",
        "0.02",
        "--fail",
        "deployVirtualMachine:0.25:530",
        "--fail",
        "createPortForwardingRule:0.25:503",
        "--fail",
        "createFirewallRule:0.2:530",
        "--fail",
        "associateIpAddress:0.3:530",
        "--fail",
        "createTags:0.2:503",
    ]);
    let dir = project(
        home,
        "trio",
        &THREE.replace("allow_from", "public_ip = \"auto\"\nallow_from"),
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let c = sim.census(home);
    assert_eq!(c.vm_names.len(), 3, "{c:?}");
    assert_eq!((c.pf_rules, c.fw_rules, c.extra_ips), (3, 3, 1), "{c:?}");
    let out = sim
        .cmd(home, &dir)
        .args(["destroy", "--force"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn failed_jobs_are_reported_with_the_clouds_message_and_leave_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let state = tmp.path().join("sim-state");
    let dir = project(home, "demo", ADVANCED);
    {
        let sim = Sim::start_with_state(&["--fail-jobs", "1"], Some(&state));
        let out = sim
            .cmd(home, &dir)
            .args(["up", "--no-connect"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = stderr(&out);
        assert!(
            err.contains("Injected fault"),
            "the cloud's own message: {err}"
        );
        assert!(err.contains("deploying `db` failed"), "{err}");
    }
    // The same cloud, healthy again: what the failure left is cleaned up.
    let sim = Sim::start_with_state(&[], Some(&state));
    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn halt_and_snapshots_work_on_the_cloud() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(home, "demo", ADVANCED);
    sim.cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .assert()
        .success();
    sim.cmd(home, &dir)
        .args(["snapshot", "save", "db", "clean"])
        .assert()
        .success();
    let out = sim
        .cmd(home, &dir)
        .args(["snapshot", "list", "db"])
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("clean"),
        "{}",
        stderr(&out)
    );
    let out = sim
        .cmd(home, &dir)
        .args(["snapshot", "restore", "db", "cleam"])
        .output()
        .unwrap();
    assert!(
        stderr(&out).contains("did you mean `clean`"),
        "{}",
        stderr(&out)
    );
    sim.cmd(home, &dir)
        .args(["snapshot", "restore", "db", "clean"])
        .assert()
        .success();
    sim.cmd(home, &dir)
        .args(["snapshot", "delete", "db", "clean"])
        .assert()
        .success();

    sim.cmd(home, &dir)
        .args(["halt", "--force", "db"])
        .assert()
        .success();
    assert_eq!(machine_state(&dir, "db")["status"], "stopped");
    let vm = &sim.list(home, "listVirtualMachines", &[])[0];
    assert_eq!(vm["state"], "Stopped");
    sim.cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .assert()
        .success();
    assert_eq!(
        sim.list(home, "listVirtualMachines", &[])[0]["state"],
        "Running"
    );
    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn debug_log_shows_api_calls_without_secrets_or_user_data() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(home, "demo", ADVANCED);
    let out = sim
        .cmd(home, &dir)
        .args(["-vv", "up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = stderr(&out);
    assert!(err.contains("deployVirtualMachine"), "{err}");
    assert!(!err.contains(SECRET) && !err.contains(KEY), "{err}");
    assert!(err.contains("userdata=<"), "user data is redacted: {err}");
}

#[test]
fn unset_allow_from_warns_that_ssh_is_open_to_the_world() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(
        home,
        "open",
        &ADVANCED.replace("allow_from = [\"127.0.0.0/8\"]", ""),
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("open to the whole Internet"),
        "{}",
        stderr(&out)
    );
    for rule in sim.list(home, "listFirewallRules", &[]) {
        assert_eq!(rule["cidrlist"], "0.0.0.0/0");
    }
}

#[test]
fn static_nat_gives_a_machine_its_own_ip_and_private_machines_get_no_rules() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(
        home,
        "nat",
        r#"
[project]
name = "nat"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]
cloudstack = { static_nat = true }

[[machine]]
name = "vpn"
cloudstack = { private = true }
"#,
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let web = machine_state(&dir, "web");
    let ip = web["ssh"]["host"].as_str().unwrap().to_string();
    assert_eq!(web["ssh"]["port"], 22);
    let ips = sim.list(home, "listPublicIpAddresses", &[]);
    let own = ips
        .iter()
        .find(|i| i["ipaddress"] == ip.as_str())
        .expect("the machine's own IP");
    assert_eq!(own["isstaticnat"], true, "{own}");
    assert_eq!(own["virtualmachineid"], web["id"], "{own}");
    let c = sim.census(home);
    assert_eq!((c.pf_rules, c.fw_rules, c.extra_ips), (0, 2, 1), "{c:?}");

    let vpn = machine_state(&dir, "vpn");
    assert!(
        vpn["ssh"]["host"].as_str().unwrap().starts_with("10."),
        "the NIC address: {vpn}"
    );
    assert_eq!(vpn["ssh"]["port"], 22);

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}

#[test]
fn a_job_that_outlasts_its_timeout_is_named_and_the_next_up_resumes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&["--job-duration", "3s"]);
    let dir = project(home, "demo", ADVANCED);
    let out = sim
        .cmd(home, &dir)
        .env("BOX_CLOUDSTACK_JOB_TIMEOUT", "1")
        .args(["up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(err.contains("waiting for VM `demo-db-"), "{err}");
    assert!(err.contains("did not finish within"), "{err}");
    let db = machine_state(&dir, "db");
    assert!(
        db["provider_data"]["deploy_job"].is_string(),
        "the job is recorded: {db}"
    );

    sim.cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .assert()
        .success();
    let c = sim.census(home);
    assert_eq!(
        c.vm_names.len(),
        1,
        "the recorded job was resumed, not redone: {c:?}"
    );
    assert_eq!(machine_state(&dir, "db")["id"], db["id"]);
}

#[test]
fn optional_disk_and_details_settings_reach_the_deploy_call() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = project(
        home,
        "opts",
        r#"
[project]
name = "opts"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]
disk_offering = "Custom"
data_disk_size = 10
root_disk_size = 20
details = { rootDiskController = "scsi" }
name_pattern = "dev-{machine}-{env}"

[[machine]]
name = "db"
"#,
    );
    let out = sim
        .cmd(home, &dir)
        .args(["-vv", "up", "--no-connect"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let deploy = err
        .lines()
        .find(|l| l.contains("deployVirtualMachine"))
        .unwrap_or_else(|| panic!("no deploy call in {err}"));
    for want in [
        "diskofferingid=",
        "size=10",
        "rootdisksize=20",
        "details[0].rootDiskController=scsi",
        "name=dev-db-",
    ] {
        assert!(deploy.contains(want), "{want} missing from {deploy}");
    }
}

#[test]
fn user_data_over_the_clouds_limit_fails_before_deploying() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let big = format!(
        "#cloud-config\nbootcmd:\n  - echo {}\n",
        "x".repeat(40 * 1024)
    );
    let boxfile = format!("{ADVANCED}\n").replace(
        "name = \"db\"\n",
        &format!("name = \"db\"\nuser_data = '''\n{big}'''\n"),
    );
    let dir = project(home, "big", &boxfile);
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("over CloudStack's limit"),
        "{}",
        stderr(&out)
    );
    assert!(sim.census(home).vm_names.is_empty());
}

#[test]
fn up_after_a_destroy_without_expunge_frees_the_name_its_destroyed_vm_holds() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let boxfile = ADVANCED.replace("allow_from", "expunge = false\nallow_from");
    let dir = project(home, "keep", &boxfile);
    sim.cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .assert()
        .success();
    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    let states: Vec<Value> = sim.list(home, "listVirtualMachines", &[]);
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["state"], "Destroyed", "kept, not expunged");

    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let vms = sim.list(home, "listVirtualMachines", &[]);
    assert_eq!(vms.len(), 1, "the destroyed VM was expunged: {vms:?}");
    assert_eq!(vms[0]["state"], "Running");
}

#[test]
fn a_public_ip_given_by_address_is_used_and_an_unknown_one_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let nat = sim
        .list(home, "listPublicIpAddresses", &[])
        .into_iter()
        .find(|ip| ip["issourcenat"] == true)
        .expect("the network's source NAT IP");
    let address = nat["ipaddress"].as_str().unwrap().to_string();

    let dir = project(
        home,
        "given",
        &ADVANCED.replace(
            "allow_from",
            &format!("public_ip = \"{address}\"\nallow_from"),
        ),
    );
    sim.cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .assert()
        .success();
    assert_eq!(machine_state(&dir, "db")["ssh"]["host"], address.as_str());

    let dir = project(
        home,
        "unknown",
        &ADVANCED.replace("allow_from", "public_ip = \"192.0.2.77\"\nallow_from"),
    );
    let out = sim
        .cmd(home, &dir)
        .args(["up", "--no-connect", "db"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("192.0.2.77 is not allocated to this account"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        sim.census(home).keypairs,
        1,
        "nothing made for the failed project"
    );
}

/// End to end: real QEMU machines behind the simulated Advanced zone,
/// reached over SSH through the port-forwarding rules box made.
#[test]
fn qemu_backed_advanced_zone_up_ssh_and_destroy() {
    support::require(if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    });
    support::require("qemu-img");
    let boxes = crate::guest::boxes_dir();
    let boxes_arg = boxes.to_string_lossy().into_owned();
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    // As scripts/test does: on nested hosts /dev/kvm may open yet fail.
    let accel = std::env::var("BOX_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
    let sim = Sim::start_full(
        &["--backing", "qemu", "--boxes-dir", &boxes_arg],
        None,
        &[("BOX_QEMU_ACCEL", &accel)],
    );
    let dir = project(
        home,
        "e2e",
        r#"
[project]
name = "e2e"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
template = "Debian 12"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
depends_on = ["db"]

[[machine.provision]]
shell = "echo provisioned > /tmp/box-e2e"

[[machine]]
name = "db"
"#,
    );
    let out = sim.cmd(home, &dir).arg("up").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let web = machine_state(&dir, "web");
    let vm_name = web["provider_data"]["vm_name"]
        .as_str()
        .unwrap()
        .to_string();
    let out = sim
        .cmd(home, &dir)
        .args(["ssh", "web", "-c", "hostname; cat /tmp/box-e2e"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&vm_name),
        "hostname is the VM name {vm_name}: {text}"
    );
    assert!(text.contains("provisioned"), "{text}");

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
    assert_eq!(sim.census(home), Census::empty());
}
