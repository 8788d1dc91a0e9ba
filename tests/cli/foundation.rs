//! The frame every verb relies on: help, state files, the project lock,
//! status from state, and secrets that never leak.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};

use boxcli::state::{MachineState, ProviderKind, SshTarget, StateStore, Status};
use predicates::prelude::*;

use crate::support::box_cmd;

const VERBS: &[&str] = &[
    "init",
    "validate",
    "up",
    "status",
    "ssh",
    "ssh-config",
    "halt",
    "reload",
    "destroy",
    "provision",
    "sync",
    "snapshot",
    "box",
    "completions",
    "exec",
    "upload",
    "download",
    "logs",
    "api",
];

fn project_with_machines(dir: &Path, n: usize) {
    let mut text = String::from("[project]\nname = \"shop\"\n\n");
    for i in 0..n {
        text.push_str(&format!("[[machine]]\nname = \"m{i}\"\n\n"));
    }
    fs::write(dir.join("Boxfile"), text).unwrap();
}

fn running_state(name: &str, port: u16) -> MachineState {
    let mut s = MachineState::new(name, ProviderKind::Local);
    s.status = Status::Running;
    s.id = Some(name.to_string());
    s.ssh = Some(SshTarget {
        host: "127.0.0.1".into(),
        port,
        user: "box".into(),
        identity_file: "/nonexistent/id_ed25519".into(),
        host_key:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4tQ2Qm2RrKbbZ3ZCeQpDnBeWIw2x9Ob3VWRvg1ZmyB"
                .into(),
    });
    s
}

#[test]
fn help_lists_every_verb() {
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path()).arg("--help").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for verb in VERBS {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "`box --help` does not list `{verb}`:\n{text}"
        );
    }
}

#[test]
fn completions_are_printed_for_bash() {
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .args(["completions", "bash"])
        .assert()
        .success()
        .stdout(predicate::str::contains("_box()"));
}

#[test]
fn usage_errors_exit_with_code_2() {
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path()).arg("frobnicate").assert().code(2);
}

#[test]
fn status_outside_a_project_says_how_to_start_one() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no Boxfile"))
        .stderr(predicate::str::contains("hint: run `box init`"));
}

#[test]
fn status_reads_state_for_every_machine_without_a_provider() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 10);
    let store = StateStore::open(dir.path()).unwrap();
    for i in 0..5 {
        store
            .save_machine(&running_state(&format!("m{i}"), 2200 + i as u16))
            .unwrap();
    }
    let out = box_cmd(home.path())
        .current_dir(dir.path())
        .args(["status", "--json"])
        .assert()
        .success();
    let rows: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["name"], "m0");
    assert_eq!(rows[0]["status"], "running");
    assert_eq!(rows[0]["ssh"], "box@127.0.0.1:2200");
    assert_eq!(rows[9]["status"], "not-created");

    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("m3  "))
        .stdout(predicate::str::contains("not created"));
}

#[test]
fn status_reports_a_machine_dropped_from_the_boxfile() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    let store = StateStore::open(dir.path()).unwrap();
    store.save_machine(&running_state("old", 2222)).unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("(not in Boxfile)"));
}

#[test]
fn a_corrupt_state_file_is_a_clear_error_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    StateStore::open(dir.path()).unwrap();
    fs::write(
        dir.path().join(".box/machines/m0.json"),
        "{\"schema\": 1, \"na",
    )
    .unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("m0.json is corrupt"))
        .stderr(predicate::str::contains("move it aside"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn state_folder_is_never_committed() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success();
    let ignore = fs::read_to_string(dir.path().join(".box/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "*"));
}

#[test]
fn concurrent_state_writers_never_leave_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    store.save_machine(&running_state("web", 1)).unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..300 {
                    let mut s = running_state("web", (w * 1000 + i) as u16);
                    // Vary the size so a torn write would show as bad JSON.
                    s.provisioned = (0..(i % 50)).map(|n| format!("step-{n}")).collect();
                    store.save_machine(&s).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..600 {
                let s = store.load_machine("web").expect("every read parses");
                assert_eq!(s.unwrap().name, "web");
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let leftovers: Vec<_> = fs::read_dir(dir.path().join(".box/machines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn the_project_lock_serialises_read_modify_write_across_holders() {
    use boxcli::lock::ProjectLock;
    use boxcli::output::{Level, Printer};
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    store
        .save_machine(&MachineState::new("web", ProviderKind::Local))
        .unwrap();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let printer = Printer::new(Level::Quiet);
                for _ in 0..100 {
                    let _lock = ProjectLock::acquire(
                        store.dir(),
                        std::time::Duration::from_secs(60),
                        &printer,
                    )
                    .unwrap();
                    let mut s = store.load_machine("web").unwrap().unwrap();
                    s.provisioned.push("x".into());
                    store.save_machine(&s).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = store.load_machine("web").unwrap().unwrap();
    assert_eq!(s.provisioned.len(), 200, "an update was lost");
}

#[test]
fn a_second_command_waits_for_the_lock_and_says_so() {
    use boxcli::lock::ProjectLock;
    use boxcli::output::{Level, Printer};
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    let store = StateStore::open(dir.path()).unwrap();
    let lock = ProjectLock::acquire(
        store.dir(),
        std::time::Duration::from_secs(5),
        &Printer::new(Level::Quiet),
    )
    .unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(lock);
    });
    // `halt` takes the lock; with nothing running it then has nothing to do.
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("halt")
        .assert()
        .success()
        .stderr(predicate::str::contains("waiting for another box command"));
    releaser.join().unwrap();
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else if let Ok(bytes) = fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

#[test]
fn the_secret_key_never_appears_in_output_or_state() {
    const SECRET: &str = "Zq7-very-secret-key-9Xb";
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Boxfile"),
        "[project]\nname = \"leak\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"zone1\"\n\n[[machine]]\nname = \"web\"\n",
    )
    .unwrap();
    let runs: &[&[&str]] = &[
        &["validate"],
        &["status", "--json"],
        &["-vv", "api", "listZones"],
        &["-vv", "api", "--dry-run", "listZones"],
        &["-vv", "up", "--no-connect"],
        &["-vv", "status", "--refresh"],
        &["-vv", "destroy", "--force"],
    ];
    for args in runs {
        let out = box_cmd(home.path())
            .current_dir(dir.path())
            // Port 9 (discard) is closed on loopback: every call fails fast.
            .env("CLOUDSTACK_API_URL", "http://127.0.0.1:9/client/api")
            .env("CLOUDSTACK_API_KEY", "some-api-key")
            .env("CLOUDSTACK_SECRET_KEY", SECRET)
            .args(*args)
            .output()
            .unwrap();
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(SECRET),
                "`box {}` printed the secret on {stream}:\n{text}",
                args.join(" ")
            );
            assert!(
                !text.contains("panicked"),
                "`box {}` panicked:\n{text}",
                args.join(" ")
            );
        }
    }
    for root in [dir.path(), home.path()] {
        for (path, bytes) in all_files(root) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                path.display()
            );
        }
    }
}
