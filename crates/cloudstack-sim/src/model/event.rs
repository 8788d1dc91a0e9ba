//! Action events, as CloudStack records them around async jobs
//! (`ApiServer` + `ActionEventUtils` + `ActionEventInterceptor`): a
//! `Scheduled` event when the job is queued, then `Started` and `Completed`
//! when it runs; `Completed` says "Successfully completed <what>" at level
//! INFO, or "Error while <what>" at level ERROR. Deploying also records the
//! `Created` event the others point at as their parent.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{merge, Cloud, ACCOUNT};
use crate::api::static_nat::Job as StaticNatJob;
use crate::clock;
use crate::ids;
use crate::jobs::Action;
use crate::tenancy::Owner;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub id: String,
    /// `VM.CREATE`, `NET.IPASSIGN`, ...
    pub kind: String,
    /// `INFO` or `ERROR`.
    pub level: String,
    pub description: String,
    /// `Created`, `Scheduled`, `Started` or `Completed`.
    pub state: String,
    pub created: u64,
    /// The event this one continues (`startid`), rendered as `parentid`.
    pub parent: Option<String>,
    /// The job it belongs to, so completion finds its start.
    pub job: Option<String>,
    pub resource_type: Option<String>,
    pub resource_id: Option<String>,
    /// Order of recording, to keep events of the same millisecond in order.
    pub seq: u64,
    /// The owner of what the event acts on (a project's events are the
    /// project's).
    #[serde(default)]
    pub owner: Owner,
}

impl Event {
    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = merge(
            json!({
                "id": self.id,
                "username": ACCOUNT,
                "type": self.kind,
                "level": self.level,
                "description": self.description,
                "created": clock::format_ms(self.created),
                "state": self.state,
            }),
            cloud.owner_fields(&self.owner),
        );
        if let Some(p) = &self.parent {
            v["parentid"] = json!(p);
        }
        if let (Some(t), Some(id)) = (&self.resource_type, &self.resource_id) {
            v["resourcetype"] = json!(t);
            v["resourceid"] = json!(id);
            if let Some(vm) = cloud.vm(id) {
                v["resourcename"] = json!(vm.name);
            }
        }
        v
    }
}

/// What an async action records: its event type, the command's
/// `getEventDescription()`, and the resource it acts on. `None` for the
/// actions issue 12 does not ask events of.
fn describe(
    cloud: &Cloud,
    action: &Action,
) -> Option<(&'static str, String, &'static str, String)> {
    let vm = |kind, text: &str, id: &str| {
        Some((
            kind,
            format!("{text}{id}"),
            "VirtualMachine",
            id.to_string(),
        ))
    };
    match action {
        Action::VmDeploy { vm: id, .. } => vm("VM.CREATE", "starting Vm. Vm Id: ", id),
        Action::VmStart { vm: id } => vm("VM.START", "starting user vm: ", id),
        Action::VmStop { vm: id } => vm("VM.STOP", "stopping user vm: ", id),
        Action::VmReboot { vm: id } => vm("VM.REBOOT", "rebooting user vm: ", id),
        Action::VmDestroy { vm: id, .. } => vm("VM.DESTROY", "destroying vm: ", id),
        Action::VmExpunge { vm: id } => vm("VM.EXPUNGE", "expunging vm: ", id),
        Action::IpAssociate { ip } => {
            let addr = cloud.ip(ip)?;
            Some((
                "NET.IPASSIGN",
                format!(
                    "associating ip to network id: {} in zone {}",
                    addr.network_id.as_deref().unwrap_or("null"),
                    addr.zone_id
                ),
                "IpAddress",
                ip.clone(),
            ))
        }
        Action::IpDisassociate { ip } => Some((
            "NET.IPRELEASE",
            format!("Disassociating ip address with id={ip}"),
            "IpAddress",
            ip.clone(),
        )),
        Action::PfCreate { rule } => {
            let r = cloud.pf_rules.iter().find(|r| &r.id == rule)?;
            let addr = cloud
                .ip(&r.ip_id)
                .map(|i| i.address.as_str())
                .unwrap_or("null");
            Some((
                "NET.RULEADD",
                // Two spaces, as CreatePortForwardingRuleCmd has it.
                format!(
                    "Applying port forwarding  rule for Ip: {addr} with virtual machine:{}",
                    r.vm_id
                ),
                "FirewallRule",
                rule.clone(),
            ))
        }
        Action::PfDelete { rule } => Some((
            "NET.RULEDELETE",
            format!("Deleting a port forwarding rule for id={rule}"),
            "FirewallRule",
            rule.clone(),
        )),
        Action::FwCreate { rule } => Some((
            "FIREWALL.OPEN",
            "Creating firewall rule".to_string(),
            "FirewallRule",
            rule.clone(),
        )),
        Action::FwDelete { rule } => Some((
            "FIREWALL.CLOSE",
            format!("Deleting firewall rule id={rule}"),
            "FirewallRule",
            rule.clone(),
        )),
        Action::StaticNat { job } => match job {
            StaticNatJob::Create { rule } => {
                let r = cloud.static_nat_rules.iter().find(|r| &r.id == rule)?;
                let ip = cloud.ip(&r.ip_id)?;
                Some((
                    "NET.RULEADD",
                    format!(
                        "Applying an ipforwarding 1:1 NAT rule for IP: {} with virtual machine:{}",
                        ip.address,
                        ip.static_nat_vm.as_deref().unwrap_or("null")
                    ),
                    "FirewallRule",
                    rule.clone(),
                ))
            }
            StaticNatJob::Delete { rule } => Some((
                "NET.RULEDELETE",
                format!("Deleting an ipforwarding 1:1 NAT rule id:{rule}"),
                "FirewallRule",
                rule.clone(),
            )),
        },
        _ => None,
    }
}

