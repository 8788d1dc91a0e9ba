//! SSH agent forwarding (`box ssh -A`, `box exec -A`, `forward_agent`)
//! against real parts: a real `ssh-agent` holding a throwaway key, the
//! "machine" (a loopback sshd) and a second loopback sshd that accepts only
//! that key. From inside the machine, the second server lets us in only
//! through the forwarded agent.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

/// A real `ssh-agent` in the foreground on its own socket; killed on drop.
pub(crate) struct Agent {
    _dir: tempfile::TempDir,
    child: Child,
    pub(crate) sock: PathBuf,
}

impl Agent {
    /// An agent holding `key`.
    pub(crate) fn holding(key: &Path) -> Agent {
        let dir = tempfile::tempdir().unwrap();
        let sock = dir.path().join("agent.sock");
        let child = Command::new(support::require("ssh-agent"))
            .arg("-D")
            .arg("-a")
            .arg(&sock)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Listening once `ssh-add -l` gets an answer (1: no keys yet) rather
        // than no connection (2). A safety net against a broken setup, not
        // a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let listed = Command::new(support::require("ssh-add"))
                .arg("-l")
                .env("SSH_AUTH_SOCK", &sock)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .unwrap();
            if listed.code() == Some(1) {
                break;
            }
            assert!(Instant::now() < deadline, "ssh-agent does not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
        let added = Command::new(support::require("ssh-add"))
            .arg(key)
            .env("SSH_AUTH_SOCK", &sock)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(added.success(), "ssh-add failed");
        Agent {
            _dir: dir,
            child,
            sock,
        }
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fingerprint `ssh-add -l` shows for the public half of `key`.
pub(crate) fn fingerprint(key: &Path) -> String {
    let out = Command::new(support::require("ssh-keygen"))
        .arg("-lf")
        .arg(key.with_extension("pub"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().nth(1).unwrap().to_string()
}

/// The machine, a second server reachable from it only with the agent's
/// key, and that agent.
struct Setup {
    machine: Sshd,
    second: Sshd,
    agent: Agent,
    /// Holds the second server's pinned host key, for the inner `ssh`.
    pins: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let machine = Sshd::start();
        let second = Sshd::start();
        let agent = Agent::holding(&second.user_key);
        let pins = guest_dir();
        std::fs::write(
            pins.path().join("known_hosts"),
            format!("[127.0.0.1]:{} {}\n", second.port, second.host_key),
        )
        .unwrap();
        Setup {
            machine,
            second,
            agent,
            pins,
        }
    }

    /// The command run inside the machine: log in to the second server
    /// with whatever agent the session has (no key file of its own, host
    /// key checked) and print `reached`.
    fn hop(&self) -> String {
        format!(
            "ssh -F /dev/null -o BatchMode=yes -o StrictHostKeyChecking=yes \
             -o UserKnownHostsFile={} -p {} root@127.0.0.1 echo reached",
            self.pins.path().join("known_hosts").display(),
            self.second.port
        )
    }

    fn project(&self, boxfile: &str) -> Project {
        Project::new(boxfile, &[("web", self.machine.target())])
    }
}

const ONE: &str = "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n";

#[test]
fn ssh_dash_a_forwards_the_agent_and_a_second_server_accepts_its_key() {
    let s = Setup::new();
    let p = s.project(ONE);
    let with_agent = |c: &mut assert_cmd::Command| {
        c.env("SSH_AUTH_SOCK", &s.agent.sock);
    };

    // Without -A the session has no agent: nothing to list, no way in.
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "web", "--", "ssh-add -l"])
        .assert()
        .failure();
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "web", "--", &s.hop()])
        .assert()
        .failure()
        .stdout(predicate::str::contains("reached").not());

    // With -A: the host agent's key is listed inside, and the hop works.
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "-A", "web", "--", "ssh-add -l"])
        .assert()
        .success()
        .stdout(predicate::str::contains(fingerprint(&s.second.user_key)));
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "-A", "web", "--", &s.hop()])
        .assert()
        .success()
        .stdout("reached\n");
    // The remote exit code still comes back, and stdin still reaches it.
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "-A", "web", "--", "sh", "-c", "exit 7"])
        .assert()
        .code(7);
    let mut c = p.cmd();
    with_agent(&mut c);
    c.args(["ssh", "-A", "web", "--", "cat"])
        .write_stdin("piped in")
        .assert()
        .success()
        .stdout("piped in");
}

