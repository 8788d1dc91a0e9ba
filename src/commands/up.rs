//! `box up` and `box reload`: boot every machine at once, then sync and
//! provision each one as soon as it answers over SSH and its dependencies
//! are ready (up, synced, provisioned).

use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::boxfile::{Machine, TriggerEvent};
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
    let names: Vec<String> = machines.iter().map(|m| m.name.clone()).collect();
    let mut due = vec![TriggerEvent::BeforeUp, TriggerEvent::AfterUp];
    if !args.no_provision {
        due.push(TriggerEvent::AfterProvision);
    }
    super::hooks::trust(g, &ws, &due, &names)?;
    super::hooks::before(&ws, TriggerEvent::BeforeUp, &names)?;
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
        events.show(&m.name, "queued");
    }
    let started = Instant::now();
    let no_provision = args.no_provision;
    let no_connect = args.no_connect;
    let boot = {
        let ctx = ctx.clone();
        let providers = providers.clone();
        let events = events.clone();
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
                let booted = boot(&ctx, &provider, &machine, mode, no_connect, &events).await;
                if let Err(e) = &booted {
                    events.emit(&name, "failed", Some(&format!("{e:#}")));
                }
                booted.map(|session| (machine, session))
            }
        }
    };
    let converge = {
        let ctx = ctx.clone();
        let events = events.clone();
        move |name: String, (machine, session): (Machine, Option<Booted>)| {
            let ctx = ctx.clone();
            let events = events.clone();
            async move {
                let result = match session {
                    Some(booted) => converge(&ctx, machine, booted, !no_provision, &events).await,
                    // `--no-connect`: host triggers run, guest ones cannot.
                    None => super::hooks::after(&ctx, TriggerEvent::AfterUp, &name, None).await,
                };
                match &result {
                    Ok(()) => events.emit(&name, "ready", None),
                    Err(e) => events.emit(&name, "failed", Some(&format!("{e:#}"))),
                }
                result
            }
        }
    };

    let parallel = args.parallel.map(|n| n as usize).unwrap_or_else(|| {
        schedule::default_parallel(machines.iter().map(|m| m.provider), machines.len())
    });
    for m in &ws.ctx.project.machines {
        if !m.autostart && args.machines.is_empty() && !names.contains(&m.name) {
            g.printer.machine(
                &m.name,
                &format!(
                    "left out (autostart = false); `box {} {}` includes it",
                    if mode == Mode::Up { "up" } else { "reload" },
                    m.name
                ),
            );
        }
    }
    let results = tokio::select! {
        r = schedule::run_staged(jobs, parallel, NOT_CONVERGED, boot, converge) => r,
        _ = tokio::signal::ctrl_c() => {
            events.finish();
            g.printer.warn("interrupted: machines may be half created; their progress is recorded in .box/");
            g.printer.info("run `box up` again to resume, or `box destroy` to remove what was created");
            return Ok(ExitStatus::Interrupted);
        }
    };
    // A machine whose dependency failed is up but was left alone: its
    // spinner ends with the reason, which the summary repeats.
    for (name, result) in &results {
        if let Err(e) = result {
            if e.is::<schedule::DependencyFailed>() {
                events.emit(name, "failed", Some(&format!("{e:#}")));
            }
        }
    }
    events.finish();
    summarize(g, &ws, &results, started.elapsed(), mode)
}

