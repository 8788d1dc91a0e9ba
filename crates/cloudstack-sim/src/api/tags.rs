//! Resource tags: created and deleted in batches by async jobs, listed, and
//! shown on every tagged object.

use serde_json::Value;

use super::list::{field_eq, list_by};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::{Cloud, Tag};
use crate::params::Params;

/// The resource types tags accept here, and whether an id names one.
fn exists(cloud: &Cloud, kind: &str, id: &str) -> bool {
    match kind.to_lowercase().as_str() {
        "uservm" => cloud.vm(id).is_some(),
        "publicipaddress" => cloud.ip(id).is_some(),
        "portforwardingrule" => cloud.pf_rules.iter().any(|r| r.id == id),
        "firewallrule" => cloud.fw_rules.iter().any(|r| r.id == id),
        "securitygroup" => cloud.security_groups.iter().any(|g| g.id == id),
        "network" => cloud.network(id).is_some(),
        "template" => cloud.templates.iter().any(|t| t.id == id),
        "vmsnapshot" => cloud.vm_snapshots.iter().any(|s| s.id == id),
        "zone" => cloud.zone(id).is_some(),
        _ => false,
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
    for id in &ids {
        if !exists(ctx.cloud, kind, id) {
            return Err(ApiError::invalid(format!(
                "Unable to find resource by id {id} and type {kind}"
            )));
        }
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
    for id in &ids {
        for (key, value) in &tags {
            ctx.cloud.tags.push(Tag {
                key: key.clone(),
                value: value.clone(),
                resource_type: kind.to_string(),
                resource_id: id.clone(),
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
    let items: Vec<Value> = c
        .tags
        .iter()
        .map(|t| t.render(c))
        .filter(|v| filters.iter().all(|f| f(v)))
        .collect();
    list_by(p, "tag", items, &["key", "value"])
}
