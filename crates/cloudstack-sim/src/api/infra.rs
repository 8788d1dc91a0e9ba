//! The cloud's fixed catalogue: zones, networks, offerings, templates,
//! capabilities and the API list itself.

use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{Ctx, Reply, COMMANDS};
use crate::error::ApiError;
use crate::params::Params;

pub fn list_zones(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let by_type = field_eq(p, "networktype", "networktype");
    let items = c
        .zones
        .iter()
        .map(|z| z.render(c))
        .filter(|v| by_type(v))
        .collect();
    list(p, "zone", items)
}

pub fn list_service_offerings(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let items = ctx
        .cloud
        .service_offerings
        .iter()
        .map(|o| o.render())
        .collect();
    list(p, "serviceoffering", items)
}

pub fn list_disk_offerings(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let items = ctx
        .cloud
        .disk_offerings
        .iter()
        .map(|o| o.render())
        .collect();
    list(p, "diskoffering", items)
}

const TEMPLATE_FILTERS: &[&str] = &[
    "featured",
    "self",
    "selfexecutable",
    "sharedexecutable",
    "executable",
    "community",
    "all",
];

pub fn list_templates(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let filter = p.req("templatefilter")?;
    if !TEMPLATE_FILTERS.contains(&filter) {
        return Err(ApiError::invalid(format!(
            "Please specify a valid template filter: one of {}",
            TEMPLATE_FILTERS.join(", ")
        )));
    }
    let c = &*ctx.cloud;
    // A project or account the caller may not see is refused, as for any list.
    c.scope(p)?;
    // The built-in templates are public, featured and owned by the system
    // account, so the caller's own filters see none of them.
    // Uploaded templates are the caller's own.
    let own = matches!(filter, "self" | "selfexecutable");
    if filter == "sharedexecutable" {
        return list(p, "template", vec![]);
    }
    let zone = field_eq(p, "zoneid", "zoneid");
    let items: Vec<Value> = c
        .templates
        .iter()
        .filter(|t| !own || t.upload.is_some())
        .flat_map(|t| {
            c.zones
                .iter()
                .filter(|z| t.in_zone(&z.id))
                .map(move |z| t.render(c, z))
        })
        .filter(|v| zone(v))
        .collect();
    list(p, "template", items)
}

pub fn list_capabilities(_ctx: &mut Ctx, _p: &Params) -> Result<Reply, ApiError> {
    Ok(Reply::Value(json!({"capability": {
        "securitygroupsenabled": true,
        "dynamicrolesenabled": true,
        "cloudstackversion": "4.19.0.0",
        "userpublictemplateenabled": true,
        "supportELB": "false",
        "projectinviterequired": false,
        "allowusercreateprojects": true,
        "customdiskofferingminsize": 1,
        "customdiskofferingmaxsize": 1024,
        "regionsecondaryenabled": false,
        "kvmsnapshotenabled": true,
        "allowuserviewdestroyedvm": true,
        "allowuserexpungerecovervm": true,
        "allowuserexpungerecovervolume": true,
        "allowuserviewalldomainaccounts": false,
        "kubernetesserviceenabled": false,
        "kubernetesclusterexperimentalfeaturesenabled": false,
        "defaultuipagesize": 20,
        "apilimitinterval": 1,
        "apilimitmax": 100000,
    }})))
}

pub fn list_apis(_ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let wanted = p.str("name");
    if let Some(n) = wanted {
        if !COMMANDS.iter().any(|c| c.name == n) {
            return Err(ApiError::invalid(format!("Api Name: {n} does not exist")));
        }
    }
    let apis: Vec<Value> = COMMANDS
        .iter()
        .filter(|c| match wanted {
            Some(n) => n == c.name,
            None => true,
        })
        .map(|c| {
            let params: Vec<Value> = c
                .all_params()
                .map(|p| {
                    json!({
                        "name": p.name,
                        "description": p.description,
                        "type": p.kind.api_type(),
                        "length": 255,
                        "required": p.required,
                    })
                })
                .collect();
            json!({
                "name": c.name,
                "description": c.description,
                "isasync": c.is_async,
                "related": "",
                "params": params,
                "response": [],
            })
        })
        .collect();
    Ok(Reply::Value(json!({"count": apis.len(), "api": apis})))
}