/// The named machines plus everything they depend on, in Boxfile order.
/// No names: every machine with `autostart` (and what they depend on,
/// `autostart` or not: a machine cannot work without its dependencies).
fn with_dependencies(ws: &Workspace, names: &[String]) -> anyhow::Result<Vec<Machine>> {
    let mut selected = ws.select(names)?;
    if names.is_empty() {
        selected.retain(|m| m.autostart);
    }
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

/// What a machine whose dependency failed did not do.
const NOT_CONVERGED: &str = "up, but not synced or provisioned";

/// A booted machine that answers over SSH, for its converge stage.
struct Booted {
    state: MachineState,
    session: crate::ssh::Session,
}

/// The first stage, run for every machine at once: create and start the
/// machine (halt it first on reload) and wait until it answers over SSH.
/// Needs nothing from other machines. Returns no session with `no_connect`.
async fn boot(
    ctx: &Context,
    provider: &Provider,
    machine: &Machine,
    mode: Mode,
    no_connect: bool,
    events: &Events,
) -> anyhow::Result<Option<Booted>> {
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
    // Reload restarts: a suspended machine's saved state goes too.
    if mode == Mode::Reload && matches!(state.status, Status::Running | Status::Suspended) {
        events.emit(name, "halting", None);
        state = provider.halt(state, false).await?;
        ctx.store.save_machine(&state)?;
    }
    // Unknown counts as not running: `up` itself reports any real error.
    let running =
        state.status == Status::Running && provider.is_running(&state).await.unwrap_or(false);
    // Its clock stood still while it was suspended.
    let resumed = state.status == Status::Suspended;
    events.emit(
        name,
        if running {
            "already running"
        } else if resumed {
            "resuming"
        } else {
            "starting"
        },
        None,
    );
    let state = provider.up(machine, state).await?;
    ctx.store.save_machine(&state)?;
    if no_connect {
        return Ok(None);
    }
    let target = state
        .ssh
        .clone()
        .context("the provider reported no SSH endpoint for the machine")?;
    let events = events.clone();
    let name = name.clone();
    let waits_for = machine.depends_on.join(", ");
    let session = tokio::task::spawn_blocking(move || -> anyhow::Result<crate::ssh::Session> {
        if !running {
            events.emit(&name, "waiting for SSH", None);
        }
        let session = crate::ssh::Session::connect(&target, SSH_WAIT)
            .with_context(|| format!("cannot reach `{name}` over SSH"))?;
        if resumed {
            crate::guest_clock::set(&session)
                .with_context(|| format!("cannot set the clock of `{name}` after resuming"))?;
        }
        if !waits_for.is_empty() {
            events.emit(&name, "waiting for dependencies", Some(&waits_for));
        }
        Ok(session)
    })
    .await
    .context("the SSH task stopped unexpectedly")??;
    Ok(Some(Booted { state, session }))
}

/// The second stage, once the machine answers and its dependencies are
/// ready: sync folders, run provisioners. Knows nothing of providers; the
/// session of the boot stage serves the whole machine.
async fn converge(
    ctx: &Context,
    machine: Machine,
    booted: Booted,
    provision: bool,
    events: &Events,
) -> anyhow::Result<()> {
    let ctx = ctx.clone();
    let events = events.clone();
    let Booted { mut state, session } = booted;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let name = machine.name.clone();
        if machine.sync.iter().any(|f| f.is_mount()) {
            events.emit(&name, "checking mounted folders", None);
            crate::provider::local::mount::verify(&session, &machine)
                .with_context(|| format!("a mounted folder of `{name}` is not ready"))?;
        }
        if !machine.sync.is_empty() {
            events.emit(&name, "syncing", None);
            crate::sync::sync_machine(&session, &machine, &ctx.store, &ctx.printer)
                .with_context(|| format!("cannot sync folders into `{name}`"))?;
        }
        if provision && !machine.provision.is_empty() {
            events.emit(&name, "provisioning", None);
            crate::provision::run(
                &session,
                &ctx.project,
                &machine,
                &mut state,
                &ctx.store,
                &[],
                &ctx.printer,
            )
            .with_context(|| format!("provisioning `{name}` failed"))?;
            // What provisioning made in the guest that the Boxfile asks for.
            crate::sync::pull_listed(&session, &machine, &ctx.store, &ctx.printer, false)
                .with_context(|| format!("cannot pull files back from `{name}`"))?;
        }
        if provision {
            super::hooks::after_blocking(
                &ctx,
                TriggerEvent::AfterProvision,
                &machine,
                Some(&session),
            )?;
        }
        super::hooks::after_blocking(&ctx, TriggerEvent::AfterUp, &machine, Some(&session))
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
