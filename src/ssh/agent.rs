//! Sessions with the user's SSH agent forwarded (`box ssh -A`,
//! `forward_agent = true`), run by OpenSSH's `ssh`.
//!
//! Why not libssh2: the `libssh2` that `ssh2` 0.9 builds (1.11) can ask
//! the server for agent forwarding (`Channel::request_auth_agent_forwarding`),
//! but each agent request from the guest then arrives as a new
//! `auth-agent@openssh.com` channel, which libssh2 only accepts through a C
//! callback (`LIBSSH2_CALLBACK_AUTHAGENT`) that hands over a raw channel in
//! the middle of its own packet reading. The `ssh2` crate neither sets that
//! callback nor wraps such a channel, so serving the agent would mean
//! driving libssh2 by hand under `ssh2`'s session lock. OpenSSH does it
//! well, so these sessions go to `ssh` with a configuration box writes:
//! box's key, the machine's pinned host key as the only known host and
//! `StrictHostKeyChecking yes`. No user or system `ssh_config` is read, so
//! nothing can relax the check.

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ssh_config::{host_block, known_hosts_line};
use crate::state::SshTarget;

/// The `Host` name in the written configuration.
const ALIAS: &str = "box-machine";

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("there is no SSH agent to forward: SSH_AUTH_SOCK is not set")]
    NoAgent,
    #[error("SSH_AUTH_SOCK names {0}, which is not a socket")]
    NotASocket(PathBuf),
    #[error("forwarding the SSH agent needs OpenSSH's `ssh`, and it is not on PATH")]
    NoSsh,
    #[error("cannot write the OpenSSH configuration for the session")]
    Config(#[source] std::io::Error),
    #[error("cannot run {0}")]
    Spawn(PathBuf, #[source] std::io::Error),
    #[error("ssh ended by signal {0}")]
    Signal(i32),
}

impl AgentError {
    /// The next step for the user.
    pub fn hint(&self) -> &'static str {
        match self {
            AgentError::NoAgent | AgentError::NotASocket(_) => {
                "start one and add your key: `eval $(ssh-agent)` and `ssh-add`"
            }
            AgentError::NoSsh => {
                "install the OpenSSH client (Debian: `apt-get install openssh-client`)"
            }
            _ => "run again with --debug to see the ssh command line",
        }
    }
}

/// The agent socket to forward (`SSH_AUTH_SOCK`), checked to be a socket.
pub fn agent_socket() -> Result<PathBuf, AgentError> {
    let path = std::env::var_os("SSH_AUTH_SOCK")
        .filter(|s| !s.is_empty())
        .map(PathBuf::from)
        .ok_or(AgentError::NoAgent)?;
    match std::fs::metadata(&path) {
        Ok(m) if m.file_type().is_socket() => Ok(path),
        _ => Err(AgentError::NotASocket(path)),
    }
}

