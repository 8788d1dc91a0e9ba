//! The CloudStack provider against `cloudstack-sim` (state only, short
//! jobs): both zone types, name errors, dependencies, idempotent `up`,
//! adoption after `.box/` is lost, SIGKILL at several points, injected
//! faults, and `destroy` leaving nothing behind. The cloud's own lists
//! (through `box api`) are the judge.

use std::time::Duration;

use serde_json::Value;

use crate::cloud::{Census, Sim, KEY, SECRET};
use crate::harness::{Project, Test};

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

const UP: [&str; 2] = ["up", "--no-connect"];
const UP_DB: [&str; 3] = ["up", "--no-connect", "db"];
const DESTROY: [&str; 2] = ["destroy", "--force"];

#[test]
fn advanced_zone_up_forwards_ssh_and_ports_through_the_firewall_and_destroy_removes_all() {
    let t = Test::new().simulator(&[]);
    let demo = t.project("demo", ADVANCED);
    demo.run(UP).success();

    let web = demo.machine("web");
    assert_eq!(web["status"], "running");
    let ssh = &web["ssh"];
    let source_nat = t
        .list("listPublicIpAddresses")
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

    let c = t.census();
    assert_eq!(c.vm_names.len(), 2, "{c:?}");
    assert!(c.vm_names.iter().all(|n| n.starts_with("demo-")), "{c:?}");
    assert_eq!((c.pf_rules, c.fw_rules, c.keypairs), (3, 3, 1), "{c:?}");
    for rule in t.list("listFirewallRules") {
        assert_eq!(
            rule["cidrlist"], "127.0.0.0/8",
            "firewall limited to allow_from: {rule}"
        );
    }
    let vm = &t.list("listVirtualMachines")[0];
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
    let gone = "http://127.0.0.1:9/client/api";
    demo.run(["status"])
        .env("CLOUDSTACK_API_URL", gone)
        .success();
    demo.run(["ssh-config", "web"])
        .env("CLOUDSTACK_API_URL", gone)
        .success();

    demo.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
    assert!(!demo.dir().join(".box/machines/web.json").exists());
}

#[test]
fn up_twice_creates_nothing_new() {
    let t = Test::new().simulator(&[]);
    let demo = t.project("demo", ADVANCED);
    demo.run(UP).success();
    let before = t.census();
    let web = demo.machine("web");
    demo.run(UP).success();
    assert_eq!(t.census(), before);
    assert_eq!(demo.machine("web")["ssh"], web["ssh"]);
}

