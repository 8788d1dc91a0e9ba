//! Network ACL lists and their rules (`NetworkACLServiceImpl`,
//! `NetworkACLManagerImpl`), with CloudStack's refusals and texts: the
//! system lists `default_allow` and `default_deny` can't be edited or
//! removed, a list in use can't be deleted, a list serves only tiers of its
//! own VPC. Errors CloudStack raises inside the job (delete, replace,
//! update) fail the job here too; those of `create()` answer the call.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::list::{list, list_by};
use super::vpc::VpcJob;
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::vpc::{valid_cidr, AclList, AclRule, Traffic, Verdict};
use crate::model::Cloud;
use crate::params::Params;
use crate::tenancy::{denied, Role};

fn is_root_admin(c: &Cloud) -> bool {
    c.caller().role == Role::Admin
}

/// `validateGlobalAclPermissionAndAclAssociatedToVpc`: a global list is the
/// root admin's; a VPC's list, its VPC owner's.
fn may_change(c: &Cloud, list: &AclList, global_text: &str) -> Result<(), ApiError> {
    match list.owner(c) {
        Some(owner) => c.may_operate(owner),
        None if is_root_admin(c) => Ok(()),
        None => Err(denied(global_text)),
    }
}

/// The lists a caller sees: those of the VPCs it sees, and the global ones.
fn visible_list(c: &Cloud, scope: &crate::tenancy::Scope, list: &AclList) -> bool {
    match list.owner(c) {
        Some(owner) => scope.sees(c, owner),
        None => true,
    }
}

pub fn list_lists(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let scope = ctx.scope(p)?;
    let vpc = p.str("vpcid");
    if let Some(v) = vpc {
        let vpc = c
            .vpc
            .vpc(v)
            .ok_or_else(|| ApiError::invalid("Unable to find VPC"))?;
        c.may_operate(&vpc.owner)?;
    }
    let attached = p
        .str("networkid")
        .map(|n| c.network(n).and_then(|n| n.acl_id.clone()));
    let items: Vec<Value> = c
        .vpc
        .acl_lists
        .iter()
        // With `vpcid`, that VPC's lists and the global ones (vpc_id 0).
        .filter(|l| match vpc {
            Some(v) => l.vpc_id.is_none() || l.vpc_id.as_deref() == Some(v),
            None => visible_list(c, &scope, l),
        })
        .filter(|l| match &attached {
            Some(a) => a.as_deref() == Some(l.id.as_str()),
            None => true,
        })
        .map(|l| l.render(c))
        .collect();
    list_by(p, "networkacllist", items, &["name", "description"])
}

pub fn create_list(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let name = p.req("name")?.to_string();
    let vpc = p.str("vpcid").map(str::to_string);
    match &vpc {
        Some(v) => {
            let vpc = c
                .vpc
                .vpc(v)
                .ok_or_else(|| ApiError::invalid(format!("Unable to find VPC with ID [{v}].")))?;
            c.may_operate(&vpc.owner)?;
        }
        None if !is_root_admin(c) => {
            return Err(denied("Only Root Admin can create global ACLs."));
        }
        None => {}
    }
    let id = ctx.id();
    ctx.cloud.vpc.acl_lists.push(AclList {
        id: id.clone(),
        name,
        description: p.str("description").unwrap_or_default().to_string(),
        vpc_id: vpc,
        system: false,
    });
    Ok(ctx.created(
        "createNetworkACLList",
        "NetworkAcl",
        &id,
        Action::Vpc {
            job: VpcJob::ListCreate { list: id.clone() },
        },
    ))
}

pub fn finish_list_create(cloud: &mut Cloud, list: &str) -> Result<Value, ApiError> {
    let l = cloud.vpc.list(list).map(|l| l.render(cloud));
    match l {
        Some(l) => Ok(json!({"networkacllist": l})),
        None => Err(ApiError::internal("Failed to create network ACL")),
    }
}

/// The list or rule named by `id`, or the 431 of a uuid that names nothing:
/// CloudStack deletes these rows, so a removed one is unknown.
fn exists(command: &str, found: bool, id: &str) -> Result<(), ApiError> {
    if found {
        Ok(())
    } else {
        Err(ApiError::bad_uuid(command, "id", id))
    }
}

pub fn delete_list(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    exists(
        "deleteNetworkACLList",
        ctx.cloud.vpc.list(&id).is_some(),
        &id,
    )?;
    Ok(ctx.acted(
        "deleteNetworkACLList",
        "NetworkAcl",
        &id,
        Action::Vpc {
            job: VpcJob::ListDelete { list: id.clone() },
        },
    ))
}

pub fn finish_list_delete(cloud: &mut Cloud, id: &str) -> Result<Value, ApiError> {
    let list = cloud
        .vpc
        .list(id)
        .cloned()
        .ok_or_else(|| ApiError::invalid("Unable to find specified ACL"))?;
    if list.system {
        return Err(ApiError::invalid("Default ACL cannot be removed"));
    }
    may_change(cloud, &list, "Only Root Admin can delete global ACLs.")?;
    let tiers = cloud
        .networks
        .iter()
        .filter(|n| n.acl_id.as_deref() == Some(id))
        .count();
    if tiers > 0 {
        return Err(ApiError::internal(format!(
            "ACL is still associated with {tiers} tier(s). Cannot delete network ACL: {id}"
        )));
    }
    let rules: Vec<String> = cloud
        .vpc
        .acl_rules
        .iter()
        .filter(|r| r.acl_id == id)
        .map(|r| r.id.clone())
        .collect();
    cloud.vpc.acl_rules.retain(|r| r.acl_id != id);
    cloud.vpc.acl_lists.retain(|l| l.id != id);
    cloud
        .tags
        .retain(|t| t.resource_id != id && !rules.contains(&t.resource_id));
    Ok(json!({"success": true}))
}

