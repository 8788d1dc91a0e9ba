//! `box suspend` and resume (issue 14 §1): a local machine's memory saved
//! in `.box/` and restored by `box up` with its processes, forwarded
//! ports, isolation and a corrected clock; CloudStack stops instead.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::guest;
use crate::harness::Test;
use crate::local::Project;

/// A free loopback port, for the Boxfile's forwarded port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The first line a guest service answers on a forwarded host port.
fn greeting(port: u16) -> String {
    greeting_at("127.0.0.1", port)
}

/// The first line a guest service answers on `address:port`.
pub(crate) fn greeting_at(address: &str, port: u16) -> String {
    let stream = TcpStream::connect((address, port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line).unwrap();
    line
}

fn host_epoch() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A service on guest port 8080 that greets each connection: it lives in
/// the guest's memory only, so it answers after a resume only if the
/// memory and the port forward both came back.
pub(crate) const GREETER: &str = "nohup perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; while ($c = $s->accept) { print $c \"hello from the guest\\n\"; close $c }' >/dev/null 2>&1 &";

#[test]
fn suspend_then_up_resumes_running_processes_ports_and_the_clock_and_destroy_removes_the_saved_state(
) {
    let port = free_port();
    let p = Project::new(
        &format!(
            "[project]\nname = \"nap\"\n\n[defaults]\nbox = \"debian-12\"\ncpus = 1\nmemory = 512\n\n\
             [local]\nisolated = true\n\n[[machine]]\nname = \"m\"\n\
             ports = [{{ guest = 8080, host = {port} }}]\n"
        ),
        guest::boxes_dir(),
    );
    p.ok(&["up"]);
    let sleeper = p.sh("m", "nohup sleep 10000 >/dev/null 2>&1 & echo $!");
    let sleeper = sleeper.trim().to_string();
    p.sh("m", GREETER);
    // The greeter is listening before the suspend.
    p.sh("m", "for i in $(seq 50); do timeout 2 bash -c '</dev/tcp/127.0.0.1/8080' && exit 0; sleep 0.2; done; exit 1");
    assert_eq!(greeting(port), "hello from the guest\n");

    // Suspend: the state is saved in .box/, QEMU is gone, the size is reported.
    let out = p.run(&["suspend"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("m: suspended (saved state "), "{stderr}");
    let saved = p.root.join(".box/machines/m/suspend.state");
    let size = std::fs::metadata(&saved).unwrap().len();
    assert!(size > 1024 * 1024, "a saved state of {size} bytes");
    assert!(p.qemu_pids().is_empty(), "QEMU left after suspend");
    assert_eq!(p.state("m")["status"], "suspended");
    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    assert_eq!(status[0]["status"], "suspended");
    assert_eq!(status[0]["saved_state_bytes"], size);
    assert!(p.ok(&["status"]).contains("suspended"));

    // Halt would throw the saved state away: not without asking.
    let out = p.cmd().args(["halt"]).write_stdin("").output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refusing to discard the saved state of suspended m"),
        "{stderr}"
    );
    assert!(stderr.contains("hint: `box up m` resumes it"), "{stderr}");
    assert!(
        saved.exists(),
        "halt without --force deleted the saved state"
    );
    assert_eq!(p.state("m")["status"], "suspended");

    // Time passes while it is suspended; its clock stands still.
    std::thread::sleep(Duration::from_secs(20));

    let out = p.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("m: resuming"), "{stderr}");
    assert!(!saved.exists(), "the saved state outlived the resume");
    assert_eq!(p.state("m")["status"], "running");
    // The same process, still running.
    let cmd = p.sh("m", &format!("ps -o args= -p {sleeper}"));
    assert_eq!(cmd.trim(), "sleep 10000");
    // The clock is the host's again (it would be 20 s or more behind).
    let guest_now: i64 = p.sh("m", "date +%s").trim().parse().unwrap();
    let skew = (host_epoch() - guest_now).abs();
    assert!(skew <= 10, "the guest clock is {skew}s off the host's");
    // The forwarded port reaches the guest's service again...
    assert_eq!(greeting(port), "hello from the guest\n");
    // ...and the guest is still isolated (QEMU restrict=on).
    let out = p.run(&[
        "ssh",
        "m",
        "-c",
        "timeout 10 bash -c '</dev/tcp/10.0.2.2/22'",
    ]);
    assert!(
        !out.status.success(),
        "a resumed isolated guest reached the host gateway"
    );

    // Destroy of a suspended machine removes its saved state with it.
    p.ok(&["suspend"]);
    assert!(saved.exists());
    p.ok(&["destroy", "--force"]);
    assert!(!saved.exists());
    assert!(!p.root.join(".box/machines/m").exists());
    assert!(p.qemu_pids().is_empty(), "QEMU left after destroy");
}

#[test]
fn suspend_on_cloudstack_stops_the_vm_and_says_so_once() {
    let t = Test::new().simulator(&[]);
    let p = t.project(
        "cloud",
        "[project]\nname = \"cnap\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"Sim-Advanced\"\n\
         allow_from = [\"127.0.0.0/8\"]\n\n[[machine]]\nname = \"web\"\n\n[[machine]]\nname = \"db\"\n",
    );
    p.run(["up", "--no-connect"]).success();
    let out = p.run(["suspend"]).success();
    out.stderr_has("CloudStack has no suspend: stopping web, db instead");
    let text = format!("{out}");
    assert_eq!(
        text.matches("CloudStack has no suspend").count(),
        1,
        "{text}"
    );
    for vm in t.list("listVirtualMachines") {
        assert_eq!(vm["state"], "Stopped", "{vm}");
    }
    for m in ["web", "db"] {
        assert_eq!(p.machine(m)["status"], "stopped");
    }
    p.run(["destroy", "--force"]).success();
}
