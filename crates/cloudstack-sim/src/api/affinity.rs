//! Affinity groups and their types (host anti-affinity and affinity).

use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::AffinityGroup;
use crate::params::Params;

const TYPES: &[&str] = &["host anti-affinity", "host affinity"];

pub fn list_types(_ctx: &mut Ctx, _p: &Params) -> Result<Reply, ApiError> {
    let items: Vec<Value> = TYPES.iter().map(|t| json!({"type": t})).collect();
    Ok(Reply::Value(
        json!({"count": items.len(), "affinityGroupType": items}),
    ))
}

pub fn list_groups(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let kind = field_eq(p, "type", "type");
    let vm = p
        .str("virtualmachineid")
        .and_then(|v| c.vm(v))
        .map(|v| v.affinity_group_ids.clone());
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .affinity_groups
        .iter()
        .filter(|g| scope.sees(c, &g.owner))
        .filter(|g| vm.as_ref().is_none_or(|ids| ids.contains(&g.id)))
        .map(|g| g.render(c))
        .filter(|v| kind(v))
        .collect();
    list(p, "affinitygroup", items)
}

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let name = p.req("name")?.to_string();
    let kind = p.req("type")?.to_string();
    if !TYPES.contains(&kind.as_str()) {
        return Err(ApiError::invalid(format!(
            "No AffinityProcessor found for type {kind}"
        )));
    }
    let owner = ctx.owner_from(p)?;
    if ctx
        .cloud
        .affinity_groups
        .iter()
        .any(|g| g.name == name && g.owner == owner)
    {
        return Err(ApiError::invalid(format!(
            "Unable to create affinity group, a group with name {name} already exists."
        )));
    }
    let id = ctx.id();
    ctx.cloud.affinity_groups.push(AffinityGroup {
        id: id.clone(),
        description: p.str("description").unwrap_or(&name).to_string(),
        name,
        kind,
        owner,
    });
    Ok(ctx.created(
        "createAffinityGroup",
        "AffinityGroup",
        &id,
        Action::AffinityCreate { group: id.clone() },
    ))
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let g = match (p.str("id"), p.str("name")) {
        (Some(id), _) => c.affinity_groups.iter().find(|g| g.id == id),
        (None, Some(n)) => {
            let owner = c.owner_from(p)?;
            c.affinity_groups
                .iter()
                .find(|g| g.name == n && g.owner == owner)
        }
        _ => {
            return Err(ApiError::invalid(
                "Either the affinity group id or name has to be specified",
            ))
        }
    };
    let Some(g) = g else {
        return Err(ApiError::invalid("Unable to find affinity group"));
    };
    c.may_operate(&g.owner)?;
    let id = g.id.clone();
    if c.vms.iter().any(|v| v.affinity_group_ids.contains(&id)) {
        return Err(ApiError::in_use(
            "Cannot delete affinity group when it's in use by virtual machines",
        ));
    }
    Ok(ctx.acted(
        "deleteAffinityGroup",
        "AffinityGroup",
        &id,
        Action::AffinityDelete { group: id.clone() },
    ))
}
