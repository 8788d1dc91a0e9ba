//! Runs the work of several machines concurrently, in dependency order.
//!
//! [`run`]: one task per machine; a machine starts once its dependencies
//! succeeded (not once a whole wave is done). [`run_staged`]: two stages per
//! machine; the first (`box up`: boot until SSH answers) runs for every
//! machine at once, the second (sync, provision) waits for the dependencies'
//! second stage. Either way at most `parallel` tasks run at a time, a failed
//! machine does not stop the others, and the machines that depend on it
//! skip what depended on it and say why.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use tokio::sync::{watch, Semaphore};

use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;
use crate::provider::ProviderKind;

/// A machine name and the names it must wait for.
pub(crate) struct Job {
    pub name: String,
    pub after: Vec<String>,
}

/// A dependency failed, so this machine skipped its (second-stage) work.
/// `skipped` says what was skipped, e.g. "not started".
#[derive(Debug, thiserror::Error)]
#[error("{skipped}: `{dependency}` failed")]
pub(crate) struct DependencyFailed {
    pub dependency: String,
    pub skipped: &'static str,
}

/// One task per machine, each started once its dependencies succeeded.
pub(crate) async fn run<F, Fut>(
    jobs: Vec<Job>,
    parallel: usize,
    task: F,
) -> Vec<(String, anyhow::Result<()>)>
where
    F: Fn(String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
{
    run_staged(
        jobs,
        parallel,
        "not started",
        |_| async { Ok(()) },
        move |name, ()| task(name),
    )
    .await
}

/// Two stages per machine. `first` runs for every machine at once; its
/// value goes to `second`, which runs once the machine's `first` and every
/// dependency's `second` succeeded. A machine whose dependency failed keeps
/// what its `first` did and fails with [`DependencyFailed`] (`skipped`
/// says what it did not do). A permit of `parallel` is held only while a
/// stage runs, never while waiting for a dependency, so a capped run of
/// dependants cannot starve the dependencies they wait for.
pub(crate) async fn run_staged<A, AFut, T, B, BFut>(
    jobs: Vec<Job>,
    parallel: usize,
    skipped: &'static str,
    first: A,
    second: B,
) -> Vec<(String, anyhow::Result<()>)>
where
    A: Fn(String) -> AFut + Clone + Send + Sync + 'static,
    AFut: Future<Output = anyhow::Result<T>> + Send + 'static,
    T: Send + 'static,
    B: Fn(String, T) -> BFut + Clone + Send + Sync + 'static,
    BFut: Future<Output = anyhow::Result<()>> + Send + 'static,
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
        let first = first.clone();
        let second = second.clone();
        let name = job.name.clone();
        handles.push((
            name.clone(),
            tokio::spawn(async move {
                let result = async {
                    let value = {
                        let _permit = semaphore.clone().acquire_owned().await?;
                        first(name.clone()).await?
                    };
                    for (dependency, mut rx) in waits {
                        let ok = match rx.wait_for(|v| v.is_some()).await {
                            Ok(v) => *v == Some(true),
                            Err(_) => false,
                        };
                        if !ok {
                            return Err(DependencyFailed {
                                dependency,
                                skipped,
                            }
                            .into());
                        }
                    }
                    let _permit = semaphore.acquire_owned().await?;
                    second(name, value).await
                }
                .await;
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

/// How many machines run at once when the user did not say: local
/// machines are bound by this host's CPUs; cloud machines are bound by the
/// cloud's API, whose client halves its requests in flight on a 429 and
/// grows them again, so all of them go at once.
pub(crate) fn default_parallel(
    kinds: impl IntoIterator<Item = ProviderKind>,
    machines: usize,
) -> usize {
    const LOCAL: usize = 16;
    if kinds.into_iter().all(|k| k == ProviderKind::CloudStack) {
        machines.max(1)
    } else {
        LOCAL
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

    /// A chain `c` -> `b` -> `a` in two stages, logging each stage's start
    /// and end. `fail` names a (machine, stage) that fails.
    async fn staged_chain(
        parallel: usize,
        fail: Option<(&'static str, &'static str)>,
    ) -> (Vec<(String, anyhow::Result<()>)>, Vec<String>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let (l1, l2) = (log.clone(), log.clone());
        let results = run_staged(
            vec![job("c", &["b"]), job("b", &["a"]), job("a", &[])],
            parallel,
            "up, not provisioned",
            move |name| {
                let l = l1.clone();
                async move {
                    l.lock().unwrap().push(format!("boot {name}"));
                    tokio::task::yield_now().await;
                    if fail == Some(("boot", name.as_str())) {
                        anyhow::bail!("boot failed")
                    }
                    Ok(name.len())
                }
            },
            move |name, len| {
                let l = l2.clone();
                async move {
                    assert_eq!(len, name.len(), "the first stage's value arrives");
                    l.lock().unwrap().push(format!("start {name}"));
                    tokio::task::yield_now().await;
                    l.lock().unwrap().push(format!("end {name}"));
                    if fail == Some(("converge", name.as_str())) {
                        anyhow::bail!("provisioning failed")
                    }
                    Ok(())
                }
            },
        )
        .await;
        let log = log.lock().unwrap().clone();
        (results, log)
    }

    fn at(log: &[String], s: &str) -> usize {
        log.iter()
            .position(|x| x == s)
            .unwrap_or_else(|| panic!("no `{s}` in {log:?}"))
    }

    #[tokio::test]
    async fn every_first_stage_starts_before_a_dependency_finishes() {
        // `c`'s boot must happen while `a` converges: `a`'s second stage
        // waits for it. One after the other along the chain, this never
        // ends; the timeout only turns that hang into a failure.
        let c_booted = Arc::new(tokio::sync::Notify::new());
        let (n1, n2) = (c_booted.clone(), c_booted.clone());
        let run = run_staged(
            vec![job("c", &["b"]), job("b", &["a"]), job("a", &[])],
            16,
            "not provisioned",
            move |name| {
                let n = n1.clone();
                async move {
                    if name == "c" {
                        n.notify_one();
                    }
                    Ok(())
                }
            },
            move |name, ()| {
                let n = n2.clone();
                async move {
                    if name == "a" {
                        n.notified().await;
                    }
                    Ok(())
                }
            },
        );
        let results = tokio::time::timeout(std::time::Duration::from_secs(60), run)
            .await
            .expect("`c` booted while `a` converged");
        assert!(results.iter().all(|(_, r)| r.is_ok()));
    }

    #[tokio::test]
    async fn second_stages_follow_the_chain_even_one_at_a_time() {
        for parallel in [1, 16] {
            let (results, log) = staged_chain(parallel, None).await;
            assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
            assert!(at(&log, "end a") < at(&log, "start b"), "{log:?}");
            assert!(at(&log, "end b") < at(&log, "start c"), "{log:?}");
            for m in ["a", "b", "c"] {
                assert!(at(&log, &format!("boot {m}")) < at(&log, &format!("start {m}")));
            }
        }
    }

    #[tokio::test]
    async fn a_failed_dependency_leaves_dependants_booted_but_not_converged() {
        let (results, log) = staged_chain(16, Some(("converge", "a"))).await;
        let err = |n: &str| {
            results
                .iter()
                .find(|(m, _)| m == n)
                .unwrap()
                .1
                .as_ref()
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err("a"), "provisioning failed");
        assert_eq!(err("b"), "up, not provisioned: `a` failed");
        assert_eq!(err("c"), "up, not provisioned: `b` failed");
        assert!(log.contains(&"boot c".to_string()), "{log:?}");
        assert!(!log.contains(&"start b".to_string()), "{log:?}");
        assert!(!log.contains(&"start c".to_string()), "{log:?}");

        // A machine that did not boot fails with its own error.
        let (results, log) = staged_chain(16, Some(("boot", "b"))).await;
        let b = results.iter().find(|(m, _)| m == "b").unwrap();
        assert_eq!(b.1.as_ref().unwrap_err().to_string(), "boot failed");
        assert!(log.contains(&"end a".to_string()), "{log:?}");
        assert!(!log.contains(&"start c".to_string()), "{log:?}");
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
