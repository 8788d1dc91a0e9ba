//! Async jobs: what an async command leaves behind, and what happens when
//! the job runner finishes it after the configured duration.
//!
//! A command changes state at once only as far as the real server does
//! (a VM goes `Starting`, a rule `Add`); the rest happens here, so clients
//! see the same transitional states and have to poll like against a cloud.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::clock;
use crate::error::ApiError;
use crate::model::Cloud;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    VmDeploy {
        vm: String,
        start: bool,
    },
    VmStart {
        vm: String,
    },
    VmStop {
        vm: String,
    },
    VmReboot {
        vm: String,
    },
    VmDestroy {
        vm: String,
        expunge: bool,
        from: String,
    },
    VmExpunge {
        vm: String,
    },
    PfCreate {
        rule: String,
    },
    PfDelete {
        rule: String,
    },
    FwCreate {
        rule: String,
    },
    FwDelete {
        rule: String,
    },
    IpAssociate {
        ip: String,
    },
    IpDisassociate {
        ip: String,
    },
    StaticNatDisable {
        ip: String,
    },
    SgAuthorize {
        sg: String,
    },
    SgRevoke {
        sg: String,
        rule: String,
    },
    SnapshotCreate {
        snapshot: String,
    },
    SnapshotRevert {
        snapshot: String,
        from: String,
    },
    SnapshotDelete {
        snapshot: String,
    },
    AffinityCreate {
        group: String,
    },
    AffinityDelete {
        group: String,
    },
    /// VPC and network ACL jobs (`api/vpc.rs`).
    Vpc {
        job: crate::api::vpc::VpcJob,
    },
    /// IP forwarding (static NAT) rule jobs (`api/static_nat.rs`).
    StaticNat {
        job: crate::api::static_nat::Job,
    },
    Success,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Job {
    pub id: String,
    pub command: String,
    /// 0 pending, 1 success, 2 failure.
    pub status: u8,
    pub result_code: u16,
    pub result: Option<Value>,
    pub instance_type: Option<String>,
    pub instance_id: Option<String>,
    pub created: u64,
    pub completed: Option<u64>,
    /// When the runner finishes it (epoch ms); kept so a restart resumes it.
    pub due: u64,
    pub action: Action,
}

impl Job {
    /// The body of `queryAsyncJobResult` (and of `listAsyncJobs` items).
    pub fn render(&self, cloud: &Cloud) -> Value {
        let mut v = json!({
            "accountid": cloud.account.account_id,
            "userid": cloud.account.user_id,
            "cmd": java_class(&self.command),
            "jobstatus": self.status,
            "jobprocstatus": 0,
            "jobresultcode": self.result_code,
            "created": clock::format_ms(self.created),
            "jobid": self.id,
        });
        if let Some(t) = &self.instance_type {
            v["jobinstancetype"] = json!(t);
        }
        if let Some(i) = &self.instance_id {
            v["jobinstanceid"] = json!(i);
        }
        if let Some(r) = &self.result {
            v["jobresulttype"] = json!("object");
            v["jobresult"] = r.clone();
        }
        if let Some(c) = self.completed {
            v["completed"] = json!(clock::format_ms(c));
        }
        v
    }
}

/// `cmd` names the Java class in real answers; clients only display it.
fn java_class(command: &str) -> String {
    let mut c = command.chars();
    let head = c.next().map(|h| h.to_ascii_uppercase()).unwrap_or('X');
    format!(
        "org.apache.cloudstack.api.command.user.{head}{}Cmd",
        c.as_str()
    )
}

/// Finishes a pending job; `fault` makes it fail the way a broken cloud
/// would, undoing what the command started.
pub fn complete(cloud: &mut Cloud, job_id: &str, now: u64, fault: Option<ApiError>) {
    let Some(job) = cloud.jobs.get(job_id) else {
        return;
    };
    if job.status != 0 {
        return;
    }
    let action = job.action.clone();
    let outcome = match fault {
        Some(e) => {
            undo(cloud, &action);
            Err(e)
        }
        None => apply(cloud, &action),
    };
    crate::api::vpc::untie_unused(cloud);
    crate::model::event::on_completed(cloud, job_id, outcome.is_ok(), now);
    if let Some(job) = cloud.jobs.get_mut(job_id) {
        job.completed = Some(now);
        match outcome {
            Ok(v) => {
                job.status = 1;
                job.result_code = 0;
                job.result = Some(v);
            }
            Err(e) => {
                job.status = 2;
                job.result_code = e.code;
                job.result = Some(e.job_result());
            }
        }
    }
}

