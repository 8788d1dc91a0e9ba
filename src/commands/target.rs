//! The running machine an SSH verb talks to: its endpoint from state, and
//! the connection every SSH verb (`ssh`, `exec`, `provision`, `sync`,
//! `upload`, `download`) makes to it.

use std::time::Duration;

use anyhow::Context as _;

use crate::error::Hinted;
use crate::output::Printer;
use crate::ssh::Session;
use crate::state::{SshTarget, Status};

use super::workspace::Workspace;

/// How long a command waits for a machine state calls running to answer
/// (sshd restarting, a guest still booting after `up` was interrupted).
const CONNECT_WAIT: Duration = Duration::from_secs(20);

/// The SSH endpoint of a machine, from state; an error with a next step
/// when the machine is not running.
pub(crate) fn running_target(ws: &Workspace, name: &str) -> anyhow::Result<SshTarget> {
    let state = ws
        .ctx
        .store
        .load_machine(name)
        .with_context(|| format!("cannot read the state of `{name}`"))?;
    let Some(mut state) = state else {
        return Err(Hinted::new(
            format!("`{name}` is not created"),
            format!("run `box up {name}`"),
        )
        .into());
    };
    // A local guest that powered itself off (idle stop, expiry) is stopped.
    crate::provider::local::observe(&ws.ctx.store, &mut state);
    if state.status != Status::Running {
        return Err(Hinted::new(
            format!("`{name}` is {}", state.status),
            format!("run `box up {name}`"),
        )
        .into());
    }
    state.ssh.ok_or_else(|| {
        Hinted::new(
            format!("the state of `{name}` has no SSH endpoint"),
            format!("run `box reload {name}` or `box status --refresh`"),
        )
        .into()
    })
}

/// Connects (blocking) with the wait every command uses.
pub(crate) fn connect(
    target: &SshTarget,
    name: &str,
    printer: &Printer,
) -> anyhow::Result<Session> {
    printer.debug(&format!(
        "ssh: connecting to `{name}` at {}:{} as {}",
        target.host, target.port, target.user
    ));
    Session::connect(target, CONNECT_WAIT)
        .with_context(|| format!("cannot reach `{name}` over SSH"))
}
