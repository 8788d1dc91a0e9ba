//! Ready-made stacks: `box init --list`, `box init --template NAME`, each
//! template valid on both providers, and the swarm end to end on three TCG
//! guests of the `debian-12-docker` box.

use predicates::prelude::*;

use crate::support;

const TEMPLATES: &[&str] = &["docker-host", "swarm", "postgres-replica"];

fn init(
    dir: &std::path::Path,
    home: &std::path::Path,
    args: &[&str],
) -> assert_cmd::assert::Assert {
    support::box_cmd(home)
        .current_dir(dir)
        .arg("init")
        .args(args)
        .assert()
}

#[test]
fn init_list_names_every_template_with_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = init(dir.path(), dir.path(), &["--list"]).success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    let names: Vec<&str> = text
        .lines()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, TEMPLATES);
    assert!(
        text.lines().all(|l| l.split_whitespace().count() > 3),
        "{text}"
    );
    // --list writes nothing.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn every_template_passes_validate_on_the_local_provider_and_on_cloudstack() {
    let home = tempfile::tempdir().unwrap();
    for name in TEMPLATES {
        let dir = tempfile::tempdir().unwrap();
        init(
            dir.path(),
            home.path(),
            &["--template", name, "--name", "stack"],
        )
        .success()
        .stderr(predicate::str::contains("wrote"));
        let boxfile = std::fs::read_to_string(dir.path().join("Boxfile")).unwrap();
        assert!(boxfile.contains("name = \"stack\""), "{name}: {boxfile}");
        support::box_cmd(home.path())
            .current_dir(dir.path())
            .args(["validate", "--json"])
            .assert()
            .success();
        // The same stack on CloudStack: only Boxfile.local changes.
        std::fs::write(
            dir.path().join("Boxfile.local"),
            "[project]\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"zone1\"\nnetwork = \"box-net\"\n",
        )
        .unwrap();
        let out = support::box_cmd(home.path())
            .current_dir(dir.path())
            .args(["validate", "--json"])
            .assert()
            .success();
        let findings: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
        assert!(
            !findings.to_string().contains("\"error\""),
            "{name} on cloudstack: {findings}"
        );
    }
}

#[test]
fn init_template_writes_the_files_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), dir.path(), &["--template", "swarm"]).success();
    for f in ["Boxfile", "swarm.yml", "app/Dockerfile", "app/index.html"] {
        assert!(dir.path().join(f).is_file(), "{f}");
    }
    let dockerfile = std::fs::read_to_string(dir.path().join("app/Dockerfile")).unwrap();
    assert!(dockerfile.contains("FROM box/busybox"), "{dockerfile}");
}

#[test]
fn init_template_never_overwrites_and_writes_nothing_when_a_file_exists() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(dir.path().join("app/index.html"), "mine\n").unwrap();
    init(dir.path(), dir.path(), &["--template", "docker-host"])
        .failure()
        .stderr(predicate::str::contains("app/index.html already exists in"))
        .stderr(predicate::str::contains("hint: edit it, or move it away"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("app/index.html")).unwrap(),
        "mine\n"
    );
    assert!(!dir.path().join("Boxfile").exists());
    assert!(!dir.path().join("app/Dockerfile").exists());
}

