//! `box up` and `box reload`: bring machines up in dependency order, in
//! parallel, then sync and provision each as soon as it is ready.

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::boxfile::Machine;
use crate::cli::UpArgs;
use crate::error::ExitStatus;
use crate::lockfile::Policy;
use crate::provider::{Context, Provider};
use crate::state::{MachineState, Status};

use super::progress::Events;
use super::providers::Providers;
use super::schedule::{self, Job};
use super::workspace::Workspace;
use super::Settings;

/// How long to wait for SSH on a booted machine (TCG boots take ~1 min).
const SSH_WAIT: Duration = Duration::from_secs(600);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Up,
    Reload,
}

pub(crate) async fn run(g: &Settings, args: UpArgs, mode: Mode) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let machines = with_dependencies(&ws, &args.machines)?;
    let policy = if args.locked {
        Policy::Locked
    } else {
        Policy::Write
    };
    super::lock::open(&mut ws, policy)?;
    let ctx = ws.context();
    let events = Events::new(&g.printer, args.json);

    // Resolve everything once, before any machine is touched: a bad zone or
    // a missing image fails here with nothing created.
    let providers = Providers::prepare(&ctx, &machines).await?;
    // What the machines are made from is known now: Boxfile.lock records it.
    super::lock::save(&ctx)?;

    let jobs: Vec<Job> = machines
        .iter()
        .map(|m| Job {
            name: m.name.clone(),
            after: m.depends_on.clone(),
        })
        .collect();
    // Every machine shows a phase from the start, not only once it moves.
    for m in &machines {
        let phase = if m.depends_on.is_empty() {
            "queued".to_string()
        } else {
            format!("waiting for {}", m.depends_on.join(", "))
        };
        events.show(&m.name, &phase);
    }
    let started = Instant::now();
    let task = {
        let ctx = ctx.clone();
        let providers = providers.clone();
        let events = events.clone();
        let no_provision = args.no_provision;
        let no_connect = args.no_connect;
        move |name: String| {
            let ctx = ctx.clone();
            let providers = providers.clone();
            let events = events.clone();
            async move {
                let machine = ctx
                    .project
                    .machine(&name)
                    .cloned()
                    .context("machine vanished from the Boxfile")?;
                let provider = providers
                    .get(machine.provider)
                    .context("no provider prepared for this machine")?;
                let result = bring_up(
                    &ctx,
                    &provider,
                    &machine,
                    mode,
                    (no_connect, no_provision),
                    &events,
                )
                .await;
                match &result {
                    Ok(()) => events.emit(&name, "ready", None),
                    Err(e) => events.emit(&name, "failed", Some(&format!("{e:#}"))),
                }
                result
            }
        }
    };

    let results = tokio::select! {
        r = schedule::run(jobs, args.parallel as usize, task) => r,
        _ = tokio::signal::ctrl_c() => {
            events.finish();
            g.printer.warn("interrupted: machines may be half created; their progress is recorded in .box/");
            g.printer.info("run `box up` again to resume, or `box destroy` to remove what was created");
            return Ok(ExitStatus::Interrupted);
        }
    };
    events.finish();
    summarize(g, &ws, &results, started.elapsed(), mode)
}

/// The named machines plus everything they depend on, in Boxfile order.
fn with_dependencies(ws: &Workspace, names: &[String]) -> anyhow::Result<Vec<Machine>> {
    let selected = ws.select(names)?;
    let mut wanted: Vec<String> = selected.iter().map(|m| m.name.clone()).collect();
    let mut i = 0;
    while i < wanted.len() {
        let m = ws.machine(&wanted[i])?;
        for dep in &m.depends_on {
            if !wanted.contains(dep) {
                wanted.push(dep.clone());
            }
        }
        i += 1;
    }
    Ok(ws
        .ctx
        .project
        .machines
        .iter()
        .filter(|m| wanted.contains(&m.name))
        .cloned()
        .collect())
}

async fn bring_up(
    ctx: &Context,
    provider: &Provider,
    machine: &Machine,
    mode: Mode,
    (no_connect, no_provision): (bool, bool),
    events: &Events,
) -> anyhow::Result<()> {
    let name = &machine.name;
    let mut state = ctx
        .store
        .load_machine(name)?
        .unwrap_or_else(|| MachineState::new(name, machine.provider));
    if state.provider.kind() != machine.provider && state.status != Status::NotCreated {
        anyhow::bail!(crate::error::Hinted::new(
            format!(
                "`{name}` exists on the {} provider but the Boxfile now says {}",
                state.provider.kind(),
                machine.provider
            ),
            format!("run `box destroy {name}` first, then `box up {name}`"),
        ));
    }
    if mode == Mode::Reload && state.status == Status::Running {
        events.emit(name, "halting", None);
        state = provider.halt(state, false).await?;
        ctx.store.save_machine(&state)?;
    }
    // Unknown counts as not running: `up` itself reports any real error.
    let running =
        state.status == Status::Running && provider.is_running(&state).await.unwrap_or(false);
    events.emit(
        name,
        if running {
            "already running"
        } else {
            "starting"
        },
        None,
    );
    let state = provider.up(machine, state).await?;
    ctx.store.save_machine(&state)?;
    if no_connect {
        return Ok(());
    }
    converge(ctx, machine, state, !no_provision, !running, events).await
}

/// Once a machine runs: connect over SSH, sync folders, run provisioners.
/// Knows nothing of providers. One SSH session serves the whole machine.
/// `booted`: it was just started, so SSH may take a while to come up.
async fn converge(
    ctx: &Context,
    machine: &Machine,
    mut state: MachineState,
    provision: bool,
    booted: bool,
    events: &Events,
) -> anyhow::Result<()> {
    let target = state
        .ssh
        .clone()
        .context("the provider reported no SSH endpoint for the machine")?;
    let ctx = ctx.clone();
    let machine = machine.clone();
    let events = events.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let name = machine.name.clone();
        if booted {
            events.emit(&name, "waiting for SSH", None);
        }
        let session = crate::ssh::Session::connect(&target, SSH_WAIT)
            .with_context(|| format!("cannot reach `{name}` over SSH"))?;
        if !machine.sync.is_empty() {
            events.emit(&name, "syncing", None);
            crate::sync::sync_machine(&session, &machine, &ctx.store, &ctx.printer)
                .with_context(|| format!("cannot sync folders into `{name}`"))?;
        }
        if provision && !machine.provision.is_empty() {
            events.emit(&name, "provisioning", None);
            crate::provision::run(
                &session,
                &machine,
                &mut state,
                &ctx.store,
                &[],
                &ctx.printer,
            )
            .with_context(|| format!("provisioning `{name}` failed"))?;
        }
        Ok(())
    })
    .await
    .context("the SSH task stopped unexpectedly")?
}

fn summarize(
    g: &Settings,
    ws: &Workspace,
    results: &[(String, anyhow::Result<()>)],
    elapsed: Duration,
    mode: Mode,
) -> anyhow::Result<ExitStatus> {
    let status = schedule::report(&g.printer, results);
    let ok = results.iter().filter(|(_, r)| r.is_ok()).count();
    let verb = if mode == Mode::Up { "up" } else { "reloaded" };
    g.printer.info(&format!(
        "{ok} of {} machine(s) {verb} in {:.1}s",
        results.len(),
        elapsed.as_secs_f64()
    ));
    if status == ExitStatus::Success {
        if let Some(primary) = ws.ctx.project.primary() {
            g.printer.info(&format!("next: `box ssh {}`", primary.name));
        }
    }
    Ok(status)
}
