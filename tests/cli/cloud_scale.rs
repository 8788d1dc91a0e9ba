//! Many cloud machines at once (issue 14 §6): one job poller serves every
//! machine of a run, every machine starts at once, a 429 storm is ridden
//! out without duplicates, and destroy runs in parallel, dependants first.
//! The speed goals themselves are measured by benches/cloudstack_40.sh.

use serde_json::Value;

use crate::cloud::Census;
use crate::harness::Test;

/// A Boxfile of `n` independent machines `m1`..`mn`, or a chain when
/// `chained` (each `m{i}` depends on `m{i+1}`).
fn boxfile(n: usize, chained: bool) -> String {
    let mut s = String::from(
        "[project]\nname = \"many\"\nprovider = \"cloudstack\"\n\n[cloudstack]\n\
         zone = \"Sim-Advanced\"\ntemplate = \"Debian 12\"\n\
         service_offering = \"Small Instance\"\nallow_from = [\"127.0.0.0/8\"]\n",
    );
    for i in 1..=n {
        s.push_str(&format!("\n[[machine]]\nname = \"m{i}\"\n"));
        if chained && i < n {
            s.push_str(&format!("depends_on = [\"m{}\"]\n", i + 1));
        }
    }
    s
}

/// `--json` progress events as (machine, event).
fn events(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("machine"), s("event"))
        })
        .collect()
}

fn at(events: &[(String, String)], machine: &str, event: &str) -> usize {
    events
        .iter()
        .position(|(m, e)| m == machine && e == event)
        .unwrap_or_else(|| panic!("no `{machine}: {event}` in {events:?}"))
}

/// The `-vv` log lines of the calls of one command.
fn calls(stderr: &str, command: &str) -> usize {
    stderr
        .lines()
        .filter(|l| l.starts_with("api: ") && l.contains(&format!(" {command} ")))
        .count()
}

fn assert_no_duplicate(c: &Census, n: usize) {
    let mut uniq = c.vm_names.clone();
    uniq.dedup();
    assert_eq!(uniq, c.vm_names, "no duplicate VM: {c:?}");
    assert_eq!(c.vm_names.len(), n, "{c:?}");
}

#[test]
fn the_jobs_of_twenty_machines_are_polled_by_one_listasyncjobs_poller() {
    let t = Test::new().simulator(&["--job-duration", "1s"]);
    let many = t.project("many", &boxfile(20, false));
    let up = many.run(["-vv", "up", "--no-connect", "--json"]).success();
    assert_no_duplicate(&t.census(), 20);
    // Every job the run waited for was seen in the shared list: no machine
    // polled a job of its own.
    assert_eq!(calls(&up.stderr, "queryAsyncJobResult"), 0, "{}", up.stderr);
    let lists = calls(&up.stderr, "listAsyncJobs");
    let deploys = calls(&up.stderr, "deployVirtualMachine");
    assert!(lists > 0, "the jobs were polled with listAsyncJobs");
    assert!(
        lists < deploys * 2,
        "{lists} listAsyncJobs for {deploys} deploys: one list serves every machine"
    );

    let down = many.run(["-vv", "destroy", "--force"]).success();
    assert_eq!(
        calls(&down.stderr, "queryAsyncJobResult"),
        0,
        "{}",
        down.stderr
    );
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn twenty_cloud_machines_all_start_before_the_first_is_up_and_all_go_before_the_first_is_gone() {
    // More than the 16 machines the local provider runs at once.
    let t = Test::new().simulator(&["--job-duration", "1s"]);
    let many = t.project("many", &boxfile(20, false));
    let up = many.run(["up", "--no-connect", "--json"]).success();
    let e = events(&up.stdout);
    let first_ready = (1..=20).map(|i| at(&e, &format!("m{i}"), "ready")).min();
    for i in 1..=20 {
        assert!(
            Some(at(&e, &format!("m{i}"), "starting")) < first_ready,
            "m{i} waited for another machine to be up: {e:?}"
        );
    }

    let down = many.run(["destroy", "--force", "--json"]).success();
    let e = events(&down.stdout);
    let first_gone = (1..=20)
        .map(|i| at(&e, &format!("m{i}"), "destroyed"))
        .min();
    for i in 1..=20 {
        assert!(
            Some(at(&e, &format!("m{i}"), "destroying")) < first_gone,
            "m{i} waited for another machine to be destroyed: {e:?}"
        );
    }
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn a_429_storm_still_brings_twenty_machines_up_with_no_duplicate() {
    let t = Test::new().simulator(&["--throttle", "0.5", "--job-duration", "300ms"]);
    let many = t.project("many", &boxfile(20, false));
    let up = many.run(["-vv", "up", "--no-connect"]).output();
    assert!(up.status.success(), "{}", up.stderr);
    assert!(
        up.stderr.contains("-> 429"),
        "the cloud throttled the run: {}",
        up.stderr
    );
    assert_no_duplicate(&t.census(), 20);
    // Up again adopts all twenty: still none twice.
    many.run(["up", "--no-connect"]).success();
    assert_no_duplicate(&t.census(), 20);
    many.run(["destroy", "--force"]).success();
    assert_eq!(t.census(), Census::empty());
}

#[test]
fn destroy_of_a_chain_removes_dependants_first() {
    // m1 depends on m2, m2 on m3, m3 on m4.
    let t = Test::new().simulator(&["--job-duration", "300ms"]);
    let chain = t.project("chain", &boxfile(4, true));
    chain.run(["up", "--no-connect"]).success();
    let down = chain.run(["destroy", "--force", "--json"]).success();
    let e = events(&down.stdout);
    for i in 1..4 {
        let dependant = format!("m{i}");
        let dependency = format!("m{}", i + 1);
        assert!(
            at(&e, &dependant, "destroyed") < at(&e, &dependency, "destroying"),
            "{dependency} went before its dependant {dependant}: {e:?}"
        );
    }
    assert_eq!(t.census(), Census::empty());
}