/// The `ssh` for a session when `-A` (`explicit`) or the machine's
/// `forward_agent` asks for the agent, else `None`. With only the Boxfile
/// asking and no agent running, the session goes on without one after
/// `warn` is told why: a Boxfile setting must not break every `box ssh`,
/// `exec` and provisioner in a terminal (or CI) that has no agent.
pub fn forwarding(
    target: &SshTarget,
    explicit: bool,
    from_boxfile: bool,
    warn: impl FnOnce(&AgentError),
) -> Result<Option<ForwardingSsh>, AgentError> {
    if !explicit && !from_boxfile {
        return Ok(None);
    }
    match ForwardingSsh::new(target) {
        Ok(ssh) => Ok(Some(ssh)),
        Err(e @ (AgentError::NoAgent | AgentError::NotASocket(_))) if !explicit => {
            warn(&e);
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// One machine reached through `ssh` with the agent forwarded. The
/// configuration lives in a private temporary folder removed on drop.
pub struct ForwardingSsh {
    _dir: tempfile::TempDir,
    config: PathBuf,
    program: PathBuf,
}

impl ForwardingSsh {
    /// Checks that there is an agent and an `ssh`, and writes the config.
    pub fn new(target: &SshTarget) -> Result<ForwardingSsh, AgentError> {
        agent_socket()?;
        let program = which("ssh").ok_or(AgentError::NoSsh)?;
        ForwardingSsh::with_program(target, program)
    }

    /// Writes the config for `program` (an OpenSSH `ssh`).
    fn with_program(target: &SshTarget, program: PathBuf) -> Result<ForwardingSsh, AgentError> {
        let dir = tempfile::Builder::new()
            .prefix("box-ssh-")
            .tempdir()
            .map_err(AgentError::Config)?;
        let known_hosts = dir.path().join("known_hosts");
        std::fs::write(&known_hosts, format!("{}\n", known_hosts_line(target)))
            .map_err(AgentError::Config)?;
        let config = dir.path().join("config");
        std::fs::write(&config, host_block(ALIAS, target, &known_hosts))
            .map_err(AgentError::Config)?;
        Ok(ForwardingSsh {
            _dir: dir,
            config,
            program,
        })
    }

    /// The `ssh` command line: `remote` (or the login shell), with a PTY
    /// when `tty`. Options given here win over the config file's.
    pub fn command(&self, remote: Option<&str>, tty: bool) -> Command {
        let mut c = Command::new(&self.program);
        c.arg("-F").arg(&self.config);
        for option in [
            "ForwardAgent=yes",
            // Only the pinned key counts: not even the system's known hosts.
            "GlobalKnownHostsFile=none",
            "StrictHostKeyChecking=yes",
            "BatchMode=yes",
            // A session of its own, never a shared master left running.
            "ControlMaster=no",
            "ControlPath=none",
        ] {
            c.arg("-o").arg(option);
        }
        c.arg(if tty { "-t" } else { "-T" });
        c.arg(ALIAS);
        if let Some(remote) = remote {
            c.arg(remote);
        }
        c
    }

    /// An interactive session on this terminal; returns the exit code.
    pub fn login(&self, remote: Option<&str>) -> Result<i32, AgentError> {
        let status = self
            .command(remote, true)
            .status()
            .map_err(|e| AgentError::Spawn(self.program.clone(), e))?;
        exit_code(status)
    }

    /// `remote` (or a shell reading stdin) with its output copied to
    /// `stdout` and `stderr` as it comes; stdin is this process's when
    /// `with_stdin`, else empty. Returns the remote exit code (255 when
    /// `ssh` itself failed, as OpenSSH does; its message is on `stderr`).
    pub fn run(
        &self,
        remote: Option<&str>,
        with_stdin: bool,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<i32, AgentError> {
        let spawn = |e| AgentError::Spawn(self.program.clone(), e);
        let mut child = self
            .command(remote, false)
            .stdin(if with_stdin {
                Stdio::inherit()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        let (tx, rx) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
        let mut readers = Vec::new();
        let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
            (true, child.stdout.take().map(|p| Box::new(p) as _)),
            (false, child.stderr.take().map(|p| Box::new(p) as _)),
        ];
        for (is_out, pipe) in pipes {
            let Some(mut pipe) = pipe else { continue };
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 32 * 1024];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 || tx.send((is_out, buf[..n].to_vec())).is_err() {
                        break;
                    }
                }
            }));
        }
        drop(tx);
        // Written here, in order, so the caller's writers need not be Send.
        for (is_out, chunk) in rx {
            let w: &mut dyn Write = if is_out { stdout } else { stderr };
            let _ = w.write_all(&chunk);
        }
        for r in readers {
            let _ = r.join();
        }
        let _ = stdout.flush();
        let _ = stderr.flush();
        exit_code(child.wait().map_err(spawn)?)
    }

    pub fn config_path(&self) -> &Path {
        &self.config
    }
}

fn exit_code(status: std::process::ExitStatus) -> Result<i32, AgentError> {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => Ok(code),
        (None, Some(sig)) => Err(AgentError::Signal(sig)),
        (None, None) => Ok(255),
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port: 2222,
            user: "box".into(),
            identity_file: "/p/.box/keys/id_ed25519".into(),
            host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB box-host".into(),
        }
    }

    #[test]
    fn the_ssh_command_forwards_the_agent_and_only_trusts_the_pinned_key() {
        let ssh = ForwardingSsh::with_program(&target(), "/usr/bin/ssh".into()).unwrap();
        let config = std::fs::read_to_string(ssh.config_path()).unwrap();
        assert!(config.contains("StrictHostKeyChecking yes"), "{config}");
        let known =
            std::fs::read_to_string(ssh.config_path().with_file_name("known_hosts")).unwrap();
        assert_eq!(
            known,
            "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB\n"
        );
        let args: Vec<String> = ssh
            .command(Some("ssh-add -l"), false)
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        for wanted in [
            "ForwardAgent=yes",
            "GlobalKnownHostsFile=none",
            "StrictHostKeyChecking=yes",
            "-T",
        ] {
            assert!(args.iter().any(|a| a == wanted), "{wanted} in {args:?}");
        }
        assert_eq!(&args[args.len() - 2..], ["box-machine", "ssh-add -l"]);
    }
}
