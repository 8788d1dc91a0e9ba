//! Security groups of the Basic zone and their ingress rules.

use serde_json::{json, Value};

use super::list::list;
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::{IngressRule, SecurityGroup};
use crate::params::Params;

fn find(ctx: &Ctx, p: &Params, id_param: &str, name_param: &str) -> Result<String, ApiError> {
    let c = &*ctx.cloud;
    let g = match (p.str(id_param), p.str(name_param)) {
        (Some(id), _) => c.security_groups.iter().find(|g| g.id == id),
        // A name means the owner's group of that name.
        (None, Some(name)) => {
            let owner = c.owner_from(p)?;
            c.security_groups
                .iter()
                .find(|g| g.name == name && g.owner == owner)
        }
        (None, None) => {
            return Err(ApiError::invalid(format!(
                "Either {id_param} or {name_param} is required"
            )));
        }
    };
    let g = g.ok_or_else(|| ApiError::invalid("Unable to find security group"))?;
    c.may_operate(&g.owner)?;
    Ok(g.id.clone())
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?.to_string();
    if name.eq_ignore_ascii_case("default") {
        return Err(ApiError::invalid(
            "The security group name default is reserved",
        ));
    }
    let owner = ctx.owner_from(p)?;
    if ctx
        .cloud
        .security_groups
        .iter()
        .any(|g| g.name == name && g.owner == owner)
    {
        return Err(ApiError::invalid(format!(
            "Unable to create security group, a group with name {name} already exists."
        )));
    }
    let id = ctx.id();
    let g = SecurityGroup {
        id,
        description: p.str("description").unwrap_or(&name).to_string(),
        name,
        ingress: vec![],
        owner,
    };
    ctx.cloud.security_groups.push(g);
    let c = &*ctx.cloud;
    Ok(Reply::Value(
        json!({"securitygroup": c.security_groups.last().map(|g| g.render(c))}),
    ))
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = find(ctx, p, "id", "name")?;
    let c = &*ctx.cloud;
    if c.security_groups
        .iter()
        .any(|g| g.id == id && g.name == "default")
    {
        return Err(ApiError::invalid(
            "The network group default is a default network group, and can't be removed",
        ));
    }
    if c.vms.iter().any(|v| v.security_group_ids.contains(&id)) {
        return Err(ApiError::in_use(
            "Cannot delete group when it's in use by virtual machines",
        ));
    }
    ctx.cloud.security_groups.retain(|g| g.id != id);
    ctx.cloud.tags.retain(|t| t.resource_id != id);
    ctx.dirty = true;
    Ok(Reply::Value(json!({"success": true})))
}

pub fn list_groups(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    // By VM the server answers that VM's groups after an access check on the
    // VM, ignoring the other filters (`searchForSecurityGroupsInternal`).
    if let Some(id) = p.str("virtualmachineid") {
        let Some(vm) = c.vm(id) else {
            return Err(ApiError::invalid(format!(
                "Unable to list network groups for virtual machine instance {id}; instance not found."
            )));
        };
        c.may_operate(&vm.owner)?;
        let items: Vec<Value> = vm
            .security_group_ids
            .iter()
            .filter_map(|g| c.security_groups.iter().find(|x| &x.id == g))
            .map(|g| g.render(c))
            .collect();
        return list(
            &p.without(&["id", "name", "keyword"]),
            "securitygroup",
            items,
        );
    }
    let name = p.str("securitygroupname");
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .security_groups
        .iter()
        .filter(|g| scope.sees(c, &g.owner))
        .filter(|g| name.is_none_or(|n| n == g.name))
        .map(|g| g.render(c))
        .collect();
    list(p, "securitygroup", items)
}

pub fn authorize(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = find(ctx, p, "securitygroupid", "securitygroupname")?;
    let proto = p.str("protocol").unwrap_or("all").to_lowercase();
    if !["tcp", "udp", "icmp", "all"].contains(&proto.as_str()) {
        return Err(ApiError::invalid(format!("Invalid protocol {proto}")));
    }
    let (start, end) = (p.int("startport")?, p.int("endport")?);
    let ports = match (proto.as_str(), start, end) {
        ("tcp" | "udp", Some(s), Some(e))
            if (0..=65535).contains(&s) && (s..=65535).contains(&e) =>
        {
            Some((s as u16, e as u16))
        }
        ("tcp" | "udp", _, _) => {
            return Err(ApiError::invalid(
                "Invalid port range: startport and endport are required for tcp and udp",
            ));
        }
        _ => None,
    };
    let cidrs = p.list("cidrlist");
    let cidrs = if cidrs.is_empty() {
        vec!["0.0.0.0/0".to_string()]
    } else {
        cidrs
    };
    let mut new_rules = vec![];
    for cidr in cidrs {
        new_rules.push(IngressRule {
            id: ctx.id(),
            protocol: proto.clone(),
            start_port: ports.map(|p| p.0),
            end_port: ports.map(|p| p.1),
            cidr,
        });
    }
    if let Some(g) = ctx.cloud.security_groups.iter_mut().find(|g| g.id == id) {
        for r in new_rules {
            // An identical rule is already there: the server keeps one.
            let dup = g.ingress.iter().any(|x| {
                x.protocol == r.protocol
                    && x.start_port == r.start_port
                    && x.end_port == r.end_port
                    && x.cidr == r.cidr
            });
            if !dup {
                g.ingress.push(r);
            }
        }
    }
    Ok(ctx.acted(
        "authorizeSecurityGroupIngress",
        "SecurityGroup",
        &id,
        Action::SgAuthorize { sg: id.clone() },
    ))
}

pub fn revoke(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let rule = p.req("id")?.to_string();
    let Some(g) = ctx
        .cloud
        .security_groups
        .iter()
        .find(|g| g.ingress.iter().any(|r| r.id == rule))
    else {
        return Err(ApiError::invalid(format!(
            "Unable to find security group rule with id {rule}"
        )));
    };
    ctx.may_operate(&g.owner)?;
    let sg = g.id.clone();
    Ok(ctx.acted(
        "revokeSecurityGroupIngress",
        "SecurityGroup",
        &sg,
        Action::SgRevoke {
            sg: sg.clone(),
            rule,
        },
    ))
}
