//! VPCs, their tiers' network ACL lists and the lists' rules, as
//! `VpcManagerImpl`, `NetworkACLServiceImpl` and `NetworkACLManagerImpl` keep
//! them, and how each renders (`ApiResponseHelper.createVpcResponse`,
//! `createNetworkACLResponse`, `createNetworkACLItemResponse`).
//!
//! A tier is a [`Network`] with `vpc_id` and `acl_id` set. The two system
//! lists, `default_allow` and `default_deny`, belong to no VPC and hold the
//! rules CloudStack's schema gives them, so one evaluation ([`admits`])
//! serves every list.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{merge, Cloud, Network};
use crate::clock;
use crate::tenancy::Owner;

pub const DEFAULT_ALLOW: &str = "default_allow";
pub const DEFAULT_DENY: &str = "default_deny";
pub const VPC_OFFERING: &str = "Default VPC offering";
/// The offering a tier gets, instead of the isolated network's.
const TIER_OFFERING: &str = "DefaultIsolatedNetworkOfferingForVpcNetworks";
pub const TIER_OFFERING_ID: &str = "3b1f4b0e-6a4c-4d2e-9b8a-1c0d2e3f4a03";

/// Everything VPC-shaped in the cloud; absent from older state files.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VpcState {
    /// The one VPC offering, "Default VPC offering".
    pub offering_id: String,
    pub vpcs: Vec<Vpc>,
    pub acl_lists: Vec<AclList>,
    pub acl_rules: Vec<AclRule>,
}

impl VpcState {
    /// The offering and the two system lists with their rules, as a fresh
    /// installation has them; `id` hands out known ids.
    pub fn seeded(id: &mut dyn FnMut() -> String) -> VpcState {
        let mut s = VpcState {
            offering_id: id(),
            ..Default::default()
        };
        for (name, description, action) in [
            (DEFAULT_DENY, "Default Network ACL Deny All", Verdict::Deny),
            (
                DEFAULT_ALLOW,
                "Default Network ACL Allow All",
                Verdict::Allow,
            ),
        ] {
            let list = id();
            for (number, traffic) in [(1, Traffic::Ingress), (2, Traffic::Egress)] {
                s.acl_rules.push(AclRule {
                    id: id(),
                    acl_id: list.clone(),
                    number,
                    protocol: "all".into(),
                    start_port: None,
                    end_port: None,
                    cidrs: vec!["0.0.0.0/0".into()],
                    traffic,
                    action,
                    icmp_type: None,
                    icmp_code: None,
                    reason: None,
                    state: "Active".into(),
                });
            }
            s.acl_lists.push(AclList {
                id: list,
                name: name.into(),
                description: description.into(),
                vpc_id: None,
                system: true,
            });
        }
        s
    }

    pub fn vpc(&self, id: &str) -> Option<&Vpc> {
        self.vpcs.iter().find(|v| v.id == id)
    }

    pub fn list(&self, id: &str) -> Option<&AclList> {
        self.acl_lists.iter().find(|l| l.id == id)
    }

    pub fn rule(&self, id: &str) -> Option<&AclRule> {
        self.acl_rules.iter().find(|r| r.id == id)
    }

    pub fn system_list(&self, name: &str) -> Option<&AclList> {
        self.acl_lists.iter().find(|l| l.system && l.name == name)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vpc {
    pub id: String,
    pub name: String,
    pub display_text: String,
    pub zone_id: String,
    pub cidr: String,
    pub network_domain: String,
    /// `Enabled` (a VPC is usable at once) or `Inactive`.
    pub state: String,
    pub created: u64,
    pub owner: Owner,
}

const VPC_SERVICES: &[&str] = &[
    "Dhcp",
    "Dns",
    "Lb",
    "NetworkACL",
    "PortForwarding",
    "SourceNat",
    "StaticNat",
    "UserData",
    "Vpn",
];

fn services(names: &[&str]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|n| json!({"name": n, "provider": [{"name": "VpcVirtualRouter"}]}))
            .collect(),
    )
}

impl Vpc {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let tiers: Vec<Value> = cloud
            .networks
            .iter()
            .filter(|n| n.vpc_id.as_deref() == Some(self.id.as_str()))
            .map(|n| n.render(cloud))
            .collect();
        merge(
            json!({
                "id": self.id,
                "name": self.name,
                "displaytext": self.display_text,
                "state": self.state,
                "zoneid": self.zone_id,
                "zonename": cloud.zone(&self.zone_id).map(|z| z.name.clone()).unwrap_or_default(),
                "service": services(VPC_SERVICES),
                "cidr": self.cidr,
                "vpcofferingid": cloud.vpc.offering_id,
                "vpcofferingname": VPC_OFFERING,
                "created": clock::format_ms(self.created),
                "network": tiers,
                "restartrequired": false,
                "networkdomain": self.network_domain,
                "tags": cloud.tags_of(&self.id),
                "fordisplay": true,
                "distributedvpcrouter": false,
                "regionlevelvpc": false,
                "redundantvpcrouter": false,
                "hasannotations": false,
            }),
            cloud.owner_fields(&self.owner),
        )
    }
}

