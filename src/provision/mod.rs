//! Provisioners: `shell` (inline), `script` (a host file uploaded and run)
//! and `file` (an upload), run in order over the machine's SSH session with
//! their output streamed line by line under the machine's name.
//!
//! `run = "once"` steps are remembered in the machine state as soon as each
//! succeeds, so a failure later in the list does not make them run twice.

use std::path::PathBuf;

use crate::boxfile::{Machine, Provisioner, ProvisionerKind, RunPolicy};
use crate::output::Printer;
use crate::ssh::quote::join;
use crate::ssh::{quote, transfer, Session, SshError};
use crate::state::{MachineState, StateError, StateStore};

use crate::ssh::lines::Lines;

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
    #[error("provisioner `{step}` could not run")]
    Ssh {
        step: String,
        #[source]
        source: Box<SshError>,
    },
    #[error("cannot record that provisioner `{step}` ran")]
    State {
        step: String,
        #[source]
        source: StateError,
    },
}

/// Runs the provisioners of `machine` that are due. With `only`, exactly
/// the named ones run (whatever their `run` policy says).
pub fn run(
    session: &Session,
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
        let code = step(session, machine, p, printer)?;
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
            let cmd = elevated(session, p, &format!("sh -c {}", quote(inline)));
            session.exec(&cmd, &mut out, &mut err).map_err(ssh)
        }
        ProvisionerKind::Script { path, args, env } => {
            let body = std::fs::read(path).map_err(|source| ProvisionError::Read {
                step: p.name.clone(),
                path: path.clone(),
                source,
            })?;
            let remote = format!(
                "/tmp/box-provision-{}-{}-{}",
                machine.name,
                sanitize(&p.name),
                std::process::id()
            );
            transfer::write_file(session, &remote, &body, 0o755).map_err(ssh)?;
            let mut words: Vec<String> = vec!["env".into()];
            words.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
            // A script without `#!` runs under sh, as it would from a shell.
            if !body.starts_with(b"#!") {
                words.push("sh".into());
            }
            words.push(remote.clone());
            words.extend(args.iter().cloned());
            let run = elevated(session, p, &join(&words));
            let cmd = format!("{run}; rc=$?; rm -f {}; exit $rc", quote(&remote));
            session.exec(&cmd, &mut out, &mut err).map_err(ssh)
        }
        ProvisionerKind::File {
            source,
            destination,
        } => upload(session, machine, p, source, destination, &mut out, &mut err),
    }
}

fn upload(
    session: &Session,
    machine: &Machine,
    p: &Provisioner,
    source: &std::path::Path,
    destination: &str,
    out: &mut Lines<'_>,
    err: &mut Lines<'_>,
) -> Result<i32, ProvisionError> {
    let ssh = |e| ProvisionError::Ssh {
        step: p.name.clone(),
        source: Box::new(e),
    };
    if !source.exists() {
        return Err(ProvisionError::Read {
            step: p.name.clone(),
            path: source.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or folder"),
        });
    }
    // SFTP paths are relative to the home folder; `~/x` means `x` there.
    let dest = destination.strip_prefix("~/").unwrap_or(destination);
    let parent = match dest.rfind('/') {
        Some(0) => "/".to_string(),
        Some(i) => dest[..i].to_string(),
        None => ".".to_string(),
    };
    if p.privileged && session.user() != "root" {
        let staging = format!(
            "/tmp/box-file-{}-{}-{}",
            machine.name,
            sanitize(&p.name),
            std::process::id()
        );
        let code = session
            .exec(
                &format!("rm -rf {0} && mkdir -p {0}", quote(&staging)),
                &mut *out,
                &mut *err,
            )
            .map_err(ssh)?;
        if code != 0 {
            return Ok(code);
        }
        let name = source
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "file".into());
        let staged = format!("{staging}/{name}");
        transfer::upload(session, source, &staged).map_err(ssh)?;
        let cmd = format!(
            "sudo -n sh -c {}; rc=$?; rm -rf {}; exit $rc",
            quote(&format!(
                "mkdir -p {p} && rm -rf {d} && mv {s} {d}",
                p = quote(&parent),
                d = quote(dest),
                s = quote(&staged)
            )),
            quote(&staging)
        );
        session.exec(&cmd, &mut *out, &mut *err).map_err(ssh)
    } else {
        let code = session
            .exec(
                &format!("mkdir -p {}", quote(&parent)),
                &mut *out,
                &mut *err,
            )
            .map_err(ssh)?;
        if code != 0 {
            return Ok(code);
        }
        // Replace, never nest: a folder upload onto an existing folder would
        // otherwise land inside it.
        if source.is_dir() {
            let code = session
                .exec(&format!("rm -rf {}", quote(dest)), &mut *out, &mut *err)
                .map_err(ssh)?;
            if code != 0 {
                return Ok(code);
            }
        }
        transfer::upload(session, source, dest).map_err(ssh)?;
        Ok(0)
    }
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
