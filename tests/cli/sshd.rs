//! A real OpenSSH server on loopback for the SSH, sync and provision tests:
//! throwaway host and user keys, its own config, a free port, killed on drop.
//! Plus a project folder whose state points `box` at that server.

use std::io::Read;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use boxcli::provider::ProviderKind;
use boxcli::state::{MachineState, SshTarget, StateStore, Status};

use crate::support;

pub struct Sshd {
    /// Keys and config; removed on drop.
    _dir: tempfile::TempDir,
    child: Child,
    config: PathBuf,
    pub port: u16,
    /// `ssh-ed25519 AAAA...` of the server.
    pub host_key: String,
    /// The private key the server accepts for root.
    pub user_key: PathBuf,
}

pub(crate) fn keygen(path: &Path) -> String {
    let ok = Command::new(support::require("ssh-keygen"))
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "box-test", "-f"])
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ssh-keygen failed");
    std::fs::read_to_string(path.with_extension("pub"))
        .unwrap()
        .trim()
        .to_string()
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Sshd {
    pub fn start() -> Sshd {
        Sshd::start_with("")
    }

    /// A server whose sessions run as `nobody` (uid 65534), as a guest's
    /// login user is not root: permission checks then apply on the guest.
    pub fn start_as_nobody() -> Sshd {
        let setpriv = support::require("setpriv");
        Sshd::start_with(&format!(
            "ForceCommand exec {} --reuid=65534 --regid=65534 --clear-groups \
             /bin/sh -c \"$SSH_ORIGINAL_COMMAND\"\n",
            setpriv.display()
        ))
    }

    /// `extra` is appended to the server's configuration.
    fn start_with(extra: &str) -> Sshd {
        let sshd = support::require("/usr/sbin/sshd");
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host_ed25519");
        let host_key = keygen(&host);
        let user_key = dir.path().join("id_ed25519");
        let user_pub = keygen(&user_key);
        std::fs::write(dir.path().join("authorized_keys"), format!("{user_pub}\n")).unwrap();
        // sshd refuses to start without its privilege separation folder.
        let _ = std::fs::create_dir_all("/run/sshd");
        let sftp = ["/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("sftp-server from openssh-server is installed");
        for _ in 0..5 {
            let port = free_port();
            let config = dir.path().join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {host}\nPidFile none\n\
                     UsePAM no\nStrictModes no\nPermitRootLogin yes\n\
                     AuthorizedKeysFile {auth}\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nSubsystem sftp {sftp}\n\
                     LogLevel ERROR\nMaxStartups 100\nMaxSessions 100\n{extra}",
                    host = host.display(),
                    auth = dir.path().join("authorized_keys").display(),
                ),
            )
            .unwrap();
            let mut child = Command::new(&sshd)
                .arg("-D")
                .arg("-e")
                .arg("-f")
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            // Waiting for a server to come up is not a timing assertion:
            // the limit only stops a broken setup from hanging forever.
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Sshd {
                        _dir: dir,
                        child,
                        config,
                        port,
                        host_key,
                        user_key,
                    };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    panic!("sshd did not start listening on {port}");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            // It exited: most likely the port was taken in between; retry.
            let mut err = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut err);
            }
            eprintln!("sshd exited early: {err}");
        }
        panic!("could not start sshd");
    }

    /// A machine's reboot as a client sees it: the server and every session
    /// it serves end, and a new server answers on the same port.
    pub fn restart(&mut self) {
        // Sessions move to another parent once the listener is gone, so
        // they are listed first.
        let doomed = descendants(self.child.id());
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in doomed {
            // SAFETY: kill with a pid and a signal number.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        }
        self.child = Command::new(support::require("/usr/sbin/sshd"))
            .arg("-D")
            .arg("-e")
            .arg("-f")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // A safety net against a broken setup, not a timing assertion.
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "sshd did not come back");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A reboot after which the server presents another host key (a new
    /// machine behind the same address, or an interception).
    pub fn restart_with_new_host_key(&mut self) {
        let host = self._dir.path().join("host_ed25519");
        let _ = std::fs::remove_file(&host);
        let _ = std::fs::remove_file(host.with_extension("pub"));
        self.host_key = keygen(&host);
        self.restart();
    }

    pub fn target(&self) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: self.port,
            user: "root".into(),
            identity_file: self.user_key.clone(),
            host_key: self.host_key.clone(),
        }
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every process below `pid` (children, grandchildren...), from /proc.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(p) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        // The fields after the command name, which is in parentheses.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        if let Some(ppid) = rest.split_whitespace().nth(1).and_then(|f| f.parse().ok()) {
            parents.push((p, ppid));
        }
    }
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// A project folder with a Boxfile and running machines pointing at sshd.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub home: tempfile::TempDir,
    /// One stand-in process per machine for its QEMU (see `stand_in`).
    stand_ins: Vec<Child>,
}

/// A process box takes for a machine's live QEMU: box checks a local
/// machine's recorded pid and that its command line names the machine's
/// disk before it connects. It ends by itself after two hours in case the
/// test is killed before `Drop` runs.
fn stand_in(disk: &Path) -> Child {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .args(["-c", "sleep 7200; :", "box-qemu-stand-in"])
        .arg(disk)
        .process_group(0)
        .stdin(std::process::Stdio::null())
        .spawn()
        .expect("sh starts")
}

impl Drop for Project {
    fn drop(&mut self) {
        for child in &mut self.stand_ins {
            // SAFETY: kill with a process group id and a signal number.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
        }
    }
}

impl Project {
    /// `boxfile` is the Boxfile text; `machines` get state pointing at `target`.
    pub fn new(boxfile: &str, machines: &[(&str, SshTarget)]) -> Project {
        Self::new_in(&std::env::temp_dir(), boxfile, machines)
    }

    /// Like `new`, with the project folder made inside `parent`.
    pub fn new_in(parent: &Path, boxfile: &str, machines: &[(&str, SshTarget)]) -> Project {
        let dir = tempfile::TempDir::new_in(parent).unwrap();
        let home = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Boxfile"), boxfile).unwrap();
        let store = StateStore::open(dir.path()).unwrap();
        let mut stand_ins = vec![];
        for (name, target) in machines {
            let mut m = MachineState::new(name, ProviderKind::Local);
            m.status = Status::Running;
            m.ssh = Some(target.clone());
            let child = stand_in(&store.machine_dir(name).join("disk.qcow2"));
            m.provider.local_mut().pid = Some(child.id());
            stand_ins.push(child);
            store.save_machine(&m).unwrap();
        }
        Project {
            dir,
            home,
            stand_ins,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `box` run in the project folder.
    pub fn cmd(&self) -> assert_cmd::Command {
        let mut c = support::box_cmd(self.home.path());
        c.current_dir(self.dir.path());
        c
    }

    pub fn state(&self, machine: &str) -> MachineState {
        StateStore::open(self.dir.path())
            .unwrap()
            .load_machine(machine)
            .unwrap()
            .unwrap()
    }
}

/// A guest folder for one test (sshd runs on this computer, as root).
pub fn guest_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("box-guest-")
        .tempdir()
        .unwrap()
}