/// `listVPCOfferings`' one offering.
pub fn render_offering(cloud: &Cloud) -> Value {
    json!({
        "id": cloud.vpc.offering_id,
        "name": VPC_OFFERING,
        "displaytext": VPC_OFFERING,
        "isdefault": true,
        "state": "Enabled",
        "service": services(VPC_SERVICES),
        "distributedvpcrouter": false,
        "supportsregionLevelvpc": false,
        "created": "2024-01-01T00:00:00+0000",
    })
}

/// What a tier adds to, and changes in, an isolated network's response.
pub fn tier_fields(cloud: &Cloud, net: &Network, v: &mut Value) {
    let Some(vpc_id) = &net.vpc_id else { return };
    let vpc = cloud.vpc.vpc(vpc_id);
    v["vpcid"] = json!(vpc_id);
    v["vpcname"] = json!(vpc.map(|x| x.name.clone()).unwrap_or_default());
    v["networkofferingid"] = json!(TIER_OFFERING_ID);
    v["networkofferingname"] = json!(TIER_OFFERING);
    v["networkofferingdisplaytext"] =
        json!("Offering for Isolated Vpc networks with Source Nat service enabled");
    v["networkdomain"] = json!(vpc.map(|x| x.network_domain.clone()).unwrap_or_default());
    v["isdefault"] = json!(false);
    v["service"] = services(&[
        "Dhcp",
        "Dns",
        "Lb",
        "NetworkACL",
        "PortForwarding",
        "SourceNat",
        "StaticNat",
        "UserData",
    ]);
    if let Some(list) = net.acl_id.as_deref().and_then(|a| cloud.vpc.list(a)) {
        v["aclid"] = json!(list.id);
        v["aclname"] = json!(list.name);
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AclList {
    pub id: String,
    pub name: String,
    pub description: String,
    /// `None` for a global list (vpc_id 0): the system lists, or one the
    /// root admin made without `vpcid`.
    pub vpc_id: Option<String>,
    /// `default_allow` or `default_deny` (ids 1 and 2 in CloudStack).
    pub system: bool,
}

impl AclList {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = json!({"id": self.id, "name": self.name, "fordisplay": true});
        if !self.description.is_empty() {
            v["description"] = json!(self.description);
        }
        if let Some(vpc) = self.vpc_id.as_deref().and_then(|id| cloud.vpc.vpc(id)) {
            v["vpcid"] = json!(vpc.id);
            v["vpcname"] = json!(vpc.name);
        }
        v
    }

    /// The owner whose rights decide who may change it: its VPC's.
    pub fn owner<'c>(&self, cloud: &'c Cloud) -> Option<&'c Owner> {
        self.vpc_id
            .as_deref()
            .and_then(|id| cloud.vpc.vpc(id))
            .map(|v| &v.owner)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Traffic {
    Ingress,
    Egress,
}

impl Traffic {
    pub fn parse(s: &str) -> Option<Traffic> {
        match s.to_ascii_lowercase().as_str() {
            "ingress" => Some(Traffic::Ingress),
            "egress" => Some(Traffic::Egress),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Traffic::Ingress => "Ingress",
            Traffic::Egress => "Egress",
        }
    }
}

/// A rule's `action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Verdict {
    Allow,
    Deny,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Allow => "Allow",
            Verdict::Deny => "Deny",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AclRule {
    pub id: String,
    pub acl_id: String,
    /// Evaluation order within the list, lowest first; unique per list.
    pub number: u32,
    /// As given (trimmed): `tcp`, `udp`, `icmp`, `all` or a protocol number.
    pub protocol: String,
    pub start_port: Option<u16>,
    pub end_port: Option<u16>,
    pub cidrs: Vec<String>,
    pub traffic: Traffic,
    pub action: Verdict,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub reason: Option<String>,
    /// `Add` until its job applies it, then `Active`.
    pub state: String,
}

impl AclRule {
    /// Ports are strings in this response, as in real captures.
    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = json!({
            "id": self.id,
            "protocol": self.protocol,
            "traffictype": self.traffic.name(),
            "state": self.state,
            "cidrlist": self.cidrs.join(","),
            "aclid": self.acl_id,
            "aclname": cloud.vpc.list(&self.acl_id).map(|l| l.name.clone()).unwrap_or_default(),
            "number": self.number,
            "action": self.action.name(),
            "fordisplay": true,
            "tags": cloud.tags_of(&self.id),
        });
        if let (Some(s), Some(e)) = (self.start_port, self.end_port) {
            v["startport"] = json!(s.to_string());
            v["endport"] = json!(e.to_string());
        }
        if let Some(t) = self.icmp_type {
            v["icmptype"] = json!(t);
        }
        if let Some(c) = self.icmp_code {
            v["icmpcode"] = json!(c);
        }
        if let Some(r) = &self.reason {
            v["reason"] = json!(r);
        }
        v
    }

    fn protocol_matches(&self, protocol: &str) -> bool {
        let own = match self.protocol.to_ascii_lowercase().as_str() {
            "6" => "tcp".to_string(),
            "17" => "udp".to_string(),
            p => p.to_string(),
        };
        own == "all" || own == protocol
    }

    fn port_matches(&self, port: u16) -> bool {
        match (self.start_port, self.end_port) {
            (Some(s), Some(e)) => s <= port && port <= e,
            _ => true,
        }
    }
}

