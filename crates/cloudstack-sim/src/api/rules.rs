//! Port forwarding and firewall rules on public addresses, with the
//! server's conflict detection (`FirewallManagerImpl.detectRulesConflict`).

use serde_json::Value;

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::{FwRule, PfRule};
use crate::params::Params;

fn port(p: &Params, name: &str) -> Result<Option<u16>, ApiError> {
    match p.int(name)? {
        None => Ok(None),
        Some(n) if (1..=65535).contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(ApiError::invalid(format!(
            "Invalid port {n} for parameter {name}: ports are 1 to 65535"
        ))),
    }
}

fn range(start: u16, end: Option<u16>, what: &str) -> Result<(u16, u16), ApiError> {
    let end = end.unwrap_or(start);
    if end < start {
        return Err(ApiError::invalid(format!(
            "Invalid {what} port range {start}-{end}: start is after end"
        )));
    }
    Ok((start, end))
}

fn overlaps(a: (u16, u16), b: (u16, u16)) -> bool {
    a.0 <= b.1 && b.0 <= a.1
}

fn protocol(p: &Params, allowed: &[&str]) -> Result<String, ApiError> {
    let proto = p.req("protocol")?.to_lowercase();
    if !allowed.contains(&proto.as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid protocol {proto}: one of {} is expected",
            allowed.join(", ")
        )));
    }
    Ok(proto)
}

pub fn create_pf(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let ip_id = p.req("ipaddressid")?.to_string();
    let vm_id = p.req("virtualmachineid")?.to_string();
    let proto = protocol(p, &["tcp", "udp"])?;
    let public = range(
        port(p, "publicport")?.unwrap_or(0),
        port(p, "publicendport")?,
        "public",
    )?;
    let private = range(
        port(p, "privateport")?.unwrap_or(0),
        port(p, "privateendport")?,
        "private",
    )?;
    if public.1 - public.0 != private.1 - private.0 {
        return Err(ApiError::invalid(
            "Private port range and public port range should be of equal size",
        ));
    }
    let cidrs = p.str("cidrlist").unwrap_or("").to_string();
    let c = &*ctx.cloud;
    let ip = c.ip(&ip_id).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unable to create port forwarding rule; ip id={ip_id} doesn't exist in the system"
        ))
    })?;
    let vm = c
        .vm(&vm_id)
        .ok_or_else(|| ApiError::invalid(format!("Unable to find vm by id {vm_id}")))?;
    c.may_operate(&ip.owner)?;
    c.may_operate(&vm.owner)?;
    let owner = ip.owner.clone();
    if ip.vpc_id.is_some() && p.bool("openfirewall") == Some(true) {
        return Err(ApiError::invalid(
            "Can't have openFirewall=true when IP address belongs to VPC",
        ));
    }
    let tier = super::vpc::tier_for(c, ip, p, super::vpc::RuleKind::PortForwarding)?;
    let network = tier.clone().or_else(|| ip.network_id.clone());
    if ip.static_nat_vm.is_some() {
        return Err(ApiError::conflict(format!(
            "There is 1 to 1 Nat rule specified for the ip address id={ip_id}"
        )));
    }
    if vm
        .nics
        .first()
        .map(|n| Some(&n.network_id) != network.as_ref())
        .unwrap_or(true)
    {
        return Err(ApiError::invalid(format!(
            "Unable to create port forwarding rule; vm {} and ip address {} are in different networks",
            vm.name, ip.address
        )));
    }
    if matches!(vm.state.as_str(), "Destroyed" | "Expunging" | "Error") {
        return Err(ApiError::invalid(format!(
            "Unable to create port forwarding rule for vm {} in state {}",
            vm.name, vm.state
        )));
    }
    for r in c
        .pf_rules
        .iter()
        .filter(|r| r.ip_id == ip_id && r.protocol == proto && r.state != "Revoke")
    {
        if overlaps(public, (r.public_port, r.public_end_port)) {
            return Err(ApiError::conflict(format!(
                "The range specified, {}-{}, conflicts with rule {} which has {}-{}",
                public.0, public.1, r.id, r.public_port, r.public_end_port
            )));
        }
    }
    // A VPC has no firewall: its tiers' network ACLs admit the traffic.
    let open_firewall = p.bool("openfirewall").unwrap_or(tier.is_none());
    if let Some(t) = &tier {
        super::vpc::tie(ctx.cloud, &ip_id, t);
    }
    let id = ctx.id();
    ctx.cloud.pf_rules.push(PfRule {
        id: id.clone(),
        ip_id: ip_id.clone(),
        protocol: proto.clone(),
        private_port: private.0,
        private_end_port: private.1,
        public_port: public.0,
        public_end_port: public.1,
        vm_id,
        cidrs: cidrs.clone(),
        state: "Add".into(),
        owner: owner.clone(),
    });
    if open_firewall {
        let fw = ctx.id();
        ctx.cloud.fw_rules.push(FwRule {
            id: fw,
            ip_id,
            protocol: proto,
            start_port: Some(public.0),
            end_port: Some(public.1),
            cidrs: if cidrs.is_empty() {
                "0.0.0.0/0".into()
            } else {
                cidrs
            },
            state: "Active".into(),
            owner,
        });
    }
    Ok(ctx.created(
        "createPortForwardingRule",
        "FirewallRule",
        &id,
        Action::PfCreate { rule: id.clone() },
    ))
}

