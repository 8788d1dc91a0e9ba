//! Provisioners: `shell` (inline), `script` (a host file uploaded and run),
//! `docker` (images and containers in the guest's Docker)
//! and `file` (an upload), run in order over the machine's SSH session with
//! their output streamed line by line under the machine's name.
//!
//! `run = "once"` steps are remembered in the machine state as soon as each
//! succeeds, so a failure later in the list does not make them run twice.

pub mod ansible;
mod docker;
mod file;
mod script;
mod staging;

use std::path::{Path, PathBuf};

use crate::boxfile::{Machine, Project, Provisioner, ProvisionerKind, RunPolicy};
use crate::output::Printer;
use crate::ssh::agent::{forwarding, AgentError, ForwardingSsh};
use crate::ssh::lines::Lines;
use crate::ssh::{quote, transfer, Session, SshError};
use crate::state::{MachineState, StateError, StateStore};

use staging::Staging;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    #[error("no provisioner named `{name}` on `{machine}` (it has: {known})")]
    Unknown {
        name: String,
        machine: String,
        known: String,
    },
    #[error("provisioner `{step}` exited with code {code}")]
    Failed { step: String, code: i32 },
    #[error("cannot read {path} for provisioner `{step}`")]
    Read {
        step: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "provisioner `{step}`: env key {key:?} is not a valid environment variable name \
         (letters, digits and `_`, not starting with a digit)"
    )]
    EnvName { step: String, key: String },
    #[error(
        "provisioner `{step}` could not copy {path} to `{destination}` in the guest: {message}"
    )]
    Place {
        step: String,
        path: PathBuf,
        destination: String,
        message: String,
    },
    #[error("provisioner `{step}` could not make a folder in the guest's /tmp: {message}")]
    Staging { step: String, message: String },
    #[error("provisioner `{step}` could not run")]
    Ssh {
        step: String,
        #[source]
        source: Box<SshError>,
    },
    #[error("provisioner `{step}`")]
    Docker {
        step: String,
        #[source]
        source: crate::error::Hinted,
    },
    #[error("provisioner `{step}` cannot run")]
    Missing {
        step: String,
        #[source]
        source: crate::error::Hinted,
    },
    #[error("provisioner `{step}` could not {what} on this computer")]
    Host {
        step: String,
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot record that provisioner `{step}` ran")]
    State {
        step: String,
        #[source]
        source: StateError,
    },
}

