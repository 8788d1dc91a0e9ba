//! `autostart = false` against a real sshd on loopback: such a machine is
//! left out of `box up` and `box reload` without names, named it comes up,
//! and a machine that depends on it brings it up too.

use predicates::prelude::*;

use boxcli::state::Status;

use crate::provision::log_lines;
use crate::sshd::{guest_dir, Project, Sshd};
use crate::triggers::with_a_box;

/// Machines whose provisioner each logs its name to `log`.
fn boxfile(log: &std::path::Path, web_depends_on_tools: bool) -> String {
    format!(
        r#"[[machine]]
name = "web"
{depends}
[[machine.provision]]
shell = "echo web >> {log}"

[[machine]]
name = "tools"
autostart = false

[[machine.provision]]
shell = "echo tools >> {log}"
"#,
        log = log.display(),
        depends = if web_depends_on_tools {
            "depends_on = [\"tools\"]"
        } else {
            ""
        }
    )
}

/// `web` and `tools`, both running on one sshd, with a box to be made of.
fn web_and_tools(web_depends_on_tools: bool) -> (Sshd, tempfile::TempDir, Project) {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let p = Project::new(
        &boxfile(&guest.path().join("log"), web_depends_on_tools),
        &[("web", sshd.target()), ("tools", sshd.target())],
    );
    with_a_box(&p);
    (sshd, guest, p)
}

#[test]
fn up_without_names_leaves_out_a_machine_without_autostart_and_naming_it_brings_it_up() {
    let (_sshd, guest, p) = web_and_tools(false);
    let log = guest.path().join("log");
    p.cmd()
        .arg("up")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "tools: left out (autostart = false); `box up tools` includes it",
        ))
        .stderr(predicate::str::contains("1 of 1 machine(s) up"));
    assert_eq!(log_lines(&log), ["web"]);
    assert!(p.state("tools").provisioned.is_empty());

    p.cmd()
        .args(["up", "tools"])
        .assert()
        .success()
        .stderr(predicate::str::contains("left out").not());
    assert_eq!(log_lines(&log), ["web", "tools"]);
}

#[test]
fn a_machine_that_depends_on_one_without_autostart_brings_it_up_first() {
    let (_sshd, guest, p) = web_and_tools(true);
    let log = guest.path().join("log");
    p.cmd()
        .arg("up")
        .assert()
        .success()
        .stderr(predicate::str::contains("left out").not())
        .stderr(predicate::str::contains("2 of 2 machine(s) up"));
    assert_eq!(
        log_lines(&log),
        ["tools", "web"],
        "the dependency is provisioned first"
    );
}

#[test]
fn reload_without_names_leaves_a_running_machine_without_autostart_alone() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = format!(
        "[[machine]]\nname = \"tools\"\nautostart = false\n\n[[machine.provision]]\nshell = \"echo tools >> {}\"\n",
        log.display()
    );
    let p = Project::new(&boxfile, &[("tools", sshd.target())]);
    p.cmd()
        .arg("reload")
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "tools: left out (autostart = false); `box reload tools` includes it",
        ))
        .stderr(predicate::str::contains("0 of 0 machine(s) reloaded"));
    assert_eq!(p.state("tools").status, Status::Running, "not restarted");
    assert_eq!(log_lines(&log), Vec::<String>::new());
}
