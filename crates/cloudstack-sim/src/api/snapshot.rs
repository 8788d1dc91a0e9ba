//! VM snapshots: create, list (under the irregular `vmSnapshot` key),
//! revert and delete.

use serde_json::Value;

use super::list::{field_eq, list};
use super::{Ctx, Reply};
use crate::error::ApiError;
use crate::jobs::Action;
use crate::model::VmSnapshot;
use crate::params::Params;

pub fn create(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let vm_id = p.req("virtualmachineid")?.to_string();
    let memory = p.bool("snapshotmemory").unwrap_or(false);
    let c = &*ctx.cloud;
    let vm = c.vm(&vm_id).ok_or_else(|| {
        ApiError::invalid(format!(
            "Creating VM snapshot failed due to VM:{vm_id} doesn't exist"
        ))
    })?;
    c.may_operate(&vm.owner)?;
    let owner = vm.owner.clone();
    if !matches!(vm.state.as_str(), "Running" | "Stopped") {
        return Err(ApiError::invalid(format!(
            "Creating VM snapshot failed due to VM:{vm_id} is not in the running or Stopped state"
        )));
    }
    if memory && vm.state != "Running" {
        return Err(ApiError::invalid(
            "Can not snapshot memory when VM is not in Running state",
        ));
    }
    let parent = c
        .vm_snapshots
        .iter()
        .find(|s| s.vm_id == vm_id && s.current)
        .map(|s| s.id.clone());
    let now = ctx.now;
    let name = match p.str("name") {
        Some(n) => n.to_string(),
        None => format!(
            "i-2-{}-VM_VS_{}",
            vm.number,
            crate::clock::format_ms(now).replace([':', '-', 'T', '+'], "")
        ),
    };
    let id = ctx.id();
    ctx.cloud.vm_snapshots.push(VmSnapshot {
        id: id.clone(),
        display_name: name.clone(),
        name,
        description: p.str("description").unwrap_or_default().to_string(),
        vm_id,
        memory,
        state: "Creating".into(),
        current: false,
        parent,
        created: now,
        owner,
    });
    Ok(ctx.created(
        "createVMSnapshot",
        "VMSnapshot",
        &id,
        Action::SnapshotCreate {
            snapshot: id.clone(),
        },
    ))
}

pub fn list_snapshots(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let c = &*ctx.cloud;
    let (vm, state) = (
        field_eq(p, "virtualmachineid", "virtualmachineid"),
        field_eq(p, "state", "state"),
    );
    let id = p.str("vmsnapshotid");
    let scope = c.scope(p)?;
    let items: Vec<Value> = c
        .vm_snapshots
        .iter()
        .filter(|s| scope.sees(c, &s.owner))
        .filter(|s| id.is_none_or(|id| id == s.id))
        .map(|s| s.render(c))
        .filter(|v| vm(v) && state(v))
        .collect();
    list(p, "vmSnapshot", items)
}

fn snapshot(ctx: &Ctx, p: &Params) -> Result<VmSnapshot, ApiError> {
    let id = p.req("vmsnapshotid")?;
    let snap = ctx
        .cloud
        .vm_snapshots
        .iter()
        .find(|s| s.id == id)
        .cloned()
        .ok_or_else(|| ApiError::invalid(format!("unable to find the vm snapshot with id {id}")))?;
    ctx.may_operate(&snap.owner)?;
    Ok(snap)
}

pub fn revert(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let snap = snapshot(ctx, p)?;
    if snap.state != "Ready" {
        return Err(ApiError::invalid(format!(
            "VM Snapshot reverting failed due to vm snapshot {} is not in the Ready state",
            snap.name
        )));
    }
    let from = ctx
        .cloud
        .vm(&snap.vm_id)
        .map(|v| v.state.clone())
        .unwrap_or_default();
    if !matches!(from.as_str(), "Running" | "Stopped") {
        return Err(ApiError::invalid(
            "VM Snapshot reverting failed due to vm is not in the state of Running or Stopped.",
        ));
    }
    if !snap.memory && from == "Running" {
        return Err(ApiError::invalid(
            "VM Snapshot reverting failed due to vm is not in Stopped state: a snapshot without memory can only be reverted on a stopped VM",
        ));
    }
    for s in ctx
        .cloud
        .vm_snapshots
        .iter_mut()
        .filter(|s| s.id == snap.id)
    {
        s.state = "Reverting".into();
    }
    Ok(ctx.acted(
        "revertToVMSnapshot",
        "VMSnapshot",
        &snap.id,
        Action::SnapshotRevert {
            snapshot: snap.id.clone(),
            from,
        },
    ))
}

pub fn delete(ctx: &mut Ctx, p: &Params) -> Result<Reply, ApiError> {
    let snap = snapshot(ctx, p)?;
    if !matches!(snap.state.as_str(), "Ready" | "Error") {
        return Err(ApiError::invalid(format!(
            "Can't delete the vm snapshot {} due to it is not in Created or Ready or Error State",
            snap.name
        )));
    }
    for s in ctx
        .cloud
        .vm_snapshots
        .iter_mut()
        .filter(|s| s.id == snap.id)
    {
        s.state = "Expunging".into();
    }
    Ok(ctx.acted(
        "deleteVMSnapshot",
        "VMSnapshot",
        &snap.id,
        Action::SnapshotDelete {
            snapshot: snap.id.clone(),
        },
    ))
}
