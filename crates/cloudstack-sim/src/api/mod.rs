//! The API surface: the command table, parameter checks driven by it, and
//! the response envelopes. One file per area holds the commands themselves.

pub mod acl;
mod address;
mod affinity;
mod infra;
mod inspect;
mod jobq;
pub mod keypair;
mod list;
mod rules;
mod secgroup;
mod snapshot;
pub mod static_nat;
mod table;
mod tags;
mod template;
mod tenancy;
mod tier;
pub mod upload;
mod vm;
pub mod vpc;

use serde_json::{json, Value};

use crate::error::ApiError;
use crate::ids;
use crate::jobs::{Action, Job};
use crate::model::Cloud;
use crate::params::Params;
use crate::tenancy::{Owner, Scope};

pub use table::{find, Command, Kind, Param, COMMANDS};

/// What a command answers, before it is wrapped in `{"<cmd>response": ..}`.
#[derive(Debug)]
pub enum Reply {
    Value(Value),
    /// An async command: `{"jobid": ..}`, plus `id` for commands that create.
    Async {
        job: String,
        id: Option<String>,
    },
}

/// One call's view of the cloud, with the lock held.
pub struct Ctx<'a> {
    pub cloud: &'a mut Cloud,
    pub now: u64,
    pub job_ms: u64,
    /// POST allows longer user data than GET.
    pub post: bool,
    /// Jobs started by this call, for the runner to pick up.
    pub started: Vec<(String, u64)>,
    pub dirty: bool,
    /// Where `getUploadParamsForTemplate` sends uploads (set by the server).
    pub upload: Option<upload::UploadSite>,
}

impl<'a> Ctx<'a> {
    pub fn new(cloud: &'a mut Cloud, now: u64, job_ms: u64, post: bool) -> Self {
        Ctx {
            cloud,
            now,
            job_ms,
            post,
            started: vec![],
            dirty: false,
            upload: None,
        }
    }

    /// A fresh object id, remembered so later parameters can name it.
    pub fn id(&mut self) -> String {
        let id = ids::uuid();
        self.cloud.known_ids.insert(id.clone());
        self.dirty = true;
        id
    }

    pub fn job(&mut self, command: &str, instance: Option<(&str, &str)>, action: Action) -> String {
        let id = self.id();
        let due = self.now + self.job_ms;
        self.cloud.jobs.insert(
            id.clone(),
            Job {
                id: id.clone(),
                command: command.to_string(),
                status: 0,
                result_code: 0,
                result: None,
                instance_type: instance.map(|i| i.0.to_string()),
                instance_id: instance.map(|i| i.1.to_string()),
                created: self.now,
                completed: None,
                due,
                action: action.clone(),
            },
        );
        crate::model::event::on_scheduled(self.cloud, &id, &action, self.now);
        self.started.push((id.clone(), due));
        id
    }

    /// An async answer for a command that creates `id`.
    pub fn created(&mut self, command: &str, kind: &str, id: &str, action: Action) -> Reply {
        let job = self.job(command, Some((kind, id)), action);
        Reply::Async {
            job,
            id: Some(id.to_string()),
        }
    }

    /// The owner of a new object: `projectid`, `account` + `domainid`, or
    /// the caller (see `tenancy.rs`).
    pub fn owner_from(&self, p: &Params) -> Result<Owner, ApiError> {
        self.cloud.owner_from(p)
    }

    /// The owners a list command shows: `scope.sees(cloud, &obj.owner)`.
    pub fn scope(&self, p: &Params) -> Result<Scope, ApiError> {
        self.cloud.scope(p)
    }

    /// Refuses (531) when the caller may not act on an object of `owner`.
    pub fn may_operate(&self, owner: &Owner) -> Result<(), ApiError> {
        self.cloud.may_operate(owner)
    }

    /// An async answer for a command that acts on an existing object.
    pub fn acted(&mut self, command: &str, kind: &str, id: &str, action: Action) -> Reply {
        let job = self.job(command, Some((kind, id)), action);
        Reply::Async { job, id: None }
    }
}

/// The key the answer goes under. Almost always `<command lowercased>response`.
pub fn response_name(command: &str) -> String {
    match command {
        "restoreVirtualMachine" => "restorevmresponse".into(),
        "getUploadParamsForTemplate" => "postuploadtemplateresponse".into(),
        _ => format!("{}response", command.to_lowercase()),
    }
}

/// Checks the parameters against the table, then runs the command.
pub fn call(ctx: &mut Ctx, cmd: &Command, params: &Params) -> Result<Reply, ApiError> {
    for p in cmd.all_params() {
        let present = params.has(p.name);
        if !present {
            if p.required {
                return Err(ApiError::missing(cmd.name, p.name));
            }
            continue;
        }
        match p.kind {
            Kind::Int => {
                params.int(p.name)?;
            }
            Kind::Uuid => {
                let v = params.str(p.name).unwrap_or_default();
                // `projectid=-1` means every project (ParamProcessWorker lets -1 through).
                let all_projects = p.name == "projectid" && v == "-1";
                if !all_projects && !ctx.cloud.known_ids.contains(v) {
                    return Err(ApiError::bad_uuid(cmd.name, p.name, v));
                }
            }
            Kind::UuidList => {
                for v in params.list(p.name) {
                    if !ctx.cloud.known_ids.contains(&v) {
                        return Err(ApiError::bad_uuid(cmd.name, p.name, &v));
                    }
                }
            }
            Kind::Str | Kind::Bool | Kind::Map | Kind::List => {}
        }
    }
    (cmd.handler)(ctx, params)
}

