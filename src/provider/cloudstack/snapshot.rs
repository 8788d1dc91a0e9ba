//! `box snapshot` on CloudStack: VM snapshots, found by the name box gave
//! them (CloudStack's `name` is generated; box's name is the display name).

use cloudstack::{Params, VmSnapshot};

use crate::error::Hinted;
use crate::provider::{SnapshotInfo, SnapshotOp};
use crate::state::MachineState;

use super::api::{convert, Api};

fn label(s: &VmSnapshot) -> &str {
    s.displayname
        .as_deref()
        .or(s.name.as_deref())
        .unwrap_or(s.id.as_str())
}

async fn list(api: &Api, vm_id: &str) -> anyhow::Result<Vec<VmSnapshot>> {
    api.client
        .list_vm_snapshots(
            &Params::new()
                .set("virtualmachineid", vm_id)
                .set("listall", "true"),
        )
        .await
        .map_err(|e| convert(e, "cannot list the VM's snapshots"))
}

async fn find(api: &Api, vm_id: &str, machine: &str, name: &str) -> anyhow::Result<VmSnapshot> {
    let all = list(api, vm_id).await?;
    if let Some(s) = all.iter().find(|s| label(s) == name || s.id == name) {
        return Ok(s.clone());
    }
    let names: Vec<&str> = all.iter().map(label).collect();
    let hint = match crate::suggest::did_you_mean(name, names.iter().copied()) {
        Some(s) => format!(
            "did you mean `{s}`? snapshots of `{machine}`: {}",
            names.join(", ")
        ),
        None if names.is_empty() => {
            format!("`{machine}` has no snapshot; `box snapshot save {machine} NAME` makes one")
        }
        None => format!("snapshots of `{machine}`: {}", names.join(", ")),
    };
    Err(Hinted::new(format!("`{machine}` has no snapshot named `{name}`"), hint).into())
}

pub async fn run(
    api: &Api,
    state: &MachineState,
    op: SnapshotOp,
) -> anyhow::Result<Vec<SnapshotInfo>> {
    let machine = &state.name;
    let vm_id = state.id.as_deref().ok_or_else(|| {
        Hinted::new(
            format!("`{machine}` has no VM"),
            format!("run `box up {machine}` first"),
        )
    })?;
    match op {
        SnapshotOp::List => Ok(list(api, vm_id)
            .await?
            .iter()
            .map(|s| SnapshotInfo {
                name: label(s).to_string(),
                created: s.created.clone(),
            })
            .collect()),
        SnapshotOp::Save(name) => {
            if list(api, vm_id).await?.iter().any(|s| label(s) == name) {
                return Err(Hinted::new(
                    format!("`{machine}` already has a snapshot named `{name}`"),
                    format!("delete it first with `box snapshot delete {machine} {name}`, or choose another name"),
                )
                .into());
            }
            api.client
                .create_vm_snapshot(
                    &Params::new()
                        .set("virtualmachineid", vm_id)
                        .set("name", &name)
                        .set("description", format!("box snapshot {name} of {machine}")),
                )
                .await
                .map_err(|e| {
                    convert(e, &format!("cannot save snapshot `{name}` of `{machine}`"))
                })?;
            Ok(Vec::new())
        }
        SnapshotOp::Restore(name) => {
            let s = find(api, vm_id, machine, &name).await?;
            // A disk-only snapshot is reverted on a stopped VM; box stops
            // the machine for it and starts it again after.
            let with_memory = s.snapshot_type.as_deref() == Some("DiskAndMemory");
            let running = !with_memory
                && api
                    .client
                    .list_virtual_machines(&Params::new().set("id", vm_id).set("listall", "true"))
                    .await
                    .map_err(|e| convert(e, &format!("cannot look up the VM of `{machine}`")))?
                    .iter()
                    .any(|v| v.state.as_deref() == Some("Running"));
            if running {
                api.client
                    .stop_virtual_machine(&Params::new().set("id", vm_id))
                    .await
                    .map_err(|e| {
                        convert(e, &format!("cannot stop `{machine}` to restore `{name}`"))
                    })?;
            }
            let reverted = api
                .client
                .revert_to_vm_snapshot(&Params::new().set("vmsnapshotid", &s.id))
                .await
                .map_err(|e| {
                    convert(
                        e,
                        &format!("cannot restore snapshot `{name}` of `{machine}`"),
                    )
                });
            if running {
                api.client
                    .start_virtual_machine(&Params::new().set("id", vm_id))
                    .await
                    .map_err(|e| {
                        convert(
                            e,
                            &format!("cannot start `{machine}` again after the restore"),
                        )
                    })?;
            }
            reverted?;
            Ok(Vec::new())
        }
        SnapshotOp::Delete(name) => {
            let s = find(api, vm_id, machine, &name).await?;
            api.client
                .delete_vm_snapshot(&Params::new().set("vmsnapshotid", &s.id))
                .await
                .map_err(|e| {
                    convert(
                        e,
                        &format!("cannot delete snapshot `{name}` of `{machine}`"),
                    )
                })?;
            Ok(Vec::new())
        }
    }
}
