//! The provider's one door to the cloud: the `cloudstack` client of the
//! active profile (made, logged and warned about by `cloud_client`, as for
//! `box api`), and the client's typed errors turned into errors with a
//! `hint:`.
//!
//! It also knows which failures are worth another try: the client never
//! repeats a state-changing call on its own, so the provider reconciles
//! (looks for what the failed call may have made) and tries again here.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use cloudstack::error::retryable_status;
use cloudstack::{Client, Error, JobRef, Params, Resource};
use serde_json::Value;

use crate::cloud_client;
use crate::error::Hinted;
use crate::provider::Context;

use super::scope::Scope;

/// How many times a state-changing step is attempted when the cloud answers
/// with a transient failure (5xx, 429, a dropped connection).
pub const ATTEMPTS: u32 = 6;

#[derive(Clone)]
pub struct Api {
    /// Adds the scope's parameters to every call that takes them.
    pub client: Client,
    /// Where the client acts.
    pub scope: Arc<Scope>,
}

impl Api {
    /// The client of the profile in force: `BOX_PROFILE`, else the
    /// Boxfile's, else `default`.
    pub fn connect(ctx: &Context) -> anyhow::Result<Api> {
        let profile =
            cloud_client::profile(ctx.profile.clone(), ctx.project.cloudstack.profile.clone());
        // One poller serves every job of the run, whatever machine waits.
        let client = cloud_client::connect(&ctx.printer, &ctx.paths, &profile)?.with_job_poller();
        Ok(Api {
            client,
            scope: Arc::default(),
        })
    }

    /// This client acting in `scope`: every call of a command that accepts
    /// a project (or a domain and account) carries it.
    pub fn scoped(&self, scope: Scope) -> Api {
        let scope = Arc::new(scope);
        let params = scope.clone();
        Api {
            client: self
                .client
                .clone()
                .with_defaults(move |command| params.params(command)),
            scope,
        }
    }

    /// Sends a state-changing command once and returns its job reference
    /// (or `None` for a synchronous command) without waiting.
    pub async fn start(
        &self,
        command: &str,
        params: &Params,
    ) -> Result<(Option<JobRef>, Value), Error> {
        let first = self.client.call(command, params).await?;
        let job = cloudstack::job::jobid_of(&first).map(|jobid| JobRef {
            jobid,
            id: first.get("id").and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            }),
        });
        Ok((job, first))
    }

    /// Like [`Api::start`], repeated when the cloud answered that it did not
    /// do it (429, 5xx): for commands whose lost answer could not be
    /// reconciled (a new public IP has no name), a dropped connection is
    /// not retried.
    pub async fn start_when_refused(
        &self,
        command: &str,
        params: &Params,
    ) -> Result<(Option<JobRef>, Value), Error> {
        let mut n = 1;
        loop {
            match self.start(command, params).await {
                Err(e)
                    if n < ATTEMPTS && transient(&e) && !matches!(e, Error::Transport { .. }) =>
                {
                    tokio::time::sleep(backoff(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    /// Waits for a job and reads the object under `T::OBJECT_KEY`.
    pub async fn finish<T: Resource>(
        &self,
        command: &str,
        job: &Option<JobRef>,
        first: &Value,
    ) -> Result<T, Error> {
        let result = match job {
            Some(j) => self.wait(command, &j.jobid).await?,
            None => first.clone(),
        };
        cloudstack::response::object(command, &result, T::OBJECT_KEY)
    }

    /// Waits for a job whose result box does not need.
    pub async fn finish_any(&self, command: &str, job: &Option<JobRef>) -> Result<Value, Error> {
        match job {
            Some(j) => self.wait(command, &j.jobid).await,
            None => Ok(Value::Null),
        }
    }

    /// Polls a job to its end. Polling is a read, so a poll the cloud
    /// failed to answer (after the client's own retries) is simply repeated,
    /// within the one job timeout.
    async fn wait(&self, command: &str, jobid: &str) -> Result<Value, Error> {
        let start = std::time::Instant::now();
        with_retries(|| self.client.wait_job_since(command, jobid, start)).await
    }
}

/// A failure that may pass if the same call is made again a bit later.
pub fn transient(e: &Error) -> bool {
    match e {
        Error::Transport { .. } => true,
        Error::Api(a) => retryable_status(a.status.max(a.errorcode)),
        Error::Http { status, .. } => retryable_status(*status),
        _ => false,
    }
}

/// An answer that means the object is not there (already deleted, or never made).
pub fn not_found(e: &Error) -> bool {
    let Error::Api(a) = e else { return false };
    if a.errorcode != 431 && a.errorcode != 530 {
        return false;
    }
    let t = a.errortext.to_lowercase();
    [
        "unable to find",
        "does not exist",
        "not found",
        "doesn't exist",
        "no such",
        "invalid id",
        "is not found",
        "cannot find",
    ]
    .iter()
    .any(|m| t.contains(m))
}

/// The pause before attempt `n` (1-based) of a retried step.
pub fn backoff(n: u32) -> Duration {
    let base = Duration::from_millis(300).saturating_mul(1 << n.min(5));
    base.min(Duration::from_secs(5))
        .mul_f64(0.5 + 0.5 * rand::random::<f64>())
}

/// Runs `step` until it succeeds, fails for good, or runs out of attempts.
/// `step` must be safe to repeat: it looks for what an earlier attempt made
/// before it makes anything.
pub async fn with_retries<T, F, Fut>(mut step: F) -> Result<T, Error>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, Error>>,
{
    let mut n = 1;
    loop {
        match step().await {
            Err(e) if n < ATTEMPTS && transient(&e) => {
                tokio::time::sleep(backoff(n)).await;
                n += 1;
            }
            other => return other,
        }
    }
}

/// The client's error with its hint, and what box was doing.
pub fn convert(e: Error, doing: &str) -> anyhow::Error {
    let hint = match &e {
        // The provider records what it starts before it waits (see vm.rs, reach.rs, shared.rs).
        Error::JobTimeout { jobid, .. } => Some(format!(
            "the cloud may still finish job {jobid} (`box api queryAsyncJobResult jobid={jobid}`); what box started is recorded in .box/, so the same command run again picks it up, and `box destroy` removes it; `job_timeout_secs` in the profile or BOX_CLOUDSTACK_JOB_TIMEOUT sets the wait"
        )),
        _ => e.hint(),
    };
    let message = format!("{doing}: {e}");
    match hint {
        Some(h) => anyhow::Error::new(Hinted::new(message, h)),
        None => anyhow::anyhow!(message),
    }
}
