//! IP forwarding (static NAT) rules: `createIpForwardingRule`,
//! `deleteIpForwardingRule` and `listIpForwardingRules`, as
//! `CreateIpForwardingRuleCmd` and `RulesManagerImpl.createStaticNatRule`
//! check them. A rule needs an address with static NAT enabled first.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::static_nat::StaticNatRule;
use crate::model::{Cloud, FwRule};
use crate::params::Params;

/// What a static NAT job does when it runs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Job {
    Create { rule: String },
    Delete { rule: String },
}

fn port(p: &Params, name: &str) -> Result<Option<u16>, ApiError> {
    match p.int(name)? {
        None => Ok(None),
        Some(n) if (1..=65535).contains(&n) => Ok(Some(n as u16)),
        Some(n) => Err(ApiError::invalid(format!(
            "Invalid port {n} for parameter {name}: ports are 1 to 65535"
        ))),
    }
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    if p.has("cidrlist") {
        return Err(ApiError::invalid(
            "Parameter cidrList is deprecated; if you need to open firewall rule for the specific CIDR, please refer to createFirewallRule command",
        ));
    }
    let ip_id = p.req("ipaddressid")?.to_string();
    let c = &*ctx.cloud;
    let Some(ip) = c.ip(&ip_id) else {
        return Err(ApiError::invalid(format!(
            "Unable to create static nat rule; ip id={ip_id} doesn't exist in the system"
        )));
    };
    ctx.may_operate(&ip.owner)?;
    if ip.source_nat || ip.static_nat_vm.is_none() {
        return Err(ApiError::conflict(format!(
            "Can't do static nat on ip address: {}",
            ip.address
        )));
    }
    let protocol = p.req("protocol")?.trim().to_string();
    if !["tcp", "udp"].contains(&protocol.to_lowercase().as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid protocol {protocol}: TCP or UDP is expected"
        )));
    }
    let start = port(p, "startport")?.unwrap_or(0);
    let end = port(p, "endport")?.unwrap_or(start);
    if end < start {
        return Err(ApiError::invalid(format!(
            "Invalid port range {start}-{end}: start is after end"
        )));
    }
    if let Some(r) = c.static_nat_rules.iter().find(|r| {
        r.ip_id == ip_id
            && r.protocol.eq_ignore_ascii_case(&protocol)
            && start <= r.end_port
            && r.start_port <= end
    }) {
        return Err(ApiError::conflict(format!(
            "The range specified, {start}-{end}, conflicts with rule {} which has {}-{}",
            r.id, r.start_port, r.end_port
        )));
    }
    let owner = ip.owner.clone();
    let id = ctx.id();
    let firewall_rule = if p.bool("openfirewall").unwrap_or(true) {
        let fw = ctx.id();
        ctx.cloud.fw_rules.push(FwRule {
            id: fw.clone(),
            ip_id: ip_id.clone(),
            protocol: protocol.to_lowercase(),
            start_port: Some(start),
            end_port: Some(end),
            cidrs: "0.0.0.0/0".into(),
            state: "Active".into(),
            owner: owner.clone(),
        });
        Some(fw)
    } else {
        None
    };
    ctx.cloud.static_nat_rules.push(StaticNatRule {
        id: id.clone(),
        ip_id,
        protocol,
        start_port: start,
        end_port: end,
        state: "Add".into(),
        firewall_rule,
        owner,
    });
    Ok(ctx.created(
        "createIpForwardingRule",
        "FirewallRule",
        &id,
        Action::StaticNat {
            job: Job::Create { rule: id.clone() },
        },
    ))
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let Some(rule) = ctx.cloud.static_nat_rules.iter().find(|r| r.id == id) else {
        return Err(ApiError::invalid(format!(
            "Unable to find static nat rule by id: {id}"
        )));
    };
    ctx.may_operate(&rule.owner)?;
    if let Some(r) = ctx.cloud.static_nat_rules.iter_mut().find(|r| r.id == id) {
        r.state = "Revoke".into();
    }
    Ok(ctx.acted(
        "deleteIpForwardingRule",
        "FirewallRule",
        &id,
        Action::StaticNat {
            job: Job::Delete { rule: id.clone() },
        },
    ))
}

/// `ListIpForwardingRulesCmd`: by id, address and VM, within the caller's scope.
pub fn list(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let scope = ctx.scope(p)?;
    let ip = p.str("ipaddressid");
    let vm = field_eq(p, "virtualmachineid", "virtualmachineid");
    let items: Vec<Value> = c
        .static_nat_rules
        .iter()
        .filter(|r| scope.sees(c, &r.owner))
        .filter(|r| ip.is_none_or(|i| i == r.ip_id))
        .map(|r| r.render(c))
        .filter(|v| vm(v))
        .collect();
    list_by(&p.without(&["name"]), "ipforwardingrule", items, &[])
}

/// Runs a static NAT job.
pub fn finish(cloud: &mut Cloud, job: &Job) -> Result<Value, ApiError> {
    match job {
        Job::Create { rule } => {
            let Some(r) = cloud.static_nat_rules.iter_mut().find(|r| &r.id == rule) else {
                return Err(ApiError::internal(
                    "Error in creating IP forwarding rule on the domr",
                ));
            };
            r.state = "Active".into();
            let r = r.clone();
            Ok(json!({"ipforwardingrule": r.render(cloud)}))
        }
        Job::Delete { rule } => {
            remove(cloud, |r| &r.id == rule);
            Ok(json!({"success": true}))
        }
    }
}

/// Undoes what the command did at once when its job fails.
pub fn undo(cloud: &mut Cloud, job: &Job) {
    match job {
        Job::Create { rule } => remove(cloud, |r| &r.id == rule),
        Job::Delete { rule } => {
            if let Some(r) = cloud.static_nat_rules.iter_mut().find(|r| &r.id == rule) {
                r.state = "Active".into();
            }
        }
    }
}

/// Disabling static NAT or releasing the address revokes its static NAT
/// rules (`RulesManagerImpl.revokeAllPFStaticNatRulesForIp`).
pub fn on_static_nat_gone(cloud: &mut Cloud, ip: &str) {
    remove(cloud, |r| r.ip_id == ip);
}

fn remove(cloud: &mut Cloud, which: impl Fn(&StaticNatRule) -> bool) {
    let gone: Vec<StaticNatRule> = cloud
        .static_nat_rules
        .iter()
        .filter(|r| which(r))
        .cloned()
        .collect();
    for r in gone {
        cloud.static_nat_rules.retain(|x| x.id != r.id);
        cloud.tags.retain(|t| t.resource_id != r.id);
        if let Some(fw) = &r.firewall_rule {
            cloud.fw_rules.retain(|f| &f.id != fw);
        }
    }
}
