//! One job poller for every job a client (and its clones) waits for.
//!
//! Forty machines each polling their own jobs spend most of their API calls
//! on `queryAsyncJobResult`, and a cloud throttles calls per account. Here
//! waiters register a job id and await its end; one task asks the cloud
//! about all pending jobs at once with a single `listAsyncJobs` per tick,
//! and uses `queryAsyncJobResult` only for the jobs that list did not show
//! (another account's job, a server that refuses the list). The tick
//! follows the job poll policy of the youngest pending job: short while
//! jobs are new, longer once every pending job has been waited on a while.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::client::Client;
use crate::error::Error;
use crate::job::{AsyncJob, JobPollPolicy};
use crate::params::Params;

/// The answer a waiter gets: the job once it ended (succeeded or failed),
/// or the error that says it never will be seen (e.g. an unknown job id).
pub(crate) type Outcome = Result<AsyncJob, Error>;

/// Shared by a client and all its clones; the task starts on first use
/// (inside the caller's runtime) and ends when every clone is gone.
#[derive(Default)]
pub(crate) struct SharedPoller {
    tx: OnceLock<mpsc::UnboundedSender<Watch>>,
}

struct Watch {
    jobid: String,
    reply: oneshot::Sender<Outcome>,
}

struct Pending {
    watch: Watch,
    /// Ticks this job has been polled in, which sets its next delay.
    polls: u32,
}

impl SharedPoller {
    /// Registers `jobid`; `None` when no runtime can run the poller, and
    /// the caller polls on its own.
    pub(crate) fn watch(&self, client: &Client, jobid: &str) -> Option<oneshot::Receiver<Outcome>> {
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            if let Ok(handle) = tokio::runtime::Handle::try_current() {
                handle.spawn(run(
                    client.without_poller(),
                    client.config().jobs.clone(),
                    rx,
                ));
            }
            tx
        });
        let (reply, answer) = oneshot::channel();
        tx.send(Watch {
            jobid: jobid.to_string(),
            reply,
        })
        .ok()?;
        Some(answer)
    }
}

async fn run(client: Client, policy: JobPollPolicy, mut rx: mpsc::UnboundedReceiver<Watch>) {
    let mut pending: Vec<Pending> = Vec::new();
    let mut open = true;
    loop {
        if pending.is_empty() {
            if !open {
                return;
            }
            match rx.recv().await {
                Some(watch) => pending.push(Pending { watch, polls: 0 }),
                None => return,
            }
        }
        let mut deadline = Instant::now() + next_delay(&policy, &pending);
        // Jobs registered while waiting join this tick, and may bring it
        // forward: a new job is polled soon, whatever the older ones wait.
        loop {
            tokio::select! {
                w = rx.recv(), if open => match w {
                    Some(watch) => {
                        deadline = deadline.min(Instant::now() + policy.delay(0));
                        pending.push(Pending { watch, polls: 0 });
                    }
                    None => open = false,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        // A waiter that gave up (its timeout, a cancelled task) is dropped.
        pending.retain(|p| !p.watch.reply.is_closed());
        if pending.is_empty() {
            continue;
        }
        tick(&client, &mut pending).await;
        for p in &mut pending {
            p.polls = p.polls.saturating_add(1);
        }
    }
}

fn next_delay(policy: &JobPollPolicy, pending: &[Pending]) -> std::time::Duration {
    pending
        .iter()
        .map(|p| policy.delay(p.polls))
        .min()
        .unwrap_or(policy.initial)
}

/// One round: a single `listAsyncJobs` for every pending job, then
/// `queryAsyncJobResult` for those it did not show. Answers the waiters of
/// the jobs that ended; a poll the cloud failed to answer is simply made
/// again next tick (each waiter keeps its own timeout).
async fn tick(client: &Client, pending: &mut Vec<Pending>) {
    let mut seen = HashSet::new();
    if let Ok((_, items)) = client
        .list_values("listAsyncJobs", &Params::new(), Some("asyncjobs"))
        .await
    {
        for item in items {
            let Ok(job) = serde_json::from_value::<AsyncJob>(item) else {
                continue;
            };
            if pending.iter().any(|p| p.watch.jobid == job.jobid) {
                seen.insert(job.jobid.clone());
                if job.jobstatus.unwrap_or(0) != 0 {
                    answer(pending, &job.jobid.clone(), || Ok(job.clone()));
                }
            }
        }
    }
    let unseen: Vec<String> = pending
        .iter()
        .map(|p| p.watch.jobid.clone())
        .filter(|id| !seen.contains(id))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    for jobid in unseen {
        match client.query_async_job_result(&jobid).await {
            Ok(job) if job.jobstatus.unwrap_or(0) != 0 => {
                answer(pending, &jobid, || Ok(job.clone()))
            }
            Ok(_) => {}
            Err(e) if e.is_retryable_read() || matches!(e, Error::Transport { .. }) => {}
            // A job the poller cannot follow (an unknown id, a refusal) is
            // left to its waiters: closing their channel makes each poll on
            // its own, which reports the error as a lone wait would.
            Err(_) => pending.retain(|p| p.watch.jobid != jobid),
        }
    }
}

fn answer(pending: &mut Vec<Pending>, jobid: &str, mut outcome: impl FnMut() -> Outcome) {
    let mut i = 0;
    while i < pending.len() {
        if pending[i].watch.jobid == jobid {
            let p = pending.swap_remove(i);
            let _ = p.watch.reply.send(outcome());
        } else {
            i += 1;
        }
    }
}

/// A new poller, for [`Client::with_job_poller`].
pub(crate) fn shared() -> Arc<SharedPoller> {
    Arc::new(SharedPoller::default())
}
