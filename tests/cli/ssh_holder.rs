//! SSH connection reuse (issue 14 §5): the per-project connection holder
//! against a real sshd on loopback. Which connection ran a command is read
//! from the command itself: `$PPID` is the sshd process of its connection.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::sshd::{Project, Sshd};
use crate::support;

const ONE: &str = "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n";

/// A project whose `web` points at `sshd`, with a stand-in for its QEMU
/// process: box judges a local machine running by a live process whose
/// command line names the machine's disk.
struct Machine {
    project: Project,
    qemu: std::process::Child,
}

impl Machine {
    fn new(sshd: &Sshd) -> Machine {
        let project = Project::new(ONE, &[("web", sshd.target())]);
        let disk = project.path().join(".box/machines/web/disk.qcow2");
        let qemu = Command::new(support::require("python3"))
            .args(["-c", "import time; time.sleep(100000)"])
            .arg(&disk)
            .spawn()
            .unwrap();
        let mut state = project.state("web");
        state.provider.local_mut().pid = Some(qemu.id());
        boxcli::state::StateStore::open(project.path())
            .unwrap()
            .save_machine(&state)
            .unwrap();
        Machine { project, qemu }
    }
}

impl std::ops::Deref for Machine {
    type Target = Project;
    fn deref(&self) -> &Project {
        &self.project
    }
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

fn socket(p: &Project) -> PathBuf {
    p.path().join(".box/holder/ssh.sock")
}

fn holder_pid(p: &Project) -> u32 {
    std::fs::read_to_string(p.path().join(".box/holder/pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

/// Alive and not a zombie waiting to be reaped.
fn running(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// `box -vv ssh web -- CMD`: (stdout, stderr); the command must succeed.
fn ssh(p: &Project, cmd: &str) -> (String, String) {
    let out = p
        .cmd()
        .env("BOX_SSH_HOLDER_IDLE", "120")
        .args(["-vv", "ssh", "web", "--", cmd])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "box ssh -- {cmd}: {stdout}{stderr}");
    (stdout, stderr)
}

/// The first command starts the holder; waits until it listens. The wait
/// is a safety net against a hang, not a measurement.
fn start_holder(p: &Project) -> String {
    let (first, err) = ssh(p, "echo $PPID");
    assert!(!err.contains("via the connection holder"), "{err}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !socket(p).exists() {
        assert!(Instant::now() < deadline, "no holder socket: {err}");
        std::thread::sleep(Duration::from_millis(20));
    }
    first
}

fn via_holder(p: &Project, cmd: &str) -> String {
    let (out, err) = ssh(p, cmd);
    assert!(err.contains("via the connection holder"), "{err}");
    out
}

#[test]
fn later_ssh_and_exec_commands_share_one_held_connection() {
    let sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    let direct = start_holder(p);
    let a = via_holder(p, "echo $PPID");
    let b = via_holder(p, "echo $PPID");
    assert_eq!(a, b, "both through the same SSH connection");
    assert_ne!(a, direct, "the first command connected on its own");

    // Streams, exit codes and stdin pass through the holder unchanged.
    let out = p
        .cmd()
        .args(["-vv", "ssh", "web", "--", "cat; echo err >&2; exit 7"])
        .write_stdin("from stdin\n")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "from stdin\n");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("err\n") && stderr.contains("via the connection holder"),
        "{stderr}"
    );

    // `box exec` prefixes each line, through the same connection.
    let out = p
        .cmd()
        .args(["-vv", "exec", "web", "--", "echo $PPID; echo oops >&2"])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("web: {a}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("oops") && stderr.contains("via the connection holder"),
        "{stderr}"
    );

    p.cmd().args(["destroy", "--force"]).assert().success();
}

#[test]
fn the_holder_reconnects_after_a_machine_reboot() {
    let mut sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    start_holder(p);
    let before = via_holder(p, "echo $PPID");
    sshd.restart();
    let after = via_holder(p, "echo $PPID");
    assert_ne!(before, after, "a new connection after the reboot");
    assert_eq!(via_holder(p, "echo $PPID"), after, "and it is held again");
    p.cmd().args(["destroy", "--force"]).assert().success();
}

#[test]
fn a_changed_host_key_after_a_reboot_is_refused_not_reconnected() {
    let mut sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    start_holder(p);
    via_holder(p, "true");
    sshd.restart_with_new_host_key();
    let guest = tempfile::tempdir().unwrap();
    let marker = guest.path().join("ran");
    for _ in 0..2 {
        let out = p
            .cmd()
            .args(["ssh", "web", "--", &format!("touch {}", marker.display())])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("HOST KEY MISMATCH"), "{stderr}");
        assert!(
            !marker.exists(),
            "the command ran on a machine with another key"
        );
    }
    p.cmd().args(["destroy", "--force"]).assert().success();
}

#[test]
fn destroy_ends_the_holder_and_removes_its_socket() {
    let sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    start_holder(p);
    via_holder(p, "true");
    let pid = holder_pid(p);
    assert!(running(pid));
    p.cmd().args(["destroy", "--force"]).assert().success();
    // destroy returns once the holder's process is gone.
    assert!(!running(pid), "holder {pid} still running after destroy");
    assert!(!socket(p).exists());
    assert!(!p.path().join(".box/holder/pid").exists());
}

#[test]
fn halt_ends_the_holder_of_the_halted_machine() {
    let sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    start_holder(p);
    via_holder(p, "true");
    let pid = holder_pid(p);
    p.cmd().args(["halt", "--force", "web"]).assert().success();
    assert!(!running(pid), "holder {pid} still running after halt");
    assert!(!socket(p).exists());
}

#[test]
fn the_holder_socket_is_private_and_refuses_another_user() {
    let setpriv = support::require("setpriv");
    // The system python: another user cannot run a shim under /root.
    let python = support::require("/usr/bin/python3");
    let sshd = Sshd::start();
    let m = Machine::new(&sshd);
    let p: &Project = &m;
    start_holder(p);
    let mode = |path: &Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&p.path().join(".box/holder")), 0o700);
    assert_eq!(mode(&socket(p)), 0o600);

    // Even with every folder and the socket opened up, another user who
    // reaches the socket is refused by its uid (SO_PEERCRED).
    let open_up = |path: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(m)).unwrap();
    };
    open_up(p.path(), 0o755);
    open_up(&p.path().join(".box"), 0o755);
    open_up(&p.path().join(".box/holder"), 0o755);
    open_up(&socket(p), 0o666);
    let client = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
try:
    s.sendall(b'{"run":{"machine":"web","command":"id","pty":null,"stdin":false}}\n')
except OSError:
    pass  # the holder may have answered and closed already
print(s.makefile().readline().strip())
"#;
    let out = Command::new(setpriv)
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(python)
        .args(["-c", client])
        .arg(socket(p))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("refused") && stdout.contains("only its own user"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    p.cmd().args(["destroy", "--force"]).assert().success();
}
