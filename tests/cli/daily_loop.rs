//! The daily loop on real guests (issue 15's end-to-end checks): two local
//! projects that forward the same host port both come up with
//! `auto_correct`, `box ssh -A` shows the host agent's key inside a TCG
//! guest and inside a CloudStack simulator machine, and a host trigger is
//! refused until `box trust`, then runs without asking.

use crate::agent::{fingerprint, Agent};
use crate::guest;
use crate::local::Project;
use crate::sshd::{free_port, keygen};
use crate::support;

fn boxfile(name: &str, port: u16, trigger: bool) -> String {
    let mut s = format!(
        "[project]\nname = \"{name}\"\n\n[defaults]\nauto_correct = true\n\n\
         [[machine]]\nname = \"web\"\nports = [{{ guest = 8080, host = {port} }}]\n"
    );
    if trigger {
        s.push_str(
            "\n[[trigger]]\non = [\"after-up\"]\nrun = \"echo \\\"$BOX_MACHINE $BOX_EVENT\\\" > trigger-ran\"\n",
        );
    }
    s
}

/// An agent holding a throwaway key made for this test.
fn agent() -> (tempfile::TempDir, std::path::PathBuf, Agent) {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("id_ed25519");
    keygen(&key);
    let agent = Agent::holding(&key);
    (dir, key, agent)
}

#[test]
fn two_projects_on_one_port_both_come_up_with_auto_correct_the_guest_sees_the_agent_and_a_trusted_trigger_runs(
) {
    let port = free_port();
    let a = Project::new(&boxfile("alpha", port, true), guest::boxes_dir());
    let b = Project::new(&boxfile("beta", port, false), guest::boxes_dir());

    // A host trigger from a Boxfile is refused without a terminal, and
    // nothing is started.
    let out = a.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("box trust"), "{stderr}");
    assert!(a.qemu_pids().is_empty(), "a refused up started QEMU");
    assert!(!a.root.join("trigger-ran").exists());

    a.ok(&["trust"]);
    a.ok(&["up"]);
    assert_eq!(
        std::fs::read_to_string(a.root.join("trigger-ran")).unwrap(),
        "web after-up\n"
    );
    assert_eq!(a.state("web")["ports"][0]["host"], port);

    // The second project wants the same port: it gets another one and says so.
    let out = b.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("web: {port} is taken, forwarding ")),
        "{stderr}"
    );
    let corrected = b.state("web")["ports"][0]["host"].as_u64().unwrap();
    assert_ne!(corrected, u64::from(port));
    assert_eq!(b.state("web")["ports"][0]["wanted"], port);

    // Inside a real guest, `box ssh -A` lists the host agent's key; without
    // -A the guest has no agent.
    let (_keys, key, agent) = agent();
    let listed = a
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.sock)
        .args(["ssh", "-A", "web", "--", "ssh-add", "-l"])
        .output()
        .unwrap();
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(
        String::from_utf8_lossy(&listed.stdout).contains(&fingerprint(&key)),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    let without = a
        .cmd()
        .env("SSH_AUTH_SOCK", &agent.sock)
        .args(["ssh", "web", "--", "ssh-add", "-l"])
        .output()
        .unwrap();
    assert!(
        !without.status.success(),
        "the guest had an agent without -A"
    );

    for p in [&a, &b] {
        p.ok(&["destroy", "--force"]);
        assert!(p.qemu_pids().is_empty(), "QEMU left: {:?}", p.qemu_pids());
    }
}

#[test]
fn ssh_dash_a_on_a_cloudstack_simulator_machine_lists_the_host_agents_key() {
    let t = crate::harness::Test::new().with_simulator(crate::cloud::Sim::start_qemu_backed(&[]));
    let p = t.project(
        "agent",
        "[project]\nname = \"agent\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"Sim-Advanced\"\n\
         template = \"Debian 12\"\nallow_from = [\"127.0.0.0/8\"]\n\n[[machine]]\nname = \"web\"\n",
    );
    p.run(["up"]).success();
    let (_keys, key, agent) = agent();
    let out = p
        .run(["ssh", "-A", "web", "--", "ssh-add", "-l"])
        .env("SSH_AUTH_SOCK", &agent.sock)
        .success();
    assert!(out.stdout.contains(&fingerprint(&key)), "{}", out.stdout);
    p.run(["destroy", "--force"]).success();
    assert_eq!(t.census(), crate::cloud::Census::empty());
    let _ = support::require("ssh-agent");
}
