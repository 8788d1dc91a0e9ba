//! `box lock [--update [MACHINE...]]`: write `Boxfile.lock` without
//! creating anything, or move machines to what is available now. Also the
//! opening and saving of the lock that `box up` shares.

use std::collections::BTreeSet;

use crate::boxfile::Machine;
use crate::cli::LockArgs;
use crate::error::{ExitStatus, Hinted};
use crate::lockfile::{LockfileError, Policy, Session};
use crate::provider::{self, Context, ProviderKind};

use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: LockArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    ws.select(&args.machines)?;
    let policy = if args.update {
        Policy::Update(args.machines.iter().cloned().collect::<BTreeSet<_>>())
    } else {
        Policy::Write
    };
    open(&mut ws, policy)?;
    let ctx = ws.context();
    let of = |kind| -> Vec<&Machine> {
        ctx.project
            .machines
            .iter()
            .filter(|m| m.provider == kind)
            .collect()
    };
    let local = of(ProviderKind::Local);
    if !local.is_empty() {
        provider::local::lock_machines(&ctx, &local).await?;
    }
    let cloud = of(ProviderKind::CloudStack);
    if !cloud.is_empty() {
        provider::cloudstack::lock_machines(&ctx, &cloud).await?;
    }
    let names: Vec<String> = ctx
        .project
        .machines
        .iter()
        .map(|m| m.name.clone())
        .collect();
    ctx.lockfile.retain(&names);
    if save(&ctx)? == 0 {
        g.printer.info("Boxfile.lock is up to date");
    }
    Ok(ExitStatus::Success)
}

/// Reads the project's lock into its context, for a command that creates
/// machines.
pub(crate) fn open(ws: &mut Workspace, policy: Policy) -> anyhow::Result<()> {
    ws.ctx.lockfile = Session::load(ws.root(), policy).map_err(hinted)?;
    Ok(())
}

/// Writes the lock if it changed, saying what changed; returns how many
/// entries did.
pub(crate) fn save(ctx: &Context) -> anyhow::Result<usize> {
    let changes = ctx.lockfile.save().map_err(hinted)?;
    for change in &changes {
        ctx.printer.info(&format!("Boxfile.lock: {change}"));
    }
    Ok(changes.len())
}

pub(crate) fn hinted(e: LockfileError) -> anyhow::Error {
    match e.hint() {
        Some(hint) => Hinted::new(e.to_string(), hint).into(),
        None => anyhow::Error::new(e),
    }
}