#[test]
fn forward_agent_in_defaults_reaches_exec_and_provisioners() {
    let s = Setup::new();
    let log = s.pins.path().join("provisioned");
    let boxfile = format!(
        "[project]\nname = \"proj\"\n\n[defaults]\nforward_agent = true\n\n\
         [[machine]]\nname = \"web\"\n\n[[machine.provision]]\nname = \"clone\"\n\
         shell = \"{} > {}\"\n",
        s.hop(),
        log.display()
    );
    let p = s.project(&boxfile);
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args(["exec", "web", "--", &s.hop()])
        .assert()
        .success()
        .stdout("web: reached\n");
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args(["provision", "web"])
        .assert()
        .success();
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "reached\n");
}

#[test]
fn exec_dash_a_forwards_the_agent_to_each_machine() {
    let s = Setup::new();
    let p = s.project(ONE);
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args(["exec", "web", "--", &s.hop()])
        .assert()
        .failure();
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args(["exec", "-A", "web", "--", &s.hop()])
        .assert()
        .success()
        .stdout("web: reached\n");
}

#[test]
fn ssh_dash_a_without_an_agent_is_an_error_with_a_hint() {
    let s = Setup::new();
    let p = s.project(ONE);
    p.cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["ssh", "-A", "web", "--", "true"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("SSH_AUTH_SOCK is not set"))
        .stderr(predicate::str::contains("hint: start one"));
}

#[test]
fn forward_agent_without_an_agent_warns_and_runs_without_it() {
    let s = Setup::new();
    let boxfile = format!("{ONE}forward_agent = true\n");
    let p = s.project(&boxfile);
    p.cmd()
        .env_remove("SSH_AUTH_SOCK")
        .args(["ssh", "web", "--", "echo ran"])
        .assert()
        .success()
        .stdout("ran\n")
        .stderr(predicate::str::contains(
            "`web` has forward_agent = true, but there is no SSH agent to forward",
        ));
}

#[test]
fn a_forwarded_session_refuses_a_host_key_other_than_the_pinned_one() {
    let s = Setup::new();
    let impostor = boxcli::keys::generate("impostor").unwrap();
    let mut target = s.machine.target();
    target.host_key = impostor.public.clone();
    let p = Project::new(ONE, &[("web", target)]);
    let marker = s.pins.path().join("should-never-exist");
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args([
            "ssh",
            "-A",
            "web",
            "--",
            &format!("touch {}", marker.display()),
        ])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Host key verification failed"));
    assert!(!marker.exists());
}

#[test]
fn an_interactive_ssh_dash_a_login_has_a_pty_and_the_agent() {
    let script = support::require("script");
    let s = Setup::new();
    let p = s.project(ONE);
    let bin = assert_cmd::cargo::cargo_bin("box");
    // `script` gives box a terminal, so `box ssh -A web` is a login shell.
    let out = Command::new(script)
        .args(["-q", "-e", "-c"])
        .arg(format!("{} ssh -A web", bin.display()))
        .arg("/dev/null")
        .current_dir(p.path())
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            let line = format!("tty; ssh-add -l; {}; exit 6\n", s.hop());
            child.stdin.take().unwrap().write_all(line.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(6), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains(&fingerprint(&s.second.user_key)), "{text}");
    assert!(text.contains("\nreached"), "{text}");
}

#[test]
fn a_cloudstack_machine_forwards_the_agent_the_same_way() {
    // SSH never knows the provider: a CloudStack machine's state (here
    // pointing at the loopback sshd) takes the same path.
    let s = Setup::new();
    let boxfile = "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n\
                   provider = \"cloudstack\"\nforward_agent = true\n";
    let p = Project::new(boxfile, &[]);
    let mut state =
        boxcli::state::MachineState::new("web", boxcli::provider::ProviderKind::CloudStack);
    state.status = boxcli::state::Status::Running;
    state.ssh = Some(s.machine.target());
    boxcli::state::StateStore::open(p.path())
        .unwrap()
        .save_machine(&state)
        .unwrap();
    p.cmd()
        .env("SSH_AUTH_SOCK", &s.agent.sock)
        .args(["ssh", "web", "--", &s.hop()])
        .assert()
        .success()
        .stdout("reached\n");
}