pub fn replace(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let list = p.req("aclid")?.to_string();
    // Checked in the job, as ReplaceNetworkACLListCmd.execute does; an empty
    // network stands for "none given".
    let network = p.str("networkid").unwrap_or_default().to_string();
    Ok(ctx.acted(
        "replaceNetworkACLList",
        "NetworkAcl",
        &list,
        Action::Vpc {
            job: VpcJob::ListReplace {
                list: list.clone(),
                network,
            },
        },
    ))
}

pub fn finish_replace(cloud: &mut Cloud, list: &str, network: &str) -> Result<Value, ApiError> {
    if network.is_empty() {
        return Err(ApiError::internal(
            "Network ID and private gateway can't be null at the same time",
        ));
    }
    let net = cloud
        .network(network)
        .cloned()
        .ok_or_else(|| ApiError::invalid("Unable to find specified Network"))?;
    let acl = cloud
        .vpc
        .list(list)
        .cloned()
        .ok_or_else(|| ApiError::invalid("Unable to find specified NetworkACL"))?;
    let Some(net_vpc) = &net.vpc_id else {
        return Err(ApiError::invalid(format!(
            "Network is not part of a VPC: {}",
            net.id
        )));
    };
    if let Some(acl_vpc) = &acl.vpc_id {
        if let Some(owner) = acl.owner(cloud) {
            cloud.may_operate(owner)?;
        }
        if acl_vpc != net_vpc {
            return Err(ApiError::invalid(format!(
                "Network: {} and ACL: {} do not belong to the same VPC",
                net.id, acl.id
            )));
        }
    }
    for n in cloud.networks.iter_mut().filter(|n| n.id == network) {
        n.acl_id = Some(list.to_string());
    }
    Ok(json!({"success": true}))
}

pub fn list_rules(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let scope = ctx.scope(p)?;
    let mut acl = p.str("aclid").map(str::to_string);
    if let Some(n) = p.str("networkid") {
        match c.network(n).and_then(|n| n.acl_id.clone()) {
            Some(a) => acl = Some(a),
            // No list on the network: an empty answer.
            None => return list(p, "networkacl", vec![]),
        }
    }
    if let Some(owner) = acl
        .as_deref()
        .and_then(|a| c.vpc.list(a))
        .and_then(|l| l.owner(c))
    {
        c.may_operate(owner)?;
    }
    let same = |field: &str, want: Option<&str>, v: &Value| {
        want.is_none_or(|w| {
            v.get(field)
                .and_then(Value::as_str)
                .is_some_and(|s| s.eq_ignore_ascii_case(w))
        })
    };
    let items: Vec<Value> = c
        .vpc
        .acl_rules
        .iter()
        .filter(|r| match &acl {
            Some(a) => &r.acl_id == a,
            None => c
                .vpc
                .list(&r.acl_id)
                .is_some_and(|l| visible_list(c, &scope, l)),
        })
        .map(|r| r.render(c))
        .filter(|v| {
            same("traffictype", p.str("traffictype"), v)
                && same("protocol", p.str("protocol"), v)
                && same("action", p.str("action"), v)
        })
        .collect();
    // The command takes `keyword` but its search ignores it.
    list_by(&p.without(&["keyword", "name"]), "networkacl", items, &[])
}

/// The fields of a rule as a create or update gives them, before checks.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleEdit {
    pub protocol: Option<String>,
    pub start_port: Option<i64>,
    pub end_port: Option<i64>,
    pub cidrs: Option<Vec<String>>,
    pub traffic: Option<String>,
    pub action: Option<String>,
    pub number: Option<i64>,
    pub icmp_type: Option<i64>,
    pub icmp_code: Option<i64>,
    pub reason: Option<String>,
    /// `partialupgrade`: only the given fields change (the default).
    pub partial: bool,
}

impl RuleEdit {
    fn from(p: &Params) -> Result<RuleEdit, ApiError> {
        let cidrs = p.list("cidrlist");
        Ok(RuleEdit {
            protocol: p.str("protocol").map(|s| s.trim().to_string()),
            start_port: p.int("startport")?,
            end_port: p.int("endport")?,
            cidrs: (!cidrs.is_empty()).then_some(cidrs),
            traffic: p.str("traffictype").map(str::to_string),
            action: p.str("action").map(str::to_string),
            number: p.int("number")?,
            icmp_type: p.int("icmptype")?,
            icmp_code: p.int("icmpcode")?,
            reason: p.str("reason").map(str::to_string),
            partial: p.bool("partialupgrade").unwrap_or(true),
        })
    }
}

