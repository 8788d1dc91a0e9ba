//! `box snapshot save|restore|list|delete [MACHINE] NAME`.

use crate::cli::SnapshotCommand;
use crate::error::{ExitStatus, Hinted};
use crate::provider::{Provider, SnapshotOp};

use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, cmd: SnapshotCommand) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    ws.lock()?;
    let (machine, op) = match cmd {
        SnapshotCommand::Save(a) => split(a.args, SnapshotOp::Save),
        SnapshotCommand::Restore(a) => split(a.args, SnapshotOp::Restore),
        SnapshotCommand::Delete(a) => split(a.args, SnapshotOp::Delete),
        SnapshotCommand::List(a) => (a.machine, SnapshotOp::List),
    };
    let name = ws.machine_or_primary(machine.as_deref())?.name.clone();
    let state = ws.ctx.store.load_machine(&name)?.ok_or_else(|| {
        Hinted::new(
            format!("`{name}` has not been created"),
            format!("run `box up {name}` first"),
        )
    })?;
    let provider = Provider::open(state.provider.kind(), &ws.context()).await?;
    let listing = matches!(op, SnapshotOp::List);
    // The guest's disk goes back in time: what the sync manifest says was
    // sent may no longer be there.
    let restoring = matches!(op, SnapshotOp::Restore(_));
    let done = match &op {
        SnapshotOp::Save(s) => format!("saved snapshot `{s}`"),
        SnapshotOp::Restore(s) => format!("restored snapshot `{s}`"),
        SnapshotOp::Delete(s) => format!("deleted snapshot `{s}`"),
        SnapshotOp::List => String::new(),
    };
    let snapshots = provider.snapshot(&state, op).await?;
    if restoring {
        crate::sync::forget(&ws.ctx.store, &name)?;
    }
    if listing {
        for s in snapshots {
            g.printer.data(&match s.created {
                Some(c) => format!("{}\t{}", s.name, c),
                None => s.name,
            });
        }
    } else {
        g.printer.machine(&name, &done);
    }
    Ok(ExitStatus::Success)
}

/// `[MACHINE] NAME`: one argument is the snapshot name on the primary machine.
fn split(mut args: Vec<String>, op: fn(String) -> SnapshotOp) -> (Option<String>, SnapshotOp) {
    let name = args.pop().unwrap_or_default();
    (args.pop(), op(name))
}
