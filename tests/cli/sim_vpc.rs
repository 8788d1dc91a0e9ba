//! `cloudstack-sim --vpc`: a VPC seeded through the real binary, read with
//! `box api`, for the root admin or for a project, and a clear refusal of a
//! VPC for a project that does not exist.

use std::process::Command;

use serde_json::Value;

use crate::harness::Test;
use crate::support;

fn names(v: &Value, key: &str) -> Vec<String> {
    let mut n: Vec<String> = v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|x| x["name"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default();
    n.sort();
    n
}

#[test]
fn sim_vpc_flag_seeds_a_vpc_with_a_custom_tier_and_a_deny_tier() {
    let t = Test::new().simulator(&["--vpc", "shop"]);
    let vpcs = t.run(["api", "listVPCs"]).success().json();
    assert_eq!(names(&vpcs, "vpc"), ["shop"]);
    let vpc = vpcs["vpc"][0]["id"].as_str().unwrap().to_string();
    let tiers = t
        .run(["api", "listNetworks", &format!("vpcid={vpc}")])
        .success()
        .json();
    assert_eq!(
        names(&tiers, "network"),
        ["shop-tier-custom", "shop-tier-deny"]
    );
    for tier in tiers["network"].as_array().unwrap() {
        let acl = if tier["name"] == "shop-tier-custom" {
            "shop-acl"
        } else {
            "default_deny"
        };
        assert_eq!(tier["aclname"], acl, "{tier}");
    }
    let custom = tiers["network"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "shop-tier-custom")
        .unwrap();
    let rules = t
        .run([
            "api",
            "listNetworkACLs",
            &format!("networkid={}", custom["id"].as_str().unwrap()),
        ])
        .success()
        .json();
    assert!(rules.get("networkacl").is_none(), "no rules yet: {rules}");
    let ips = t
        .run(["api", "listPublicIpAddresses", &format!("vpcid={vpc}")])
        .success()
        .json();
    assert_eq!(ips["publicipaddress"][0]["issourcenat"], true, "{ips}");
    // The default cloud beside it is unchanged.
    let all = t.run(["api", "listNetworks"]).success().json();
    assert!(names(&all, "network").contains(&"box-isolated".to_string()));
}

#[test]
fn sim_vpc_flag_gives_a_projects_vpc_to_the_project() {
    let t = Test::new().simulator(&["--project", "team", "--vpc", "shop:team"]);
    let own = t.run(["api", "listVPCs"]).success().json();
    assert!(own.get("vpc").is_none(), "not the caller's own: {own}");
    let theirs = t.run(["api", "listVPCs", "projectid=-1"]).success().json();
    assert_eq!(names(&theirs, "vpc"), ["shop"]);
    assert_eq!(theirs["vpc"][0]["project"], "team");
}

#[test]
fn sim_vpc_flag_for_a_missing_project_stops_with_a_clear_error() {
    let out = Command::new(support::sim_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            "k",
            "--vpc",
            "shop:nope",
        ])
        .env("CLOUDSTACK_SIM_SECRET_KEY", "s")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--vpc shop:nope: there is no --project nope"),
        "{err}"
    );
}