/// The full response body for a successful call.
pub fn envelope(command: &str, reply: Reply) -> Value {
    let body = match reply {
        Reply::Value(v) => v,
        Reply::Async { job, id } => match id {
            Some(id) => json!({"id": id, "jobid": job}),
            None => json!({"jobid": job}),
        },
    };
    json!({ response_name(command): body })
}

/// The full response body for an error; unknown commands answer under
/// `errorresponse` since the server has no command name to use.
pub fn error_envelope(command: Option<&str>, err: &ApiError) -> Value {
    let key = match command.and_then(find) {
        Some(c) => response_name(c.name),
        None => "errorresponse".to_string(),
    };
    json!({ key: err.body() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{jobs, seed};

    pub(super) fn run(
        cloud: &mut Cloud,
        command: &str,
        pairs: &[(&str, &str)],
    ) -> Result<Value, ApiError> {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let cmd = find(command).ok_or_else(|| ApiError::unknown_command(command))?;
        let mut ctx = Ctx::new(cloud, 0, 10, false);
        call(&mut ctx, cmd, &Params::new(cmd.name, &pairs))
            .map(|r| envelope(cmd.name, r)[response_name(cmd.name)].clone())
    }

    pub(super) fn finish_all(cloud: &mut Cloud, fault: Option<ApiError>) {
        let pending: Vec<String> = cloud
            .jobs
            .values()
            .filter(|j| j.status == 0)
            .map(|j| j.id.clone())
            .collect();
        for id in pending {
            jobs::complete(cloud, &id, 1, fault.clone());
        }
    }

    fn deploy(cloud: &mut Cloud, name: &str) -> String {
        let zone = cloud
            .zones
            .iter()
            .find(|z| z.name == seed::ADVANCED_ZONE)
            .unwrap()
            .id
            .clone();
        let (t, o) = (
            cloud.templates[0].id.clone(),
            cloud.service_offerings[0].id.clone(),
        );
        let r = run(
            cloud,
            "deployVirtualMachine",
            &[
                ("zoneid", &zone),
                ("templateid", &t),
                ("serviceofferingid", &o),
                ("name", name),
            ],
        )
        .unwrap();
        r["id"].as_str().unwrap().to_string()
    }

    fn state(cloud: &Cloud, id: &str) -> String {
        cloud
            .vm(id)
            .map(|v| v.state.clone())
            .unwrap_or_else(|| "gone".into())
    }

    #[test]
    fn a_vm_goes_through_the_real_states() {
        let mut c = seed::cloud();
        let id = deploy(&mut c, "web");
        assert_eq!(state(&c, &id), "Starting");
        finish_all(&mut c, None);
        assert_eq!(state(&c, &id), "Running");
        run(&mut c, "stopVirtualMachine", &[("id", &id)]).unwrap();
        assert_eq!(state(&c, &id), "Stopping");
        finish_all(&mut c, None);
        assert_eq!(state(&c, &id), "Stopped");
        let e = run(&mut c, "rebootVirtualMachine", &[("id", &id)]).unwrap_err();
        assert_eq!(e.code, 431);
        run(&mut c, "destroyVirtualMachine", &[("id", &id)]).unwrap();
        finish_all(&mut c, None);
        assert_eq!(state(&c, &id), "Destroyed");
        run(&mut c, "expungeVirtualMachine", &[("id", &id)]).unwrap();
        assert_eq!(state(&c, &id), "Expunging");
        finish_all(&mut c, None);
        assert_eq!(state(&c, &id), "gone");
        // The id stays known: listing it is an empty answer, not a 431.
        assert_eq!(
            run(&mut c, "listVirtualMachines", &[("id", &id)]).unwrap(),
            serde_json::json!({})
        );
    }

    #[test]
    fn a_failed_job_undoes_the_command() {
        let mut c = seed::cloud();
        let id = deploy(&mut c, "web");
        finish_all(&mut c, Some(ApiError::internal("boom")));
        assert_eq!(state(&c, &id), "Error");
        let job = c.jobs.values().next().unwrap();
        assert_eq!((job.status, job.result_code), (2, 530));
        assert_eq!(job.render(&c)["jobresult"]["errortext"], "boom");
    }

    #[test]
    fn parameters_are_checked_against_the_table() {
        let mut c = seed::cloud();
        let e = run(&mut c, "deployVirtualMachine", &[]).unwrap_err();
        assert_eq!(
            (
                e.code,
                e.text.ends_with("missing parameter serviceofferingid")
            ),
            (431, true),
            "{}",
            e.text
        );
        let e = run(
            &mut c,
            "listZones",
            &[("id", "6c2b4a6e-0000-4000-8000-000000000000")],
        )
        .unwrap_err();
        assert!(e.text.contains("Invalid parameter id value="), "{}", e.text);
        let e = run(&mut c, "listZones", &[("page", "x")]).unwrap_err();
        assert!(e.text.contains("for parameter page"), "{}", e.text);
    }

    #[test]
    fn every_command_in_the_table_is_listed_by_list_apis() {
        let mut c = seed::cloud();
        let r = run(&mut c, "listApis", &[]).unwrap();
        assert_eq!(r["count"].as_u64().unwrap() as usize, COMMANDS.len());
        let mut names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), COMMANDS.len(), "no command twice in the table");
    }
}