/// Whether `cidr` (`a.b.c.d/n` or an IPv6 one) is well-formed, as
/// `NetUtils.isValidIp4Cidr`/`isValidIp6Cidr` judge it.
pub fn valid_cidr(cidr: &str) -> bool {
    let Some((addr, bits)) = cidr.split_once('/') else {
        return false;
    };
    let Ok(bits) = bits.parse::<u8>() else {
        return false;
    };
    if addr.parse::<Ipv4Addr>().is_ok() {
        return bits <= 32;
    }
    addr.parse::<Ipv6Addr>().is_ok() && bits <= 128
}

fn cidr_contains(cidr: &str, source: Ipv4Addr) -> bool {
    let Some((addr, bits)) = cidr.split_once('/') else {
        return false;
    };
    let (Ok(IpAddr::V4(net)), Ok(bits)) = (addr.parse::<IpAddr>(), bits.parse::<u32>()) else {
        return false;
    };
    if bits > 32 {
        return false;
    }
    let mask = if bits == 0 {
        0
    } else {
        u32::MAX << (32 - bits)
    };
    u32::from(net) & mask == u32::from(source) & mask
}

/// Whether the ACL list of tier `network` lets `protocol` traffic from
/// `source` in to `port` on a guest: the Active Ingress rules in `number`
/// order, the first that matches decides; none matching is a deny, as the
/// VPC router's default for a tier's ingress.
pub fn admits(cloud: &Cloud, network: &str, protocol: &str, port: u16, source: Ipv4Addr) -> bool {
    let Some(acl) = cloud.network(network).and_then(|n| n.acl_id.as_deref()) else {
        return false;
    };
    let mut rules: Vec<&AclRule> = cloud
        .vpc
        .acl_rules
        .iter()
        .filter(|r| r.acl_id == acl && r.traffic == Traffic::Ingress && r.state == "Active")
        .collect();
    rules.sort_by_key(|r| r.number);
    rules
        .into_iter()
        .find(|r| {
            r.protocol_matches(protocol)
                && r.port_matches(port)
                && r.cidrs.iter().any(|c| cidr_contains(c, source))
        })
        .is_some_and(|r| r.action == Verdict::Allow)
}

/// The ports a tier's list opens to `source` for `protocol`, for a static
/// NAT address (which forwards whatever the list admits): the port ranges of
/// its Allow rules that [`admits`] confirms. A rule without ports (all
/// ports) opens none here: the backing cannot listen on every port.
pub fn open_ports(
    cloud: &Cloud,
    network: &str,
    protocol: &str,
    source: Ipv4Addr,
) -> Vec<(u16, u16)> {
    let Some(acl) = cloud.network(network).and_then(|n| n.acl_id.clone()) else {
        return vec![];
    };
    cloud
        .vpc
        .acl_rules
        .iter()
        .filter(|r| r.acl_id == acl && r.traffic == Traffic::Ingress && r.action == Verdict::Allow)
        .filter(|r| r.protocol_matches(protocol))
        .filter_map(|r| r.start_port.zip(r.end_port))
        .filter(|(s, _)| admits(cloud, network, protocol, *s, source))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_are_checked_and_matched_like_netutils() {
        assert!(valid_cidr("10.0.0.0/8"));
        assert!(valid_cidr("127.0.0.1/32"));
        assert!(valid_cidr("::/0"));
        assert!(!valid_cidr("10.0.0.0"));
        assert!(!valid_cidr("10.0.0.0/33"));
        assert!(!valid_cidr("300.0.0.0/8"));
        let lo = Ipv4Addr::new(127, 0, 0, 1);
        assert!(cidr_contains("0.0.0.0/0", lo));
        assert!(cidr_contains("127.0.0.0/8", lo));
        assert!(cidr_contains("127.0.0.1/32", lo));
        assert!(!cidr_contains("127.0.0.2/32", lo));
        assert!(!cidr_contains("192.0.2.0/24", lo));
        assert!(!cidr_contains("::/0", lo));
    }
}
