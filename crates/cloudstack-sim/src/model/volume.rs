//! Disk volumes: the ROOT volume every VM gets from its template, and the
//! DATADISK a VM deployed with a disk offering gets, as `listVolumes`
//! renders them (`VolumeJoinDaoImpl.newVolumeResponse`).

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{merge, Cloud};
use crate::clock;
use crate::tenancy::Owner;

const GIB: u64 = 1024 * 1024 * 1024;

/// The simulated primary storage pool every volume lives on.
const POOL_ID: &str = "5e9a5bb2-8d34-4a58-b0f6-1b1b5c1a2f01";
const POOL_NAME: &str = "sim-primary";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Volume {
    pub id: String,
    pub name: String,
    /// `ROOT` or `DATADISK`.
    pub kind: String,
    pub zone_id: String,
    /// The VM it is attached to; a DATADISK outlives its VM, detached.
    pub vm_id: Option<String>,
    pub device_id: u32,
    /// Bytes.
    pub size: u64,
    pub disk_offering_id: Option<String>,
    pub created: u64,
    /// The VM's owner when it was made.
    #[serde(default)]
    pub owner: Owner,
}

impl Volume {
    /// The ROOT volume of a new VM: the template's size unless `rootdisksize`
    /// (GB) asks for more. Named `ROOT-<n>` after the VM's number, as
    /// `VolumeOrchestrator` names it.
    pub fn root(id: String, cloud: &Cloud, vm_id: &str, root_gb: Option<u64>) -> Option<Volume> {
        let vm = cloud.vm(vm_id)?;
        let template = cloud.templates.iter().find(|t| t.id == vm.template_id);
        let size = match root_gb {
            Some(gb) => gb * GIB,
            None => template.map(|t| t.size).unwrap_or(0),
        };
        Some(Volume {
            id,
            name: format!("ROOT-{}", vm.number),
            kind: "ROOT".into(),
            zone_id: vm.zone_id.clone(),
            vm_id: Some(vm.id.clone()),
            device_id: 0,
            size,
            disk_offering_id: None,
            created: vm.created,
            owner: vm.owner.clone(),
        })
    }

    /// The DATADISK of a VM deployed with `diskofferingid`: the offering's
    /// size, or `size` (GB) for a customised offering.
    pub fn data(
        id: String,
        cloud: &Cloud,
        vm_id: &str,
        offering_id: &str,
        custom_gb: Option<u64>,
    ) -> Option<Volume> {
        let vm = cloud.vm(vm_id)?;
        let offering = cloud.disk_offerings.iter().find(|o| o.id == offering_id)?;
        let gb = if offering.customized {
            custom_gb.unwrap_or(0)
        } else {
            u64::from(offering.size)
        };
        Some(Volume {
            id,
            name: format!("DATA-{}", vm.number),
            kind: "DATADISK".into(),
            zone_id: vm.zone_id.clone(),
            vm_id: Some(vm.id.clone()),
            device_id: 1,
            size: gb * GIB,
            disk_offering_id: Some(offering.id.clone()),
            created: vm.created,
            owner: vm.owner.clone(),
        })
    }

    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = merge(
            json!({
                "id": self.id,
                "name": self.name,
                "zoneid": self.zone_id,
                "zonename": cloud.zone(&self.zone_id).map(|z| z.name.clone()).unwrap_or_default(),
                "type": self.kind,
                "provisioningtype": "thin",
                "size": self.size,
                "physicalsize": self.size,
                "created": clock::format_ms(self.created),
                "state": "Ready",
                "storagetype": "shared",
                "hypervisor": "KVM",
                "storageid": POOL_ID,
                "storage": POOL_NAME,
                "path": self.id,
                "destroyed": false,
                "isextractable": self.kind == "DATADISK",
                "quiescevm": false,
                "supportsstoragesnapshot": false,
                "displayvolume": true,
                "tags": cloud.tags_of(&self.id),
                "hasannotations": false,
            }),
            cloud.owner_fields(&self.owner),
        );
        if let Some(vm) = self.vm_id.as_deref().and_then(|id| cloud.vm(id)) {
            v["virtualmachineid"] = json!(vm.id);
            v["vmname"] = json!(vm.name);
            v["vmdisplayname"] = json!(vm.display_name);
            v["vmstate"] = json!(vm.state);
            v["vmtype"] = json!("User");
            v["deviceid"] = json!(self.device_id);
            v["attached"] = json!(clock::format_ms(self.created));
            if self.kind == "ROOT" {
                if let Some(o) = cloud
                    .service_offerings
                    .iter()
                    .find(|o| o.id == vm.service_offering_id)
                {
                    let o = o.render();
                    v["serviceofferingid"] = o["id"].clone();
                    v["serviceofferingname"] = o["name"].clone();
                    v["serviceofferingdisplaytext"] = o["displaytext"].clone();
                }
                if let Some(t) = cloud.templates.iter().find(|t| t.id == vm.template_id) {
                    v["templateid"] = json!(t.id);
                    v["templatename"] = json!(t.name);
                    v["templatedisplaytext"] = json!(t.display_text);
                    v["ostypeid"] = json!(t.id);
                    v["osdisplayname"] = json!(t.os_type);
                }
            }
        }
        if let Some(o) = self
            .disk_offering_id
            .as_deref()
            .and_then(|id| cloud.disk_offerings.iter().find(|o| o.id == id))
        {
            v["diskofferingid"] = json!(o.id);
            v["diskofferingname"] = json!(o.name);
            v["diskofferingdisplaytext"] = json!(o.name);
        }
        v
    }
}

/// What expunging a VM does to its volumes (`VolumeOrchestrator.cleanupVolumes`):
/// the ROOT volume goes, a DATADISK stays, detached.
pub fn on_expunge(cloud: &mut Cloud, vm_id: &str) {
    let gone: Vec<String> = cloud
        .volumes
        .iter()
        .filter(|v| v.vm_id.as_deref() == Some(vm_id) && v.kind == "ROOT")
        .map(|v| v.id.clone())
        .collect();
    cloud.volumes.retain(|v| !gone.contains(&v.id));
    cloud.tags.retain(|t| !gone.contains(&t.resource_id));
    for v in cloud
        .volumes
        .iter_mut()
        .filter(|v| v.vm_id.as_deref() == Some(vm_id))
    {
        v.vm_id = None;
    }
}