/// Whose event it is: the owner of the object the job acts on.
fn owner_of(cloud: &Cloud, resource: &str) -> Owner {
    let c = cloud;
    c.vm(resource)
        .map(|v| v.owner.clone())
        .or_else(|| c.ip(resource).map(|i| i.owner.clone()))
        .or_else(|| {
            c.pf_rules
                .iter()
                .find(|r| r.id == resource)
                .map(|r| r.owner.clone())
        })
        .or_else(|| {
            c.fw_rules
                .iter()
                .find(|r| r.id == resource)
                .map(|r| r.owner.clone())
        })
        .or_else(|| {
            c.static_nat_rules
                .iter()
                .find(|r| r.id == resource)
                .map(|r| r.owner.clone())
        })
        .unwrap_or_default()
}

fn push(cloud: &mut Cloud, mut e: Event) -> String {
    cloud.known_ids.insert(e.id.clone());
    e.seq = cloud.events.last().map(|l| l.seq + 1).unwrap_or(0);
    let id = e.id.clone();
    cloud.events.push(e);
    id
}

/// Records what queuing `job` for `action` records; deploying first records
/// the `Created` event of the VM entity.
pub fn on_scheduled(cloud: &mut Cloud, job: &str, action: &Action, now: u64) {
    let Some((kind, description, rtype, rid)) = describe(cloud, action) else {
        return;
    };
    let owner = owner_of(cloud, &rid);
    let event = |state: &str, description: String, parent: Option<String>| Event {
        id: ids::uuid(),
        kind: kind.into(),
        level: "INFO".into(),
        description,
        state: state.into(),
        created: now,
        parent,
        job: Some(job.to_string()),
        resource_type: Some(rtype.into()),
        resource_id: Some(rid.clone()),
        seq: 0,
        owner: owner.clone(),
    };
    let parent = match action {
        Action::VmDeploy { .. } => Some(push(
            cloud,
            event(
                "Created",
                "Successfully created entity for deploying Vm".into(),
                None,
            ),
        )),
        _ => None,
    };
    push(cloud, event("Scheduled", description, parent));
}

/// Records the `Started` and `Completed` events of a finished job.
pub fn on_completed(cloud: &mut Cloud, job: &str, ok: bool, now: u64) {
    let Some(scheduled) = cloud
        .events
        .iter()
        .find(|e| e.job.as_deref() == Some(job) && e.state == "Scheduled")
        .cloned()
    else {
        return;
    };
    // Started and Completed point at the job's start event: the deploy's
    // Created event, or the Scheduled one.
    let parent = scheduled.parent.clone().or(Some(scheduled.id.clone()));
    let (level, text) = if ok {
        (
            "INFO",
            format!("Successfully completed {}", scheduled.description),
        )
    } else {
        ("ERROR", format!("Error while {}", scheduled.description))
    };
    for (state, level, description) in [
        ("Started", "INFO", scheduled.description.clone()),
        ("Completed", level, text),
    ] {
        push(
            cloud,
            Event {
                id: ids::uuid(),
                level: level.into(),
                description,
                state: state.into(),
                created: now,
                parent: parent.clone(),
                ..scheduled.clone()
            },
        );
    }
}
