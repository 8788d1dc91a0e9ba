//! Making networks: `createNetwork` for a VPC tier (or an isolated
//! network), and the network offerings it takes (`listNetworkOfferings`),
//! with `NetworkServiceImpl.createGuestNetwork`'s refusals.

use std::net::Ipv4Addr;

use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::model::vpc::TIER_OFFERING_ID;
use crate::model::{Network, ISOLATED_OFFERING_ID, SHARED_OFFERING_ID};
use crate::params::Params;
use crate::seed;

struct Offering {
    id: &'static str,
    name: &'static str,
    display: &'static str,
    guest: &'static str,
    for_vpc: bool,
    services: &'static [&'static str],
}

const OFFERINGS: &[Offering] = &[
    Offering {
        id: ISOLATED_OFFERING_ID,
        name: "DefaultIsolatedNetworkOfferingWithSourceNatService",
        display: "Offering for Isolated networks with Source Nat service enabled",
        guest: "Isolated",
        for_vpc: false,
        services: &[
            "Dhcp",
            "Dns",
            "Firewall",
            "Lb",
            "PortForwarding",
            "SourceNat",
            "StaticNat",
            "UserData",
            "Vpn",
        ],
    },
    Offering {
        id: TIER_OFFERING_ID,
        name: "DefaultIsolatedNetworkOfferingForVpcNetworks",
        display: "Offering for Isolated Vpc networks with Source Nat service enabled",
        guest: "Isolated",
        for_vpc: true,
        services: &[
            "Dhcp",
            "Dns",
            "Lb",
            "NetworkACL",
            "PortForwarding",
            "SourceNat",
            "StaticNat",
            "UserData",
            "Vpn",
        ],
    },
    Offering {
        id: SHARED_OFFERING_ID,
        name: "DefaultSharedNetworkOfferingWithSGService",
        display: "Offering for Shared Security group enabled networks",
        guest: "Shared",
        for_vpc: false,
        services: &["Dhcp", "Dns", "SecurityGroup", "UserData"],
    },
];

impl Offering {
    fn render(&self) -> Value {
        json!({
            "id": self.id,
            "name": self.name,
            "displaytext": self.display,
            "traffictype": "Guest",
            "isdefault": true,
            "specifyvlan": false,
            "conservemode": !self.for_vpc,
            "specifyipranges": self.guest == "Shared",
            "availability": "Optional",
            "networkrate": -1,
            "state": "Enabled",
            "guestiptype": self.guest,
            "forvpc": self.for_vpc,
            "egressdefaultpolicy": false,
            "ispersistent": false,
            "fordisplay": true,
            "service": self.services.iter().map(|s| json!({"name": s})).collect::<Vec<_>>(),
            "created": "2024-01-01T00:00:00+0000",
        })
    }
}

pub fn list_offerings(_ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let filters = [
        field_eq(p, "forvpc", "forvpc"),
        field_eq(p, "guestiptype", "guestiptype"),
        field_eq(p, "state", "state"),
        field_eq(p, "isdefault", "isdefault"),
    ];
    let items = OFFERINGS
        .iter()
        .map(Offering::render)
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list(p, "networkoffering", items)
}

/// A guest address in `cidr` (every simulated network is a /24): `.2` on.
pub fn guest_ip(cidr: &str, n: u32) -> String {
    match cidr.rsplit_once('.') {
        Some((prefix, _)) => format!("{prefix}.{}", n % 250 + 2),
        None => seed::guest_ip(n),
    }
}

fn v4(s: &str) -> Option<u32> {
    s.parse::<Ipv4Addr>().ok().map(u32::from)
}

/// `a.b.c.d/n` of a gateway and netmask, or `None` when either is not one.
fn cidr_of(gateway: &str, netmask: &str) -> Option<(u32, u32)> {
    let (g, m) = (v4(gateway)?, v4(netmask)?);
    let bits = m.leading_ones();
    (m == u32::MAX.checked_shl(32 - bits).unwrap_or(0)).then_some((g & m, bits))
}

fn parse_cidr(cidr: &str) -> Option<(u32, u32)> {
    let (a, b) = cidr.split_once('/')?;
    Some((v4(a)?, b.parse().ok()?))
}

fn show((net, bits): (u32, u32)) -> String {
    format!("{}/{bits}", Ipv4Addr::from(net))
}

/// Whether network `a` lies inside network `b`.
fn within(a: (u32, u32), b: (u32, u32)) -> bool {
    let mask = |bits: u32| u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    a.1 >= b.1 && a.0 & mask(b.1) == b.0 & mask(b.1)
}

