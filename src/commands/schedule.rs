//! Runs one task per machine, concurrently, in dependency order.
//!
//! A machine starts once its dependencies succeeded (not once a whole wave
//! is done), at most `parallel` at a time. A failed machine does not stop
//! the others; machines that depend on it are reported as not started.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;

/// A machine name and the names it must wait for.
pub(crate) struct Job {
    pub name: String,
    pub after: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("not started: `{dependency}` failed")]
pub(crate) struct DependencyFailed {
    pub dependency: String,
}

pub(crate) async fn run<F, Fut>(
    jobs: Vec<Job>,
    parallel: usize,
    task: F,
) -> Vec<(String, anyhow::Result<()>)>
where
    F: Fn(String) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    let semaphore = Arc::new(Semaphore::new(parallel.max(1)));
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for job in &jobs {
        let (tx, rx) = watch::channel(None::<bool>);
        senders.insert(job.name.clone(), tx);
        receivers.insert(job.name.clone(), rx);
    }
    let mut handles = Vec::new();
    for job in jobs {
        let waits: Vec<(String, watch::Receiver<Option<bool>>)> = job
            .after
            .iter()
            .filter_map(|d| receivers.get(d).map(|rx| (d.clone(), rx.clone())))
            .collect();
        let Some(done) = senders.remove(&job.name) else {
            continue;
        };
        let semaphore = semaphore.clone();
        let task = task.clone();
        let name = job.name.clone();
        handles.push((
            name.clone(),
            tokio::spawn(async move {
                for (dep, mut rx) in waits {
                    let ok = match rx.wait_for(|v| v.is_some()).await {
                        Ok(v) => *v == Some(true),
                        Err(_) => false,
                    };
                    if !ok {
                        let _ = done.send(Some(false));
                        return Err(DependencyFailed { dependency: dep }.into());
                    }
                }
                let result = match semaphore.acquire_owned().await {
                    Ok(_permit) => task(name).await,
                    Err(e) => Err(e.into()),
                };
                let _ = done.send(Some(result.is_ok()));
                result
            }),
        ));
    }
    let mut out = Vec::new();
    for (name, handle) in handles {
        let result = match handle.await {
            Ok(r) => r,
            Err(e) => Err(anyhow::anyhow!(
                "the task for `{name}` panicked or was cancelled: {e}"
            )),
        };
        out.push((name, result));
    }
    out
}

/// Prints each machine's failure (with the hints along its cause chain,
/// e.g. "force TCG", which flattening the chain into one line would lose)
/// and maps the outcome to an exit status: all failed is a failure, some
/// failed is partial.
pub(crate) fn report(printer: &Printer, results: &[(String, anyhow::Result<()>)]) -> ExitStatus {
    let mut failed = 0;
    for (name, r) in results {
        if let Err(e) = r {
            failed += 1;
            let hints = crate::error::hints_of(e);
            let line = format!("{name}: {e:#}");
            printer.error(&if hints.is_empty() {
                anyhow::anyhow!(line)
            } else {
                Hinted::new(line, hints.join("; ")).into()
            });
        }
    }
    match failed {
        0 => ExitStatus::Success,
        n if n == results.len() => ExitStatus::Failure,
        _ => ExitStatus::Partial,
    }
}

/// Reverses dependencies: for destroy and halt, dependents go first.
pub(crate) fn reversed(jobs: Vec<Job>) -> Vec<Job> {
    let mut after: HashMap<String, Vec<String>> =
        jobs.iter().map(|j| (j.name.clone(), Vec::new())).collect();
    for j in &jobs {
        for dep in &j.after {
            if let Some(list) = after.get_mut(dep) {
                list.push(j.name.clone());
            }
        }
    }
    jobs.into_iter()
        .map(|j| Job {
            after: after.remove(&j.name).unwrap_or_default(),
            name: j.name,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn job(name: &str, after: &[&str]) -> Job {
        Job {
            name: name.into(),
            after: after.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[tokio::test]
    async fn dependencies_finish_before_dependents_start() {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let results = run(
            vec![job("web", &["db"]), job("db", &[]), job("cache", &[])],
            4,
            move |name| {
                let l = l.clone();
                async move {
                    l.lock().unwrap().push(format!("start {name}"));
                    tokio::task::yield_now().await;
                    l.lock().unwrap().push(format!("end {name}"));
                    Ok(())
                }
            },
        )
        .await;
        assert!(results.iter().all(|(_, r)| r.is_ok()));
        let log = log.lock().unwrap();
        let pos = |s: &str| log.iter().position(|x| x == s).unwrap();
        assert!(pos("end db") < pos("start web"));
    }

    #[tokio::test]
    async fn a_failure_skips_dependents_but_not_others() {
        let results = run(
            vec![job("web", &["db"]), job("db", &[]), job("cache", &[])],
            4,
            |name| async move {
                if name == "db" {
                    anyhow::bail!("boom")
                }
                Ok(())
            },
        )
        .await;
        let get = |n: &str| results.iter().find(|(m, _)| m == n).unwrap();
        assert!(get("db").1.is_err());
        assert!(get("cache").1.is_ok());
        let web = get("web").1.as_ref().unwrap_err().to_string();
        assert!(web.contains("`db` failed"), "{web}");
    }

    #[test]
    fn reversed_makes_dependents_go_first() {
        let r = reversed(vec![job("web", &["db"]), job("db", &[])]);
        let db = r.iter().find(|j| j.name == "db").unwrap();
        assert_eq!(db.after, vec!["web".to_string()]);
        let web = r.iter().find(|j| j.name == "web").unwrap();
        assert!(web.after.is_empty());
    }
}