#[test]
fn basic_zone_machines_are_reached_on_their_nic_through_the_project_security_group() {
    let t = Test::new().simulator(&[]);
    let basic = t.project(
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
    basic.run(UP).success();
    let web = basic.machine("web");
    assert_eq!(web["ssh"]["port"], 22);
    let vm = &t.list("listVirtualMachines")[0];
    assert_eq!(web["ssh"]["host"], vm["nic"][0]["ipaddress"], "{web}");
    let groups: Vec<Value> = t
        .list("listSecurityGroups")
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

    basic.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn unknown_names_fail_with_a_suggestion_before_anything_is_created() {
    let t = Test::new().simulator(&[]);
    let typo = t.project(
        "typo",
        &ADVANCED.replace("zone = \"Sim-Advanced\"", "zone = \"Sim-Advanced\"\ntemplate = \"Debain 12\"\nservice_offering = \"Smal Instance\""),
    );
    typo.run(UP)
        .failure()
        .stderr_has("unknown template `Debain 12`")
        .stderr_has("did you mean `Debian 12`")
        .stderr_has("`Smal Instance`")
        .stderr_has("nothing was created");
    assert_eq!(t.census(), Census::empty());

    let zone = t.project("zone", &ADVANCED.replace("Sim-Advanced", "Sim-Advancd"));
    zone.run(UP)
        .output()
        .stderr_has("did you mean `Sim-Advanced`");
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn three_machines_in_a_chain_are_all_deployed_at_once() {
    let t = Test::new().simulator(&[]);
    let trio = t.project("trio", THREE);
    let out = trio.run(["up", "--no-connect", "--json"]).success();
    let events: Vec<(String, String)> = out
        .stdout
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
    // `depends_on` orders sync and provisioning, not the VMs: every deploy
    // starts before the first machine is up.
    let first_ready = ["db", "app", "web"]
        .iter()
        .map(|m| at(m, "ready"))
        .min()
        .unwrap();
    for m in ["db", "app", "web"] {
        assert!(at(m, "starting") < first_ready, "{events:?}");
    }
    assert_eq!(t.census().vm_names.len(), 3);
    trio.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn up_after_losing_dot_box_adopts_the_vms_and_never_a_teammates() {
    let t = Test::new().simulator(&[]);
    // A teammate: same project, another folder, so another environment id.
    let mate = t.project("mate/demo", ADVANCED);
    mate.run(UP).success();
    let demo = t.project("demo", ADVANCED);
    demo.run(UP).success();
    let before = t.census();
    assert_eq!(before.vm_names.len(), 4, "{before:?}");
    let web_id = demo.machine("web")["id"].clone();

    std::fs::remove_dir_all(demo.dir().join(".box")).unwrap();
    demo.run(["status", "--refresh"]).success();
    assert_eq!(demo.machine("web")["id"], web_id, "adopted by tag");

    std::fs::remove_dir_all(demo.dir().join(".box")).unwrap();
    demo.run(UP).success();
    let after = t.census();
    assert_eq!(after.vm_names, before.vm_names, "no new VM");
    assert_eq!(
        (after.pf_rules, after.fw_rules),
        (before.pf_rules, before.fw_rules)
    );
    assert_eq!(demo.machine("web")["id"], web_id);

    demo.run(DESTROY).success();
    let left = t.census();
    assert_eq!(
        left.vm_names.len(),
        2,
        "only the teammate's VMs are left: {left:?}"
    );
    assert!(
        left.vm_names.iter().all(|n| vm_names(&mate).contains(n)),
        "{left:?}"
    );
}

/// The names of the VMs of `project`'s two machines, from its state.
fn vm_names(project: &Project) -> Vec<String> {
    ["web", "db"]
        .iter()
        .map(|m| {
            project.machine(m)["provider_data"]["vm_name"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn sigkill_during_up_then_up_again_leaves_no_duplicate_and_no_orphan() {
    // Long enough jobs that the kills land inside deploys, rule creations
    // and waits, wherever they land exactly.
    let t = Test::new().simulator(&["--job-duration", "400ms"]);
    let boxfile = ADVANCED.replace("allow_from", "public_ip = \"auto\"\nallow_from");
    let mut projects = Vec::new();
    for (i, delay_ms) in [150u64, 500, 900, 1400, 2200].into_iter().enumerate() {
        let project = t.project(format!("kill{i}"), &boxfile);
        project.run(UP).kill_after(Duration::from_millis(delay_ms));
        let out = project.run(UP).output();
        assert!(
            out.status.success(),
            "resume after a kill at {delay_ms}ms: {}",
            out.stderr
        );
        projects.push(project);
    }
    let c = t.census();
    let mut uniq = c.vm_names.clone();
    uniq.dedup();
    assert_eq!(uniq, c.vm_names, "no duplicate VM: {c:?}");
    assert_eq!(c.vm_names.len(), 10, "{c:?}");
    assert_eq!(c.pf_rules, 15, "3 forwards per project: {c:?}");
    assert_eq!(c.fw_rules, 15, "{c:?}");
    assert_eq!(c.keypairs, 5, "{c:?}");
    assert_eq!(c.extra_ips, 5, "one acquired IP per project: {c:?}");

    for project in &projects {
        project.run(DESTROY).success();
    }
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn transient_faults_are_survived_and_destroy_still_removes_everything() {
    let t = Test::new().simulator(&[
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
    let trio = t.project(
        "trio",
        &THREE.replace("allow_from", "public_ip = \"auto\"\nallow_from"),
    );
    trio.run(UP).success();
    let c = t.census();
    assert_eq!(c.vm_names.len(), 3, "{c:?}");
    assert_eq!((c.pf_rules, c.fw_rules, c.extra_ips), (3, 3, 1), "{c:?}");
    trio.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn failed_jobs_are_reported_with_the_clouds_message_and_leave_nothing() {
    let t = Test::new();
    let state = t.home().join("sim-state");
    let t = t.simulator_with_state(&["--fail-jobs", "1"], &state);
    t.project("demo", ADVANCED)
        .run(UP)
        .failure()
        .stderr_has("Injected fault") // the cloud's own message
        .stderr_has("deploying `db` failed");
    // The same cloud, healthy again: what the failure left is cleaned up.
    let t = t.simulator_with_state(&[], &state);
    t.project("demo", ADVANCED).run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn halt_and_snapshots_work_on_the_cloud() {
    let t = Test::new().simulator(&[]);
    let demo = t.project("demo", ADVANCED);
    demo.run(UP_DB).success();
    demo.run(["snapshot", "save", "db", "clean"]).success();
    demo.run(["snapshot", "list", "db"])
        .output()
        .stdout_has("clean");
    demo.run(["snapshot", "restore", "db", "cleam"])
        .output()
        .stderr_has("did you mean `clean`");
    demo.run(["snapshot", "restore", "db", "clean"]).success();
    demo.run(["snapshot", "delete", "db", "clean"]).success();

    demo.run(["halt", "--force", "db"]).success();
    assert_eq!(demo.machine("db")["status"], "stopped");
    assert_eq!(t.list("listVirtualMachines")[0]["state"], "Stopped");
    demo.run(UP_DB).success();
    assert_eq!(t.list("listVirtualMachines")[0]["state"], "Running");
    demo.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn debug_log_shows_api_calls_without_secrets_or_user_data() {
    let t = Test::new().simulator(&[]);
    t.project("demo", ADVANCED)
        .run(["-vv", "up", "--no-connect", "db"])
        .success()
        .stderr_has("deployVirtualMachine")
        .stderr_lacks(SECRET)
        .stderr_lacks(KEY)
        .stderr_has("userdata=<"); // user data is redacted
}

#[test]
fn unset_allow_from_warns_that_ssh_is_open_to_the_world() {
    let t = Test::new().simulator(&[]);
    t.project(
        "open",
        &ADVANCED.replace("allow_from = [\"127.0.0.0/8\"]", ""),
    )
    .run(UP_DB)
    .success()
    .stderr_has("open to the whole Internet");
    for rule in t.list("listFirewallRules") {
        assert_eq!(rule["cidrlist"], "0.0.0.0/0");
    }
}

#[test]
fn static_nat_gives_a_machine_its_own_ip_and_private_machines_get_no_rules() {
    let t = Test::new().simulator(&[]);
    let nat = t.project(
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
    nat.run(UP).success();
    let web = nat.machine("web");
    let ip = web["ssh"]["host"].as_str().unwrap().to_string();
    assert_eq!(web["ssh"]["port"], 22);
    let ips = t.list("listPublicIpAddresses");
    let own = ips
        .iter()
        .find(|i| i["ipaddress"] == ip.as_str())
        .expect("the machine's own IP");
    assert_eq!(own["isstaticnat"], true, "{own}");
    assert_eq!(own["virtualmachineid"], web["id"], "{own}");
    let c = t.census();
    assert_eq!((c.pf_rules, c.fw_rules, c.extra_ips), (0, 2, 1), "{c:?}");

    let vpn = nat.machine("vpn");
    assert!(
        vpn["ssh"]["host"].as_str().unwrap().starts_with("10."),
        "the NIC address: {vpn}"
    );
    assert_eq!(vpn["ssh"]["port"], 22);

    nat.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn a_job_that_outlasts_its_timeout_is_named_and_the_next_up_resumes_it() {
    let t = Test::new().simulator(&["--job-duration", "3s"]);
    let demo = t.project("demo", ADVANCED);
    demo.run(UP_DB)
        .env("BOX_CLOUDSTACK_JOB_TIMEOUT", "1")
        .failure()
        .stderr_has("waiting for VM `demo-db-")
        .stderr_has("did not finish within");
    let db = demo.machine("db");
    assert!(
        db["provider_data"]["deploy_job"].is_string(),
        "the job is recorded: {db}"
    );

    demo.run(UP_DB).success();
    let c = t.census();
    assert_eq!(
        c.vm_names.len(),
        1,
        "the recorded job was resumed, not redone: {c:?}"
    );
    assert_eq!(demo.machine("db")["id"], db["id"]);
}

#[test]
fn optional_disk_and_details_settings_reach_the_deploy_call() {
    let t = Test::new().simulator(&[]);
    let opts = t.project(
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
    let out = opts.run(["-vv", "up", "--no-connect"]).success();
    let deploy = out
        .stderr
        .lines()
        .find(|l| l.contains("deployVirtualMachine"))
        .unwrap_or_else(|| panic!("no deploy call in {}", out.stderr));
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
    let t = Test::new().simulator(&[]);
    let big = format!(
        "#cloud-config\nbootcmd:\n  - echo {}\n",
        "x".repeat(40 * 1024)
    );
    let boxfile = format!("{ADVANCED}\n").replace(
        "name = \"db\"\n",
        &format!("name = \"db\"\nuser_data = '''\n{big}'''\n"),
    );
    t.project("big", &boxfile)
        .run(UP_DB)
        .failure()
        .stderr_has("over CloudStack's limit");
    assert!(t.census().vm_names.is_empty());
}

#[test]
fn up_after_a_destroy_without_expunge_frees_the_name_its_destroyed_vm_holds() {
    let t = Test::new().simulator(&[]);
    let keep = t.project(
        "keep",
        &ADVANCED.replace("allow_from", "expunge = false\nallow_from"),
    );
    keep.run(UP_DB).success();
    keep.run(DESTROY).success();
    let states = t.list("listVirtualMachines");
    assert_eq!(states.len(), 1);
    assert_eq!(states[0]["state"], "Destroyed", "kept, not expunged");

    keep.run(UP_DB).success();
    let vms = t.list("listVirtualMachines");
    assert_eq!(vms.len(), 1, "the destroyed VM was expunged: {vms:?}");
    assert_eq!(vms[0]["state"], "Running");
}

#[test]
fn a_public_ip_given_by_address_is_used_and_an_unknown_one_refused() {
    let t = Test::new().simulator(&[]);
    let nat = t
        .list("listPublicIpAddresses")
        .into_iter()
        .find(|ip| ip["issourcenat"] == true)
        .expect("the network's source NAT IP");
    let address = nat["ipaddress"].as_str().unwrap().to_string();

    let given = t.project(
        "given",
        &ADVANCED.replace(
            "allow_from",
            &format!("public_ip = \"{address}\"\nallow_from"),
        ),
    );
    given.run(UP_DB).success();
    assert_eq!(given.machine("db")["ssh"]["host"], address.as_str());

    t.project(
        "unknown",
        &ADVANCED.replace("allow_from", "public_ip = \"192.0.2.77\"\nallow_from"),
    )
    .run(UP_DB)
    .failure()
    .stderr_has("192.0.2.77 is not allocated to this account");
    assert_eq!(
        t.census().keypairs,
        1,
        "nothing made for the failed project"
    );
}

/// End to end: real QEMU machines behind the simulated Advanced zone,
/// reached over SSH through the port-forwarding rules box made.
#[test]
fn qemu_backed_advanced_zone_up_ssh_and_destroy() {
    let t = Test::new().with_simulator(Sim::start_qemu_backed(&[]));
    let e2e = t.project(
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
    e2e.run(["up"]).success();

    let web = e2e.machine("web");
    let vm_name = web["provider_data"]["vm_name"].as_str().unwrap();
    let out = e2e
        .run(["ssh", "web", "-c", "hostname; cat /tmp/box-e2e"])
        .success();
    assert!(
        out.stdout.contains(vm_name),
        "hostname is the VM name {vm_name}: {}",
        out.stdout
    );
    out.stdout_has("provisioned");

    e2e.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
}
