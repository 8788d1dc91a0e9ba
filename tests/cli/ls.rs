//! `box ls` and `box destroy --env` from folders that are not the project's:
//! the host-wide index for local state, the simulator's tags for the cloud.

use serde_json::Value;

use crate::cloud::Census;
use crate::harness::Test;

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

    let out = t.run(["ls"]).success();
    out.stdout_has("PROJECT")
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
    for r in [web, db] {
        assert_eq!(r["project"], "shop");
        assert_eq!(r["provider"], "cloudstack");
        assert_eq!(r["profile"], "default");
        assert_eq!(r["stale"], false);
        assert_eq!(r["expired"], false);
        assert!(r["age_secs"].is_u64(), "{r}");
        assert!(r["created"].is_string(), "{r}");
        assert_eq!(r["idle_secs"], Value::Null);
        assert_eq!(r["expires"], Value::Null);
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
    let mut up = crate::support::box_command(theirs.path());
    let status = up
        .current_dir(&folder)
        .envs(t.sim().env())
        .env("USER", "alice")
        .args(UP)
        .status()
        .unwrap();
    assert!(status.success());

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
    let env = all[0]["env"].as_str().unwrap().to_string();
    t.run(["ls", "--all"])
        .env("USER", "bob")
        .success()
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

    // alice destroys her own.
    let mut down = crate::support::box_command(theirs.path());
    let status = down
        .current_dir(theirs.path())
        .envs(t.sim().env())
        .env("USER", "alice")
        .args(["destroy", "--env", &env, "--force"])
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(t.census(), Census::empty());
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
