//! The CloudStack provider in a VPC tier, against `cloudstack-sim`: a VPC
//! address, port forwards onto the tier and network ACL rules opened only
//! to `allow_from` (never a firewall rule); a tier on a system ACL list
//! refused before anything is made; `vpc_acl = "create"` attaching box's
//! list and putting the tier's back; static NAT and private machines in a
//! tier; SIGKILL during `up`; and `destroy` leaving nothing. The cloud's own
//! lists (through `box api`) are the judge.

use std::time::Duration;

use serde_json::Value;

use crate::cloud::Census;
use crate::harness::{Project, Test};

const UP: [&str; 2] = ["up", "--no-connect"];
const DESTROY: [&str; 2] = ["destroy", "--force"];

/// A VPC with one tier, made through the API as a user would.
struct Tier {
    vpc: String,
    id: String,
    name: String,
    /// The project that owns the VPC, if any: its name and `projectid=<id>`.
    project: Option<(String, String)>,
}

/// `box api COMMAND PARAMS` against the test's cloud; the answer's JSON.
fn api(t: &Test, command: &str, params: &[&str]) -> Value {
    let out = t
        .run(
            std::iter::once("api")
                .chain(std::iter::once(command))
                .chain(params.iter().copied()),
        )
        .success();
    out.json()
}

/// The first object of an answer (a job's result or a create's).
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

fn list(t: &Test, command: &str, params: &[&str]) -> Vec<Value> {
    t.sim().list(t.home(), command, params)
}

/// A VPC `name` in the advanced zone with tier `name-tier` on `acl` (a
/// system list's name, or "custom" for a list of its own).
fn tier(t: &Test, name: &str, acl: &str) -> Tier {
    tier_in(t, name, acl, None)
}