fn traffic(s: &str) -> Result<Traffic, ApiError> {
    Traffic::parse(s).ok_or_else(|| ApiError::invalid(format!("Invalid traffic type {s}")))
}

/// `validateAndCreateNetworkAclRuleAction`.
fn verdict(s: &str) -> Result<Verdict, ApiError> {
    if s.eq_ignore_ascii_case("allow") {
        Ok(Verdict::Allow)
    } else if s.eq_ignore_ascii_case("deny") {
        Ok(Verdict::Deny)
    } else {
        Err(ApiError::invalid(format!(
            "Invalid action [{s}]. Permitted actions are Allow and Deny"
        )))
    }
}

fn number_free(
    c: &Cloud,
    list: &AclList,
    number: i64,
    except: Option<&str>,
) -> Result<(), ApiError> {
    let taken = c.vpc.acl_rules.iter().any(|r| {
        r.acl_id == list.id && i64::from(r.number) == number && Some(r.id.as_str()) != except
    });
    if taken {
        return Err(ApiError::invalid(format!(
            "ACL item with number {number} already exists in ACL: {}",
            list.id
        )));
    }
    Ok(())
}

fn valid_port(p: Option<i64>) -> Option<u16> {
    p.filter(|p| (1..=65535).contains(p)).map(|p| p as u16)
}

/// `validateNetworkACLItem`: ports, then cidrs, then protocol, with the
/// ports still as given so an invalid one can be named.
fn validate_item(
    protocol: &str,
    start: Option<i64>,
    end: Option<i64>,
    cidrs: &[String],
    icmp: (Option<i64>, Option<i64>),
) -> Result<(Option<u16>, Option<u16>), ApiError> {
    let show = |p: Option<i64>| p.map_or("null".to_string(), |p| p.to_string());
    let ports = if start.is_none() && end.is_none() {
        (None, None)
    } else {
        let Some(s) = valid_port(start) else {
            return Err(ApiError::invalid(format!(
                "Start public port is an invalid value: {}",
                show(start)
            )));
        };
        let Some(e) = valid_port(end) else {
            return Err(ApiError::invalid(format!(
                "End public port is an invalid value: {}",
                show(end)
            )));
        };
        if s > e {
            return Err(ApiError::invalid(format!(
                "Start port can't be bigger than end port [startport={s},endport={e}]"
            )));
        }
        if protocol.eq_ignore_ascii_case("all") {
            return Err(ApiError::invalid(
                "start port and end port must be null if protocol = 'all'",
            ));
        }
        (Some(s), Some(e))
    };
    if let Some(bad) = cidrs.iter().find(|c| !valid_cidr(c)) {
        // A ServerApiException(PARAM_ERROR), not an InvalidParameterValueException.
        return Err(ApiError::new(
            431,
            Some(9999),
            format!("Source cidrs formatting error {bad}"),
        ));
    }
    if protocol.is_empty() {
        return Ok(ports);
    }
    if protocol.bytes().all(|b| b.is_ascii_digit()) {
        let n: u64 = protocol.parse().unwrap_or(u64::MAX);
        if n > 255 {
            return Err(ApiError::invalid(format!("Invalid protocol number: {n}")));
        }
    } else if !["tcp", "udp", "icmp", "all"].contains(&protocol.to_ascii_lowercase().as_str()) {
        return Err(ApiError::invalid(format!(
            "Invalid protocol [{protocol}]. Expected one of: [tcp,udp,icmp,all]"
        )));
    }
    let is_icmp = protocol.eq_ignore_ascii_case("icmp");
    if !is_icmp && (icmp.0.is_some() || icmp.1.is_some()) {
        return Err(ApiError::invalid(
            "Can specify icmpCode and icmpType for ICMP protocol only",
        ));
    }
    if is_icmp && ports.0.is_some() {
        return Err(ApiError::invalid(
            "Can't specify start/end port when protocol is ICMP",
        ));
    }
    if let Some(t) = icmp.0.filter(|t| *t != -1 && !(0..=255).contains(t)) {
        return Err(ApiError::invalid(format!(
            "Invalid icmp type [{t}]. It should belong to [0-255] range"
        )));
    }
    if let Some(c) = icmp.1.filter(|c| *c != -1 && !(0..=16).contains(c)) {
        return Err(ApiError::invalid(format!(
            "Invalid icmp code [{c}]. It should belong to [0-16] range and can be defined when icmpType belongs to [0-40] range"
        )));
    }
    Ok(ports)
}

/// `validateNetworkAcl`: the list exists, is not a system list, and the
/// caller may change it.
fn editable(c: &Cloud, list: Option<&AclList>) -> Result<AclList, ApiError> {
    let list = list.ok_or_else(|| ApiError::invalid("Unable to find specified ACL."))?;
    if list.system {
        return Err(ApiError::invalid("Default ACL cannot be modified"));
    }
    if let Some(owner) = list.owner(c) {
        c.may_operate(owner)?;
    }
    Ok(list.clone())
}

