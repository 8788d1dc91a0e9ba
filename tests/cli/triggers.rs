//! `[[trigger]]`s against a real sshd on loopback standing in for the
//! guest: host and guest commands around `up`, `provision`, `halt` and
//! `destroy`, their environment and order, trust (asked on a terminal,
//! refused without one, `box trust`, `--trust`, a changed command asking
//! again), failing triggers, and the verbs that never run host code.

use std::io::Write as _;
use std::os::fd::{FromRawFd as _, OwnedFd};
use std::path::Path;
use std::process::{Output, Stdio};

use boxcli::state::{StateStore, Status};
use predicates::prelude::*;

use crate::provision::log_lines;
use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

/// A Boxfile whose triggers log `host|guest EVENT MACHINE` to `log`, on
/// every event each kind may run on, and whose provisioner logs too.
fn logging_boxfile(log: &Path) -> String {
    format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
shell = "echo provision >> {log}"

[[trigger]]
on = ["before-up", "after-up", "before-halt", "after-halt", "before-destroy", "after-destroy", "after-provision"]
run = "echo host $BOX_EVENT $BOX_MACHINE >> {log}"

[[trigger]]
on = ["after-up", "before-halt", "before-destroy", "after-provision"]
run_remote = "echo guest $BOX_EVENT $BOX_MACHINE >> {log}"

[[trigger]]
on = ["after-up"]
run = "echo \"$BOX_PROJECT $BOX_PROVIDER $(pwd -P)\" > env.txt; echo said on stdout; echo said on stderr >&2"
"#,
        log = log.display()
    )
}

/// `box ARGS` with stdin on a new pseudo-terminal into which `typed` was
/// written, as a user answering a prompt.
fn on_a_terminal(p: &Project, args: &[&str], typed: &str) -> Output {
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: openpty fills in two new descriptors, owned below.
        let rc = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(rc, 0, "openpty failed");
        // SAFETY: both are open descriptors nobody else owns.
        unsafe {
            (
                std::fs::File::from(OwnedFd::from_raw_fd(m)),
                OwnedFd::from_raw_fd(s),
            )
        }
    };
    master.write_all(typed.as_bytes()).unwrap();
    let mut cmd = support::box_command(p.home.path());
    cmd.current_dir(p.path())
        .args(args)
        .stdin(Stdio::from(slave))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = cmd.output().unwrap();
    drop(master);
    out
}

/// A tiny `debian-12` box in the project's store: `box up` then finds the
/// box its machines are made of (their stand-in QEMU is running already,
/// so nothing boots it).
pub(crate) fn with_a_box(p: &Project) {
    let disk = p.home.path().join("tiny.qcow2");
    let ok = std::process::Command::new(support::require("qemu-img"))
        .args(["create", "-q", "-f", "qcow2"])
        .arg(&disk)
        .arg("4M")
        .status()
        .unwrap()
        .success();
    assert!(ok, "qemu-img failed");
    p.cmd()
        .args(["box", "add", "--name", "debian-12"])
        .arg(&disk)
        .assert()
        .success();
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn trusted_triggers_run_around_up_provision_halt_and_destroy_in_order_with_their_environment() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let p = Project::new(&logging_boxfile(&log), &[("web", sshd.target())]);
    with_a_box(&p);

    p.cmd()
        .arg("trust")
        .assert()
        .success()
        .stderr(predicate::str::contains("echo host $BOX_EVENT"))
        .stderr(predicate::str::contains("trusted"));
    p.cmd()
        .arg("up")
        .write_stdin("")
        .assert()
        .success()
        .stderr(predicate::str::contains("web: said on stdout"))
        .stderr(predicate::str::contains("web: said on stderr"));
    assert_eq!(
        log_lines(&log),
        [
            "host before-up web",
            "provision",
            "host after-provision web",
            "guest after-provision web",
            "host after-up web",
            "guest after-up web",
        ]
    );
    let root = std::fs::canonicalize(p.path()).unwrap();
    assert_eq!(
        std::fs::read_to_string(p.path().join("env.txt")).unwrap(),
        format!("proj local {}\n", root.display()),
        "host commands run in the project folder with BOX_PROJECT and BOX_PROVIDER"
    );

    std::fs::remove_file(&log).unwrap();
    p.cmd().arg("provision").write_stdin("").assert().success();
    assert_eq!(
        log_lines(&log),
        ["host after-provision web", "guest after-provision web"],
        "`once` provisioners do not run again, the trigger does"
    );

    std::fs::remove_file(&log).unwrap();
    p.cmd().arg("halt").write_stdin("").assert().success();
    assert_eq!(
        log_lines(&log),
        [
            "host before-halt web",
            "guest before-halt web",
            "host after-halt web"
        ]
    );

    std::fs::remove_file(&log).unwrap();
    p.cmd()
        .args(["destroy", "--force"])
        .write_stdin("")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "before-destroy: skipped `echo guest $BOX_EVENT $BOX_MACHINE",
        ));
    assert_eq!(
        log_lines(&log),
        ["host before-destroy web", "host after-destroy web"],
        "a halted machine's guest command is skipped"
    );
}

