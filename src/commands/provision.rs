//! `box provision`: run the machines' provisioners again (those due by
//! their `run` policy, or exactly the ones named with `--with`).

use anyhow::Context as _;

use crate::boxfile::TriggerEvent;
use crate::cli::ProvisionArgs;
use crate::error::ExitStatus;
use crate::provision;

use super::schedule::{self, Job};
use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: ProvisionArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let machines: Vec<_> = ws.select(&args.machines)?.into_iter().cloned().collect();
    let named = !args.machines.is_empty();
    let mut jobs = Vec::new();
    for m in &machines {
        // Unnamed machines without any of the `--with` steps are skipped; a
        // named one lets provision::run report the unknown step.
        if !args.with.is_empty()
            && !named
            && !m.provision.iter().any(|p| args.with.contains(&p.name))
        {
            continue;
        }
        jobs.push(Job {
            name: m.name.clone(),
            after: m.depends_on.clone(),
        });
    }
    if jobs.is_empty() {
        g.printer
            .info("no machine has a provisioner by that name; nothing to do");
        return Ok(ExitStatus::Success);
    }
    let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
    super::hooks::trust(g, &ws, &[TriggerEvent::AfterProvision], &names)?;
    let single = jobs.len() == 1;
    // As in `up`: a machine provisions once the machines it depends on (of
    // those provisioned now) did; their failure leaves it alone.
    let ws = std::sync::Arc::new(ws);
    let printer = g.printer.clone();
    let with = std::sync::Arc::new(args.with);
    let mut results = schedule::run_staged(
        jobs,
        tokio::sync::Semaphore::MAX_PERMITS,
        "not provisioned",
        |_| async { Ok(()) },
        move |name, ()| {
            let ws = ws.clone();
            let printer = printer.clone();
            let with = with.clone();
            async move {
                tokio::task::spawn_blocking(move || provision_one(&ws, &name, &with, &printer))
                    .await
                    .context("the provisioning task stopped unexpectedly")?
            }
        },
    )
    .await;
    if single {
        if let Some((_, result)) = results.pop() {
            result?;
        }
        return Ok(ExitStatus::Success);
    }
    Ok(schedule::report(&g.printer, &results))
}

fn provision_one(
    ws: &Workspace,
    name: &str,
    with: &[String],
    printer: &crate::output::Printer,
) -> anyhow::Result<()> {
    let m = ws.machine(name)?;
    let target = running_target(ws, name)?;
    let store = &ws.ctx.store;
    let mut state = store
        .load_machine(name)?
        .with_context(|| format!("`{name}` has no state"))?;
    let session = connect(&target, name, printer)?;
    provision::run(
        &session,
        &ws.ctx.project,
        m,
        &mut state,
        store,
        with,
        printer,
    )
    .with_context(|| format!("provisioning `{name}` failed"))?;
    // What provisioning made in the guest that the Boxfile asks for.
    crate::sync::pull_listed(&session, m, store, printer, false)
        .with_context(|| format!("cannot pull files back from `{name}`"))?;
    printer.machine(name, "provisioned");
    super::hooks::after_blocking(&ws.ctx, TriggerEvent::AfterProvision, m, Some(&session))
}
