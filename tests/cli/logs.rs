//! `box logs` where it is not available: a cloud keeps its VMs' consoles,
//! so on a CloudStack machine box exits 4, "not available in this build"
//! (README, "Exit codes"), with what to do instead.

use crate::harness::Test;

#[test]
fn logs_of_a_cloudstack_machine_exits_4_with_a_hint() {
    let t = Test::new().simulator(&[]);
    let demo = t.project(
        "demo",
        r#"[project]
name = "demo"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
"#,
    );
    demo.run(["up", "--no-connect"]).success();

    demo.run(["logs", "web"])
        .code(4)
        .stdout_is("")
        .stderr_has("`box logs` is not available for `web` (a cloudstack machine) in this build")
        .stderr_has("hint: box keeps the serial console of local machines only")
        .stderr_has("box ssh web");
    // The primary machine by default, and `--follow` too: the same answer.
    demo.run(["logs", "--follow"]).code(4);

    demo.run(["destroy", "--force"]).success();
}
