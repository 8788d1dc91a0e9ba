//! Resource tags: created and deleted in batches by async jobs, listed, and
//! shown on every tagged object.

use serde_json::Value;

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::{Cloud, Tag};
use crate::params::Params;
use crate::tenancy::Owner;

/// The resource types tags accept here, and the owner of the one an id
/// names: a tag belongs to its resource's owner.
fn owner_of(cloud: &Cloud, kind: &str, id: &str) -> Option<Owner> {
    match kind.to_lowercase().as_str() {
        "uservm" => cloud.vm(id).map(|x| x.owner.clone()),
        "publicipaddress" => cloud.ip(id).map(|x| x.owner.clone()),
        "portforwardingrule" => cloud
            .pf_rules
            .iter()
            .find(|r| r.id == id)
            .map(|x| x.owner.clone()),
        "firewallrule" => cloud
            .fw_rules
            .iter()
            .find(|r| r.id == id)
            .map(|x| x.owner.clone()),
        "securitygroup" => cloud
            .security_groups
            .iter()
            .find(|g| g.id == id)
            .map(|x| x.owner.clone()),
        "network" => cloud.network(id).map(|x| x.owner.clone()),
        "template" => cloud
            .templates
            .iter()
            .find(|t| t.id == id)
            .map(|_| Owner::Admin),
        "vmsnapshot" => cloud
            .vm_snapshots
            .iter()
            .find(|s| s.id == id)
            .map(|x| x.owner.clone()),
        "zone" => cloud.zone(id).map(|_| Owner::Admin),
        _ => None,
    }
}

/// The type's canonical spelling (`ResourceObjectType`), matched without case.
fn canonical(kind: &str) -> Option<&'static str> {
    [
        "UserVm",
        "PublicIpAddress",
        "PortForwardingRule",
        "FirewallRule",
        "SecurityGroup",
        "Network",
        "Template",
        "VMSnapshot",
        "Zone",
    ]
    .into_iter()
    .find(|k| k.eq_ignore_ascii_case(kind))
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let kind = p.req("resourcetype")?;
    let Some(kind) = canonical(kind) else {
        return Err(ApiError::invalid(format!("Invalid resource type {kind}")));
    };
    let ids = p.list("resourceids");
    if ids.is_empty() {
        return Err(ApiError::missing(p.command(), "resourceids"));
    }
    let tags = p.tags();
    if tags.is_empty() {
        return Err(ApiError::missing(p.command(), "tags"));
    }
    let mut owners = vec![];
    for id in &ids {
        let Some(owner) = owner_of(ctx.cloud, kind, id) else {
            return Err(ApiError::invalid(format!(
                "Unable to find resource by id {id} and type {kind}"
            )));
        };
        ctx.may_operate(&owner)?;
        owners.push(owner);
        for (key, _) in &tags {
            if ctx
                .cloud
                .tags
                .iter()
                .any(|t| &t.resource_id == id && &t.key == key)
            {
                return Err(ApiError::invalid(format!(
                    "tag {key} already on {kind} with id {id}"
                )));
            }
        }
    }
    for (id, owner) in ids.iter().zip(owners) {
        for (key, value) in &tags {
            ctx.cloud.tags.push(Tag {
                key: key.clone(),
                value: value.clone(),
                resource_type: kind.to_string(),
                resource_id: id.clone(),
                owner: owner.clone(),
            });
        }
    }
    ctx.dirty = true;
    let job = ctx.job("createTags", None, Action::Success);
    Ok(Reply::Async { job, id: None })
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let kind = p.req("resourcetype")?;
    let Some(kind) = canonical(kind) else {
        return Err(ApiError::invalid(format!("Invalid resource type {kind}")));
    };
    let ids = p.list("resourceids");
    // With no tags given, every tag of the resources goes; a tag given
    // without a value matches any value.
    let wanted: Vec<(String, Option<String>)> = p
        .map("tags")
        .into_iter()
        .filter_map(|e| Some((e.get("key")?.clone(), e.get("value").cloned())))
        .collect();
    for t in ctx
        .cloud
        .tags
        .iter()
        .filter(|t| t.resource_type == kind && ids.contains(&t.resource_id))
    {
        ctx.cloud.may_operate(&t.owner)?;
    }
    ctx.cloud.tags.retain(|t| {
        let target = t.resource_type == kind && ids.contains(&t.resource_id);
        let named = wanted.is_empty()
            || wanted
                .iter()
                .any(|(k, v)| *k == t.key && v.as_ref().is_none_or(|v| *v == t.value));
        !(target && named)
    });
    ctx.dirty = true;
    let job = ctx.job("deleteTags", None, Action::Success);
    Ok(Reply::Async { job, id: None })
}

pub fn list_tags(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let filters = [
        field_eq(p, "resourcetype", "resourcetype"),
        field_eq(p, "resourceid", "resourceid"),
        field_eq(p, "key", "key"),
        field_eq(p, "value", "value"),
    ];
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .tags
        .iter()
        .filter(|t| scope.sees(c, &t.owner))
        .map(|t| t.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "tag", items, &["key", "value"])
}
