//! Virtual machines: deploy, the start/stop/reboot/destroy/expunge life
//! cycle with its real state rules, and listing.

use base64::Engine;
use serde_json::{json, Value};

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::ids;
use crate::jobs::Action;
use crate::model::{Nic, Vm};
use crate::params::Params;
use crate::seed;
use crate::tenancy::Owner;

/// `vm.userdata.max.length` for POST; GET is limited to 4096 characters.
const USER_DATA_MAX_POST: usize = 32_768;
const USER_DATA_MAX_GET: usize = 4096;

fn vm<'c>(ctx: &'c Ctx, id: &str) -> Result<&'c Vm, ApiError> {
    let v = ctx.cloud.vm(id).ok_or_else(|| {
        ApiError::invalid(format!(
            "Unable to find virtual machine with specified vmId {id}"
        ))
    })?;
    ctx.may_operate(&v.owner)?;
    Ok(v)
}

/// RFC 1123 host names, as `UserVmManagerImpl` checks them.
fn valid_host_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !b[0].is_ascii_digit()
}

pub fn deploy(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    // `DeployVMCmd.getEntityOwnerId` (`finalyzeAccountId`), then
    // `checkAccess(caller, owner)`.
    if p.has("account") && !p.has("domainid") {
        return Err(ApiError::invalid(
            "Account must be specified with domainId parameter",
        ));
    }
    if let Some(project) = p.str("projectid").and_then(|id| c.project(id)) {
        c.may_operate(&Owner::Project(project.id.clone()))?;
    }
    let owner = c.owner_from(p)?;
    let zone = c
        .zone(p.req("zoneid")?)
        .ok_or_else(|| ApiError::invalid("Unable to find zone by id"))?
        .clone();
    let offering = p.req("serviceofferingid")?;
    if !c.service_offerings.iter().any(|o| o.id == offering) {
        return Err(ApiError::invalid(format!(
            "Unable to find service offering: {offering}"
        )));
    }
    let template = p.req("templateid")?;
    match c.templates.iter().find(|t| t.id == template) {
        None => {
            return Err(ApiError::invalid(format!(
                "Unable to use template {template}"
            )))
        }
        Some(t) if !t.is_ready() => {
            return Err(ApiError::invalid(format!(
                "Template {template} has not been completely downloaded to zone"
            )))
        }
        Some(_) => {}
    }
    let disk_offering = p.str("diskofferingid").map(str::to_string);
    if let Some(d) = &disk_offering {
        if !c.disk_offerings.iter().any(|o| &o.id == d) {
            return Err(ApiError::invalid(format!(
                "Unable to find disk offering {d}"
            )));
        }
    }
    let mut keypairs = p.list("keypairs");
    if let Some(k) = p.str("keypair") {
        keypairs.insert(0, k.to_string());
    }
    for k in &keypairs {
        if !c.keypairs.iter().any(|x| &x.name == k && x.owner == owner) {
            return Err(ApiError::invalid(format!(
                "A key pair with name '{k}' was not found."
            )));
        }
    }
    let user_data = match p.str("userdata") {
        None => None,
        Some(u) => {
            let max = if ctx.post {
                USER_DATA_MAX_POST
            } else {
                USER_DATA_MAX_GET
            };
            if u.len() > max {
                return Err(ApiError::invalid(format!(
                    "User data is too long for an http {} request",
                    if ctx.post { "POST" } else { "GET" }
                )));
            }
            if base64::engine::general_purpose::STANDARD
                .decode(u.trim())
                .is_err()
            {
                return Err(ApiError::invalid("User data is not base64 encoded"));
            }
            Some(u.to_string())
        }
    };
    let number = c.counters.vm + 1;
    let name = match p.str("name") {
        Some(n) => n.to_string(),
        None => format!("VM-{}", &ids::uuid()),
    };
    if !valid_host_name(&name) {
        return Err(ApiError::invalid(
            "Invalid name. Vm name can contain ASCII letters 'a' through 'z', the digits '0' through '9', and the hyphen ('-'), must be between 1 and 63 characters long, and can't start or end with \"-\" and can't start with digit",
        ));
    }
    // Destroyed VMs keep their name until they are expunged.
    if c.vms
        .iter()
        .any(|v| v.zone_id == zone.id && v.name.eq_ignore_ascii_case(&name))
    {
        return Err(ApiError::invalid(format!(
            "The vm with hostName {name} already exists in the network domain: cs2cloud.internal; network={}",
            c.networks.iter().find(|n| n.zone_id == zone.id).map(|n| n.name.as_str()).unwrap_or_default()
        )));
    }
    let sg_ids = p.list("securitygroupids");
    let sg_names = p.list("securitygroupnames");
    let mut security_group_ids = vec![];
    let network_id = if zone.basic() {
        for n in &sg_names {
            match c
                .security_groups
                .iter()
                .find(|g| &g.name == n && g.owner == owner)
            {
                Some(g) => security_group_ids.push(g.id.clone()),
                None => {
                    return Err(ApiError::invalid(format!(
                        "Unable to find group by name {n}"
                    )))
                }
            }
        }
        for id in &sg_ids {
            if !c.security_groups.iter().any(|g| &g.id == id) {
                return Err(ApiError::invalid(format!(
                    "Unable to find security group by id {id}"
                )));
            }
            security_group_ids.push(id.clone());
        }
        if security_group_ids.is_empty() {
            let default = c
                .security_groups
                .iter()
                .find(|g| g.name == "default" && g.owner == owner);
            security_group_ids.extend(default.map(|g| g.id.clone()));
        }
        c.networks
            .iter()
            .find(|n| n.zone_id == zone.id)
            .map(|n| n.id.clone())
    } else {
        if !sg_ids.is_empty() || !sg_names.is_empty() {
            return Err(ApiError::invalid(
                "Can't create vm with security groups; security group feature is not enabled per zone",
            ));
        }
        let wanted = p.list("networkids");
        match wanted.first() {
            Some(n) => match c.network(n) {
                Some(net) if net.zone_id == zone.id => {
                    c.check_network_use(&owner, net)?;
                    Some(net.id.clone())
                }
                _ => {
                    return Err(ApiError::invalid(format!(
                        "Unable to find network by id {n}"
                    )))
                }
            },
            None => c
                .networks
                .iter()
                .find(|n| n.zone_id == zone.id && c.check_network_use(&owner, n).is_ok())
                .map(|n| n.id.clone()),
        }
    };
    let Some(network_id) = network_id else {
        return Err(ApiError::internal("the zone has no guest network"));
    };
    let affinity_group_ids = p.list("affinitygroupids");
    let start = p.bool("startvm").unwrap_or(true);
    let display_name = p.str("displayname").unwrap_or(&name).to_string();
    let group = p.str("group").map(str::to_string);

    let subnet = c.network(&network_id).map(|n| n.cidr.clone());
    let counters = &mut ctx.cloud.counters;
    counters.vm = number;
    counters.mac += 1;
    let mac = ids::mac(counters.mac);
    let ip = if zone.basic() {
        counters.basic_ip += 1;
        seed::basic_ip(counters.basic_ip)
    } else {
        counters.guest_ip += 1;
        super::tier::guest_ip(subnet.as_deref().unwrap_or_default(), counters.guest_ip)
    };
    let id = ctx.id();
    let nic = Nic {
        id: ctx.id(),
        network_id,
        ip,
        mac,
    };
    ctx.cloud.vms.push(Vm {
        id: id.clone(),
        name,
        display_name,
        zone_id: zone.id.clone(),
        template_id: template.to_string(),
        service_offering_id: offering.to_string(),
        disk_offering_id: disk_offering,
        keypairs,
        user_data,
        group,
        state: if start { "Starting" } else { "Stopped" }.into(),
        created: ctx.now,
        number,
        nics: vec![nic],
        security_group_ids,
        affinity_group_ids,
        owner,
    });
    super::inspect::add_volumes(ctx, &id, p)?;
    Ok(ctx.created(
        "deployVirtualMachine",
        "VirtualMachine",
        &id,
        Action::VmDeploy {
            vm: id.clone(),
            start,
        },
    ))
}

