//! `box suspend`: save machines' memory and stop them, dependents first;
//! `box up` (or `box resume`) brings them back where they were. A provider
//! with no suspend (CloudStack) stops its machines instead, and says so.

use anyhow::Context as _;

use crate::cli::MachinesArgs;
use crate::error::ExitStatus;
use crate::state::Status;
use crate::sync::human_bytes;

use super::providers::Providers;
use super::schedule::{self, Job};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: MachinesArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let selected = ws.select(&args.machines)?;
    let mut states = Vec::new();
    for m in &selected {
        let Some(mut s) = ws.ctx.store.load_machine(&m.name)? else {
            g.printer.machine(&m.name, "not created");
            continue;
        };
        crate::provider::local::observe(&ws.ctx.store, &mut s);
        match s.status {
            Status::Running => states.push(s),
            Status::Suspended => g.printer.machine(&m.name, "already suspended"),
            _ => g.printer.machine(&m.name, "not running"),
        }
    }
    let ctx = ws.context();
    let providers = Providers::for_states(&ctx, &states).await?;
    let stopped_instead: Vec<&str> = states
        .iter()
        .filter(|s| {
            providers
                .get(s.provider.kind())
                .is_some_and(|p| !p.suspends())
        })
        .map(|s| s.name.as_str())
        .collect();
    if !stopped_instead.is_empty() {
        g.printer.warn(&format!(
            "CloudStack has no suspend: stopping {} instead (`box up` boots {} again)",
            stopped_instead.join(", "),
            if stopped_instead.len() == 1 {
                "it"
            } else {
                "them"
            }
        ));
    }
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
    let results = schedule::run(jobs, 16, move |name| {
        let ctx = ctx.clone();
        let providers = providers.clone();
        async move {
            let machine = ctx
                .project
                .machine(&name)
                .cloned()
                .context("machine vanished from the Boxfile")?;
            let Some(state) = ctx.store.load_machine(&name)? else {
                return Ok(());
            };
            let kind = state.provider.kind();
            let provider = providers
                .get(kind)
                .ok_or_else(|| anyhow::anyhow!("no {kind} provider opened"))?;
            if provider.suspends() {
                ctx.printer.machine(&name, "suspending");
            } else {
                ctx.printer.machine(&name, "stopping");
            }
            let state = provider.suspend(&machine, state).await?;
            ctx.store.save_machine(&state)?;
            match crate::provider::local::saved_state_bytes(&state) {
                Some(bytes) => ctx.printer.machine(
                    &name,
                    &format!(
                        "suspended (saved state {} in {})",
                        human_bytes(bytes),
                        ctx.store.machine_dir(&name).display()
                    ),
                ),
                None => ctx.printer.machine(&name, "stopped"),
            }
            Ok(())
        }
    })
    .await;
    Ok(schedule::report(&g.printer, &results))
}