/// Runs the provisioners of `machine` (one of `project`'s) that are due.
/// With `only`, exactly the named ones run (whatever their `run` policy
/// says).
pub fn run(
    session: &Session,
    project: &Project,
    machine: &Machine,
    state: &mut MachineState,
    store: &StateStore,
    only: &[String],
    printer: &Printer,
) -> Result<(), ProvisionError> {
    for name in only {
        if !machine.provision.iter().any(|p| &p.name == name) {
            let known: Vec<&str> = machine.provision.iter().map(|p| p.name.as_str()).collect();
            return Err(ProvisionError::Unknown {
                name: name.clone(),
                machine: machine.name.clone(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
    }
    for p in &machine.provision {
        if !only.is_empty() {
            if !only.contains(&p.name) {
                continue;
            }
        } else {
            match p.run {
                RunPolicy::Never => continue,
                RunPolicy::Once if state.provisioned.contains(&p.name) => {
                    printer.verbose(&format!(
                        "{}: `{}` already ran once; `--with {}` runs it again",
                        machine.name, p.name, p.name
                    ));
                    continue;
                }
                _ => {}
            }
        }
        printer.machine(
            &machine.name,
            &format!("provisioning `{}` ({})", p.name, kind_name(p)),
        );
        let code = match &p.kind {
            ProvisionerKind::Ansible(a) => ansible::run(
                &ansible::Run {
                    project,
                    machine: &machine.name,
                    step_name: &p.name,
                    become_root: p.privileged && session.user() != "root",
                    store,
                    printer,
                },
                a,
            )?,
            _ => step(session, machine, p, printer)?,
        };
        if code != 0 {
            return Err(ProvisionError::Failed {
                step: p.name.clone(),
                code,
            });
        }
        if p.run == RunPolicy::Once && !state.provisioned.contains(&p.name) {
            state.provisioned.push(p.name.clone());
            store
                .save_machine(state)
                .map_err(|source| ProvisionError::State {
                    step: p.name.clone(),
                    source,
                })?;
        }
    }
    Ok(())
}

fn kind_name(p: &Provisioner) -> &'static str {
    match p.kind {
        ProvisionerKind::Shell { .. } => "shell",
        ProvisionerKind::Script { .. } => "script",
        ProvisionerKind::File { .. } => "file",
        ProvisionerKind::Ansible(_) => "ansible",
        ProvisionerKind::Docker(_) => "docker",
    }
}

/// `cmd` as root when the step is privileged and the login user is not root.
fn elevated(session: &Session, p: &Provisioner, cmd: &str) -> String {
    if p.privileged && session.user() != "root" {
        format!("sudo -n sh -c {}", quote(cmd))
    } else {
        cmd.to_string()
    }
}

/// OpenSSH's `ssh` with the user's agent forwarded, when the machine has
/// `forward_agent = true` and there is an agent (see `agent::forwarding`).
fn agent(
    session: &Session,
    machine: &Machine,
    printer: &Printer,
) -> Result<Option<ForwardingSsh>, SshError> {
    let warn = |e: &AgentError| {
        printer.warn(&format!(
            "`{}` has forward_agent = true, but {e}; provisioning without it",
            machine.name
        ))
    };
    Ok(forwarding(
        session.target(),
        false,
        machine.forward_agent,
        warn,
    )?)
}

/// [`elevated`], with the forwarded agent's socket kept through sudo
/// (which clears the environment): root may then use the agent too.
fn elevated_keeping_agent(
    session: &Session,
    p: &Provisioner,
    cmd: &str,
    forward: &Option<ForwardingSsh>,
) -> String {
    if forward.is_some() && p.privileged && session.user() != "root" {
        format!("sudo -n --preserve-env=SSH_AUTH_SOCK sh -c {}", quote(cmd))
    } else {
        elevated(session, p, cmd)
    }
}

/// `cmd` over `forward` when the agent goes along, else over `session`.
fn exec(
    session: &Session,
    forward: &Option<ForwardingSsh>,
    cmd: &str,
    out: &mut dyn std::io::Write,
    err: &mut dyn std::io::Write,
) -> Result<i32, SshError> {
    match forward {
        Some(ssh) => Ok(ssh.run(Some(cmd), false, out, err)?),
        None => session.exec(cmd, out, err),
    }
}

/// Runs one step; returns its exit code.
fn step(
    session: &Session,
    machine: &Machine,
    p: &Provisioner,
    printer: &Printer,
) -> Result<i32, ProvisionError> {
    let ssh = |source| ProvisionError::Ssh {
        step: p.name.clone(),
        source: Box::new(source),
    };
    let mut out = Lines::new(|l: &str| printer.machine(&machine.name, l));
    let mut err = Lines::new(|l: &str| printer.machine(&machine.name, l));
    match &p.kind {
        ProvisionerKind::Shell { inline } => {
            let forward = agent(session, machine, printer).map_err(ssh)?;
            let cmd =
                elevated_keeping_agent(session, p, &format!("sh -c {}", quote(inline)), &forward);
            exec(session, &forward, &cmd, &mut out, &mut err).map_err(ssh)
        }
        ProvisionerKind::Script { path, args, env } => {
            script::check_env(&p.name, env)?;
            let body = std::fs::read(path).map_err(|source| ProvisionError::Read {
                step: p.name.clone(),
                path: path.clone(),
                source,
            })?;
            let staging = Staging::create(session, &p.name)?;
            let remote = staging.join(&file_name(path));
            if let Err(e) = transfer::write_file(session, &remote, &body, 0o755) {
                staging.discard(session);
                return Err(ssh(e));
            }
            let run = script::command(&remote, body.starts_with(b"#!"), args, env);
            let forward = agent(session, machine, printer).map_err(ssh)?;
            let cmd = staging.then_remove(&elevated_keeping_agent(session, p, &run, &forward));
            exec(session, &forward, &cmd, &mut out, &mut err).map_err(ssh)
        }
        ProvisionerKind::File {
            source,
            destination,
        } => {
            upload(session, p, source, destination)?;
            Ok(0)
        }
        // Runs on the host, from `run`.
        ProvisionerKind::Ansible(_) => Ok(0),
        ProvisionerKind::Docker(d) => {
            docker::run(session, machine, p, d, printer)?;
            Ok(0)
        }
    }
}

/// The `file` step: `source` uploaded into a staging folder, then copied to
/// `destination` by the same command whether privileged or not (see
/// [`file`]).
fn upload(
    session: &Session,
    p: &Provisioner,
    source: &Path,
    destination: &str,
) -> Result<(), ProvisionError> {
    let ssh = |e| ProvisionError::Ssh {
        step: p.name.clone(),
        source: Box::new(e),
    };
    let meta = std::fs::metadata(source).map_err(|e| ProvisionError::Read {
        step: p.name.clone(),
        path: source.to_path_buf(),
        source: e,
    })?;
    let staging = Staging::create(session, &p.name)?;
    let staged = staging.join(&file_name(source));
    if let Err(e) = transfer::upload(session, source, &staged) {
        staging.discard(session);
        return Err(ssh(e));
    }
    let place = file::placement(&staged, meta.is_dir(), destination);
    let done = session
        .capture(&staging.then_remove(&elevated(session, p, &place)))
        .map_err(ssh)?;
    if done.status != 0 {
        return Err(ProvisionError::Place {
            step: p.name.clone(),
            path: source.to_path_buf(),
            destination: destination.to_string(),
            message: done.stderr_text().trim().to_string(),
        });
    }
    Ok(())
}

/// A host path's last component, for its staged copy.
fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".into())
}
