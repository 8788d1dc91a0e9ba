//! `box ls` and `box destroy --env` from folders that are not the project's:
//! the host-wide index for local state, the simulator's tags for the cloud.

use serde_json::Value;

use crate::cloud::Census;
use crate::harness::Test;
use crate::local::{qemu_pids_mentioning, unsafe_kill};
use crate::{guest, support};

/// Two machines on an Advanced zone: port forwarding and firewall rules on
/// a public IP, a key pair; all of it must go on `destroy --env`.
const ADVANCED: &str = r#"
[project]
name = "shop"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]

[[machine]]
name = "db"
"#;

/// A Basic zone: a security group instead of rules.
const BASIC: &str = r#"
[project]
name = "lab"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Basic"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "box1"
"#;

const UP: [&str; 2] = ["up", "--no-connect"];

/// The rows of `box ls --json ARGS` run in the home folder (no Boxfile).
fn rows(t: &Test, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["ls", "--json"];
    all.extend_from_slice(args);
    t.run(all)
        .success()
        .json()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn env_of(rows: &[Value], machine: &str) -> String {
    rows.iter()
        .find(|r| r["machine"] == machine)
        .and_then(|r| r["env"].as_str())
        .unwrap_or_else(|| panic!("no row for {machine}: {rows:#?}"))
        .to_string()
}

#[test]
fn ls_from_an_unrelated_folder_lists_a_cloud_environment_with_its_state() {
    let t = Test::new().simulator(&[]);
    let shop = t.project("shop", ADVANCED);
    shop.run(UP).success();
    shop.run(["halt", "db"]).success();

    // An expiry in the past, as the idle-stop work tags it.
    let web_vm = t
        .list("listVirtualMachines")
        .into_iter()
        .find(|vm| {
            vm["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("shop-web-"))
        })
        .unwrap();
    tag(
        &t,
        web_vm["id"].as_str().unwrap(),
        "box:expires",
        "2020-01-01T00:00:00Z",
    );

    let out = t.run(["ls"]).success();
    out.stdout_has("2020-01-01T00:00:00Z (expired)")
        .stdout_lacks("SHARED")
        .stdout_has("PROJECT")
        .stdout_has("EXPIRES")
        .stdout_has("shop")
        .stdout_has("running")
        .stdout_has("stopped");

    let rows = rows(&t, &[]);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let web = rows.iter().find(|r| r["machine"] == "web").unwrap();
    let db = rows.iter().find(|r| r["machine"] == "db").unwrap();
    assert_eq!(web["state"], "running");
    assert_eq!(db["state"], "stopped");
    assert_eq!(web["expires"], "2020-01-01T00:00:00Z");
    assert_eq!(web["expired"], true);
    assert_eq!(db["expires"], Value::Null);
    assert_eq!(db["expired"], false);
    for r in [web, db] {
        assert_eq!(r["project"], "shop");
        assert_eq!(r["shared_with"], serde_json::json!([]));
        assert_eq!(r["provider"], "cloudstack");
        assert_eq!(r["profile"], "default");
        assert_eq!(r["stale"], false);
        assert!(r["age_secs"].is_u64(), "{r}");
        assert!(r["created"].is_string(), "{r}");
        assert_eq!(r["idle_secs"], Value::Null);
        assert_eq!(r["cloudstack_project"], Value::Null);
        // The index knows where the project lives.
        assert_eq!(
            r["folder"].as_str().map(std::path::PathBuf::from),
            Some(shop.dir().to_path_buf())
        );
        assert_eq!(r["env"].as_str().map(str::len), Some(6));
        assert!(r["owner"].is_string());
    }
    // The same id names the environment in `box:env`.
    let env = env_of(&rows, "web");
    let vms = t.list("listVirtualMachines");
    assert!(vms.iter().all(|vm| vm["tags"]
        .as_array()
        .unwrap()
        .iter()
        .any(|tag| tag["key"] == "box:env" && tag["value"] == env.as_str())));

    shop.run(["destroy", "--force"]).success();
    assert!(rows_now(&t).is_empty());
}

/// Tags a VM with `box api`, as another box feature would.
fn tag(t: &Test, vm: &str, key: &str, value: &str) {
    t.run([
        "api",
        "createTags",
        &format!("resourceids={vm}"),
        "resourcetype=UserVm",
        &format!("tags[0].key={key}"),
        &format!("tags[0].value={value}"),
    ])
    .success();
}

fn rows_now(t: &Test) -> Vec<Value> {
    rows(t, &[])
}

#[test]
fn destroy_env_removes_a_forgotten_cloud_environment_with_nothing_left() {
    let t = Test::new().simulator(&[]);
    let shop = t.project("shop", ADVANCED);
    shop.run(UP).success();
    let lab = t.project("lab", BASIC);
    lab.run(UP).success();
    let env = env_of(&rows_now(&t), "web");

    // Forgotten: the project folder is deleted with its state.
    std::fs::remove_dir_all(shop.dir()).unwrap();
    let stale = rows_now(&t);
    let web = stale.iter().find(|r| r["machine"] == "web").unwrap();
    assert_eq!(web["stale"], true, "{web}");
    assert_eq!(
        web["state"], "running",
        "the cloud's state, not the index's"
    );

    t.run(["destroy", "--env", &env])
        .failure()
        .stderr_has("--force");
    // What is not an environment id never reaches the cloud.
    for bad in ["", "a b", "../x", "Q81MZT"] {
        t.run(["destroy", "--env", bad, "--force"])
            .failure()
            .stderr_has("is not an environment id")
            .stderr_has("box ls --all");
    }
    assert_eq!(t.census().keypairs, 2);
    t.run(["destroy", "--env", &env, "--force"])
        .success()
        .stderr_has("destroyed environment");

    let left = rows_now(&t);
    assert!(left.iter().all(|r| r["env"] != env.as_str()), "{left:#?}");
    assert!(left.iter().any(|r| r["project"] == "lab"));
    // Only the other project's VM is left.
    let census = t.census();
    assert_eq!(census.vm_names.len(), 1, "{census:?}");
    assert_eq!(
        (census.pf_rules, census.fw_rules, census.extra_ips),
        (0, 0, 0),
        "{census:?}"
    );
    assert_eq!(census.keypairs, 1, "only lab's key pair: {census:?}");

    // The Basic zone one, whose folder still exists, through its state.
    let lab_env = env_of(&left, "box1");
    t.run(["destroy", "--env", &lab_env, "--force"]).success();
    assert_eq!(t.census(), Census::empty());
    assert!(rows_now(&t).is_empty());
    t.run(["destroy", "--env", &lab_env, "--force"])
        .failure()
        .stderr_has("no environment")
        .stderr_has("box ls --all");
}

#[test]
fn a_teammates_environment_is_listed_with_all_and_needs_others_to_destroy() {
    let t = Test::new().simulator(&[]);
    // The teammate: another user with their own box home and folder.
    let theirs = tempfile::tempdir().unwrap();
    let folder = theirs.path().join("shop");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("Boxfile"), BASIC).unwrap();
    let up = crate::support::box_command(theirs.path())
        .current_dir(&folder)
        .envs(t.sim().env())
        .env("USER", "alice")
        .args(UP)
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");

    // What `box share` leaves on the VM for teammates to see.
    let vm = t.list("listVirtualMachines")[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    tag(&t, &vm, "box:shared", "bob,carol");
    let me = t.run(["ls", "--json"]).env("USER", "bob").success().json();
    assert_eq!(me, Value::Array(vec![]), "only my environments by default");
    let all = t
        .run(["ls", "--json", "--all"])
        .env("USER", "bob")
        .success()
        .json();
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["owner"], "alice");
    assert_eq!(all[0]["folder"], Value::Null);
    assert_eq!(all[0]["shared_with"], serde_json::json!(["bob", "carol"]));
    let env = all[0]["env"].as_str().unwrap().to_string();
    t.run(["ls", "--all"])
        .env("USER", "bob")
        .success()
        .stdout_has("SHARED")
        .stdout_has("bob,carol")
        .stdout_has("alice");

    t.run(["destroy", "--env", &env, "--force"])
        .env("USER", "bob")
        .failure()
        .stderr_has("belongs to alice")
        .stderr_has("--others");
    // No terminal: refused even with --others --force.
    t.run(["destroy", "--env", &env, "--force", "--others"])
        .env("USER", "bob")
        .failure()
        .stderr_has("terminal");
    assert_eq!(t.census().vm_names.len(), 1);

    // On a terminal, only `yes` typed there destroys it.
    let no = on_a_terminal(
        &t,
        &["destroy", "--env", &env, "--others", "--force"],
        "y\n",
    );
    assert!(!no.status.success(), "{no:?}");
    assert!(String::from_utf8_lossy(&no.stdout).contains("belongs to alice"));
    assert_eq!(t.census().vm_names.len(), 1);
    let yes = on_a_terminal(&t, &["destroy", "--env", &env, "--others"], "yes\n");
    assert!(yes.status.success(), "{yes:?}");
    assert_eq!(t.census(), Census::empty());
}

/// `box ARGS` as bob, with a terminal (util-linux `script`) fed `input`;
/// the terminal's output, prompts included, is on stdout.
fn on_a_terminal(t: &Test, args: &[&str], input: &str) -> std::process::Output {
    use std::io::Write;
    let script = support::require("script");
    let line = std::iter::once(assert_cmd::cargo::cargo_bin("box").display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .collect::<Vec<_>>()
        .join(" ");
    let mut child = std::process::Command::new(script)
        .args(["-qec", &line, "/dev/null"])
        .env("BOX_HOME", t.home())
        .env("NO_COLOR", "1")
        .env("USER", "bob")
        .env_remove("BOX_PROFILE")
        .envs(t.sim().env())
        .current_dir(t.home())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn ls_prune_forgets_a_deleted_project_folder() {
    let t = Test::new().simulator(&[]);
    let lab = t.project("lab", BASIC);
    lab.run(UP).success();
    let index = t.home().join("data/environments.json");
    let folder = lab.dir().display().to_string();
    assert!(std::fs::read_to_string(&index).unwrap().contains(&folder));
    let env = env_of(&rows_now(&t), "box1");

    // A corrupt state file is not a deleted folder: warned about, kept.
    let state = lab.dir().join(".box/machines/box1.json");
    let good = std::fs::read(&state).unwrap();
    std::fs::write(&state, b"{not json").unwrap();
    t.run(["ls"])
        .success()
        .stderr_has("cannot be read")
        .stdout_lacks("(gone)");
    t.run(["ls", "--prune"])
        .success()
        .stderr_has("no stale environment");
    std::fs::write(&state, good).unwrap();

    // The state is deleted; the VM lives on in the cloud.
    std::fs::remove_dir_all(lab.dir()).unwrap();
    let stale = rows_now(&t);
    assert_eq!(stale.len(), 1, "{stale:#?}");
    assert_eq!(stale[0]["stale"], true, "{stale:#?}");
    assert_eq!(stale[0]["folder"], folder.as_str());
    t.run(["ls"])
        .success()
        .stdout_has(&format!("{folder} (gone)"));

    t.run(["ls", "--prune"])
        .success()
        .stderr_has(&format!("forgot {folder}"));
    let after = rows_now(&t);
    assert_eq!(after.len(), 1, "the cloud VM is still listed: {after:#?}");
    assert_eq!(after[0]["folder"], Value::Null);
    assert_eq!(after[0]["stale"], false);
    assert!(!std::fs::read_to_string(&index).unwrap().contains(&folder));
    t.run(["ls", "--prune"])
        .success()
        .stderr_has("no stale environment");

    t.run(["destroy", "--env", &env, "--force"]).success();
    assert_eq!(t.census(), Census::empty());
}

/// One local machine (QEMU, TCG, isolated).
const LOCAL: &str = r#"
[project]
name = "dev"

[[machine]]
name = "m"
box = "debian-12"
cpus = 1
memory = 512
expires = "8h"
"#;

/// Kills the QEMU processes of a folder when dropped, so a failed test
/// leaks no guest.
struct Guests(std::path::PathBuf);

impl Guests {
    fn pids(&self) -> Vec<u32> {
        qemu_pids_mentioning(&self.0.to_string_lossy())
    }
}

impl Drop for Guests {
    fn drop(&mut self) {
        for pid in self.pids() {
            unsafe_kill(pid);
        }
    }
}

#[test]
fn ls_from_anywhere_shows_a_running_local_machine_beside_a_cloud_one() {
    support::require("qemu-system-x86_64");
    support::require("qemu-img");
    let t = Test::new()
        .simulator(&[])
        .env("BOX_BOXES_DIR", guest::boxes_dir())
        // /dev/kvm may open here while guests hang under it.
        .env("BOX_QEMU_ACCEL", "tcg")
        .env("BOX_ISOLATED", "1");
    let dev = t.project("dev", LOCAL);
    let guests = Guests(dev.dir().to_path_buf());
    // Returns once the guest has started to boot: one boot, no SSH wait.
    dev.run(UP).success();
    let lab = t.project("lab", BASIC);
    lab.run(UP).success();

    let out = t.run(["ls"]).success();
    out.stdout_has("dev").stdout_has("lab").stdout_has("local");
    let rows = rows_now(&t);
    assert_eq!(rows.len(), 2, "{rows:#?}");
    let m = rows.iter().find(|r| r["machine"] == "m").unwrap();
    assert_eq!(m["provider"], "local");
    assert_eq!(m["state"], "running");
    assert_eq!(m["project"], "dev");
    assert_eq!(m["folder"].as_str(), Some(dev.dir().to_str().unwrap()));
    assert_eq!(m["profile"], Value::Null);
    // Its expiry as recorded at the start: about 8 hours ahead.
    let expires = m["expires"].as_str().expect("an expiry");
    assert!(expires.ends_with('Z'), "{expires}");
    assert_eq!(m["expired"], false);
    let box1 = rows.iter().find(|r| r["machine"] == "box1").unwrap();
    assert_eq!(box1["provider"], "cloudstack");
    assert_eq!(box1["state"], "running");

    // The guest dies behind box's back: `ls` reads it from /proc, as
    // `status --refresh` does, with no QEMU query.
    let pids = guests.pids();
    assert_eq!(pids.len(), 1, "{pids:?}");
    unsafe_kill(pids[0]);
    while !guests.pids().is_empty() {
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let m = rows_now(&t)
        .into_iter()
        .find(|r| r["machine"] == "m")
        .unwrap();
    assert_eq!(m["state"], "dead");

    // Destroyed by id from the home folder, through the project's state.
    let env = m["env"].as_str().unwrap().to_string();
    t.run(["destroy", "--env", &env, "--force"])
        .success()
        .stderr_has(&format!("environment {env} is the project in"));
    assert!(!dev.dir().join(".box/machines/m.json").exists());
    let left = rows_now(&t);
    assert_eq!(left.len(), 1, "{left:#?}");
    assert_eq!(left[0]["machine"], "box1");
    let cloud_env = left[0]["env"].as_str().unwrap().to_string();
    t.run(["destroy", "--env", &cloud_env, "--force"]).success();
    assert_eq!(t.census(), Census::empty());
    assert!(rows_now(&t).is_empty());
}

#[test]
fn ls_and_destroy_env_find_environments_in_cloudstack_projects() {
    let t = Test::new().simulator(&["--project", "team"]);
    let lab = t.project(
        "lab",
        &BASIC.replace("allow_from", "project = \"team\"\nallow_from"),
    );
    lab.run(UP).success();
    let rows = rows_now(&t);
    assert_eq!(rows.len(), 1, "{rows:#?}");
    assert_eq!(rows[0]["cloudstack_project"], "team");
    assert_eq!(rows[0]["state"], "running");
    t.run(["ls"]).success().stdout_has("[project team]");

    // Forgotten, then destroyed by its tags inside the project.
    let env = env_of(&rows, "box1");
    std::fs::remove_dir_all(lab.dir()).unwrap();
    t.run(["destroy", "--env", &env, "--force"]).success();
    let in_projects = |command: &str| t.sim().list(t.home(), command, &["projectid=-1"]);
    let vms: Vec<Value> = in_projects("listVirtualMachines")
        .into_iter()
        .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
        .collect();
    assert!(vms.is_empty(), "{vms:#?}");
    assert!(in_projects("listSSHKeyPairs").is_empty());
    let groups: Vec<Value> = in_projects("listSecurityGroups")
        .into_iter()
        .filter(|g| g["name"] != "default")
        .collect();
    assert!(groups.is_empty(), "{groups:#?}");
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn ls_looks_in_every_configured_profile_and_still_lists_when_one_is_down() {
    use crate::cloud::{Sim, KEY, SECRET};
    let one = Sim::start(&[]);
    let two = Sim::start(&[]);
    let t = Test::new();
    let profile = |name: &str, url: &str| {
        format!("[profiles.{name}]\nendpoint = \"{url}\"\napi_key = \"{KEY}\"\nsecret_key = \"{SECRET}\"\n\n")
    };
    let config = t.home().join("config.toml");
    std::fs::write(
        &config,
        profile("one", &one.url)
            + &profile("two", &two.url)
            // The same account again under another name: listed once.
            + &profile("again", &one.url),
    )
    .unwrap();
    let a = t.project("a", BASIC);
    a.run(UP).env("BOX_PROFILE", "one").success();
    let b = t.project("b", &BASIC.replace("\"lab\"", "\"lab2\""));
    b.run(UP).env("BOX_PROFILE", "two").success();

    let rows = rows_now(&t);
    let mut seen: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["project"].as_str().unwrap().to_string(),
                r["profile"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("lab".to_string(), "again".to_string()),
            ("lab2".to_string(), "two".to_string())
        ],
        "{rows:#?}"
    );

    // A cloud that does not answer: warned about, the others listed, exit 3.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&profile("down", "http://127.0.0.1:1/client/api"));
    std::fs::write(&config, text).unwrap();
    let out = t.run(["ls", "--json"]).code(3);
    out.stderr_has("profile `down`");
    assert_eq!(out.json().as_array().unwrap().len(), 2, "{out}");

    // `destroy --env` searches the clouds that answer, and says which did not.
    t.run(["destroy", "--env", "zzzzzz", "--force"])
        .failure()
        .stderr_has("could not be searched")
        .stderr_has("profile `down`");
    let a_env = rows
        .iter()
        .find(|r| r["project"] == "lab")
        .and_then(|r| r["env"].as_str())
        .unwrap()
        .to_string();
    std::fs::remove_dir_all(a.dir()).unwrap();
    t.run(["destroy", "--env", &a_env, "--force"])
        .success()
        .stderr_has("not searched for environment")
        .stderr_has("profile `down`");
    assert_eq!(one.census(t.home()), Census::empty());
    b.run(["destroy", "--force"])
        .env("BOX_PROFILE", "two")
        .success();
    assert_eq!(two.census(t.home()), Census::empty());
}

/// The first object under `key` anywhere in a `box api` answer.
fn object(v: &Value, key: &str) -> Value {
    fn find(v: &Value, key: &str) -> Option<Value> {
        match v {
            Value::Object(o) => o
                .get(key)
                .cloned()
                .or_else(|| o.values().find_map(|v| find(v, key))),
            _ => None,
        }
    }
    find(v, key).unwrap_or_else(|| panic!("no `{key}` in {v}"))
}

#[test]
fn destroy_env_removes_a_forgotten_environment_of_a_vpc_tier_with_its_acl_rules() {
    let t = Test::new().simulator(&[]);
    let api = |command: &str, params: &[&str]| {
        let mut args = vec!["api", command];
        args.extend_from_slice(params);
        t.run(args).success().json()
    };
    let id_of = |v: &Value| v["id"].as_str().unwrap().to_string();
    let zone = t
        .list("listZones")
        .into_iter()
        .find(|z| z["name"] == "Sim-Advanced")
        .unwrap();
    let offering = id_of(&t.list("listVPCOfferings")[0]);
    let vpc = id_of(&object(
        &api(
            "createVPC",
            &[
                "name=v",
                &format!("zoneid={}", id_of(&zone)),
                "cidr=10.1.0.0/16",
                &format!("vpcofferingid={offering}"),
            ],
        ),
        "vpc",
    ));
    let acl = id_of(&object(
        &api(
            "createNetworkACLList",
            &["name=v-acl", &format!("vpcid={vpc}")],
        ),
        "networkacllist",
    ));
    let tier_offering = id_of(
        &t.sim()
            .list(t.home(), "listNetworkOfferings", &["forvpc=true"])[0],
    );
    api(
        "createNetwork",
        &[
            "name=v-tier",
            "displaytext=v-tier",
            &format!("zoneid={}", id_of(&zone)),
            &format!("vpcid={vpc}"),
            &format!("networkofferingid={tier_offering}"),
            "gateway=10.1.1.1",
            "netmask=255.255.255.0",
            &format!("aclid={acl}"),
        ],
    );
    let shop = t.project(
        "shop",
        &ADVANCED.replace("allow_from", "network = \"v-tier\"\nallow_from"),
    );
    shop.run(UP).success();
    let rules = |t: &Test| {
        t.sim()
            .list(t.home(), "listNetworkACLs", &[&format!("aclid={acl}")])
    };
    assert!(!rules(&t).is_empty(), "box opened the tier's list");
    let env = env_of(&rows_now(&t), "web");

    std::fs::remove_dir_all(shop.dir()).unwrap();
    t.run(["destroy", "--env", &env, "--force"]).success();
    assert_eq!(rules(&t), Vec::<Value>::new());
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn ls_with_a_broken_configuration_says_so_and_lists_what_it_can() {
    let t = Test::new();
    std::fs::write(t.home().join("config.toml"), "not toml [[").unwrap();
    t.run(["ls"])
        .success()
        .stderr_has("config.toml is not valid")
        .stderr_has("its profiles are not searched");
    t.run(["ls", "--json"]).success().stdout_is("[]\n");
}
