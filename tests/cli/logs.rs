//! `box logs` where it is not available: a cloud keeps its VMs' consoles,
//! so on a CloudStack machine box exits 4, "not available in this build"
//! (README, "Exit codes"), with what to do instead.

use predicates::prelude::*;

use crate::cloud::Sim;

#[test]
fn logs_of_a_cloudstack_machine_exits_4_with_a_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = home.join("demo");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("Boxfile"),
        r#"[project]
name = "demo"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
"#,
    )
    .unwrap();
    sim.cmd(home, &dir)
        .args(["up", "--no-connect"])
        .assert()
        .success();

    sim.cmd(home, &dir)
        .args(["logs", "web"])
        .assert()
        .code(4)
        .stdout("")
        .stderr(predicate::str::contains(
            "`box logs` is not available for `web` (a cloudstack machine) in this build",
        ))
        .stderr(predicate::str::contains(
            "hint: box keeps the serial console of local machines only",
        ))
        .stderr(predicate::str::contains("box ssh web"));
    // The primary machine by default, and `--follow` too: the same answer.
    sim.cmd(home, &dir)
        .args(["logs", "--follow"])
        .assert()
        .code(4);

    sim.cmd(home, &dir)
        .args(["destroy", "--force"])
        .assert()
        .success();
}