/// The list a new rule goes to: `aclid`, else the list of tier `networkid`
/// (made and attached first when the tier has none, as
/// `createAclListForNetworkAndReturnAclListId` does).
fn target_list(ctx: &mut Ctx, p: &Params) -> Result<String, ApiError> {
    if let Some(a) = p.str("aclid") {
        return Ok(a.to_string());
    }
    let Some(n) = p.str("networkid") else {
        return Err(ApiError::invalid(
            "Cannot create Network ACL Item. ACL Id or network Id is required",
        ));
    };
    let net = ctx
        .cloud
        .network(n)
        .cloned()
        .ok_or_else(|| ApiError::invalid("Unable to find specified Network"))?;
    let Some(vpc) = &net.vpc_id else {
        return Err(ApiError::invalid(format!(
            "Network: {} does not belong to VPC",
            net.id
        )));
    };
    if let Some(a) = net.acl_id {
        return Ok(a);
    }
    let vpc_name = ctx
        .cloud
        .vpc
        .vpc(vpc)
        .map(|v| v.name.clone())
        .unwrap_or_default();
    let name = format!("VPC_{vpc_name}_Tier_{}_ACL_{}", net.name, net.id);
    let id = ctx.id();
    ctx.cloud.vpc.acl_lists.push(AclList {
        id: id.clone(),
        description: format!("ACL for {name}"),
        name,
        vpc_id: Some(vpc.clone()),
        system: false,
    });
    for t in ctx.cloud.networks.iter_mut().filter(|t| t.id == net.id) {
        t.acl_id = Some(id.clone());
    }
    Ok(id)
}

pub fn create_rule(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let edit = RuleEdit::from(p)?;
    let acl = target_list(ctx, p)?;
    let c = &*ctx.cloud;
    let traffic = traffic(edit.traffic.as_deref().unwrap_or("Ingress"))?;
    let list = editable(c, c.vpc.list(&acl))?;
    if list.vpc_id.is_none() && !is_root_admin(c) {
        return Err(denied(
            "Only Root Admins can create rules for a global ACL.",
        ));
    }
    if let Some(n) = edit.number {
        if n < 1 {
            return Err(ApiError::invalid(format!(
                "Invalid number [{n}]. Number cannot be < 1"
            )));
        }
        number_free(c, &list, n, None)?;
    }
    let action = verdict(edit.action.as_deref().unwrap_or("Allow"))?;
    let number = match edit.number {
        Some(n) => n as u32,
        None => {
            c.vpc
                .acl_rules
                .iter()
                .filter(|r| r.acl_id == list.id)
                .map(|r| r.number)
                .max()
                .unwrap_or(0)
                + 1
        }
    };
    // CreateNetworkACLCmd: protocol 1 is ICMP; ICMP's type and code default to -1.
    let mut protocol = edit.protocol.clone().unwrap_or_default();
    if protocol == "1" {
        protocol = "icmp".into();
    }
    let is_icmp = protocol.eq_ignore_ascii_case("icmp");
    let icmp = (
        edit.icmp_type.or(is_icmp.then_some(-1)),
        edit.icmp_code.or(is_icmp.then_some(-1)),
    );
    let end = edit.end_port.or(edit.start_port);
    let cidrs = edit
        .cidrs
        .clone()
        .unwrap_or_else(|| vec!["0.0.0.0/0".into()]);
    let (start_port, end_port) = validate_item(&protocol, edit.start_port, end, &cidrs, icmp)?;
    let id = ctx.id();
    ctx.cloud.vpc.acl_rules.push(AclRule {
        id: id.clone(),
        acl_id: list.id,
        number,
        protocol,
        start_port,
        end_port,
        cidrs,
        traffic,
        action,
        icmp_type: icmp.0,
        icmp_code: icmp.1,
        reason: edit.reason,
        state: "Add".into(),
    });
    Ok(ctx.created(
        "createNetworkACL",
        "NetworkAclItem",
        &id,
        Action::Vpc {
            job: VpcJob::RuleCreate { rule: id.clone() },
        },
    ))
}

fn rule_result(cloud: &Cloud, rule: &str) -> Result<Value, ApiError> {
    match cloud.vpc.rule(rule) {
        Some(r) => Ok(json!({"networkacl": r.render(cloud)})),
        None => Err(ApiError::internal("Failed to create network ACL Item")),
    }
}

pub fn finish_rule_create(cloud: &mut Cloud, rule: &str) -> Result<Value, ApiError> {
    for r in cloud.vpc.acl_rules.iter_mut().filter(|r| r.id == rule) {
        r.state = "Active".into();
    }
    rule_result(cloud, rule)
}

pub fn delete_rule(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    exists("deleteNetworkACL", ctx.cloud.vpc.rule(&id).is_some(), &id)?;
    Ok(ctx.acted(
        "deleteNetworkACL",
        "NetworkAclItem",
        &id,
        Action::Vpc {
            job: VpcJob::RuleDelete { rule: id.clone() },
        },
    ))
}

pub fn finish_rule_delete(cloud: &mut Cloud, rule: &str) -> Result<Value, ApiError> {
    let Some(r) = cloud.vpc.rule(rule).cloned() else {
        return Err(ApiError::internal("Failed to delete Network ACL item"));
    };
    if let Some(list) = cloud.vpc.list(&r.acl_id).cloned() {
        if list.system {
            return Err(ApiError::invalid(
                "ACL Items in default ACL cannot be deleted",
            ));
        }
        may_change(cloud, &list, "Only Root Admin can delete global ACL rules.")?;
    }
    cloud.vpc.acl_rules.retain(|x| x.id != rule);
    cloud.tags.retain(|t| t.resource_id != rule);
    Ok(json!({"success": true}))
}

