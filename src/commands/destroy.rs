//! `box destroy`: delete machines and everything box created for them,
//! dependents first. Asks first unless `--force`.

use std::io::IsTerminal;

use crate::boxfile::TriggerEvent;
use crate::cli::DestroyArgs;
use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;

use super::progress::Events;
use super::providers::Providers;
use super::schedule::{self, Job};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: DestroyArgs) -> anyhow::Result<ExitStatus> {
    if args.env.is_some() {
        return super::destroy_env::run(g, args).await;
    }
    destroy(g, Workspace::load(g)?, args).await
}

/// Destroys the machines `args` names in `ws` (all when none is named).
pub(crate) async fn destroy(
    g: &Settings,
    mut ws: Workspace,
    args: DestroyArgs,
) -> anyhow::Result<ExitStatus> {
    ws.lock()?;
    let mut names: Vec<String> = ws
        .select(&args.machines)?
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let all_states = ws.ctx.store.machines()?;
    if args.machines.is_empty() {
        // Machines dropped from the Boxfile still hold resources.
        for s in &all_states {
            if !names.contains(&s.name) {
                names.push(s.name.clone());
            }
        }
    }
    let states: Vec<_> = all_states
        .into_iter()
        .filter(|s| names.contains(&s.name))
        .collect();
    if states.is_empty() {
        g.printer
            .info("nothing to destroy: no machine of this project was created");
        return Ok(ExitStatus::Success);
    }
    let doomed: Vec<&str> = states.iter().map(|s| s.name.as_str()).collect();
    let doomed_names: Vec<String> = doomed.iter().map(|n| n.to_string()).collect();
    let due = [TriggerEvent::BeforeDestroy, TriggerEvent::AfterDestroy];
    super::hooks::trust(g, &ws, &due, &doomed_names)?;
    if !args.force && !confirm(&g.printer, &doomed)? {
        g.printer.info("nothing destroyed");
        return Ok(ExitStatus::Failure);
    }
    super::hooks::before(&ws, TriggerEvent::BeforeDestroy, &doomed_names)?;

    // No connection to a doomed machine stays open, and no holder process
    // outlives the project.
    let box_dir = ws.ctx.store.dir().to_path_buf();
    if all_machines_go(&ws, &doomed) {
        super::ssh_holder::stop(&box_dir, None, &g.printer);
    } else {
        for name in &doomed {
            super::ssh_holder::stop(&box_dir, Some(name), &g.printer);
        }
    }

    let ctx = ws.context();
    let providers = Providers::for_states(&ctx, &states).await?;
    let jobs = schedule::reversed(
        states
            .iter()
            .map(|s| Job {
                name: s.name.clone(),
                after: ws
                    .ctx
                    .project
                    .machine(&s.name)
                    .map(|m| m.depends_on.clone())
                    .unwrap_or_default(),
            })
            .collect(),
    );
    let events = Events::new(&g.printer, args.json);
    let parallel =
        schedule::default_parallel(states.iter().map(|s| s.provider.kind()), states.len());
    let results = {
        let ctx = ctx.clone();
        let providers = providers.clone();
        let events = events.clone();
        schedule::run(jobs, parallel, move |name| {
            let ctx = ctx.clone();
            let providers = providers.clone();
            let events = events.clone();
            async move {
                let Some(state) = ctx.store.load_machine(&name)? else {
                    return Ok(());
                };
                let kind = state.provider.kind();
                let provider = providers
                    .get(kind)
                    .ok_or_else(|| anyhow::anyhow!("no {kind} provider opened"))?;
                events.emit(&name, "destroying", None);
                provider.destroy(state).await?;
                ctx.store.remove_machine(&name)?;
                events.emit(&name, "destroyed", None);
                super::hooks::after(&ctx, TriggerEvent::AfterDestroy, &name, None).await
            }
        })
        .await
    };
    events.finish();

    // Project-wide resources go once no machine of that provider is left.
    let remaining = ws.ctx.store.machines()?;
    for (kind, provider) in providers.iter() {
        if !remaining.iter().any(|s| s.provider.kind() == kind) {
            provider.destroy_project().await?;
        }
    }
    if remaining.is_empty() {
        ws.ctx.store.forget_project()?;
    }
    Ok(schedule::report(&g.printer, &results))
}

fn all_machines_go(ws: &Workspace, doomed: &[&str]) -> bool {
    ws.ctx
        .store
        .machines()
        .map(|all| all.iter().all(|s| doomed.contains(&s.name.as_str())))
        .unwrap_or(true)
}

fn confirm(printer: &Printer, names: &[&str]) -> anyhow::Result<bool> {
    if !std::io::stdin().is_terminal() {
        return Err(Hinted::new(
            format!(
                "refusing to destroy {} without confirmation",
                names.join(", ")
            ),
            "run `box destroy --force` to destroy without asking",
        )
        .into());
    }
    let answer = printer.prompt(&format!(
        "Destroy {} and everything box created for them? [y/N]",
        names.join(", ")
    ))?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}
