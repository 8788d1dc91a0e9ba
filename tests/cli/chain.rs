//! Dependency chains (`c` depends on `b`, `b` on `a`): every machine comes
//! up at once, and sync and provisioning follow `depends_on`. The machines
//! are local ones box takes for running, all reached through one real sshd
//! on loopback, so their provisioners share this computer's files: `c`
//! reads what `b` wrote, and `b` what `a` wrote.

use std::fs;
use std::path::Path;

use serde_json::Value;

use crate::foundation::{pretend_running, require_qemu, Running};
use crate::sshd::{guest_dir, Project, Sshd};

/// `a` writes its file; `b` copies `a`'s and adds its own line; `c` copies
/// `b`'s and adds its own. A missing file fails the step (`cat`). `a` and
/// `b` take a second, so a dependant that did not wait would miss it.
/// `fail_a` makes `a`'s step exit 3 before writing anything.
fn chain_boxfile(dir: &Path, fail_a: bool) -> String {
    let d = dir.display();
    let a = if fail_a {
        "exit 3".to_string()
    } else {
        format!("sleep 1; echo a > {d}/a.tmp && mv {d}/a.tmp {d}/a")
    };
    format!(
        r#"[project]
name = "chain"

[[machine]]
name = "c"
depends_on = ["b"]

[[machine.provision]]
name = "after-b"
shell = "cat {d}/b > {d}/c.tmp && echo c >> {d}/c.tmp && mv {d}/c.tmp {d}/c"
run = "always"

[[machine]]
name = "b"
depends_on = ["a"]

[[machine.provision]]
name = "after-a"
shell = "sleep 1; cat {d}/a > {d}/b.tmp && echo b >> {d}/b.tmp && mv {d}/b.tmp {d}/b"
run = "always"

[[machine]]
name = "a"

[[machine.provision]]
name = "first"
shell = "{a}"
run = "always"
"#
    )
}

/// The chain, each machine pretending to run and pointing at `sshd`.
fn chain(sshd: &Sshd, dir: &Path, fail_a: bool) -> (Project, Vec<Running>) {
    require_qemu();
    let project = Project::new(
        &chain_boxfile(dir, fail_a),
        &[
            ("a", sshd.target()),
            ("b", sshd.target()),
            ("c", sshd.target()),
        ],
    );
    let running = ["a", "b", "c"]
        .iter()
        .map(|m| pretend_running(project.path(), m))
        .collect();
    (project, running)
}

/// `--json` progress events as (machine, event, detail).
fn events(stdout: &[u8]) -> Vec<(String, String, String)> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (s("machine"), s("event"), s("detail"))
        })
        .collect()
}

fn at(events: &[(String, String, String)], machine: &str, event: &str) -> usize {
    events
        .iter()
        .position(|(m, e, _)| m == machine && e == event)
        .unwrap_or_else(|| panic!("no `{machine}: {event}` in {events:?}"))
}

#[test]
fn a_chain_provisions_in_dependency_order_on_up_and_on_provision() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let (project, _running) = chain(&sshd, guest.path(), false);
    let dir = guest.path();

    project.cmd().arg("up").assert().success();
    assert_eq!(fs::read_to_string(dir.join("c")).unwrap(), "a\nb\nc\n");

    // `box provision` follows the same order.
    for f in ["a", "b", "c"] {
        fs::remove_file(dir.join(f)).unwrap();
    }
    project.cmd().arg("provision").assert().success();
    assert_eq!(fs::read_to_string(dir.join("c")).unwrap(), "a\nb\nc\n");
}

#[test]
fn every_machine_of_a_chain_is_up_before_its_first_dependency_is_provisioned() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let (project, _running) = chain(&sshd, guest.path(), false);

    let out = project.cmd().args(["up", "--json"]).assert().success();
    let ev = events(&out.get_output().stdout);
    let a_provisioned = at(&ev, "a", "ready");
    for m in ["a", "b", "c"] {
        assert!(at(&ev, m, "already running") < a_provisioned, "{ev:?}");
    }
    assert!(
        at(&ev, "b", "waiting for dependencies") < a_provisioned,
        "{ev:?}"
    );
    assert!(
        at(&ev, "c", "waiting for dependencies") < a_provisioned,
        "{ev:?}"
    );
    let waits: Vec<&str> = ev
        .iter()
        .filter(|(_, e, _)| e == "waiting for dependencies")
        .map(|(_, _, d)| d.as_str())
        .collect();
    assert_eq!(waits.len(), 2, "{ev:?}");
    assert!(waits.contains(&"a") && waits.contains(&"b"), "{ev:?}");
    // Provisioning itself goes along the chain.
    assert!(a_provisioned < at(&ev, "b", "provisioning"), "{ev:?}");
    assert!(
        at(&ev, "b", "ready") < at(&ev, "c", "provisioning"),
        "{ev:?}"
    );
    assert_eq!(
        fs::read_to_string(guest.path().join("c")).unwrap(),
        "a\nb\nc\n"
    );
}

#[test]
fn a_failed_dependency_leaves_its_dependants_up_but_unprovisioned_and_says_why() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let (project, _running) = chain(&sshd, guest.path(), true);

    let out = project.cmd().args(["up", "--json"]).assert().failure();
    let ev = events(&out.get_output().stdout);
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("provisioning `a` failed"), "{err}");
    assert!(
        err.contains("b: up, but not synced or provisioned: `a` failed"),
        "{err}"
    );
    assert!(
        err.contains("c: up, but not synced or provisioned: `b` failed"),
        "{err}"
    );
    for m in ["b", "c"] {
        let failed = &ev[at(&ev, m, "failed")];
        assert!(failed.2.contains("not synced or provisioned"), "{ev:?}");
        assert!(
            !ev.iter().any(|(mm, e, _)| mm == m && e == "provisioning"),
            "{ev:?}"
        );
        assert_eq!(
            project.state(m).status,
            boxcli::state::Status::Running,
            "{m} stays up"
        );
        assert!(!guest.path().join(m).exists(), "{m} was provisioned");
    }

    let out = project.cmd().arg("provision").assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    assert!(err.contains("b: not provisioned: `a` failed"), "{err}");
    assert!(err.contains("c: not provisioned: `b` failed"), "{err}");
}
