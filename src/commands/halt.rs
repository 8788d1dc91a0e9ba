//! `box halt`: stop machines, dependents first, in parallel. A suspended
//! machine has no process: halting it discards its saved state, after
//! asking (`--force` does not ask; without a terminal box refuses).

use std::io::IsTerminal;

use crate::boxfile::TriggerEvent;
use crate::cli::HaltArgs;
use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;
use crate::state::Status;

use super::providers::Providers;
use super::schedule::{self, Job};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: HaltArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let selected = ws.select(&args.machines)?;
    let mut states = Vec::new();
    let mut suspended = Vec::new();
    for m in &selected {
        match ws.ctx.store.load_machine(&m.name)? {
            Some(s) if s.status == Status::Running || s.status == Status::Creating => {
                states.push(s)
            }
            Some(s) if s.status == Status::Suspended => suspended.push(s),
            _ => g.printer.machine(&m.name, "not running"),
        }
    }
    if !suspended.is_empty() {
        let names: Vec<&str> = suspended.iter().map(|s| s.name.as_str()).collect();
        if args.force || confirm_discard(&g.printer, &names)? {
            states.append(&mut suspended);
        } else {
            g.printer.info("nothing halted: the saved states are kept");
            return Ok(ExitStatus::Failure);
        }
    }
    let names: Vec<String> = selected
        .iter()
        .filter(|m| states.iter().any(|s| s.name == m.name))
        .map(|m| m.name.clone())
        .collect();
    let due = [TriggerEvent::BeforeHalt, TriggerEvent::AfterHalt];
    super::hooks::trust(g, &ws, &due, &names)?;
    super::hooks::before(&ws, TriggerEvent::BeforeHalt, &names)?;
    for s in &states {
        super::ssh_holder::stop(ws.ctx.store.dir(), Some(&s.name), &g.printer);
    }
    let ctx = ws.context();
    let providers = Providers::for_states(&ctx, &states).await?;
    let jobs = schedule::reversed(
        selected
            .iter()
            .filter(|m| states.iter().any(|s| s.name == m.name))
            .map(|m| Job {
                name: m.name.clone(),
                after: m.depends_on.clone(),
            })
            .collect(),
    );
    let force = args.force;
    let results = schedule::run(jobs, 16, move |name| {
        let ctx = ctx.clone();
        let providers = providers.clone();
        async move {
            let Some(state) = ctx.store.load_machine(&name)? else {
                return Ok(());
            };
            let kind = state.provider.kind();
            let provider = providers
                .get(kind)
                .ok_or_else(|| anyhow::anyhow!("no {kind} provider opened"))?;
            ctx.printer.machine(&name, "halting");
            let state = provider.halt(state, force).await?;
            ctx.store.save_machine(&state)?;
            ctx.printer.machine(&name, "halted");
            super::hooks::after(&ctx, TriggerEvent::AfterHalt, &name, None).await
        }
    })
    .await;
    Ok(schedule::report(&g.printer, &results))
}

/// Asks before a suspended machine's saved state (its running programs,
/// its unsaved work) is thrown away.
fn confirm_discard(printer: &Printer, names: &[&str]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Hinted::new(
            format!(
                "refusing to discard the saved state of suspended {} without confirmation",
                names.join(", ")
            ),
            format!(
                "`box up {0}` resumes it; `box halt --force {0}` discards it",
                names.join(" ")
            ),
        )
        .into());
    }
    let answer = printer.prompt(&format!(
        "{} suspended: discard the saved state (running programs, unsaved work)? [y/N]",
        if names.len() == 1 {
            format!("{} is", names[0])
        } else {
            format!("{} are", names.join(", "))
        }
    ))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
