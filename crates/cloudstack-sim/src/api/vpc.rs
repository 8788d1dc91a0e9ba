//! VPCs (`VpcManagerImpl`): listing and creating them, the one VPC
//! offering, addresses acquired for a VPC, and which tier a VPC address
//! serves once a rule ties it to one. The async jobs of VPC and network ACL
//! commands finish here ([`finish`]).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{acl, Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::vpc::{valid_cidr, Vpc};
use crate::model::{Cloud, PublicIp};
use crate::params::Params;
use crate::seed;
use crate::tenancy::Owner;

/// What a VPC or network ACL job does when it finishes; the checks
/// CloudStack makes inside the job (`BaseAsyncCmd.execute`) run then.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum VpcJob {
    VpcCreate { vpc: String },
    ListCreate { list: String },
    ListDelete { list: String },
    ListReplace { list: String, network: String },
    RuleCreate { rule: String },
    RuleUpdate { rule: String, edit: acl::RuleEdit },
    RuleDelete { rule: String },
}

pub fn finish(cloud: &mut Cloud, job: &VpcJob) -> Result<Value, ApiError> {
    match job {
        VpcJob::VpcCreate { vpc } => {
            start(cloud, vpc);
            let v = cloud.vpc.vpc(vpc).map(|v| v.render(cloud));
            Ok(json!({"vpc": v.unwrap_or(Value::Null)}))
        }
        VpcJob::ListCreate { list } => acl::finish_list_create(cloud, list),
        VpcJob::ListDelete { list } => acl::finish_list_delete(cloud, list),
        VpcJob::ListReplace { list, network } => acl::finish_replace(cloud, list, network),
        VpcJob::RuleCreate { rule } => acl::finish_rule_create(cloud, rule),
        VpcJob::RuleUpdate { rule, edit } => acl::finish_rule_update(cloud, rule, edit),
        VpcJob::RuleDelete { rule } => acl::finish_rule_delete(cloud, rule),
    }
}

/// A failed job takes back what its command created at once.
pub fn undo(cloud: &mut Cloud, job: &VpcJob) {
    match job {
        VpcJob::VpcCreate { vpc } => cloud.vpc.vpcs.retain(|v| &v.id != vpc),
        VpcJob::ListCreate { list } => cloud.vpc.acl_lists.retain(|l| &l.id != list),
        VpcJob::RuleCreate { rule } => cloud.vpc.acl_rules.retain(|r| &r.id != rule),
        _ => {}
    }
}

/// Starting a VPC gives it its source NAT address (`VpcManagerImpl.startVpc`).
fn start(cloud: &mut Cloud, vpc_id: &str) {
    let Some(vpc) = cloud.vpc.vpc(vpc_id).cloned() else {
        return;
    };
    if cloud
        .ips
        .iter()
        .any(|i| i.source_nat && i.vpc_id.as_deref() == Some(vpc_id))
    {
        return;
    }
    cloud.counters.public_ip += 1;
    let id = crate::ids::uuid();
    cloud.known_ids.insert(id.clone());
    cloud.ips.push(PublicIp {
        id,
        address: seed::public_ip(cloud.counters.public_ip),
        zone_id: vpc.zone_id.clone(),
        network_id: None,
        source_nat: true,
        static_nat_vm: None,
        allocated: vpc.created,
        state: "Allocated".into(),
        owner: vpc.owner.clone(),
        vpc_id: Some(vpc.id.clone()),
    });
}