fn overlap(a: (u32, u32), b: (u32, u32)) -> bool {
    within(a, b) || within(b, a)
}

/// Synchronous, as `CreateNetworkCmd` is: `{"network": {..}}`.
pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let name = p.req("name")?.to_string();
    let zone = c
        .zone(p.req("zoneid")?)
        .ok_or_else(|| ApiError::invalid("Specified zone id was not found"))?
        .clone();
    let offering_id = p.req("networkofferingid")?;
    let offering = OFFERINGS
        .iter()
        .find(|o| o.id == offering_id)
        .ok_or_else(|| ApiError::bad_uuid("createNetwork", "networkofferingid", offering_id))?;
    let vpc = match p.str("vpcid") {
        Some(v) => {
            if !offering.for_vpc {
                return Err(ApiError::invalid(
                    "Network offering can't be used for VPC networks",
                ));
            }
            let vpc = c
                .vpc
                .vpc(v)
                .ok_or_else(|| ApiError::invalid("Unable to find Enabled VPC by id specified"))?;
            c.may_operate(&vpc.owner)?;
            Some(vpc.clone())
        }
        None if offering.for_vpc => {
            return Err(ApiError::invalid(
                "Network offering can be used for VPC networks only",
            ));
        }
        None => None,
    };
    if offering.guest == "Shared" || zone.basic() {
        return Err(ApiError::invalid(
            "This simulator creates isolated networks and VPC tiers in the Advanced zone only",
        ));
    }
    let owner = ctx.owner_from(p)?;
    let acl = match (p.str("aclid"), &vpc) {
        (Some(a), Some(vpc)) => {
            let list = c
                .vpc
                .list(a)
                .ok_or_else(|| ApiError::invalid("Unable to find specified NetworkACL"))?;
            if !list.system && list.vpc_id.as_deref() != Some(vpc.id.as_str()) {
                return Err(ApiError::invalid(format!(
                    "ACL: {a} do not belong to the VPC"
                )));
            }
            Some(a.to_string())
        }
        _ => None,
    };
    let cidr = match (p.str("gateway"), p.str("netmask")) {
        (Some(g), Some(m)) => cidr_of(g, m)
            .ok_or_else(|| ApiError::invalid(format!("Invalid gateway {g} or netmask {m}")))?,
        (None, None) if vpc.is_none() => {
            let third = 2 + (c.networks.len() % 250) as u8;
            (u32::from(Ipv4Addr::new(10, 1, third, 0)), 24)
        }
        _ => {
            return Err(ApiError::invalid(
                "Gateway/netmask are required when create network for VPC",
            ))
        }
    };
    // VpcManagerImpl.validateNewVpcGuestNetwork, in its order.
    if let Some(vpc) = &vpc {
        let vpc_cidr = parse_cidr(&vpc.cidr).unwrap_or((0, 0));
        if !within(cidr, vpc_cidr) {
            return Err(ApiError::invalid(format!(
                "Network cidr {} is not within vpc {} cidr",
                show(cidr),
                vpc.name
            )));
        }
        for other in c
            .networks
            .iter()
            .filter(|n| n.vpc_id.as_deref() == Some(vpc.id.as_str()))
        {
            if parse_cidr(&other.cidr).is_some_and(|o| overlap(cidr, o)) {
                return Err(ApiError::invalid(format!(
                    "Network cidr {} crosses other network cidr {} belonging to the same vpc {}",
                    show(cidr),
                    other.name,
                    vpc.name
                )));
            }
        }
        if owner != vpc.owner {
            return Err(ApiError::invalid(format!(
                "Vpc {} owner is different from the network owner {}",
                vpc.name,
                c.account_id_of(&owner)
            )));
        }
        if p.str("networkdomain")
            .is_some_and(|d| !d.eq_ignore_ascii_case(&vpc.network_domain))
        {
            return Err(ApiError::invalid(format!(
                "Network domain of the new network should match network domain of vpc {}",
                vpc.name
            )));
        }
        if p.str("gateway") == Some(Ipv4Addr::from(cidr.0).to_string().as_str()) {
            return Err(ApiError::invalid(
                "Invalid gateway specified. It should never be equal to the cidr subnet value",
            ));
        }
    }
    let gateway = p
        .str("gateway")
        .map(str::to_string)
        .unwrap_or_else(|| Ipv4Addr::from(cidr.0 + 1).to_string());
    let id = ctx.id();
    let network = Network {
        id: id.clone(),
        name,
        zone_id: zone.id,
        kind: "Isolated".into(),
        cidr: show(cidr),
        gateway,
        owner,
        vpc_id: vpc.map(|v| v.id),
        acl_id: acl,
    };
    ctx.cloud.networks.push(network);
    let c = &*ctx.cloud;
    let v = c.network(&id).map(|n| n.render(c)).unwrap_or(Value::Null);
    Ok(Reply::Value(json!({"network": v})))
}

