//! Ports that never clash (issue 15 §4): `auto_correct` moves a taken host
//! port to a free one, `host_ip` picks the address, and both are refused
//! on CloudStack machines at their line and column.

use std::net::{TcpListener, TcpStream};
use std::path::Path;

use crate::guest;
use crate::local::Project;
use crate::suspend::{greeting_at, GREETER};

/// `box validate` of `boxfile`: (exit code, stderr).
fn validate(boxfile: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Boxfile"), boxfile).unwrap();
    let out = crate::support::validate(dir.path());
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn auto_correct_and_host_ip_on_a_cloudstack_machine_are_errors_at_their_line_and_column() {
    let (code, stderr) = validate(
        "[project]\nname = \"p\"\n\n[[machine]]\nname = \"web\"\nprovider = \"cloudstack\"\n\
         ports = [{ guest = 80, host = 8080, auto_correct = true, host_ip = \"127.0.0.1\" }]\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Boxfile:7:37") && stderr.contains("`auto_correct` is for local machines"),
        "{stderr}"
    );
    assert!(
        stderr.contains("Boxfile:7:58") && stderr.contains("`host_ip` is for local machines"),
        "{stderr}"
    );
    assert!(stderr.contains("help: remove `host_ip`"), "{stderr}");
}

#[test]
fn defaults_auto_correct_applies_to_local_machines_and_leaves_cloudstack_ones_alone() {
    let (code, stderr) = validate(
        "[project]\nname = \"p\"\n\n[defaults]\nauto_correct = true\n\n\
         [[machine]]\nname = \"web\"\nports = [{ guest = 80, host = 8080 }]\n\n\
         [[machine]]\nname = \"api\"\nports = [{ guest = 81, host = 8080 }]\n\n\
         [[machine]]\nname = \"cloud\"\nprovider = \"cloudstack\"\n\
         ports = [{ guest = 80, host = 8080 }]\n",
    );
    // Two local forwards of 8080 are fine: the second may move.
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn host_ip_must_be_an_ip_address() {
    let (code, stderr) = validate(
        "[project]\nname = \"p\"\n\n[[machine]]\nname = \"web\"\n\
         ports = [{ guest = 80, host = 8080, host_ip = \"localhost\" }]\n",
    );
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Boxfile:6:47")
            && stderr.contains("`host_ip` must be an IP address, not \"localhost\""),
        "{stderr}"
    );
    assert!(stderr.contains("help: e.g. `\"127.0.0.1\"`"), "{stderr}");
}

fn boxfile(port: u16, second: u16, auto_correct: bool) -> String {
    format!(
        "[project]\nname = \"clash\"\n\n[defaults]\nbox = \"debian-12\"\ncpus = 1\nmemory = 512\n\
         auto_correct = {auto_correct}\n\n\
         [local]\nisolated = true\n\n[[machine]]\nname = \"web\"\n\
         ports = [{{ guest = 8080, host = {port} }}, \
         {{ guest = 8080, host = {second}, host_ip = \"127.0.0.2\", auto_correct = false }}]\n"
    )
}

/// A port free on 127.0.0.1 and on 127.0.0.2.
fn free_port() -> u16 {
    loop {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.2", port)).is_ok() {
            return port;
        }
    }
}

#[test]
fn a_taken_port_is_an_error_naming_auto_correct_and_with_it_box_forwards_a_free_one() {
    // Another project already forwards this port.
    let taken = free_port();
    let _other = TcpListener::bind(("127.0.0.1", taken)).unwrap();
    let second = free_port();
    let p = Project::new(&boxfile(taken, second, false), guest::boxes_dir());

    let out = p.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "host port {taken}/tcp is already in use on 127.0.0.1"
        )),
        "{stderr}"
    );
    assert!(stderr.contains("`auto_correct = true`"), "{stderr}");
    assert!(p.qemu_pids().is_empty(), "no QEMU after a refused port");

    std::fs::write(p.root.join("Boxfile"), boxfile(taken, second, true)).unwrap();
    let out = p.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&format!("web: {taken} is taken, forwarding ")))
        .unwrap_or_else(|| panic!("no correction in:\n{stderr}"));
    let corrected: u16 = line
        .split_whitespace()
        .nth(5)
        .and_then(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no port in {line:?}"));
    assert!(
        line.ends_with(&format!("forwarding {corrected} -> 8080")),
        "{line}"
    );
    assert_ne!(corrected, taken);

    p.sh("web", GREETER);
    p.sh(
        "web",
        "for i in $(seq 50); do timeout 2 bash -c '</dev/tcp/127.0.0.1/8080' && exit 0; sleep 0.2; done; exit 1",
    );
    // The guest answers on the corrected port, and on 127.0.0.2 only there
    // for the second forward.
    assert_eq!(
        greeting_at("127.0.0.1", corrected),
        "hello from the guest\n"
    );
    assert_eq!(greeting_at("127.0.0.2", second), "hello from the guest\n");
    assert!(TcpStream::connect(("127.0.0.1", second)).is_err());

    let status: serde_json::Value = serde_json::from_str(&p.ok(&["status", "--json"])).unwrap();
    let ports: Vec<String> = status[0]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        ports,
        [
            format!("127.0.0.1:{corrected}->8080 ({taken} was taken)"),
            format!("127.0.0.2:{second}->8080"),
        ]
    );
    assert!(p
        .ok(&["status"])
        .contains(&format!("127.0.0.1:{corrected}->8080 ({taken} was taken)")));
    let state = p.state("web");
    assert_eq!(state["ports"][0]["host"], corrected);
    assert_eq!(state["ports"][0]["wanted"], taken);

    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty());
    assert!(!Path::new(&p.root.join(".box/machines/web.json")).exists());
}