pub fn delete_pf(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    if let Some(rule) = ctx.cloud.pf_rules.iter().find(|r| r.id == id) {
        ctx.may_operate(&rule.owner)?;
    }
    let Some(rule) = ctx.cloud.pf_rules.iter_mut().find(|r| r.id == id) else {
        return Err(ApiError::invalid(format!(
            "Unable to find port forwarding rule {id}"
        )));
    };
    rule.state = "Revoke".into();
    Ok(ctx.acted(
        "deletePortForwardingRule",
        "FirewallRule",
        &id,
        Action::PfDelete { rule: id.clone() },
    ))
}

pub fn list_pf(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "ipaddressid", "ipaddressid"),
        field_eq(p, "networkid", "networkid"),
        field_eq(p, "virtualmachineid", "virtualmachineid"),
    ];
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .pf_rules
        .iter()
        .filter(|r| scope.sees(c, &r.owner))
        .map(|r| r.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(
        p,
        "portforwardingrule",
        items,
        &["ipaddress", "virtualmachinename"],
    )
}

pub fn create_fw(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let ip_id = p.req("ipaddressid")?.to_string();
    let proto = protocol(p, &["tcp", "udp", "icmp", "all"])?;
    let ports = match (port(p, "startport")?, port(p, "endport")?) {
        (Some(s), e) if proto == "tcp" || proto == "udp" => Some(range(s, e, "firewall")?),
        (None, _) if proto == "tcp" || proto == "udp" => None,
        (None, None) => None,
        _ => {
            return Err(ApiError::invalid(format!(
                "Can't specify start/end port when protocol is {proto}"
            )))
        }
    };
    let cidrs = p.list("cidrlist").join(",");
    let cidrs = if cidrs.is_empty() {
        "0.0.0.0/0".to_string()
    } else {
        cidrs
    };
    let c = &*ctx.cloud;
    let ip = c.ip(&ip_id).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unable to create firewall rule; ip id={ip_id} doesn't exist in the system"
        ))
    })?;
    c.may_operate(&ip.owner)?;
    super::vpc::refuse_firewall(ip)?;
    let owner = ip.owner.clone();
    for r in c
        .fw_rules
        .iter()
        .filter(|r| r.ip_id == ip_id && r.state != "Revoke")
    {
        let same_ports = match (ports, r.start_port.zip(r.end_port)) {
            (Some(a), Some(b)) => overlaps(a, b),
            (None, None) => true,
            _ => proto == "all" || r.protocol == "all",
        };
        if (r.protocol == proto || proto == "all" || r.protocol == "all")
            && same_ports
            && r.cidrs == cidrs
        {
            return Err(ApiError::conflict(format!(
                "There is already a firewall rule specified with protocol {} and cidrs {} on ip address id={ip_id} (rule {})",
                r.protocol, r.cidrs, r.id
            )));
        }
    }
    let id = ctx.id();
    ctx.cloud.fw_rules.push(FwRule {
        id: id.clone(),
        ip_id,
        protocol: proto,
        start_port: ports.map(|r| r.0),
        end_port: ports.map(|r| r.1),
        cidrs,
        state: "Add".into(),
        owner,
    });
    Ok(ctx.created(
        "createFirewallRule",
        "FirewallRule",
        &id,
        Action::FwCreate { rule: id.clone() },
    ))
}

pub fn delete_fw(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    if let Some(rule) = ctx.cloud.fw_rules.iter().find(|r| r.id == id) {
        ctx.may_operate(&rule.owner)?;
    }
    let Some(rule) = ctx.cloud.fw_rules.iter_mut().find(|r| r.id == id) else {
        return Err(ApiError::invalid(format!(
            "Unable to find firewall rule {id}"
        )));
    };
    rule.state = "Revoke".into();
    Ok(ctx.acted(
        "deleteFirewallRule",
        "FirewallRule",
        &id,
        Action::FwDelete { rule: id.clone() },
    ))
}

pub fn list_fw(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "ipaddressid", "ipaddressid"),
        field_eq(p, "networkid", "networkid"),
    ];
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .fw_rules
        .iter()
        .filter(|r| scope.sees(c, &r.owner))
        .map(|r| r.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "firewallrule", items, &["ipaddress", "protocol"])
}