fn set_vm_state(cloud: &mut Cloud, vm: &str, state: &str) {
    if let Some(v) = cloud.vm_mut(vm) {
        v.state = state.to_string();
    }
}

fn vm_result(cloud: &Cloud, vm: &str) -> Value {
    json!({"virtualmachine": cloud.vm(vm).map(|v| v.render(cloud)).unwrap_or(Value::Null)})
}

fn success() -> Value {
    json!({"success": true})
}

fn apply(cloud: &mut Cloud, action: &Action) -> Result<Value, ApiError> {
    Ok(match action {
        Action::VmDeploy { vm, start } => {
            set_vm_state(cloud, vm, if *start { "Running" } else { "Stopped" });
            vm_result(cloud, vm)
        }
        Action::VmStart { vm } | Action::VmReboot { vm } => {
            set_vm_state(cloud, vm, "Running");
            vm_result(cloud, vm)
        }
        Action::VmStop { vm } => {
            set_vm_state(cloud, vm, "Stopped");
            vm_result(cloud, vm)
        }
        Action::VmDestroy { vm, expunge, .. } => {
            if *expunge {
                set_vm_state(cloud, vm, "Expunging");
                let result = vm_result(cloud, vm);
                expunge_vm(cloud, vm);
                result
            } else {
                set_vm_state(cloud, vm, "Destroyed");
                vm_result(cloud, vm)
            }
        }
        Action::VmExpunge { vm } => {
            expunge_vm(cloud, vm);
            success()
        }
        Action::PfCreate { rule } => {
            let r = cloud.pf_rules.iter_mut().find(|r| &r.id == rule);
            if let Some(r) = r {
                r.state = "Active".into();
            }
            let r = cloud.pf_rules.iter().find(|r| &r.id == rule);
            json!({"portforwardingrule": r.map(|r| r.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::PfDelete { rule } => {
            cloud.pf_rules.retain(|r| &r.id != rule);
            drop_tags(cloud, rule);
            success()
        }
        Action::FwCreate { rule } => {
            if let Some(r) = cloud.fw_rules.iter_mut().find(|r| &r.id == rule) {
                r.state = "Active".into();
            }
            let r = cloud.fw_rules.iter().find(|r| &r.id == rule);
            json!({"firewallrule": r.map(|r| r.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::FwDelete { rule } => {
            cloud.fw_rules.retain(|r| &r.id != rule);
            drop_tags(cloud, rule);
            success()
        }
        Action::IpAssociate { ip } => {
            if let Some(i) = cloud.ips.iter_mut().find(|i| &i.id == ip) {
                i.state = "Allocated".into();
            }
            json!({"ipaddress": cloud.ip(ip).map(|i| i.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::IpDisassociate { ip } => {
            crate::api::static_nat::on_static_nat_gone(cloud, ip);
            cloud.pf_rules.retain(|r| &r.ip_id != ip);
            cloud.fw_rules.retain(|r| &r.ip_id != ip);
            cloud.ips.retain(|i| &i.id != ip);
            drop_tags(cloud, ip);
            success()
        }
        Action::StaticNatDisable { ip } => {
            crate::api::static_nat::on_static_nat_gone(cloud, ip);
            if let Some(i) = cloud.ips.iter_mut().find(|i| &i.id == ip) {
                i.static_nat_vm = None;
            }
            success()
        }
        Action::SgAuthorize { sg } => {
            let g = cloud.security_groups.iter().find(|g| &g.id == sg);
            json!({"securitygroup": g.map(|g| g.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::SgRevoke { sg, rule } => {
            if let Some(g) = cloud.security_groups.iter_mut().find(|g| &g.id == sg) {
                g.ingress.retain(|r| &r.id != rule);
            }
            success()
        }
        Action::SnapshotCreate { snapshot } => {
            let vm = cloud
                .vm_snapshots
                .iter()
                .find(|s| &s.id == snapshot)
                .map(|s| s.vm_id.clone());
            for s in cloud
                .vm_snapshots
                .iter_mut()
                .filter(|s| Some(&s.vm_id) == vm.as_ref())
            {
                s.current = &s.id == snapshot;
                if &s.id == snapshot {
                    s.state = "Ready".into();
                }
            }
            let s = cloud.vm_snapshots.iter().find(|s| &s.id == snapshot);
            json!({"vmsnapshot": s.map(|s| s.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::SnapshotRevert { snapshot, from } => {
            let Some(snap) = cloud
                .vm_snapshots
                .iter()
                .find(|s| &s.id == snapshot)
                .cloned()
            else {
                return Err(ApiError::internal("the VM snapshot no longer exists"));
            };
            for s in cloud
                .vm_snapshots
                .iter_mut()
                .filter(|s| s.vm_id == snap.vm_id)
            {
                s.current = s.id == snap.id;
                if s.id == snap.id {
                    s.state = "Ready".into();
                }
            }
            // A disk-only snapshot leaves the VM stopped; one with memory
            // resumes it running.
            let _ = from;
            let state = if snap.memory { "Running" } else { "Stopped" };
            set_vm_state(cloud, &snap.vm_id, state);
            vm_result(cloud, &snap.vm_id)
        }
        Action::SnapshotDelete { snapshot } => {
            cloud.vm_snapshots.retain(|s| &s.id != snapshot);
            drop_tags(cloud, snapshot);
            success()
        }
        Action::AffinityCreate { group } => {
            let g = cloud.affinity_groups.iter().find(|g| &g.id == group);
            json!({"affinitygroup": g.map(|g| g.render(cloud)).unwrap_or(Value::Null)})
        }
        Action::AffinityDelete { group } => {
            cloud.affinity_groups.retain(|g| &g.id != group);
            success()
        }
        Action::Vpc { job } => crate::api::vpc::finish(cloud, job)?,
        Action::StaticNat { job } => crate::api::static_nat::finish(cloud, job)?,
        Action::Success => success(),
    })
}

/// Rolls back what the command did at once when its job fails.
fn undo(cloud: &mut Cloud, action: &Action) {
    match action {
        Action::VmDeploy { vm, .. } => set_vm_state(cloud, vm, "Error"),
        Action::VmStart { vm } => set_vm_state(cloud, vm, "Stopped"),
        Action::VmStop { vm } | Action::VmReboot { vm } => set_vm_state(cloud, vm, "Running"),
        Action::VmDestroy { vm, from, .. } => set_vm_state(cloud, vm, from),
        Action::VmExpunge { vm } => set_vm_state(cloud, vm, "Destroyed"),
        Action::PfCreate { rule } => cloud.pf_rules.retain(|r| &r.id != rule),
        Action::FwCreate { rule } => cloud.fw_rules.retain(|r| &r.id != rule),
        Action::IpAssociate { ip } => cloud.ips.retain(|i| &i.id != ip),
        Action::SnapshotCreate { snapshot } => cloud.vm_snapshots.retain(|s| &s.id != snapshot),
        Action::SnapshotRevert { snapshot, from } => {
            let vm = cloud
                .vm_snapshots
                .iter()
                .find(|s| &s.id == snapshot)
                .map(|s| s.vm_id.clone());
            if let Some(vm) = vm {
                set_vm_state(cloud, &vm, from);
            }
        }
        Action::Vpc { job } => crate::api::vpc::undo(cloud, job),
        Action::StaticNat { job } => crate::api::static_nat::undo(cloud, job),
        _ => {}
    }
}

fn drop_tags(cloud: &mut Cloud, resource: &str) {
    cloud.tags.retain(|t| t.resource_id != resource);
}

/// Removes a VM and everything that only exists for it, as expunging does.
fn expunge_vm(cloud: &mut Cloud, vm: &str) {
    let rules: Vec<String> = cloud
        .pf_rules
        .iter()
        .filter(|r| r.vm_id == vm)
        .map(|r| r.id.clone())
        .collect();
    cloud.pf_rules.retain(|r| r.vm_id != vm);
    for r in rules {
        drop_tags(cloud, &r);
    }
    let nat_ips: Vec<String> = cloud
        .ips
        .iter()
        .filter(|i| i.static_nat_vm.as_deref() == Some(vm))
        .map(|i| i.id.clone())
        .collect();
    for ip in &nat_ips {
        crate::api::static_nat::on_static_nat_gone(cloud, ip);
    }
    for ip in cloud
        .ips
        .iter_mut()
        .filter(|i| i.static_nat_vm.as_deref() == Some(vm))
    {
        ip.static_nat_vm = None;
    }
    let snaps: Vec<String> = cloud
        .vm_snapshots
        .iter()
        .filter(|s| s.vm_id == vm)
        .map(|s| s.id.clone())
        .collect();
    cloud.vm_snapshots.retain(|s| s.vm_id != vm);
    for s in snaps {
        drop_tags(cloud, &s);
    }
    crate::model::volume::on_expunge(cloud, vm);
    cloud.vms.retain(|v| v.id != vm);
    drop_tags(cloud, vm);
}
