//! Where the verbs meet `[[trigger]]`s (see `crate::triggers`): trust is
//! settled before a verb does anything; `before-*` triggers run for every
//! machine, in Boxfile order, before the verb acts, and the first failure
//! stops the verb; an `after-*` trigger runs in its machine's job once the
//! machine is done, and its failure fails that machine (reported, and the
//! exit code says so).

use anyhow::Context as _;

use crate::boxfile::{Machine, TriggerEvent};
use crate::provider::Context;
use crate::ssh::Session;
use crate::triggers;

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

/// Asks for trust (or refuses) when a host trigger is due for `machines`
/// on `events`; nothing is due: nothing asked.
pub(crate) fn trust(
    g: &Settings,
    ws: &Workspace,
    events: &[TriggerEvent],
    machines: &[String],
) -> anyhow::Result<()> {
    crate::trust::ensure(
        &ws.ctx.project,
        &g.paths,
        events,
        machines,
        g.trust,
        &g.printer,
    )
}

/// Runs `event` (a `before-*` one) for each of `machines`. A guest command
/// runs over a fresh connection when the machine is running, and is
/// skipped (said so) when it is not.
pub(crate) fn before(
    ws: &Workspace,
    event: TriggerEvent,
    machines: &[String],
) -> anyhow::Result<()> {
    let project = &ws.ctx.project;
    let printer = &ws.ctx.printer;
    for name in machines {
        let Some(machine) = project.machine(name) else {
            continue;
        };
        let session = if triggers::runs_guest_code(project, event, name) {
            tokio::task::block_in_place(|| {
                running_target(ws, name)
                    .ok()
                    .map(|target| connect(&target, name, printer))
                    .transpose()
            })?
        } else {
            None
        };
        tokio::task::block_in_place(|| {
            triggers::fire(project, event, machine, session.as_ref(), printer)
        })
        .with_context(|| format!("`{name}`: stopped before {}", action(event)))?;
    }
    Ok(())
}

/// Runs `event` (an `after-*` one) for `machine`, in a blocking task.
pub(crate) async fn after(
    ctx: &Context,
    event: TriggerEvent,
    machine: &str,
    session: Option<Session>,
) -> anyhow::Result<()> {
    let Some(machine) = ctx.project.machine(machine).cloned() else {
        return Ok(());
    };
    let ctx = ctx.clone();
    tokio::task::spawn_blocking(move || after_blocking(&ctx, event, &machine, session.as_ref()))
        .await
        .context("the trigger task stopped unexpectedly")?
}

/// [`after`] on the caller's thread, for code that is blocking already.
pub(crate) fn after_blocking(
    ctx: &Context,
    event: TriggerEvent,
    machine: &Machine,
    session: Option<&Session>,
) -> anyhow::Result<()> {
    triggers::fire(&ctx.project, event, machine, session, &ctx.printer).with_context(|| {
        format!(
            "`{}` is {}, but a trigger failed",
            machine.name,
            done(event)
        )
    })
}

/// What the verb was about to do, for "stopped before ...".
fn action(event: TriggerEvent) -> &'static str {
    match event {
        TriggerEvent::BeforeUp => "starting it",
        TriggerEvent::BeforeHalt => "halting it",
        TriggerEvent::BeforeDestroy => "destroying it",
        _ => "going on",
    }
}

/// What the verb did, for "`web` is ..., but a trigger failed".
fn done(event: TriggerEvent) -> &'static str {
    match event {
        TriggerEvent::AfterHalt => "halted",
        TriggerEvent::AfterDestroy => "destroyed",
        TriggerEvent::AfterProvision => "provisioned",
        _ => "up",
    }
}
