//! Running `[[trigger]]`s: the commands a Boxfile asks for before or after
//! a machine's `up`, `halt`, `destroy` and provisioning.
//!
//! A host command (`run`) is code from the Boxfile running on the user's
//! computer, so a command may run host triggers only once
//! [`crate::trust::ensure`] said yes. It runs through `sh -c` in the project
//! folder, stdin closed, with `BOX_MACHINE`, `BOX_EVENT`, `BOX_PROJECT` and
//! `BOX_PROVIDER` set; its output is shown under the machine's name. A
//! guest command (`run_remote`) runs over the machine's SSH session as the
//! login user, with `BOX_MACHINE` and `BOX_EVENT` set.
//!
//! The triggers of one event and machine run in Boxfile order; the first
//! that fails stops the rest. What a failure means (stop the command, or
//! report it and exit non-zero) is the command's decision.

use std::io::BufRead;
use std::process::{Command, Stdio};

use crate::boxfile::{Machine, Project, Trigger, TriggerAction, TriggerEvent};
use crate::output::Printer;
use crate::ssh::{quote, Session, SshError};

#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    #[error("the {event} trigger `{command}` exited with code {code}")]
    Failed {
        event: TriggerEvent,
        command: String,
        code: i32,
    },
    #[error("cannot start the {event} trigger `{command}`")]
    Start {
        event: TriggerEvent,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the {event} trigger `{command}` could not run in the guest")]
    Ssh {
        event: TriggerEvent,
        command: String,
        #[source]
        source: Box<SshError>,
    },
}

/// The triggers that run for `machine` on `event`, in Boxfile order.
pub fn due<'p>(
    project: &'p Project,
    event: TriggerEvent,
    machine: &str,
) -> impl Iterator<Item = &'p Trigger> + 'p {
    let machine = machine.to_string();
    project
        .triggers
        .iter()
        .filter(move |t| t.applies(event, &machine))
}

/// Whether a host command is due for any of `machines` on any of `events`:
/// only then must the command ask for trust.
pub fn runs_host_code(project: &Project, events: &[TriggerEvent], machines: &[String]) -> bool {
    events.iter().any(|&event| {
        machines
            .iter()
            .any(|m| due(project, event, m).any(|t| matches!(t.action, TriggerAction::Host(_))))
    })
}

/// Whether a guest command is due for `machine` on `event` (the command
/// then needs a session).
pub fn runs_guest_code(project: &Project, event: TriggerEvent, machine: &str) -> bool {
    due(project, event, machine).any(|t| matches!(t.action, TriggerAction::Remote(_)))
}

/// Runs the triggers of `event` for `machine`. `session` serves the guest
/// commands; without one (the machine is not running, or `up
/// --no-connect`) they are skipped, and said so.
pub fn fire(
    project: &Project,
    event: TriggerEvent,
    machine: &Machine,
    session: Option<&Session>,
    printer: &Printer,
) -> Result<(), TriggerError> {
    for t in due(project, event, &machine.name) {
        match &t.action {
            TriggerAction::Host(command) => {
                printer.machine(&machine.name, &format!("{event}: {}", shown(command)));
                host(project, event, machine, command, printer)?;
            }
            TriggerAction::Remote(command) => {
                let Some(session) = session else {
                    printer.machine(
                        &machine.name,
                        &format!(
                            "{event}: skipped `{}` (no SSH connection to the machine)",
                            shown(command)
                        ),
                    );
                    continue;
                };
                printer.machine(
                    &machine.name,
                    &format!("{event} (in the guest): {}", shown(command)),
                );
                guest(session, event, &machine.name, command, printer)?;
            }
        }
    }
    Ok(())
}

fn host(
    project: &Project,
    event: TriggerEvent,
    machine: &Machine,
    command: &str,
    printer: &Printer,
) -> Result<(), TriggerError> {
    let start = |source| TriggerError::Start {
        event,
        command: shown(command),
        source,
    };
    let (reader, writer) = std::io::pipe().map_err(start)?;
    let mut child = {
        let mut cmd = Command::new("sh");
        cmd.arg("-c")
            .arg(command)
            .current_dir(&project.root)
            .env("BOX_MACHINE", &machine.name)
            .env("BOX_EVENT", event.name())
            .env("BOX_PROJECT", &project.name)
            .env("BOX_PROVIDER", machine.provider.to_string())
            .stdin(Stdio::null())
            .stdout(writer.try_clone().map_err(start)?)
            .stderr(writer);
        // `cmd` (holding the pipe's write ends) goes with this block, so
        // the reader sees the end once the command and its children close it.
        cmd.spawn().map_err(start)?
    };
    show_lines(reader, &machine.name, printer);
    let status = child.wait().map_err(start)?;
    let code = exit_code(status);
    succeeded(event, command, code)
}

fn guest(
    session: &Session,
    event: TriggerEvent,
    machine: &str,
    command: &str,
    printer: &Printer,
) -> Result<(), TriggerError> {
    let line = format!(
        "BOX_MACHINE={} BOX_EVENT={} sh -c {}",
        quote(machine),
        event.name(),
        quote(command)
    );
    let mut out = crate::ssh::lines::Lines::new(|l: &str| printer.machine(machine, l));
    let mut err = crate::ssh::lines::Lines::new(|l: &str| printer.machine(machine, l));
    let code = session
        .exec(&line, &mut out, &mut err)
        .map_err(|source| TriggerError::Ssh {
            event,
            command: shown(command),
            source: Box::new(source),
        })?;
    succeeded(event, command, code)
}

/// A zero exit code, or the error naming the trigger and its code.
fn succeeded(event: TriggerEvent, command: &str, code: i32) -> Result<(), TriggerError> {
    if code == 0 {
        Ok(())
    } else {
        Err(TriggerError::Failed {
            event,
            command: shown(command),
            code,
        })
    }
}

/// Every line the command writes, under the machine's name; a last line
/// without a newline too.
fn show_lines(reader: impl std::io::Read, machine: &str, printer: &Printer) {
    for line in std::io::BufReader::new(reader).split(b'\n') {
        let Ok(line) = line else { break };
        let text = String::from_utf8_lossy(&line);
        printer.machine(machine, text.trim_end_matches('\r'));
    }
}

/// As a shell reports it: 128+N for a signal.
fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1)
}

/// A command as messages show it: its first line, at most 60 characters.
pub(crate) fn shown(command: &str) -> String {
    let first = command.trim().lines().next().unwrap_or("");
    let mut out: String = first.chars().take(60).collect();
    if out.len() < first.len() || command.trim().lines().nth(1).is_some() {
        out.push_str(" ...");
    }
    out
}