pub fn list_vpcs(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let scope = ctx.scope(p)?;
    let filters = [
        field_eq(p, "zoneid", "zoneid"),
        field_eq(p, "cidr", "cidr"),
        field_eq(p, "state", "state"),
        field_eq(p, "vpcofferingid", "vpcofferingid"),
        field_eq(p, "displaytext", "displaytext"),
    ];
    let items = c
        .vpc
        .vpcs
        .iter()
        .filter(|v| scope.sees(c, &v.owner))
        .map(|v| v.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list(p, "vpc", items)
}

pub fn list_offerings(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let items = vec![crate::model::vpc::render_offering(ctx.cloud)];
    list(p, "vpcoffering", items)
}

/// RFC 1918, as `NetUtils.validateGuestCidr` wants a VPC's range.
fn private_cidr(cidr: &str) -> bool {
    let Some((addr, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(a), Ok(bits)) = (addr.parse::<std::net::Ipv4Addr>(), bits.parse::<u8>()) else {
        return false;
    };
    let o = a.octets();
    (o[0] == 10 && bits >= 8)
        || (o[0] == 172 && (16..32).contains(&o[1]) && bits >= 12)
        || (o[0] == 192 && o[1] == 168 && bits >= 16)
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let owner = ctx.owner_from(p)?;
    let c = &*ctx.cloud;
    let name = p.req("name")?.to_string();
    let cidr = p.req("cidr")?.to_string();
    let zone = c
        .zone(p.req("zoneid")?)
        .ok_or_else(|| ApiError::invalid("Can't find zone by id specified"))?
        .clone();
    if p.req("vpcofferingid")? != c.vpc.offering_id {
        return Err(ApiError::invalid(
            "Unable to find vpc offering in Enabled state by specified id",
        ));
    }
    // A Basic zone's physical network has no VPC router provider.
    if zone.basic() {
        return Err(ApiError::invalid(
            "Provider VpcVirtualRouter should be enabled in at least one physical network of the zone specified",
        ));
    }
    if !valid_cidr(&cidr) || cidr.contains(':') {
        return Err(ApiError::invalid(format!("Invalid CIDR specified {cidr}")));
    }
    if !private_cidr(&cidr) {
        return Err(ApiError::invalid(format!(
            "Guest Cidr {cidr} is not RFC1918 compliant"
        )));
    }
    let display_text = p
        .str("displaytext")
        .filter(|s| !s.is_empty())
        .unwrap_or(&name)
        .to_string();
    let network_domain = p
        .str("networkdomain")
        .map(str::to_string)
        .unwrap_or_else(|| "cs2cloud.internal".into());
    let id = ctx.id();
    ctx.cloud.vpc.vpcs.push(Vpc {
        id: id.clone(),
        name,
        display_text,
        zone_id: zone.id,
        cidr,
        network_domain,
        state: "Enabled".into(),
        created: ctx.now,
        owner,
    });
    Ok(ctx.created(
        "createVPC",
        "Vpc",
        &id,
        Action::Vpc {
            job: VpcJob::VpcCreate { vpc: id.clone() },
        },
    ))
}

/// The owner a new address for VPC `vpc_id` gets: the VPC's, if the caller
/// may act on it (`AssociateIPAddrCmd` with `vpcid`).
pub fn address_owner(c: &Cloud, vpc_id: &str) -> Result<(String, Owner), ApiError> {
    let vpc = c
        .vpc
        .vpc(vpc_id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find VPC by id {vpc_id}")))?;
    c.may_operate(&vpc.owner)?;
    Ok((vpc.zone_id.clone(), vpc.owner.clone()))
}

/// Which rule wants a tier for a VPC address, for the texts CloudStack uses.
#[derive(Debug, Clone, Copy)]
pub enum RuleKind {
    PortForwarding,
    StaticNat,
}

/// The tier a VPC address will serve, for a port forwarding rule or static
/// NAT: the one it is tied to, else the `networkid` given, which must be a
/// tier of the address's VPC. `None` for an address outside any VPC.
pub fn tier_for(
    c: &Cloud,
    ip: &PublicIp,
    p: &Params,
    kind: RuleKind,
) -> Result<Option<String>, ApiError> {
    let Some(vpc) = &ip.vpc_id else {
        return Ok(None);
    };
    if let Some(n) = &ip.network_id {
        return Ok(Some(n.clone()));
    }
    let Some(network) = p.str("networkid") else {
        return Err(ApiError::invalid(match kind {
            RuleKind::PortForwarding => format!(
                "Unable to create port forwarding rule for the ipAddress id={} as ip is not associated with any network and no networkId is passed in",
                ip.id
            ),
            RuleKind::StaticNat => format!(
                "Unable to enable static NAT for the ipAddress id={} as IP is not associated with any network and no networkId is passed in",
                ip.id
            ),
        }));
    };
    match c.network(network) {
        Some(n) if n.vpc_id.as_ref() == Some(vpc) => Ok(Some(n.id.clone())),
        _ => Err(ApiError::invalid(format!(
            "Ip address {} is not assigned to the network {network}",
            ip.address
        ))),
    }
}

/// Ties a VPC address to the tier its first rule serves.
pub fn tie(cloud: &mut Cloud, ip_id: &str, tier: &str) {
    for i in cloud.ips.iter_mut().filter(|i| i.id == ip_id) {
        i.network_id = Some(tier.to_string());
    }
}

/// A VPC address with no rule left serves no tier any more
/// (`VpcManagerImpl.unassignIPFromVpcNetwork` after the last rule goes).
pub fn untie_unused(cloud: &mut Cloud) {
    let used: Vec<String> = cloud.pf_rules.iter().map(|r| r.ip_id.clone()).collect();
    for ip in cloud.ips.iter_mut().filter(|i| {
        i.vpc_id.is_some()
            && i.network_id.is_some()
            && i.static_nat_vm.is_none()
            && !used.contains(&i.id)
    }) {
        ip.network_id = None;
    }
}

/// `createFirewallRule` on a VPC address: a VPC has no firewall service;
/// network ACLs do that job (`CreateFirewallRuleCmd.getNetworkId`,
/// `NetworkModelImpl.getNetworkServiceCapabilities`).
pub fn refuse_firewall(ip: &PublicIp) -> Result<(), ApiError> {
    if ip.vpc_id.is_none() {
        return Ok(());
    }
    match &ip.network_id {
        None => Err(ApiError::invalid(format!(
            "Unable to create firewall rule for the IP address ID={} as IP is not associated with any network and no networkId is passed in",
            ip.id
        ))),
        Some(tier) => Err(ApiError::internal(format!(
            "Service Firewall is not supported in the network id={tier}"
        ))),
    }
}

/// `associateIpAddress` with `vpcid`: an address for the VPC, tied to no
/// tier until a rule uses it.
pub fn associate(ctx: &mut Ctx, vpc: &str) -> Result<Reply, ApiError> {
    let (zone_id, owner) = address_owner(ctx.cloud, vpc)?;
    ctx.cloud.counters.public_ip += 1;
    let address = seed::public_ip(ctx.cloud.counters.public_ip);
    let id = ctx.id();
    ctx.cloud.ips.push(PublicIp {
        id: id.clone(),
        address,
        zone_id,
        network_id: None,
        source_nat: false,
        static_nat_vm: None,
        allocated: ctx.now,
        state: "Allocating".into(),
        owner,
        vpc_id: Some(vpc.to_string()),
    });
    Ok(ctx.created(
        "associateIpAddress",
        "IpAddress",
        &id,
        Action::IpAssociate { ip: id.clone() },
    ))
}

/// `--vpc NAME[:PROJECT]`: a VPC to seed, owned by the project of that
/// name (a `--project`) or else by the root admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VpcSpec {
    pub name: String,
    pub project: Option<String>,
}

impl std::str::FromStr for VpcSpec {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (name, project) = match s.split_once(':') {
            None => (s, None),
            Some((n, p)) => (n, Some(p.to_string())),
        };
        if name.is_empty() || project.as_deref() == Some("") {
            return Err(format!("expected NAME[:PROJECT] (got '{s}')"));
        }
        Ok(VpcSpec {
            name: name.to_string(),
            project,
        })
    }
}

/// Seeds each `--vpc` into a fresh cloud whose projects already exist.
pub fn seed_all(cloud: &mut Cloud, specs: &[VpcSpec]) -> Result<(), String> {
    for spec in specs {
        let owner = match &spec.project {
            None => Owner::Admin,
            Some(name) => {
                let project = cloud
                    .tenancy
                    .projects
                    .iter()
                    .find(|p| &p.name == name)
                    .ok_or_else(|| {
                        format!("--vpc {}:{name}: there is no --project {name}", spec.name)
                    })?;
                Owner::Project(project.id.clone())
            }
        };
        seed(cloud, &spec.name, owner)?;
    }
    Ok(())
}

fn new_id(cloud: &mut Cloud) -> String {
    let id = crate::ids::uuid();
    cloud.known_ids.insert(id.clone());
    id
}

/// `--vpc NAME`: a running VPC `NAME` in the Advanced zone (with its
/// source NAT address) and two tiers: `NAME-tier-custom`, behind its own
/// list `NAME-acl` that has no rules yet (nothing gets in until rules are
/// added), and `NAME-tier-deny`, behind the system list `default_deny`.
pub fn seed(cloud: &mut Cloud, name: &str, owner: Owner) -> Result<(), String> {
    if cloud.vpc.vpcs.iter().any(|v| v.name == name) {
        return Err(format!("--vpc {name}: given twice"));
    }
    let zone = cloud
        .zones
        .iter()
        .find(|z| !z.basic())
        .map(|z| z.id.clone())
        .ok_or("the cloud has no Advanced zone for a VPC")?;
    let deny = cloud
        .vpc
        .system_list(crate::model::vpc::DEFAULT_DENY)
        .map(|l| l.id.clone())
        .ok_or("the cloud has no default_deny list")?;
    // 10.10.0.0/16, 10.11.0.0/16, ..: clear of the isolated network's 10.1.1.0/24.
    let octet = 10 + cloud.vpc.vpcs.len();
    let vpc = new_id(cloud);
    cloud.vpc.vpcs.push(Vpc {
        id: vpc.clone(),
        name: name.to_string(),
        display_text: name.to_string(),
        zone_id: zone.clone(),
        cidr: format!("10.{octet}.0.0/16"),
        network_domain: "cs2cloud.internal".into(),
        state: "Enabled".into(),
        created: crate::clock::now_ms(),
        owner: owner.clone(),
    });
    start(cloud, &vpc);
    let custom = new_id(cloud);
    cloud.vpc.acl_lists.push(crate::model::vpc::AclList {
        id: custom.clone(),
        name: format!("{name}-acl"),
        description: format!("The custom list of {name}-tier-custom"),
        vpc_id: Some(vpc.clone()),
        system: false,
    });
    for (i, (tier, acl)) in [("custom", custom), ("deny", deny)].into_iter().enumerate() {
        let id = new_id(cloud);
        cloud.networks.push(crate::model::Network {
            id,
            name: format!("{name}-tier-{tier}"),
            zone_id: zone.clone(),
            kind: "Isolated".into(),
            cidr: format!("10.{octet}.{}.0/24", i + 1),
            gateway: format!("10.{octet}.{}.1", i + 1),
            owner: owner.clone(),
            vpc_id: Some(vpc.clone()),
            acl_id: Some(acl),
        });
    }
    Ok(())
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::Value;

    use super::super::tests::{finish_all, run};
    use crate::model::Cloud;
    use crate::seed;
    use crate::tenancy::Owner;

    /// The ids of a cloud seeded with `--vpc demo`.
    pub struct Demo {
        pub vpc: String,
        pub custom: String,
        pub deny: String,
        pub acl: String,
        pub default_deny: String,
        pub default_allow: String,
    }

    pub fn demo() -> (Cloud, Demo) {
        let mut c = seed::cloud();
        super::seed(&mut c, "demo", Owner::Admin).unwrap();
        let net = |c: &Cloud, n: &str| c.networks.iter().find(|x| x.name == n).unwrap().id.clone();
        let list = |c: &Cloud, n: &str| {
            c.vpc
                .acl_lists
                .iter()
                .find(|x| x.name == n)
                .unwrap()
                .id
                .clone()
        };
        let d = Demo {
            vpc: c.vpc.vpcs[0].id.clone(),
            custom: net(&c, "demo-tier-custom"),
            deny: net(&c, "demo-tier-deny"),
            acl: list(&c, "demo-acl"),
            default_deny: list(&c, "default_deny"),
            default_allow: list(&c, "default_allow"),
        };
        (c, d)
    }

    pub fn deploy(c: &mut Cloud, name: &str, network: &str) -> String {
        let zone = c.zones.iter().find(|z| !z.basic()).unwrap().id.clone();
        let (t, o) = (c.templates[0].id.clone(), c.service_offerings[0].id.clone());
        let r = run(
            c,
            "deployVirtualMachine",
            &[
                ("zoneid", &zone),
                ("templateid", &t),
                ("serviceofferingid", &o),
                ("name", name),
                ("networkids", network),
            ],
        )
        .unwrap();
        finish_all(c, None);
        r["id"].as_str().unwrap().to_string()
    }

    pub fn vpc_address(c: &mut Cloud, vpc: &str) -> String {
        let r = run(c, "associateIpAddress", &[("vpcid", vpc)]).unwrap();
        finish_all(c, None);
        r["id"].as_str().unwrap().to_string()
    }

    /// The error of the job an async call started.
    pub fn job_error(c: &mut Cloud, reply: &Value) -> (u64, String) {
        finish_all(c, None);
        let job = c.jobs[reply["jobid"].as_str().unwrap()].render(c);
        assert_eq!(job["jobstatus"], 2, "{job}");
        (
            job["jobresult"]["errorcode"].as_u64().unwrap(),
            job["jobresult"]["errortext"].as_str().unwrap().to_string(),
        )
    }

    fn field<'v>(v: &'v Value, key: &str) -> &'v str {
        v[key].as_str().unwrap_or_default()
    }

    #[test]
    fn the_seeded_vpc_is_listed_with_its_tiers_and_their_lists() {
        let (mut c, d) = demo();
        let r = run(&mut c, "listVPCs", &[]).unwrap();
        assert_eq!(r["count"], 1);
        let vpc = &r["vpc"][0];
        assert_eq!(
            (field(vpc, "name"), field(vpc, "state")),
            ("demo", "Enabled")
        );
        assert_eq!(vpc["network"].as_array().unwrap().len(), 2);
        let r = run(&mut c, "listNetworks", &[("id", &d.custom)]).unwrap();
        let tier = &r["network"][0];
        assert_eq!(field(tier, "vpcid"), d.vpc);
        assert_eq!(
            (field(tier, "aclid"), field(tier, "aclname")),
            (d.acl.as_str(), "demo-acl")
        );
        assert_eq!(field(tier, "acltype"), "Account");
        assert_eq!(
            field(tier, "networkofferingname"),
            "DefaultIsolatedNetworkOfferingForVpcNetworks"
        );
        let r = run(&mut c, "listNetworks", &[("id", &d.deny)]).unwrap();
        assert_eq!(field(&r["network"][0], "aclname"), "default_deny");
        // The VPC's source NAT address.
        let r = run(&mut c, "listPublicIpAddresses", &[("vpcid", &d.vpc)]).unwrap();
        assert_eq!(r["count"], 1);
        assert_eq!(r["publicipaddress"][0]["issourcenat"], true);
        assert!(r["publicipaddress"][0].get("associatednetworkid").is_none());
    }

    #[test]
    fn vpcs_lists_and_pending_acl_jobs_survive_the_state_file() {
        let (mut c, d) = demo();
        let r = run(
            &mut c,
            "createNetworkACL",
            &[("aclid", &d.acl), ("protocol", "tcp"), ("startport", "22")],
        )
        .unwrap();
        let rule = field(&r, "id").to_string();
        run(
            &mut c,
            "updateNetworkACLItem",
            &[("id", &rule), ("cidrlist", "127.0.0.1/32")],
        )
        .unwrap();
        let bytes = serde_json::to_vec(&c).unwrap();
        let mut back: Cloud = serde_json::from_slice(&bytes).unwrap();
        finish_all(&mut back, None);
        let r = run(&mut back, "listNetworkACLs", &[("networkid", &d.custom)]).unwrap();
        assert_eq!(r["networkacl"][0]["cidrlist"], "127.0.0.1/32");
        assert_eq!(r["networkacl"][0]["state"], "Active");
        assert_eq!(run(&mut back, "listVPCs", &[]).unwrap()["count"], 1);
    }

    #[test]
    fn the_default_cloud_has_no_vpc() {
        let mut c = seed::cloud();
        assert_eq!(run(&mut c, "listVPCs", &[]).unwrap(), serde_json::json!({}));
        assert!(c.networks.iter().all(|n| n.vpc_id.is_none()));
    }

    #[test]
    fn create_vpc_is_a_job_that_starts_the_vpc_with_a_source_nat_address() {
        let mut c = seed::cloud();
        let zone = c.zones.iter().find(|z| !z.basic()).unwrap().id.clone();
        let offering = run(&mut c, "listVPCOfferings", &[]).unwrap()["vpcoffering"][0]["id"]
            .as_str()
            .unwrap()
            .to_string();
        let ok = [
            ("name", "v"),
            ("zoneid", zone.as_str()),
            ("vpcofferingid", offering.as_str()),
        ];
        let with = |cidr: &'static str| {
            let mut p = ok.to_vec();
            p.push(("cidr", cidr));
            p
        };
        let e = run(&mut c, "createVPC", &with("10.0.0.0")).unwrap_err();
        assert_eq!(
            (e.code, e.text.as_str()),
            (431, "Invalid CIDR specified 10.0.0.0")
        );
        let e = run(&mut c, "createVPC", &with("8.8.0.0/16")).unwrap_err();
        assert_eq!(e.text, "Guest Cidr 8.8.0.0/16 is not RFC1918 compliant");
        let basic = c.zones.iter().find(|z| z.basic()).unwrap().id.clone();
        let e = run(
            &mut c,
            "createVPC",
            &[
                ("name", "v"),
                ("zoneid", &basic),
                ("vpcofferingid", &offering),
                ("cidr", "10.0.0.0/16"),
            ],
        )
        .unwrap_err();
        assert!(
            e.text
                .starts_with("Provider VpcVirtualRouter should be enabled"),
            "{}",
            e.text
        );

        let r = run(&mut c, "createVPC", &with("10.50.0.0/16")).unwrap();
        let id = field(&r, "id").to_string();
        assert!(r.get("jobid").is_some());
        finish_all(&mut c, None);
        let job = c.jobs[r["jobid"].as_str().unwrap()].render(&c);
        assert_eq!(job["jobresult"]["vpc"]["id"], id.as_str());
        let r = run(&mut c, "listPublicIpAddresses", &[("vpcid", &id)]).unwrap();
        assert_eq!(r["publicipaddress"][0]["issourcenat"], true);
    }

    #[test]
    fn a_vpc_address_serves_the_tier_of_its_first_port_forwarding_rule() {
        let (mut c, d) = demo();
        let web = deploy(&mut c, "web", &d.custom);
        let db = deploy(&mut c, "db", &d.deny);
        let ip = vpc_address(&mut c, &d.vpc);
        let r = run(&mut c, "listPublicIpAddresses", &[("id", &ip)]).unwrap();
        assert_eq!(field(&r["publicipaddress"][0], "vpcid"), d.vpc);
        assert!(r["publicipaddress"][0].get("associatednetworkid").is_none());

        let pf = |vm: &str, port: &'static str| {
            vec![
                ("ipaddressid", ip.clone()),
                ("virtualmachineid", vm.to_string()),
                ("protocol", "tcp".into()),
                ("privateport", "22".into()),
                ("publicport", port.into()),
            ]
        };
        let call = |c: &mut Cloud, v: Vec<(&str, String)>| {
            let v: Vec<(&str, &str)> = v.iter().map(|(a, b)| (*a, b.as_str())).collect();
            run(c, "createPortForwardingRule", &v)
        };
        let e = call(&mut c, pf(&web, "2222")).unwrap_err();
        assert_eq!(
            (e.code, e.text),
            (431, format!("Unable to create port forwarding rule for the ipAddress id={ip} as ip is not associated with any network and no networkId is passed in"))
        );
        let mut open = pf(&web, "2222");
        open.push(("networkid", d.custom.clone()));
        open.push(("openfirewall", "true".into()));
        let e = call(&mut c, open).unwrap_err();
        assert_eq!(
            e.text,
            "Can't have openFirewall=true when IP address belongs to VPC"
        );

        let mut ok = pf(&web, "2222");
        ok.push(("networkid", d.custom.clone()));
        call(&mut c, ok).unwrap();
        finish_all(&mut c, None);
        assert!(c.fw_rules.is_empty(), "no firewall rule in a VPC");
        let r = run(&mut c, "listPublicIpAddresses", &[("id", &ip)]).unwrap();
        assert_eq!(
            field(&r["publicipaddress"][0], "associatednetworkid"),
            d.custom
        );
        let r = run(&mut c, "listPortForwardingRules", &[("ipaddressid", &ip)]).unwrap();
        assert_eq!(field(&r["portforwardingrule"][0], "networkid"), d.custom);
        // Now the address serves that tier only.
        let mut other = pf(&db, "2223");
        other.push(("networkid", d.deny.clone()));
        let e = call(&mut c, other.clone()).unwrap_err();
        assert!(e.text.contains("are in different networks"), "{}", e.text);
        // Its last rule gone, the address serves no tier and may serve another.
        let rule = c.pf_rules[0].id.clone();
        run(&mut c, "deletePortForwardingRule", &[("id", &rule)]).unwrap();
        finish_all(&mut c, None);
        let r = run(&mut c, "listPublicIpAddresses", &[("id", &ip)]).unwrap();
        assert!(r["publicipaddress"][0].get("associatednetworkid").is_none());
        call(&mut c, other).unwrap();
    }

    #[test]
    fn firewall_rules_are_refused_on_vpc_addresses() {
        let (mut c, d) = demo();
        let web = deploy(&mut c, "web", &d.custom);
        let ip = vpc_address(&mut c, &d.vpc);
        let fw = [
            ("ipaddressid", ip.as_str()),
            ("protocol", "tcp"),
            ("startport", "22"),
        ];
        let e = run(&mut c, "createFirewallRule", &fw).unwrap_err();
        assert_eq!(
            (e.code, e.text),
            (431, format!("Unable to create firewall rule for the IP address ID={ip} as IP is not associated with any network and no networkId is passed in"))
        );
        run(
            &mut c,
            "createPortForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("virtualmachineid", &web),
                ("protocol", "tcp"),
                ("privateport", "22"),
                ("publicport", "22"),
                ("networkid", &d.custom),
            ],
        )
        .unwrap();
        let e = run(&mut c, "createFirewallRule", &fw).unwrap_err();
        assert_eq!(
            (e.code, e.text),
            (
                530,
                format!(
                    "Service Firewall is not supported in the network id={}",
                    d.custom
                )
            )
        );
    }

    #[test]
    fn static_nat_in_a_vpc_needs_the_tier() {
        let (mut c, d) = demo();
        let web = deploy(&mut c, "web", &d.custom);
        let ip = vpc_address(&mut c, &d.vpc);
        let e = run(
            &mut c,
            "enableStaticNat",
            &[("ipaddressid", &ip), ("virtualmachineid", &web)],
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.text),
            (431, format!("Unable to enable static NAT for the ipAddress id={ip} as IP is not associated with any network and no networkId is passed in"))
        );
        let e = run(
            &mut c,
            "enableStaticNat",
            &[
                ("ipaddressid", &ip),
                ("virtualmachineid", &web),
                ("networkid", &d.deny),
            ],
        )
        .unwrap_err();
        assert!(
            e.text.contains("is not in the network of ip address"),
            "{}",
            e.text
        );
        run(
            &mut c,
            "enableStaticNat",
            &[
                ("ipaddressid", &ip),
                ("virtualmachineid", &web),
                ("networkid", &d.custom),
            ],
        )
        .unwrap();
        let r = run(&mut c, "listPublicIpAddresses", &[("id", &ip)]).unwrap();
        let a = &r["publicipaddress"][0];
        assert_eq!(
            (field(a, "associatednetworkid"), a["isstaticnat"].as_bool()),
            (d.custom.as_str(), Some(true))
        );
    }
}
