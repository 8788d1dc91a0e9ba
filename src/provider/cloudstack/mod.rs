//! the CloudStack provider (not landed yet).

use crate::boxfile::Machine;
use crate::error::NotYetAvailable;
use crate::provider::{Context, SnapshotInfo, SnapshotOp};
use crate::state::MachineState;

pub struct CloudStack {
    _ctx: Context,
}

fn not_yet() -> anyhow::Error {
    NotYetAvailable {
        verb: "up".into(),
        detail: " on the CloudStack provider: it has not landed".into(),
    }
    .into()
}

impl CloudStack {
    pub async fn prepare(ctx: &Context, _machines: &[&Machine]) -> anyhow::Result<Self> {
        let _ = ctx;
        Err(not_yet())
    }

    pub async fn open(ctx: &Context) -> anyhow::Result<Self> {
        let _ = ctx;
        Err(not_yet())
    }

    pub async fn up(&self, _machine: &Machine, _state: MachineState) -> anyhow::Result<MachineState> {
        Err(not_yet())
    }

    pub async fn halt(&self, _state: MachineState, _force: bool) -> anyhow::Result<MachineState> {
        Err(not_yet())
    }

    pub async fn destroy(&self, _state: MachineState) -> anyhow::Result<()> {
        Err(not_yet())
    }

    pub async fn destroy_project(&self) -> anyhow::Result<()> {
        Err(not_yet())
    }

    pub async fn refresh(&self, _states: Vec<MachineState>) -> anyhow::Result<Vec<MachineState>> {
        Err(not_yet())
    }

    pub async fn snapshot(&self, _state: &MachineState, _op: SnapshotOp) -> anyhow::Result<Vec<SnapshotInfo>> {
        Err(not_yet())
    }
}
