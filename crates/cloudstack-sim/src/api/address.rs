//! Public IP addresses of the Advanced zone's isolated network, and static
//! NAT, with the server's rules about source NAT and port forwarding.

use serde_json::{json, Value};

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::{Cloud, PublicIp};
use crate::params::Params;
use crate::seed;
use crate::tenancy::Owner;

/// Who gets the address (`AssociateIPAddrCmd.getEntityOwnerId`): the
/// account named with its domain, else the project, else the network's
/// owner, else the caller; then the caller must be allowed to act for it.
fn ip_owner(c: &Cloud, p: &Params) -> Result<Owner, ApiError> {
    let owner = if p.has("account") && p.has("domainid") {
        c.owner_from(p)?
    } else if let Some(id) = p.str("projectid") {
        Owner::Project(
            c.project(id)
                .map(|p| p.id.clone())
                .ok_or_else(|| ApiError::invalid("Unable to find project by ID"))?,
        )
    } else if let Some(net) = p.str("networkid").and_then(|n| c.network(n)) {
        net.owner.clone()
    } else {
        c.owner_from(&Params::default())?
    };
    c.may_operate(&owner)?;
    Ok(owner)
}

pub fn associate(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    if let Some(vpc) = p.str("vpcid") {
        return super::vpc::associate(ctx, vpc);
    }
    let c = &*ctx.cloud;
    let owner = ip_owner(c, p)?;
    let network = match (p.str("networkid"), p.str("zoneid")) {
        (Some(n), _) => c
            .network(n)
            .filter(|n| n.kind == "Isolated")
            .ok_or_else(|| {
                ApiError::invalid(format!(
                    "Unable to associate ip address to network {n}: it is not an isolated network"
                ))
            })?
            .clone(),
        (None, Some(z)) => {
            let zone = c
                .zone(z)
                .ok_or_else(|| ApiError::invalid("Unable to find zone by id"))?;
            if zone.basic() {
                return Err(ApiError::invalid(format!(
                    "Can't associate ip in zone {} of type Basic: it has no public addresses",
                    zone.name
                )));
            }
            c.networks
                .iter()
                .find(|n| n.zone_id == zone.id && n.kind == "Isolated" && n.owner == owner)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "The zone has no isolated network to associate the address with",
                    )
                })?
                .clone()
        }
        (None, None) => {
            return Err(ApiError::invalid(
                "Either networkId or zoneId has to be specified",
            ));
        }
    };
    c.check_network_use(&owner, &network)?;
    ctx.cloud.counters.public_ip += 1;
    let address = seed::public_ip(ctx.cloud.counters.public_ip);
    let id = ctx.id();
    ctx.cloud.ips.push(PublicIp {
        id: id.clone(),
        address,
        zone_id: network.zone_id.clone(),
        network_id: Some(network.id.clone()),
        source_nat: false,
        static_nat_vm: None,
        allocated: ctx.now,
        state: "Allocating".into(),
        owner,
        vpc_id: None,
    });
    Ok(ctx.created(
        "associateIpAddress",
        "IpAddress",
        &id,
        Action::IpAssociate { ip: id.clone() },
    ))
}

pub fn disassociate(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let ip = ctx
        .cloud
        .ip(&id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find ip address by id={id}")))?;
    ctx.may_operate(&ip.owner)?;
    if ip.source_nat {
        return Err(ApiError::invalid(format!(
            "IP address id={id} is a source nat ip address; it can't be released"
        )));
    }
    ctx.cloud
        .ips
        .iter_mut()
        .filter(|i| i.id == id)
        .for_each(|i| i.state = "Releasing".into());
    Ok(ctx.acted(
        "disassociateIpAddress",
        "IpAddress",
        &id,
        Action::IpDisassociate { ip: id.clone() },
    ))
}

pub fn list_ips(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "zoneid", "zoneid"),
        field_eq(p, "ipaddress", "ipaddress"),
        field_eq(p, "associatednetworkid", "associatednetworkid"),
        field_eq(p, "issourcenat", "issourcenat"),
        field_eq(p, "isstaticnat", "isstaticnat"),
        field_eq(p, "state", "state"),
        field_eq(p, "vpcid", "vpcid"),
    ];
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .ips
        .iter()
        .filter(|i| scope.sees(c, &i.owner))
        .map(|i| i.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "publicipaddress", items, &["ipaddress"])
}

/// Synchronous on the real server.
pub fn enable_static_nat(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let ip_id = p.req("ipaddressid")?.to_string();
    let vm_id = p.req("virtualmachineid")?.to_string();
    let c = &*ctx.cloud;
    let ip = c
        .ip(&ip_id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find ip address by id {ip_id}")))?;
    let vm = c
        .vm(&vm_id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find vm by id {vm_id}")))?;
    c.may_operate(&ip.owner)?;
    c.may_operate(&vm.owner)?;
    let tier = super::vpc::tier_for(c, ip, p, super::vpc::RuleKind::StaticNat)?;
    let network = tier.clone().or_else(|| ip.network_id.clone());
    if ip.source_nat {
        return Err(ApiError::invalid(format!(
            "Can't enable static nat on the source nat ip address {}",
            ip.address
        )));
    }
    if c.pf_rules.iter().any(|r| r.ip_id == ip_id) {
        return Err(ApiError::conflict(format!(
            "Failed to enable static nat for the ip address id={ip_id} as it already has port forwarding rules assigned"
        )));
    }
    if let Some(other) = &ip.static_nat_vm {
        if *other != vm_id {
            return Err(ApiError::conflict(format!(
                "Failed to enable static nat for the ip address id={ip_id} as it is already assigned to a vm"
            )));
        }
    }
    if c.ips
        .iter()
        .any(|i| i.id != ip_id && i.static_nat_vm.as_deref() == Some(vm_id.as_str()))
    {
        return Err(ApiError::invalid(format!(
            "Failed to enable static nat for the ip address id={ip_id} as vm id={vm_id} is already associated with another public ip"
        )));
    }
    if vm
        .nics
        .first()
        .map(|n| Some(&n.network_id) != network.as_ref())
        .unwrap_or(true)
    {
        return Err(ApiError::invalid(format!(
            "Virtual machine {} is not in the network of ip address {}",
            vm.name, ip.address
        )));
    }
    if let Some(t) = &tier {
        super::vpc::tie(ctx.cloud, &ip_id, t);
    }
    for i in ctx.cloud.ips.iter_mut().filter(|i| i.id == ip_id) {
        i.static_nat_vm = Some(vm_id.clone());
    }
    ctx.dirty = true;
    Ok(Reply::Value(json!({"success": true})))
}

pub fn disable_static_nat(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let ip_id = p.req("ipaddressid")?.to_string();
    let ip = ctx
        .cloud
        .ip(&ip_id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find ip address by id {ip_id}")))?;
    ctx.may_operate(&ip.owner)?;
    if ip.static_nat_vm.is_none() {
        return Err(ApiError::invalid(
            "Specified IP address id is not associated with any vm Id",
        ));
    }
    Ok(ctx.acted(
        "disableStaticNat",
        "IpAddress",
        &ip_id,
        Action::StaticNatDisable { ip: ip_id.clone() },
    ))
}
