//! `cloudstack-sim`'s domains, accounts and projects, through the real
//! binary and box's own client: the layout flags shape a fresh cloud (and a
//! state folder keeps it), project objects stay in their project, and an
//! account that is in no project sees none.

use std::process::Command;

use cloudstack::Error;
use serde_json::Value;

use crate::cloud::{Sim, KEY, SECRET};
use crate::sim::{block_on, p};
use crate::support;

fn names(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

const LAYOUT: [&str; 8] = [
    "--account",
    "ROOT/eng:dev",
    "--project",
    "team",
    "--project",
    "devs:ROOT/eng:dev",
    "--domain",
    "ROOT/eng/web",
];

#[test]
fn sim_layout_flags_make_domains_accounts_and_projects_that_the_state_keeps() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start_with_state(&LAYOUT, Some(dir.path()));
    let c = sim.client();
    let team = block_on(async {
        let d = c
            .call("listDomains", &p(&[("listall", "true")]))
            .await
            .unwrap();
        let paths: Vec<&str> = d["domain"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["path"].as_str().unwrap())
            .collect();
        assert_eq!(paths, ["ROOT", "ROOT/eng", "ROOT/eng/web"]);
        let a = c
            .call("listAccounts", &p(&[("listall", "true")]))
            .await
            .unwrap();
        assert_eq!(names(&a, "account"), ["admin", "dev"]);
        assert_eq!(a["account"][1]["domain"], "eng");
        // The admin is a member of `team` only; listall shows every project.
        let mine = c.call("listProjects", &p(&[])).await.unwrap();
        assert_eq!(names(&mine, "project"), ["team"]);
        let all = c
            .call("listProjects", &p(&[("listall", "true")]))
            .await
            .unwrap();
        assert_eq!(names(&all, "project"), ["team", "devs"]);
        assert_eq!(all["project"][1]["account"], "dev");
        mine["project"][0]["id"].as_str().unwrap().to_string()
    });
    drop(sim);
    // Restarted on its state without the flags: the same layout.
    let sim = Sim::start_with_state(&[], Some(dir.path()));
    let c = sim.client();
    block_on(async {
        let again = c.call("listProjects", &p(&[])).await.unwrap();
        assert_eq!(again["project"][0]["id"], team.as_str());
        let nets = c
            .call("listNetworks", &p(&[("projectid", &team)]))
            .await
            .unwrap();
        assert!(
            names(&nets, "network").contains(&"team-isolated".to_string()),
            "the project has its own network: {nets}"
        );
    });
}

#[test]
fn sim_project_objects_stay_in_their_project() {
    let sim = Sim::start(&LAYOUT);
    let c = sim.client();
    block_on(async {
        let projects = c.call("listProjects", &p(&[])).await.unwrap();
        let team = projects["project"][0]["id"].as_str().unwrap().to_string();
        let zones = c
            .call("listZones", &p(&[("networktype", "Advanced")]))
            .await
            .unwrap();
        let zone = zones["zone"][0]["id"].as_str().unwrap().to_string();
        let t = c
            .call(
                "listTemplates",
                &p(&[
                    ("templatefilter", "executable"),
                    ("zoneid", &zone),
                    ("projectid", &team),
                ]),
            )
            .await
            .unwrap();
        let template = t["template"][0]["id"].as_str().unwrap().to_string();
        let o = c.call("listServiceOfferings", &p(&[])).await.unwrap();
        let offering = o["serviceoffering"][0]["id"].as_str().unwrap().to_string();
        c.call(
            "registerSSHKeyPair",
            &p(&[
                ("name", "box"),
                ("projectid", &team),
                ("publickey", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJO1EenNbQ84XdXET9BMbAjMAc/lNQ2dZlSHUVTOuEa/ t"),
            ]),
        )
        .await
        .unwrap();
        let vm = c
            .call_and_wait(
                "deployVirtualMachine",
                &p(&[
                    ("zoneid", &zone),
                    ("templateid", &template),
                    ("serviceofferingid", &offering),
                    ("name", "web"),
                    ("keypair", "box"),
                    ("projectid", &team),
                ]),
            )
            .await
            .unwrap();
        assert_eq!(vm["virtualmachine"]["project"], "team");
        let own = c.call("listVirtualMachines", &p(&[])).await.unwrap();
        assert_eq!(own, serde_json::json!({}), "not among the admin's own VMs");
        let keys = c.call("listSSHKeyPairs", &p(&[])).await.unwrap();
        assert_eq!(keys, serde_json::json!({}), "nor its key pair");
        let in_team = c
            .call("listVirtualMachines", &p(&[("projectid", &team)]))
            .await
            .unwrap();
        assert_eq!(names(&in_team, "virtualmachine"), ["web"]);
        let every = c
            .call("listVirtualMachines", &p(&[("projectid", "-1")]))
            .await
            .unwrap();
        assert_eq!(every["count"], 1);
    });
}

#[test]
fn sim_caller_in_no_project_sees_none_and_is_refused_others() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start_with_state(
        &[
            "--account",
            "ROOT/eng:dev",
            "--account",
            "ROOT/ops:ops",
            "--project",
            "ops-team:ROOT/ops:ops",
            "--caller-account",
            "ROOT/eng:dev",
        ],
        Some(dir.path()),
    );
    // The project's id, as the cloud's operators would know it.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("cloud.json")).unwrap())
            .unwrap();
    let ops_team = state["tenancy"]["projects"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = sim.client();
    block_on(async {
        for listall in ["false", "true"] {
            let v = c
                .call("listProjects", &p(&[("listall", listall)]))
                .await
                .unwrap();
            assert_eq!(v, serde_json::json!({}), "listall={listall}");
        }
        let none = c
            .call("listVirtualMachines", &p(&[("projectid", "-1")]))
            .await
            .unwrap();
        assert_eq!(none, serde_json::json!({}));
        match c
            .call("listVirtualMachines", &p(&[("projectid", &ops_team)]))
            .await
        {
            Err(Error::Api(e)) => {
                assert_eq!(e.errorcode, 531);
                assert!(
                    e.errortext.contains("-dev] can't access project id=1"),
                    "{}",
                    e.errortext
                );
            }
            other => panic!("a 531 expected, got {other:?}"),
        }
    });
}

#[test]
fn sim_refuses_a_layout_flag_it_cannot_read_and_says_why() {
    let out = Command::new(support::sim_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--account",
            "eng:dev",
        ])
        .env("CLOUDSTACK_SIM_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a domain path starts with ROOT"), "{err}");
    let out = Command::new(support::sim_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "--project",
            "x:ROOT/eng:dev",
        ])
        .env("CLOUDSTACK_SIM_SECRET_KEY", SECRET)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hint: add --account ROOT/eng:dev"), "{err}");
}
