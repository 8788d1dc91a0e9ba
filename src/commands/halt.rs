//! `box halt`: stop machines, dependents first, in parallel.

use crate::cli::HaltArgs;
use crate::error::ExitStatus;
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
    for m in &selected {
        match ws.ctx.store.load_machine(&m.name)? {
            Some(s) if s.status == Status::Running || s.status == Status::Creating => {
                states.push(s)
            }
            _ => g.printer.machine(&m.name, "not running"),
        }
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
            Ok(())
        }
    })
    .await;
    Ok(schedule::report(&g.printer, &results))
}
