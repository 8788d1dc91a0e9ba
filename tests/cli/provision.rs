//! `box provision` against a real sshd on loopback: every provisioner kind,
//! `run = once | always | never`, `--with`, and a failing step.

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};

fn log_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn provisioners_of_every_kind_run_in_order_once_steps_only_once() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
name = "first"
shell = "echo first >> {log}; echo hello from shell"

[[machine.provision]]
name = "tool"
script = "setup.sh"
args = ["one arg", "two"]
env = {{ GREETING = "hi there" }}
run = "always"

[[machine.provision]]
name = "config"
file = "files/app.conf"
destination = "{dest}"

[[machine.provision]]
name = "manual"
shell = "echo manual >> {log}"
run = "never"
"#,
        log = log.display(),
        dest = guest.path().join("etc/app.conf").display(),
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    std::fs::write(
        p.path().join("setup.sh"),
        format!(
            "#!/bin/sh\necho \"script $GREETING [$1] [$2]\" >> {}\necho from script >&2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(p.path().join("files")).unwrap();
    std::fs::write(p.path().join("files/app.conf"), "key = value\n").unwrap();

    p.cmd()
        .arg("provision")
        .assert()
        .success()
        .stderr(predicate::str::contains("web: hello from shell"))
        .stderr(predicate::str::contains("web: from script"))
        .stderr(predicate::str::contains("web: provisioned"));
    assert_eq!(
        log_lines(&log),
        ["first", "script hi there [one arg] [two]"]
    );
    assert_eq!(
        std::fs::read_to_string(guest.path().join("etc/app.conf")).unwrap(),
        "key = value\n"
    );
    assert_eq!(p.state("web").provisioned, ["first", "config"]);

    // Again: `once` steps are remembered, `always` runs, `never` does not.
    p.cmd().arg("provision").assert().success();
    assert_eq!(
        log_lines(&log),
        [
            "first",
            "script hi there [one arg] [two]",
            "script hi there [one arg] [two]"
        ]
    );

    // `--with` runs exactly the named steps, whatever their policy.
    p.cmd()
        .args(["provision", "--with", "manual", "--with", "first"])
        .assert()
        .success();
    assert_eq!(
        log_lines(&log)[3..],
        ["first".to_string(), "manual".to_string()]
    );

    p.cmd()
        .args(["provision", "web", "--with", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no provisioner named `nope`"));
}

#[test]
fn a_failing_step_stops_provisioning_and_names_the_step_and_its_code() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
shell = "echo one >> {log}"

[[machine.provision]]
name = "broken"
shell = "echo about to fail; exit 7"

[[machine.provision]]
shell = "echo three >> {log}"
"#,
        log = log.display()
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    p.cmd()
        .arg("provision")
        .assert()
        .failure()
        .stderr(predicate::str::contains("web: about to fail"))
        .stderr(predicate::str::contains(
            "provisioner `broken` exited with code 7",
        ));
    assert_eq!(log_lines(&log), ["one"]);
    // The step that succeeded is remembered; the rest are still due.
    assert_eq!(p.state("web").provisioned, ["shell-1"]);
}