#[test]
fn init_with_an_unknown_template_suggests_the_closest() {
    let dir = tempfile::tempdir().unwrap();
    init(dir.path(), dir.path(), &["--template", "swram"])
        .failure()
        .stderr(predicate::str::contains("error: no template named `swram`"))
        .stderr(predicate::str::contains("hint: did you mean `swarm`?"));
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn swarm_template_gives_three_ready_nodes_and_a_service_that_answers_from_the_host() {
    support::require("ansible-playbook");
    let p = crate::local::Project::new("", crate::guest::docker_boxes_dir());
    std::fs::remove_file(p.root.join("Boxfile")).unwrap();
    p.ok(&["init", "--template", "swarm", "--name", "swarm"]);
    // The template's host port may be taken on a shared test machine.
    let port = crate::sshd::free_port();
    let boxfile = std::fs::read_to_string(p.root.join("Boxfile")).unwrap();
    let boxfile = boxfile.replace(
        "ports = [{ guest = 8080, host = 8080 }]",
        &format!("ports = [{{ guest = 8080, host = {port} }}]"),
    );
    assert!(boxfile.contains(&format!("host = {port}")), "{boxfile}");
    std::fs::write(p.root.join("Boxfile"), boxfile).unwrap();

    let up = p.run(&["up"]);
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    assert!(
        up.status.success(),
        "box up failed:\n{err}\nmanager console:\n{}",
        std::fs::read_to_string(p.root.join(".box/machines/manager/console.log"))
            .unwrap_or_default()
    );
    assert!(
        err.contains("manager: provisioning `swarm` (ansible)"),
        "{err}"
    );

    let nodes = p.sh(
        "manager",
        "docker node ls --format '{{.Hostname}} {{.Status}} {{.Availability}}'",
    );
    let mut lines: Vec<&str> = nodes.lines().collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "manager Ready Active",
            "worker1 Ready Active",
            "worker2 Ready Active"
        ],
        "{nodes}"
    );
    // One replica on each node, all running.
    let tasks = p.sh(
        "manager",
        "docker service ps web --filter desired-state=running --format '{{.Node}} {{.CurrentState}}'",
    );
    let mut on: Vec<&str> = tasks
        .lines()
        .filter(|l| l.contains("Running"))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    on.sort();
    assert_eq!(on, ["manager", "worker1", "worker2"], "{tasks}");
    // The service answers from the host, through the manager's forwarded
    // port and the swarm's routing mesh.
    assert!(
        crate::docker::http_get(port).contains("Hello from the box swarm sample service."),
        "the sample page"
    );

    // Provisioning again changes nothing in the swarm.
    let again = p.run(&["provision", "manager"]);
    let err = String::from_utf8_lossy(&again.stderr).into_owned();
    assert!(again.status.success(), "{err}");
    for node in ["manager", "worker1", "worker2"] {
        assert!(
            err.lines()
                .any(|l| l.contains(&format!("manager: {node}")) && l.contains("changed=0")),
            "{node} changed on a second run:\n{err}"
        );
    }

    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty(), "QEMU left: {:?}", p.qemu_pids());
    let left: Vec<_> = std::fs::read_dir(p.root.join(".box/machines"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "machine state left: {left:?}");
    let status = p.ok(&["status", "--json"]);
    assert!(!status.contains("\"running\""), "{status}");
}

#[test]
fn postgres_replica_template_replicates_a_row_from_the_primary() {
    support::require("ansible-playbook");
    let p = crate::local::Project::new("", crate::guest::postgres_boxes_dir());
    std::fs::remove_file(p.root.join("Boxfile")).unwrap();
    p.ok(&["init", "--template", "postgres-replica", "--name", "pg"]);

    let up = p.run(&["up"]);
    let err = String::from_utf8_lossy(&up.stderr).into_owned();
    assert!(
        up.status.success(),
        "box up failed:\n{err}\nreplica console:\n{}",
        std::fs::read_to_string(p.root.join(".box/machines/replica/console.log"))
            .unwrap_or_default()
    );
    // The template's own check: a row written on the primary, read back on
    // the replica.
    assert!(
        err.contains("\"msg\": \"replicated: written on the primary at"),
        "{err}"
    );
    // The replica follows the primary, and a row written now arrives too.
    let recovery = p.sh(
        "replica",
        "sudo -u postgres psql -tA -c 'SELECT pg_is_in_recovery()'",
    );
    assert_eq!(recovery.trim(), "t");
    p.sh(
        "primary",
        "sudo -u postgres psql -v ON_ERROR_STOP=1 -c \"INSERT INTO box_check (note) VALUES ('from the test')\"",
    );
    let mut count = String::new();
    // Streaming is asynchronous: a few tries (a safety net, not a timing check).
    for _ in 0..60 {
        count = p.sh(
            "replica",
            "sudo -u postgres psql -tA -c \"SELECT count(*) FROM box_check WHERE note = 'from the test'\"",
        );
        if count.trim() == "1" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
    }
    assert_eq!(count.trim(), "1", "the row never reached the replica");

    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty(), "QEMU left: {:?}", p.qemu_pids());
}