pub fn update_rule(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let edit = RuleEdit::from(p)?;
    Ok(ctx.acted(
        "updateNetworkACLItem",
        "NetworkAclItem",
        &id,
        Action::Vpc {
            job: VpcJob::RuleUpdate {
                rule: id.clone(),
                edit,
            },
        },
    ))
}

/// `updateNetworkACLItem`: a partial update changes the given fields; a
/// full one (`partialupgrade=false`) sets every field, absent ones cleared.
pub fn finish_rule_update(
    cloud: &mut Cloud,
    rule: &str,
    edit: &RuleEdit,
) -> Result<Value, ApiError> {
    let Some(old) = cloud.vpc.rule(rule).cloned() else {
        return Err(ApiError::invalid(format!(
            "Unable to find ACL rule with ID [{rule}]"
        )));
    };
    let list = editable(cloud, cloud.vpc.list(&old.acl_id))?;
    may_change(cloud, &list, "Only Root Admins can update global ACLs.")?;
    let mut new = old.clone();
    if let Some(n) = edit.number {
        number_free(cloud, &list, n, Some(rule))?;
        new.number = n.max(1) as u32;
    }
    let partial = edit.partial;
    let start = if !partial || edit.start_port.is_some() {
        edit.start_port
    } else {
        old.start_port.map(i64::from)
    };
    let end = if !partial || edit.end_port.is_some() {
        edit.end_port
    } else {
        old.end_port.map(i64::from)
    };
    if !partial || edit.cidrs.is_some() {
        new.cidrs = edit.cidrs.clone().unwrap_or_default();
    }
    if !partial || edit.protocol.as_deref().is_some_and(|s| !s.is_empty()) {
        new.protocol = edit.protocol.clone().unwrap_or_default();
    }
    if !partial || edit.icmp_type.is_some() {
        new.icmp_type = edit.icmp_type;
    }
    if !partial || edit.icmp_code.is_some() {
        new.icmp_code = edit.icmp_code;
    }
    if !partial || edit.action.as_deref().is_some_and(|s| !s.is_empty()) {
        new.action = match &edit.action {
            Some(a) => verdict(a)?,
            None => Verdict::Allow,
        };
    }
    if let Some(t) = &edit.traffic {
        new.traffic = traffic(t)?;
    }
    if !partial || edit.reason.as_deref().is_some_and(|s| !s.is_empty()) {
        new.reason = edit.reason.clone();
    }
    let (s, e) = validate_item(
        &new.protocol,
        start,
        end,
        &new.cidrs,
        (new.icmp_type, new.icmp_code),
    )?;
    new.start_port = s;
    new.end_port = e;
    for r in cloud.vpc.acl_rules.iter_mut().filter(|r| r.id == rule) {
        *r = new.clone();
    }
    rule_result(cloud, rule)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::super::tests::{finish_all, run};
    use super::super::vpc::tests::{demo, deploy, job_error, vpc_address};
    use crate::backing::{forwards, CLIENT};
    use crate::model::Cloud;

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

    fn rule(c: &mut Cloud, pairs: &[(&str, &str)]) -> Result<String, crate::error::ApiError> {
        let r = run(c, "createNetworkACL", pairs)?;
        finish_all(c, None);
        Ok(r["id"].as_str().unwrap().to_string())
    }

    #[test]
    fn the_system_lists_are_global_and_listed_with_every_vpc() {
        let (mut c, d) = demo();
        let r = run(&mut c, "listNetworkACLLists", &[]).unwrap();
        let mut all = names(&r, "networkacllist");
        all.sort();
        assert_eq!(all, ["default_allow", "default_deny", "demo-acl"]);
        for l in r["networkacllist"].as_array().unwrap() {
            let system = l["name"].as_str().unwrap().starts_with("default_");
            assert_eq!(l.get("vpcid").is_none(), system, "{l}");
        }
        let r = run(&mut c, "listNetworkACLLists", &[("vpcid", &d.vpc)]).unwrap();
        assert_eq!(r["count"], 3, "the VPC's list and the two global ones");
        let r = run(&mut c, "listNetworkACLLists", &[("networkid", &d.deny)]).unwrap();
        assert_eq!(names(&r, "networkacllist"), ["default_deny"]);
        let r = run(&mut c, "listNetworkACLs", &[("aclid", &d.default_deny)]).unwrap();
        let rules = r["networkacl"].as_array().unwrap();
        assert_eq!(rules.len(), 2);
        assert!(rules
            .iter()
            .all(|x| x["action"] == "Deny" && x["protocol"] == "all"));
    }

    #[test]
    fn system_lists_can_not_be_edited() {
        let (mut c, d) = demo();
        for target in [
            ("aclid", d.default_deny.as_str()),
            ("aclid", d.default_allow.as_str()),
            ("networkid", d.deny.as_str()),
        ] {
            let e = run(
                &mut c,
                "createNetworkACL",
                &[target, ("protocol", "tcp"), ("startport", "22")],
            )
            .unwrap_err();
            assert_eq!(
                (e.code, e.text.as_str()),
                (431, "Default ACL cannot be modified")
            );
        }
        let system_rule = c
            .vpc
            .acl_rules
            .iter()
            .find(|r| r.acl_id == d.default_allow)
            .unwrap()
            .id
            .clone();
        let r = run(&mut c, "deleteNetworkACL", &[("id", &system_rule)]).unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (431, "ACL Items in default ACL cannot be deleted".into())
        );
        let r = run(
            &mut c,
            "updateNetworkACLItem",
            &[("id", &system_rule), ("action", "Deny")],
        )
        .unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (431, "Default ACL cannot be modified".into())
        );
        let r = run(&mut c, "deleteNetworkACLList", &[("id", &d.default_deny)]).unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (431, "Default ACL cannot be removed".into())
        );
        assert_eq!(
            c.vpc
                .acl_rules
                .iter()
                .filter(|r| r.acl_id == d.default_allow)
                .count(),
            2
        );
    }

    #[test]
    fn a_list_in_use_can_not_be_deleted_until_its_tier_has_another() {
        let (mut c, d) = demo();
        rule(
            &mut c,
            &[("aclid", &d.acl), ("protocol", "tcp"), ("startport", "22")],
        )
        .unwrap();
        let r = run(&mut c, "deleteNetworkACLList", &[("id", &d.acl)]).unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (
                530,
                format!(
                    "ACL is still associated with 1 tier(s). Cannot delete network ACL: {}",
                    d.acl
                )
            )
        );
        let r = run(
            &mut c,
            "replaceNetworkACLList",
            &[("aclid", &d.default_deny), ("networkid", &d.custom)],
        )
        .unwrap();
        finish_all(&mut c, None);
        assert_eq!(c.jobs[r["jobid"].as_str().unwrap()].status, 1);
        run(&mut c, "deleteNetworkACLList", &[("id", &d.acl)]).unwrap();
        finish_all(&mut c, None);
        assert!(c.vpc.list(&d.acl).is_none());
        assert!(
            c.vpc.acl_rules.iter().all(|r| r.acl_id != d.acl),
            "its rules go with it"
        );
        // Gone ids are unknown, as the rows are deleted.
        let e = run(&mut c, "deleteNetworkACLList", &[("id", &d.acl)]).unwrap_err();
        assert_eq!(e.code, 431);
    }

    #[test]
    fn replace_wants_a_tier_of_the_lists_own_vpc() {
        let (mut c, d) = demo();
        let r = run(&mut c, "replaceNetworkACLList", &[("aclid", &d.acl)]).unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (
                530,
                "Network ID and private gateway can't be null at the same time".into()
            )
        );
        let isolated = c
            .networks
            .iter()
            .find(|n| n.name == "box-isolated")
            .unwrap()
            .id
            .clone();
        let r = run(
            &mut c,
            "replaceNetworkACLList",
            &[("aclid", &d.acl), ("networkid", &isolated)],
        )
        .unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (431, format!("Network is not part of a VPC: {isolated}"))
        );
        super::super::vpc::seed(&mut c, "other", Default::default()).unwrap();
        let other = c
            .networks
            .iter()
            .find(|n| n.name == "other-tier-custom")
            .unwrap()
            .id
            .clone();
        let r = run(
            &mut c,
            "replaceNetworkACLList",
            &[("aclid", &d.acl), ("networkid", &other)],
        )
        .unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (
                431,
                format!(
                    "Network: {other} and ACL: {} do not belong to the same VPC",
                    d.acl
                )
            )
        );
        // A list created for the VPC can replace the system list of a tier.
        let r = run(
            &mut c,
            "createNetworkACLList",
            &[("name", "mine"), ("vpcid", &d.vpc)],
        )
        .unwrap();
        let mine = r["id"].as_str().unwrap().to_string();
        finish_all(&mut c, None);
        run(
            &mut c,
            "replaceNetworkACLList",
            &[("aclid", &mine), ("networkid", &d.deny)],
        )
        .unwrap();
        finish_all(&mut c, None);
        let r = run(&mut c, "listNetworks", &[("id", &d.deny)]).unwrap();
        assert_eq!(
            (
                r["network"][0]["aclid"].as_str(),
                r["network"][0]["aclname"].as_str()
            ),
            (Some(mine.as_str()), Some("mine"))
        );
    }

    /// A call's parameters, and the code and text it is refused with.
    type Case<'a> = (&'a [(&'a str, &'a str)], u16, String);

    #[test]
    fn rules_are_checked_as_cloudstack_checks_them() {
        let (mut c, d) = demo();
        let isolated = c
            .networks
            .iter()
            .find(|n| n.name == "box-isolated")
            .unwrap()
            .id
            .clone();
        let acl = d.acl.as_str();
        let cases: &[Case] = &[
            (
                &[("protocol", "tcp")],
                431,
                "Cannot create Network ACL Item. ACL Id or network Id is required".into(),
            ),
            (
                &[("networkid", &isolated), ("protocol", "tcp")],
                431,
                format!("Network: {isolated} does not belong to VPC"),
            ),
            (
                &[
                    ("aclid", acl),
                    ("protocol", "tcp"),
                    ("traffictype", "sideways"),
                ],
                431,
                "Invalid traffic type sideways".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "tcp"), ("number", "0")],
                431,
                "Invalid number [0]. Number cannot be < 1".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "tcp"), ("action", "maybe")],
                431,
                "Invalid action [maybe]. Permitted actions are Allow and Deny".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "tcp"), ("startport", "0")],
                431,
                "Start public port is an invalid value: 0".into(),
            ),
            (
                &[
                    ("aclid", acl),
                    ("protocol", "tcp"),
                    ("startport", "30"),
                    ("endport", "20"),
                ],
                431,
                "Start port can't be bigger than end port [startport=30,endport=20]".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "all"), ("startport", "22")],
                431,
                "start port and end port must be null if protocol = 'all'".into(),
            ),
            (
                &[
                    ("aclid", acl),
                    ("protocol", "tcp"),
                    ("cidrlist", "10.0.0.0/40"),
                ],
                431,
                "Source cidrs formatting error 10.0.0.0/40".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "gre")],
                431,
                "Invalid protocol [gre]. Expected one of: [tcp,udp,icmp,all]".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "300")],
                431,
                "Invalid protocol number: 300".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "icmp"), ("startport", "22")],
                431,
                "Can't specify start/end port when protocol is ICMP".into(),
            ),
            (
                &[("aclid", acl), ("protocol", "tcp"), ("icmptype", "8")],
                431,
                "Can specify icmpCode and icmpType for ICMP protocol only".into(),
            ),
        ];
        for (pairs, code, text) in cases {
            let e = run(&mut c, "createNetworkACL", pairs).unwrap_err();
            assert_eq!((e.code, &e.text), (*code, text), "{pairs:?}");
        }
        assert!(
            c.vpc.acl_rules.iter().all(|r| r.acl_id != d.acl),
            "nothing was made"
        );
        // Numbers: the next after the highest, unique within the list.
        rule(
            &mut c,
            &[("aclid", acl), ("protocol", "tcp"), ("startport", "22")],
        )
        .unwrap();
        rule(
            &mut c,
            &[
                ("networkid", &d.custom),
                ("protocol", "udp"),
                ("startport", "53"),
                ("number", "10"),
            ],
        )
        .unwrap();
        let third = rule(&mut c, &[("aclid", acl), ("protocol", "icmp")]).unwrap();
        let mut numbers: Vec<u32> = c
            .vpc
            .acl_rules
            .iter()
            .filter(|r| r.acl_id == d.acl)
            .map(|r| r.number)
            .collect();
        numbers.sort();
        assert_eq!(numbers, [1, 10, 11]);
        let e = rule(
            &mut c,
            &[("aclid", acl), ("protocol", "tcp"), ("number", "10")],
        )
        .unwrap_err();
        assert_eq!(
            e.text,
            format!("ACL item with number 10 already exists in ACL: {acl}")
        );
        let icmp = c.vpc.rule(&third).unwrap();
        assert_eq!((icmp.icmp_type, icmp.icmp_code), (Some(-1), Some(-1)));
    }

    #[test]
    fn rules_are_listed_by_list_by_tier_and_by_traffic() {
        let (mut c, d) = demo();
        let r = run(
            &mut c,
            "createNetworkACL",
            &[
                ("aclid", &d.acl),
                ("protocol", "TCP"),
                ("startport", "22"),
                ("cidrlist", "127.0.0.1/32,10.0.0.0/8"),
            ],
        )
        .unwrap();
        let id = r["id"].as_str().unwrap().to_string();
        assert_eq!(c.vpc.rule(&id).unwrap().state, "Add", "applied by its job");
        finish_all(&mut c, None);
        rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "all"),
                ("traffictype", "egress"),
                ("action", "deny"),
            ],
        )
        .unwrap();
        let r = run(&mut c, "listNetworkACLs", &[("networkid", &d.custom)]).unwrap();
        assert_eq!(r["count"], 2);
        let r = run(
            &mut c,
            "listNetworkACLs",
            &[("aclid", &d.acl), ("traffictype", "ingress")],
        )
        .unwrap();
        assert_eq!(r["count"], 1);
        let x = &r["networkacl"][0];
        assert_eq!(x["id"], id.as_str());
        assert_eq!(
            (x["startport"].as_str(), x["endport"].as_str()),
            (Some("22"), Some("22"))
        );
        assert_eq!(x["cidrlist"], "127.0.0.1/32,10.0.0.0/8");
        assert_eq!(
            (
                x["traffictype"].as_str(),
                x["action"].as_str(),
                x["state"].as_str()
            ),
            (Some("Ingress"), Some("Allow"), Some("Active"))
        );
        assert_eq!(
            (
                x["aclid"].as_str(),
                x["aclname"].as_str(),
                x["number"].as_u64()
            ),
            (Some(d.acl.as_str()), Some("demo-acl"), Some(1))
        );
        let r = run(
            &mut c,
            "listNetworkACLs",
            &[("action", "Deny"), ("aclid", &d.acl)],
        )
        .unwrap();
        assert_eq!(r["networkacl"][0]["traffictype"], "Egress");
        // Without a list: every list the caller sees, the system ones too.
        let r = run(&mut c, "listNetworkACLs", &[]).unwrap();
        assert_eq!(r["count"], 6);
        run(&mut c, "deleteNetworkACL", &[("id", &id)]).unwrap();
        finish_all(&mut c, None);
        let r = run(&mut c, "listNetworkACLs", &[("aclid", &d.acl)]).unwrap();
        assert_eq!(r["count"], 1);
    }

    #[test]
    fn update_changes_the_given_fields_unless_told_to_replace_them_all() {
        let (mut c, d) = demo();
        let id = rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "tcp"),
                ("startport", "22"),
                ("cidrlist", "10.0.0.0/8"),
            ],
        )
        .unwrap();
        run(
            &mut c,
            "updateNetworkACLItem",
            &[("id", &id), ("cidrlist", "127.0.0.1/32")],
        )
        .unwrap();
        finish_all(&mut c, None);
        let r = c.vpc.rule(&id).unwrap();
        assert_eq!(
            (r.cidrs.clone(), r.start_port, r.protocol.as_str()),
            (vec!["127.0.0.1/32".to_string()], Some(22), "tcp")
        );
        let r = run(
            &mut c,
            "updateNetworkACLItem",
            &[("id", &id), ("startport", "80"), ("endport", "70")],
        )
        .unwrap();
        assert_eq!(
            job_error(&mut c, &r),
            (
                431,
                "Start port can't be bigger than end port [startport=80,endport=70]".into()
            )
        );
        assert_eq!(
            c.vpc.rule(&id).unwrap().start_port,
            Some(22),
            "a refused update changes nothing"
        );
        run(
            &mut c,
            "updateNetworkACLItem",
            &[
                ("id", &id),
                ("partialupgrade", "false"),
                ("protocol", "udp"),
            ],
        )
        .unwrap();
        finish_all(&mut c, None);
        let r = c.vpc.rule(&id).unwrap();
        assert_eq!(
            (r.protocol.as_str(), r.start_port, r.cidrs.len()),
            ("udp", None, 0)
        );
    }

    #[test]
    fn a_tier_forwards_only_what_its_list_admits_from_this_host() {
        let (mut c, d) = demo();
        let web = deploy(&mut c, "web", &d.custom);
        let ip = vpc_address(&mut c, &d.vpc);
        run(
            &mut c,
            "createPortForwardingRule",
            &[
                ("ipaddressid", &ip),
                ("virtualmachineid", &web),
                ("protocol", "tcp"),
                ("privateport", "22"),
                ("publicport", "2222"),
                ("networkid", &d.custom),
            ],
        )
        .unwrap();
        finish_all(&mut c, None);
        let open = |c: &Cloud| {
            forwards(c)
                .get(&web)
                .map(|f| {
                    f.iter()
                        .map(|f| (f.host_port, f.guest_port))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        };
        assert!(open(&c).is_empty(), "an empty custom list lets nothing in");
        // The rule matches the guest's port (after the forward), from the client's address.
        rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "tcp"),
                ("startport", "2222"),
                ("cidrlist", "0.0.0.0/0"),
                ("number", "5"),
            ],
        )
        .unwrap();
        assert!(
            open(&c).is_empty(),
            "the public port is not what the list sees"
        );
        let elsewhere = rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "tcp"),
                ("startport", "22"),
                ("cidrlist", "192.0.2.0/24"),
                ("number", "6"),
            ],
        )
        .unwrap();
        assert!(
            open(&c).is_empty(),
            "allowed only from elsewhere, not from {CLIENT}"
        );
        run(
            &mut c,
            "updateNetworkACLItem",
            &[("id", &elsewhere), ("cidrlist", "127.0.0.1/32")],
        )
        .unwrap();
        finish_all(&mut c, None);
        assert_eq!(open(&c), [(2222, 22)]);
        // A lower-numbered deny wins.
        rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "all"),
                ("action", "Deny"),
                ("cidrlist", "127.0.0.0/8"),
                ("number", "1"),
            ],
        )
        .unwrap();
        assert!(open(&c).is_empty());
        // The system lists: all in, or nothing.
        for (list, reach) in [(&d.default_allow, true), (&d.default_deny, false)] {
            run(
                &mut c,
                "replaceNetworkACLList",
                &[("aclid", list), ("networkid", &d.custom)],
            )
            .unwrap();
            finish_all(&mut c, None);
            assert_eq!(!open(&c).is_empty(), reach);
        }
    }

    #[test]
    fn static_nat_in_a_tier_opens_the_ports_its_list_allows() {
        let (mut c, d) = demo();
        let web = deploy(&mut c, "web", &d.custom);
        let ip = vpc_address(&mut c, &d.vpc);
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
        assert!(forwards(&c)[&web].is_empty());
        rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "tcp"),
                ("startport", "80"),
                ("endport", "81"),
                ("cidrlist", "127.0.0.1/32"),
            ],
        )
        .unwrap();
        rule(
            &mut c,
            &[
                ("aclid", &d.acl),
                ("protocol", "tcp"),
                ("startport", "443"),
                ("cidrlist", "192.0.2.1/32"),
            ],
        )
        .unwrap();
        let ports: Vec<(String, u16)> = forwards(&c)[&web]
            .iter()
            .map(|f| (f.protocol.clone(), f.host_port))
            .collect();
        assert_eq!(ports, [("tcp".to_string(), 80), ("tcp".to_string(), 81)]);
    }
}