/// As `tier`, the VPC owned by `project` when one is named.
fn tier_in(t: &Test, name: &str, acl: &str, project: Option<&str>) -> Tier {
    let project = project.map(|p| {
        let id = list(t, "listProjects", &[])
            .into_iter()
            .find(|x| x["name"] == p)
            .unwrap_or_else(|| panic!("project {p}"))["id"]
            .as_str()
            .unwrap()
            .to_string();
        (p.to_string(), format!("projectid={id}"))
    });
    let owner: Vec<&str> = project.iter().map(|(_, s)| s.as_str()).collect();
    let zone = list(t, "listZones", &[])
        .into_iter()
        .find(|z| z["name"] == "Sim-Advanced")
        .expect("the advanced zone");
    let zone = zone["id"].as_str().unwrap().to_string();
    let offering = list(t, "listVPCOfferings", &[])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let vpc = api(
        t,
        "createVPC",
        &[
            &format!("name={name}"),
            &format!("zoneid={zone}"),
            "cidr=10.1.0.0/16",
            &format!("vpcofferingid={offering}"),
        ]
        .into_iter()
        .chain(owner.iter().copied())
        .collect::<Vec<_>>(),
    );
    let vpc = object(&vpc, "vpc")["id"].as_str().unwrap().to_string();
    let acl_id = if acl == "custom" {
        let made = api(
            t,
            "createNetworkACLList",
            &[&format!("name={name}-acl"), &format!("vpcid={vpc}")],
        );
        object(&made, "networkacllist")["id"]
            .as_str()
            .unwrap()
            .to_string()
    } else {
        system_list(t, acl)
    };
    let net_offering = list(t, "listNetworkOfferings", &["forvpc=true"])[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let tier_name = format!("{name}-tier");
    let made = api(
        t,
        "createNetwork",
        &[
            &format!("name={tier_name}"),
            &format!("displaytext={tier_name}"),
            &format!("zoneid={zone}"),
            &format!("vpcid={vpc}"),
            &format!("networkofferingid={net_offering}"),
            "gateway=10.1.1.1",
            "netmask=255.255.255.0",
            &format!("aclid={acl_id}"),
        ]
        .into_iter()
        .chain(owner.iter().copied())
        .collect::<Vec<_>>(),
    );
    let id = object(&made, "network")["id"].as_str().unwrap().to_string();
    Tier {
        vpc,
        id,
        name: tier_name,
        project,
    }
}

/// The id of a system ACL list.
fn system_list(t: &Test, name: &str) -> String {
    list(t, "listNetworkACLLists", &[&format!("name={name}")])
        .into_iter()
        .find(|l| l["name"] == name && l.get("vpcid").is_none())
        .unwrap_or_else(|| panic!("the system list {name}"))["id"]
        .as_str()
        .unwrap()
        .to_string()
}

impl Tier {
    /// A list command in the tier's project (if any).
    fn list(&self, t: &Test, command: &str, param: &str) -> Vec<Value> {
        let mut params = vec![param];
        params.extend(self.project.iter().map(|(_, s)| s.as_str()));
        list(t, command, &params)
    }

    /// The tier's ACL list now.
    fn acl(&self, t: &Test) -> String {
        self.list(t, "listNetworks", &format!("id={}", self.id))[0]["aclid"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// The rules of the tier's list now.
    fn rules(&self, t: &Test) -> Vec<Value> {
        self.list(t, "listNetworkACLs", &format!("aclid={}", self.acl(t)))
    }

    /// The lists of the VPC box made (named `box-...`).
    fn box_lists(&self, t: &Test) -> Vec<Value> {
        self.list(t, "listNetworkACLLists", &format!("vpcid={}", self.vpc))
            .into_iter()
            .filter(|l| l["name"].as_str().unwrap_or("").starts_with("box-"))
            .collect()
    }

    /// The VPC's addresses other than its source NAT one.
    fn addresses(&self, t: &Test) -> Vec<Value> {
        self.list(t, "listPublicIpAddresses", &format!("vpcid={}", self.vpc))
            .into_iter()
            .filter(|ip| ip["issourcenat"] != Value::Bool(true))
            .collect()
    }

    /// A Boxfile for project `name` with these settings under [cloudstack].
    fn boxfile(&self, name: &str, settings: &str, machines: &str) -> String {
        format!(
            r#"
[project]
name = "{name}"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
network = "{tier}"
{project}
{settings}
{machines}
"#,
            tier = self.name,
            project = self
                .project
                .as_ref()
                .map(|(p, _)| format!("project = \"{p}\""))
                .unwrap_or_default()
        )
    }
}

const TWO: &str = r#"
[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]
depends_on = ["db"]

[[machine]]
name = "db"
"#;

/// The ports the ACL rules box made open, sorted, with their CIDRs.
fn opened(rules: &[Value], project: &str) -> Vec<(u64, String)> {
    let mut out: Vec<(u64, String)> = rules
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .is_some_and(|why| why.starts_with(&format!("box {project} ")))
        })
        .map(|r| {
            (
                r["startport"]
                    .as_str()
                    .map_or_else(|| r["startport"].as_u64().unwrap(), |s| s.parse().unwrap()),
                r["cidrlist"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn assert_nothing_left(t: &Test, tier: &Tier, rules_before: usize) {
    assert_eq!(t.census(), Census::empty());
    assert_eq!(tier.rules(t).len(), rules_before, "{:?}", tier.rules(t));
    assert!(tier.addresses(t).is_empty(), "{:?}", tier.addresses(t));
    assert!(tier.box_lists(t).is_empty(), "{:?}", tier.box_lists(t));
    assert!(
        list(t, "listTags", &[]).is_empty(),
        "{:?}",
        list(t, "listTags", &[])
    );
}

#[test]
fn vpc_tier_up_forwards_through_a_vpc_address_opens_acl_rules_only_to_allow_from_and_destroy_leaves_nothing(
) {
    let t = Test::new().simulator(&[]);
    let tier = tier(&t, "shop", "custom");
    let demo = t.project(
        "demo",
        &tier.boxfile(
            "demo",
            "public_ip = \"auto\"\nallow_from = [\"127.0.0.0/8\"]",
            TWO,
        ),
    );
    demo.run(UP).success();

    let addresses = tier.addresses(&t);
    assert_eq!(
        addresses.len(),
        1,
        "one address acquired in the VPC: {addresses:?}"
    );
    let web = demo.machine("web");
    assert_eq!(web["ssh"]["host"], addresses[0]["ipaddress"]);
    assert_eq!(addresses[0]["associatednetworkid"], tier.id.as_str());

    let c = t.census();
    assert_eq!(c.vm_names.len(), 2, "{c:?}");
    assert_eq!(
        (c.pf_rules, c.fw_rules, c.keypairs),
        (3, 0, 1),
        "no firewall rule in a VPC: {c:?}"
    );
    for pf in list(&t, "listPortForwardingRules", &[]) {
        assert_eq!(
            pf["networkid"],
            tier.id.as_str(),
            "forwards go onto the tier: {pf}"
        );
    }
    // The guest's ports (after NAT), each machine its own rules, only to allow_from.
    assert_eq!(
        opened(&tier.rules(&t), "demo"),
        [
            (22, "127.0.0.0/8".to_string()),
            (22, "127.0.0.0/8".to_string()),
            (80, "127.0.0.0/8".to_string())
        ]
    );

    // A second `up` adopts everything: nothing new.
    let rules = tier.rules(&t).len();
    demo.run(UP).success();
    assert_eq!(tier.rules(&t).len(), rules);
    assert_eq!(t.census(), c);

    demo.run(DESTROY).success();
    assert_nothing_left(&t, &tier, 0);
}

#[test]
fn a_tier_on_a_system_acl_list_is_refused_before_anything_is_created() {
    let t = Test::new().simulator(&[]);
    let tier = tier(&t, "locked", "default_deny");
    let demo = t.project(
        "demo",
        &tier.boxfile("demo", "allow_from = [\"127.0.0.0/8\"]", TWO),
    );
    let out = demo.run(UP).failure();
    out.stderr_has("system list `default_deny`")
        .stderr_has("nothing was created")
        .stderr_has("hint: set `vpc_acl = \"create\"`")
        .stderr_has(&format!(
            "box api createNetworkACLList name={}-acl vpcid={}",
            tier.name, tier.vpc
        ))
        .stderr_has(&format!("networkid={}", tier.id));
    assert_eq!(t.census(), Census::empty());
    assert!(tier.addresses(&t).is_empty());
    assert!(tier.box_lists(&t).is_empty());
    assert_eq!(tier.acl(&t), system_list(&t, "default_deny"));
}

#[test]
fn vpc_acl_create_shares_one_list_between_teammates_and_the_last_one_out_puts_the_tiers_back() {
    let t = Test::new().simulator(&[]);
    let tier = tier(&t, "team", "default_allow");
    let boxfile = tier.boxfile(
        "demo",
        "vpc_acl = \"create\"\nallow_from = [\"127.0.0.0/8\"]",
        "[[machine]]\nname = \"web\"\n",
    );
    // Two checkouts: two environments of the same project, as teammates have.
    let alice = t.project("alice", &boxfile);
    let bob = t.project("bob", &boxfile);
    alice
        .run(UP)
        .success()
        .stderr_has("used the system list `default_allow`");
    let lists = tier.box_lists(&t);
    assert_eq!(lists.len(), 1, "{lists:?}");
    assert_eq!(lists[0]["name"], format!("box-{}", tier.name));
    assert_eq!(tier.acl(&t), lists[0]["id"].as_str().unwrap());
    bob.run(UP).success();
    assert_eq!(tier.box_lists(&t).len(), 1, "bob joins alice's list");
    assert_eq!(
        tier.rules(&t).len(),
        2,
        "one SSH rule each: {:?}",
        tier.rules(&t)
    );

    // Alice leaves: her rule goes, the list stays for bob.
    alice.run(DESTROY).success();
    assert_eq!(tier.rules(&t).len(), 1, "{:?}", tier.rules(&t));
    assert_eq!(tier.acl(&t), lists[0]["id"].as_str().unwrap());
    // Bob is the last one out: the tier gets default_allow back.
    bob.run(DESTROY).success();
    assert_eq!(tier.acl(&t), system_list(&t, "default_allow"));
    assert_nothing_left(&t, &tier, 2);
}

#[test]
fn static_nat_and_private_machines_work_in_a_vpc_tier() {
    let t = Test::new().simulator(&[]);
    let tier = tier(&t, "nat", "custom");
    let nat = t.project(
        "nat",
        &tier.boxfile(
            "nat",
            "allow_from = [\"127.0.0.0/8\"]",
            r#"
[[machine]]
name = "web"
ports = [{ guest = 80, host = 8080 }]
cloudstack = { static_nat = true }

[[machine]]
name = "vpn"
cloudstack = { private = true }
"#,
        ),
    );
    nat.run(UP).success();
    let web = nat.machine("web");
    let addresses = tier.addresses(&t);
    assert_eq!(addresses.len(), 1, "{addresses:?}");
    assert_eq!(web["ssh"]["host"], addresses[0]["ipaddress"]);
    assert_eq!(web["ssh"]["port"], 22);
    assert_eq!(addresses[0]["isstaticnat"], true);
    assert_eq!(addresses[0]["virtualmachineid"], web["id"]);
    let vpn = nat.machine("vpn");
    assert!(
        vpn["ssh"]["host"].as_str().unwrap().starts_with("10.1.1."),
        "{vpn}"
    );
    let c = t.census();
    assert_eq!((c.pf_rules, c.fw_rules), (0, 0), "{c:?}");
    // web: 22 and 80; vpn: 22 (allow_from is set, so the ACL lets it in).
    assert_eq!(
        opened(&tier.rules(&t), "nat"),
        [
            (22, "127.0.0.0/8".to_string()),
            (22, "127.0.0.0/8".to_string()),
            (80, "127.0.0.0/8".to_string())
        ]
    );
    nat.run(DESTROY).success();
    assert_nothing_left(&t, &tier, 0);
}

#[test]
fn sigkill_during_vpc_up_in_a_project_then_up_again_leaves_no_duplicate_and_no_orphan() {
    // Long enough jobs that the kills land inside the list's creation and
    // attachment, deploys, forwards and ACL rules.
    let t = Test::new().simulator(&["--job-duration", "400ms", "--project", "team"]);
    let mut projects: Vec<(Project, Tier)> = Vec::new();
    for (i, delay_ms) in [150u64, 600, 1200, 2000].into_iter().enumerate() {
        let tier = tier_in(&t, &format!("kill{i}"), "default_deny", Some("team"));
        let project = t.project(
            format!("kill{i}"),
            &tier.boxfile(
                &format!("kill{i}"),
                "public_ip = \"auto\"\nvpc_acl = \"create\"\nallow_from = [\"127.0.0.0/8\"]",
                TWO,
            ),
        );
        project.run(UP).kill_after(Duration::from_millis(delay_ms));
        let out = project.run(UP).output();
        assert!(
            out.status.success(),
            "resume after a kill at {delay_ms}ms: {}",
            out.stderr
        );
        assert_eq!(
            tier.box_lists(&t).len(),
            1,
            "one list: {:?}",
            tier.box_lists(&t)
        );
        assert_eq!(tier.rules(&t).len(), 3, "3 ACL rules: {:?}", tier.rules(&t));
        assert_eq!(
            tier.addresses(&t).len(),
            1,
            "one address: {:?}",
            tier.addresses(&t)
        );
        projects.push((project, tier));
    }
    let mut names: Vec<String> = list(&t, "listVirtualMachines", &["projectid=-1"])
        .iter()
        .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
        .map(|v| v["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    let mut uniq = names.clone();
    uniq.dedup();
    assert_eq!(uniq, names, "no duplicate VM");
    assert_eq!(names.len(), 8, "{names:?}");
    let census = project_census(&t);
    assert_eq!(census[2], ("forwards".to_string(), 12), "{census:?}");
    assert_eq!(census[3], ("firewall rules".to_string(), 0), "{census:?}");
    assert_eq!(census[4], ("key pairs".to_string(), 4), "{census:?}");

    for (project, tier) in &projects {
        project.run(DESTROY).success();
        assert_eq!(tier.acl(&t), system_list(&t, "default_deny"));
        assert!(tier.box_lists(&t).is_empty());
        assert_eq!(tier.rules(&t).len(), 2, "default_deny's own rules only");
        assert!(tier.addresses(&t).is_empty());
    }
    for (what, n) in project_census(&t) {
        assert_eq!(n, 0, "{what} left in the project");
    }
    assert_eq!(t.census(), Census::empty());
}

/// Everything of box's in the cloud's projects: VMs, addresses other than
/// source NAT, forwards, firewall rules, key pairs, tags.
fn project_census(t: &Test) -> Vec<(String, usize)> {
    let all = |command: &str| list(t, command, &["projectid=-1"]);
    vec![
        (
            "VMs".into(),
            all("listVirtualMachines")
                .iter()
                .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
                .count(),
        ),
        (
            "addresses".into(),
            all("listPublicIpAddresses")
                .iter()
                .filter(|ip| ip["issourcenat"] != Value::Bool(true))
                .count(),
        ),
        ("forwards".into(), all("listPortForwardingRules").len()),
        ("firewall rules".into(), all("listFirewallRules").len()),
        ("key pairs".into(), all("listSSHKeyPairs").len()),
        ("tags".into(), all("listTags").len()),
    ]
}

/// End to end: two real QEMU guests, booted in parallel, in a VPC tier of a
/// project, reached over SSH through the forwards and the network ACL rules
/// box made, which are the only way in.
#[test]
fn qemu_backed_vpc_tier_in_a_project_up_ssh_only_through_the_acl_sync_provision_and_destroy() {
    let t = Test::new()
        .with_simulator(crate::cloud::Sim::start_qemu_backed(&[
            "--project",
            "shop",
            "--vpc",
            "shop:shop",
        ]))
        // Each `box ssh` a new connection, judged by the ACL as it is now (a
        // kept session would outlive the rules, as it would on a real router).
        .env("BOX_SSH_HOLDER_IDLE", "off");
    let e2e = t.project(
        "e2e",
        r#"
[project]
name = "e2e"
provider = "cloudstack"

[cloudstack]
project = "shop"
zone = "Sim-Advanced"
template = "Debian 12"
network = "shop-tier-custom"
public_ip = "auto"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
sync = [{ from = "site", to = "/srv/site" }]

[[machine.provision]]
shell = "echo provisioned > /tmp/box-e2e"

[[machine]]
name = "db"
"#,
    );
    std::fs::create_dir_all(e2e.dir().join("site")).unwrap();
    std::fs::write(e2e.dir().join("site/index.html"), "hello from the tier\n").unwrap();
    e2e.run(["up"]).success();

    let web = e2e.machine("web");
    let vm_name = web["provider_data"]["vm_name"]
        .as_str()
        .unwrap()
        .to_string();
    e2e.run([
        "ssh",
        "web",
        "-c",
        "hostname; cat /tmp/box-e2e /srv/site/index.html",
    ])
    .success()
    .stdout_has(&vm_name)
    .stdout_has("provisioned")
    .stdout_has("hello from the tier");
    let db = e2e.machine("db");
    e2e.run(["ssh", "db", "-c", "hostname"])
        .success()
        .stdout_has(db["provider_data"]["vm_name"].as_str().unwrap());
    assert_eq!(
        project_census(&t)[3],
        ("firewall rules".to_string(), 0),
        "no firewall rule in a VPC"
    );

    // The ACL rules for SSH are the only way in: without them, SSH is refused.
    let list_id = list(&t, "listNetworks", &["projectid=-1"])
        .into_iter()
        .find(|n| n["name"] == "shop-tier-custom")
        .expect("the tier")["aclid"]
        .as_str()
        .unwrap()
        .to_string();
    let ssh_rules: Vec<String> = list(&t, "listNetworkACLs", &[&format!("aclid={list_id}")])
        .into_iter()
        .filter(|r| r["startport"] == "22" || r["startport"] == 22)
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ssh_rules.len(), 2, "one SSH rule per machine");
    for id in &ssh_rules {
        api(&t, "deleteNetworkACL", &[&format!("id={id}")]);
    }
    e2e.run(["ssh", "web", "-c", "true"]).failure();
    // An allow_from that excludes this host: box's rules admit others only.
    std::fs::write(
        e2e.dir().join("Boxfile.local"),
        "[cloudstack]\nallow_from = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    e2e.run(["up", "--no-connect"]).success();
    let cidrs: Vec<String> = list(&t, "listNetworkACLs", &[&format!("aclid={list_id}")])
        .iter()
        .map(|r| r["cidrlist"].as_str().unwrap_or("").to_string())
        .collect();
    assert!(cidrs.iter().all(|c| c == "192.0.2.0/24"), "{cidrs:?}");
    e2e.run(["ssh", "web", "-c", "true"]).failure();
    // Back to this host's allow_from: `up` opens SSH again.
    std::fs::remove_file(e2e.dir().join("Boxfile.local")).unwrap();
    e2e.run(["up", "--no-provision"]).success();
    e2e.run(["ssh", "web", "-c", "true"]).success();

    e2e.run(DESTROY).success();
    for (what, n) in project_census(&t) {
        assert_eq!(n, 0, "{what} left in the project");
    }
    assert!(
        list(&t, "listNetworkACLs", &[&format!("aclid={list_id}")]).is_empty(),
        "no ACL rule left"
    );
}

#[test]
fn transient_faults_in_a_vpc_tier_are_survived_and_destroy_still_removes_everything() {
    let t = Test::new().simulator(&[
        "--vpc",
        "shop",
        "--seed",
        "11",
        "--throttle",
        "0.05",
        "--drop",
        "0.02",
        "--fail",
        "associateIpAddress:0.3:530",
        "--fail",
        "createPortForwardingRule:0.25:503",
        "--fail",
        "createNetworkACLList:0.3:530",
        "--fail",
        "replaceNetworkACLList:0.3:503",
        "--fail",
        "createNetworkACL:0.3:530",
    ]);
    let boxfile = r#"
[project]
name = "demo"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
network = "shop-tier-deny"
public_ip = "auto"
vpc_acl = "create"
allow_from = ["127.0.0.0/8"]
"#
    .to_string()
        + TWO;
    let demo = t.project("demo", &boxfile);
    demo.run(UP).success();
    let tier = list(&t, "listNetworks", &[])
        .into_iter()
        .find(|n| n["name"] == "shop-tier-deny")
        .expect("the seeded tier");
    let acl = tier["aclid"].as_str().unwrap().to_string();
    let rules = list(&t, "listNetworkACLs", &[&format!("aclid={acl}")]);
    assert_eq!(opened(&rules, "demo").len(), 3, "{rules:?}");
    assert_eq!(rules.len(), 3, "no duplicate rule: {rules:?}");
    let c = t.census();
    assert_eq!(c.vm_names.len(), 2, "{c:?}");
    assert_eq!((c.pf_rules, c.fw_rules, c.extra_ips), (3, 0, 1), "{c:?}");

    demo.run(DESTROY).success();
    assert_eq!(t.census(), Census::empty());
    let tier = list(&t, "listNetworks", &[])
        .into_iter()
        .find(|n| n["name"] == "shop-tier-deny")
        .unwrap();
    assert_eq!(
        tier["aclid"].as_str().unwrap(),
        system_list(&t, "default_deny")
    );
    let lists: Vec<Value> = list(&t, "listNetworkACLLists", &[])
        .into_iter()
        .filter(|l| l["name"].as_str().unwrap_or("").starts_with("box-"))
        .collect();
    assert!(lists.is_empty(), "{lists:?}");
}

#[test]
fn narrowing_allow_from_in_a_vpc_tier_removes_the_acl_rules_it_no_longer_wants() {
    let t = Test::new().simulator(&[]);
    let tier = tier(&t, "narrow", "custom");
    let demo = t.project(
        "demo",
        &tier.boxfile("demo", "allow_from = [\"127.0.0.0/8\"]", TWO),
    );
    demo.run(UP).success();
    assert_eq!(opened(&tier.rules(&t), "demo").len(), 3);

    std::fs::write(
        demo.dir().join("Boxfile.local"),
        "[cloudstack]\nallow_from = [\"192.0.2.0/24\"]\n",
    )
    .unwrap();
    demo.run(UP).success();
    assert_eq!(
        opened(&tier.rules(&t), "demo"),
        [
            (22, "192.0.2.0/24".to_string()),
            (22, "192.0.2.0/24".to_string()),
            (80, "192.0.2.0/24".to_string())
        ],
        "the rules for 127.0.0.0/8 are gone"
    );

    demo.run(DESTROY).success();
    assert_nothing_left(&t, &tier, 0);
}