#[cfg(test)]
mod tests {
    use super::super::tests::run;
    use super::super::vpc::tests::{demo, deploy};
    use crate::model::vpc::TIER_OFFERING_ID;
    use crate::model::ISOLATED_OFFERING_ID;

    #[test]
    fn a_tier_is_made_in_its_vpc_with_the_vpc_offering_and_the_list_given() {
        let (mut c, d) = demo();
        let r = run(&mut c, "listNetworkOfferings", &[("forvpc", "true")]).unwrap();
        assert_eq!(r["count"], 1);
        assert_eq!(r["networkoffering"][0]["id"], TIER_OFFERING_ID);
        let zone = c.zones.iter().find(|z| !z.basic()).unwrap().id.clone();
        let tier = |extra: &[(&'static str, &'static str)]| {
            let mut p: Vec<(&str, String)> = vec![
                ("name", "app".into()),
                ("zoneid", zone.clone()),
                ("vpcid", d.vpc.clone()),
                ("networkofferingid", TIER_OFFERING_ID.into()),
                ("gateway", "10.10.3.1".into()),
                ("netmask", "255.255.255.0".into()),
                ("aclid", d.acl.clone()),
            ];
            for (k, v) in extra {
                p.retain(|(x, _)| x != k);
                p.push((k, v.to_string()));
            }
            p
        };
        let call = |c: &mut crate::model::Cloud, p: Vec<(&str, String)>| {
            let p: Vec<(&str, &str)> = p.iter().map(|(a, b)| (*a, b.as_str())).collect();
            run(c, "createNetwork", &p)
        };
        let e = call(&mut c, tier(&[("networkofferingid", ISOLATED_OFFERING_ID)])).unwrap_err();
        assert_eq!(e.text, "Network offering can't be used for VPC networks");
        let mut no_vpc = tier(&[]);
        no_vpc.retain(|(k, _)| *k != "vpcid");
        let e = call(&mut c, no_vpc).unwrap_err();
        assert_eq!(e.text, "Network offering can be used for VPC networks only");
        let e = call(&mut c, tier(&[("gateway", "192.168.1.1")])).unwrap_err();
        assert_eq!(
            e.text,
            "Network cidr 192.168.1.0/24 is not within vpc demo cidr"
        );
        let e = call(&mut c, tier(&[("gateway", "10.10.3.0")])).unwrap_err();
        assert_eq!(
            e.text,
            "Invalid gateway specified. It should never be equal to the cidr subnet value"
        );
        let mut bare = tier(&[]);
        bare.retain(|(k, _)| *k != "gateway");
        let e = call(&mut c, bare).unwrap_err();
        assert_eq!(
            e.text,
            "Gateway/netmask are required when create network for VPC"
        );
        let e = call(&mut c, tier(&[("gateway", "10.10.1.1")])).unwrap_err();
        assert!(
            e.text.starts_with(
                "Network cidr 10.10.1.0/24 crosses other network cidr demo-tier-custom"
            ),
            "{}",
            e.text
        );
        super::super::vpc::seed(&mut c, "other", Default::default()).unwrap();
        let foreign = c
            .vpc
            .acl_lists
            .iter()
            .find(|l| l.name == "other-acl")
            .unwrap()
            .id
            .clone();
        let mut p = tier(&[]);
        p.retain(|(k, _)| *k != "aclid");
        p.push(("aclid", foreign.clone()));
        let e = call(&mut c, p).unwrap_err();
        assert_eq!(e.text, format!("ACL: {foreign} do not belong to the VPC"));

        let r = call(&mut c, tier(&[])).unwrap();
        let net = &r["network"];
        assert_eq!(
            (net["vpcid"].as_str(), net["aclid"].as_str()),
            (Some(d.vpc.as_str()), Some(d.acl.as_str()))
        );
        assert_eq!(net["cidr"], "10.10.3.0/24");
        assert_eq!(net["networkofferingid"], TIER_OFFERING_ID);
        let id = net["id"].as_str().unwrap().to_string();
        let vm = deploy(&mut c, "app1", &id);
        let ip = c.vm(&vm).unwrap().nics[0].ip.clone();
        assert!(ip.starts_with("10.10.3."), "{ip}");
    }
}