pub fn list_vms(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let zone = field_eq(p, "zoneid", "zoneid");
    let state = field_eq(p, "state", "state");
    let template = field_eq(p, "templateid", "templateid");
    let group = field_eq(p, "group", "group");
    let ids = p.list("ids");
    let network = p.str("networkid");
    let keypair = p.str("keypair");
    let present = p
        .str("state")
        .is_some_and(|s| s.eq_ignore_ascii_case("present"));
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .vms
        .iter()
        .filter(|v| scope.sees(c, &v.owner))
        .filter(|v| ids.is_empty() || ids.contains(&v.id))
        .filter(|v| {
            network.is_none()
                || v.nics
                    .iter()
                    .any(|n| Some(n.network_id.as_str()) == network)
        })
        .filter(|v| keypair.is_none() || v.keypairs.iter().any(|k| Some(k.as_str()) == keypair))
        // `present` is the server's shorthand for neither destroyed nor expunging.
        .filter(|v| !(present && matches!(v.state.as_str(), "Destroyed" | "Expunging")))
        .map(|v| v.render(c))
        .filter(|v| zone(v) && (present || state(v)) && template(v) && group(v))
        .collect();
    list(p, "virtualmachine", items)
}

fn transition(
    ctx: &mut Ctx,
    p: &Params,
    command: &str,
    allowed: &[&str],
    now: &str,
    action: fn(String) -> Action,
) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let v = vm(ctx, &id)?;
    if !allowed.contains(&v.state.as_str()) {
        let verb = command.trim_end_matches("VirtualMachine");
        return Err(ApiError::invalid(format!(
            "Unable to {verb} VM {} as it is in state {}",
            v.name, v.state
        )));
    }
    if let Some(v) = ctx.cloud.vm_mut(&id) {
        v.state = now.to_string();
    }
    ctx.dirty = true;
    Ok(ctx.acted(command, "VirtualMachine", &id, action(id.clone())))
}