#[test]
fn without_a_terminal_untrusted_host_triggers_are_refused_and_nothing_is_done() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let p = Project::new(&logging_boxfile(&log), &[("web", sshd.target())]);
    with_a_box(&p);

    for verb in [
        &["up"][..],
        &["provision"],
        &["halt"],
        &["destroy", "--force"],
    ] {
        p.cmd()
            .args(verb)
            .write_stdin("")
            .assert()
            .failure()
            .stderr(predicate::str::contains(
                "refusing to run the Boxfile's host triggers: they are not trusted yet, and there is no terminal to ask on",
            ))
            .stderr(predicate::str::contains("hint:").and(predicate::str::contains("box trust")));
    }
    assert_eq!(log_lines(&log), Vec::<String>::new(), "nothing ran");
    assert!(p.state("web").provisioned.is_empty());
    assert_eq!(p.state("web").status, Status::Running, "not halted");

    // `--trust` allows one run and remembers nothing.
    p.cmd()
        .args(["up", "--trust"])
        .write_stdin("")
        .assert()
        .success();
    assert_eq!(log_lines(&log)[0], "host before-up web");
    p.cmd()
        .arg("up")
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicate::str::contains("not trusted yet"));
}

#[test]
fn a_host_trigger_asks_on_a_terminal_once_and_a_changed_command_asks_again() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = logging_boxfile(&log);
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    with_a_box(&p);

    let out = on_a_terminal(&p, &["up"], "y\n");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("runs these commands on this computer, and they are not trusted yet:"),
        "{err}"
    );
    assert!(err.contains("  before-up, after-up, before-halt, after-halt, before-destroy, after-destroy, after-provision (every machine): echo host $BOX_EVENT $BOX_MACHINE"), "{err}");
    assert!(err.contains("Trust them and run them? [y/N]"), "{err}");
    let asked = err.split("Trust them").next().unwrap();
    assert!(
        !asked.contains("echo guest"),
        "guest commands need no trust: {err}"
    );
    assert_eq!(log_lines(&log)[0], "host before-up web");

    // Trusted now: no terminal needed, nothing asked.
    p.cmd()
        .arg("up")
        .write_stdin("")
        .assert()
        .success()
        .stderr(predicate::str::contains("Trust them").not());

    // A changed guest command needs no new trust; a changed host command does.
    std::fs::write(
        p.path().join("Boxfile"),
        boxfile.replace("echo guest", "echo GUEST"),
    )
    .unwrap();
    p.cmd().arg("up").write_stdin("").assert().success();
    let changed = boxfile.replace("echo host", "echo HOST");
    std::fs::write(p.path().join("Boxfile"), &changed).unwrap();
    p.cmd()
        .arg("up")
        .write_stdin("")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "they have changed since you trusted them, and there is no terminal",
        ));
    std::fs::remove_file(&log).unwrap();
    let out = on_a_terminal(&p, &["up"], "n\n");
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("and they have changed since you trusted them:"),
        "{err}"
    );
    assert!(err.contains("echo HOST $BOX_EVENT"), "{err}");
    assert!(
        err.contains("the Boxfile's host triggers are not trusted; nothing was done"),
        "{err}"
    );
    assert_eq!(log_lines(&log), Vec::<String>::new(), "a no runs nothing");
}

#[test]
fn a_failing_before_trigger_stops_the_command_and_a_failing_after_trigger_fails_it() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = |before: &str, after: &str| {
        format!(
            r#"[[machine]]
name = "web"

[[machine.provision]]
shell = "echo provision >> {log}"
run = "always"

[[trigger]]
on = ["before-up", "before-halt"]
run = "{before}"

[[trigger]]
on = ["after-up", "after-destroy"]
run = "{after}"
"#,
            log = log.display()
        )
    };
    let p = Project::new(&boxfile("exit 3", "true"), &[("web", sshd.target())]);
    with_a_box(&p);
    p.cmd()
        .args(["up", "--trust"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`web`: stopped before starting it",
        ))
        .stderr(predicate::str::contains(
            "the before-up trigger `exit 3` exited with code 3",
        ));
    assert_eq!(
        log_lines(&log),
        Vec::<String>::new(),
        "nothing was provisioned"
    );

    p.cmd()
        .args(["halt", "--trust"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "the before-halt trigger `exit 3` exited with code 3",
        ));
    assert_eq!(p.state("web").status, Status::Running, "not halted");

    std::fs::write(
        p.path().join("Boxfile"),
        boxfile("true", "echo after; exit 4"),
    )
    .unwrap();
    p.cmd()
        .args(["up", "--trust"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("web: after"))
        .stderr(predicate::str::contains(
            "`web` is up, but a trigger failed: the after-up trigger `echo after; exit 4` exited with code 4",
        ));
    assert_eq!(log_lines(&log), ["provision"], "the machine itself came up");

    p.cmd()
        .args(["destroy", "--force", "--trust"])
        .write_stdin("")
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "`web` is destroyed, but a trigger failed",
        ));
    let state = StateStore::open(p.path()).unwrap().load_machine("web");
    assert!(state.unwrap().is_none(), "the machine is gone all the same");
}

#[test]
fn validate_status_ssh_config_and_trust_never_run_host_code() {
    let sshd = Sshd::start();
    let boxfile = r#"[[machine]]
name = "web"

[[trigger]]
on = ["before-up", "after-up", "before-halt", "after-halt", "before-destroy", "after-destroy", "after-provision"]
run = "touch ran"
"#;
    let p = Project::new(boxfile, &[("web", sshd.target())]);
    for verb in [
        &["validate"][..],
        &["status"],
        &["status", "--json"],
        &["ssh-config"],
        &["trust"],
        &["ls"],
    ] {
        p.cmd().args(verb).write_stdin("").assert().success();
    }
    assert!(!p.path().join("ran").exists(), "a host trigger ran");
}