pub fn start(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    transition(
        ctx,
        p,
        "startVirtualMachine",
        &["Stopped"],
        "Starting",
        |vm| Action::VmStart { vm },
    )
}

pub fn stop(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    // Stopping a stopped VM succeeds on a real cloud (the job is a no-op).
    let id = p.req("id")?;
    if vm(ctx, id)?.state == "Stopped" {
        let id = id.to_string();
        return Ok(ctx.acted(
            "stopVirtualMachine",
            "VirtualMachine",
            &id,
            Action::VmStop { vm: id.clone() },
        ));
    }
    transition(
        ctx,
        p,
        "stopVirtualMachine",
        &["Running"],
        "Stopping",
        |vm| Action::VmStop { vm },
    )
}

pub fn reboot(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    transition(
        ctx,
        p,
        "rebootVirtualMachine",
        &["Running"],
        "Running",
        |vm| Action::VmReboot { vm },
    )
}

pub fn destroy(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let v = vm(ctx, &id)?;
    let from = v.state.clone();
    if !matches!(from.as_str(), "Running" | "Stopped" | "Error") {
        return Err(ApiError::invalid(format!(
            "Unable to destroy VM {} as it is in state {}",
            v.name, v.state
        )));
    }
    let expunge = p.bool("expunge").unwrap_or(false);
    if let Some(v) = ctx.cloud.vm_mut(&id) {
        if from == "Running" {
            v.state = "Stopping".into();
        }
    }
    Ok(ctx.acted(
        "destroyVirtualMachine",
        "VirtualMachine",
        &id,
        Action::VmDestroy {
            vm: id.clone(),
            expunge,
            from,
        },
    ))
}

pub fn expunge(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    transition(
        ctx,
        p,
        "expungeVirtualMachine",
        &["Destroyed"],
        "Expunging",
        |vm| Action::VmExpunge { vm },
    )
}

/// Synchronous on the real server too.
pub fn recover(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("id")?.to_string();
    let v = vm(ctx, &id)?;
    if v.state != "Destroyed" {
        return Err(ApiError::invalid(format!(
            "Unable to recover VM {} as it is in state {}",
            v.name, v.state
        )));
    }
    if let Some(v) = ctx.cloud.vm_mut(&id) {
        v.state = "Stopped".into();
    }
    ctx.dirty = true;
    let c = &*ctx.cloud;
    Ok(Reply::Value(
        json!({"virtualmachine": c.vm(&id).map(|v| v.render(c))}),
    ))
}

pub fn user_data(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let id = p.req("virtualmachineid")?;
    let v = vm(ctx, id)?;
    Ok(Reply::Value(json!({"virtualmachineuserdata": {
        "virtualmachineid": v.id,
        "userdata": v.user_data.clone().unwrap_or_default(),
    }})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_follow_rfc_1123() {
        assert!(valid_host_name("web-1"));
        assert!(!valid_host_name("1web"));
        assert!(!valid_host_name("web_1"));
        assert!(!valid_host_name("-web"));
        assert!(!valid_host_name(&"a".repeat(64)));
    }
}
