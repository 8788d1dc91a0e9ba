//! Providers: where machines run. `local` (QEMU on this computer) and
//! `cloudstack` (an Apache CloudStack cloud).
//!
//! A provider creates, starts, stops and deletes machines and reports an
//! [`SshTarget`](crate::state::SshTarget) with a pinned host key. SSH, sync
//! and provisioning never learn which provider made the machine.
//!
//! Every method records its progress in the state store as it goes, so a
//! box killed mid-command resumes from what was recorded.

pub mod cloudstack;
mod data;
pub mod local;

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::boxfile::{Machine, Project};
use crate::config::Paths;
use crate::output::Printer;
pub use data::{ProjectData, ProviderData};

use crate::state::{MachineState, StateStore, Status};

/// What every provider method gets: the project, its state and the printer.
#[derive(Clone)]
pub struct Context {
    pub project: Arc<Project>,
    pub store: StateStore,
    pub printer: Printer,
    pub paths: Paths,
    /// Local guests reach nothing outside the host (QEMU `restrict=on`).
    pub isolated: bool,
    /// The CloudStack profile asked for outside the Boxfile (`BOX_PROFILE`).
    pub profile: Option<String>,
    /// `Boxfile.lock`, for the commands that create machines (`up`, `lock`);
    /// off for the others.
    pub lockfile: crate::lockfile::Session,
}

/// A snapshot as listed by a provider.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SnapshotInfo {
    pub name: String,
    pub created: Option<String>,
}

#[derive(Debug, Clone)]
pub enum SnapshotOp {
    Save(String),
    Restore(String),
    Delete(String),
    List,
}

/// Which provider a machine lives on.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    #[default]
    Local,
    CloudStack,
}

impl ProviderKind {
    /// Its name in the Boxfile, in state files and in the box store.
    pub fn as_str(self) -> &'static str {
        match self {
            ProviderKind::Local => "local",
            ProviderKind::CloudStack => "cloudstack",
        }
    }
}

impl std::fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

// Boxed: both are large (catalogue, scope, lock session) and made once per run.
pub enum Provider {
    Local(Box<local::Local>),
    CloudStack(Box<cloudstack::CloudStack>),
}

impl Provider {
    /// Builds the provider for `kind` and does the once-per-run work for the
    /// given machines (resolve names, fetch images, register keys) before
    /// any machine is touched, so a bad name fails before anything exists.
    pub async fn prepare(
        kind: ProviderKind,
        ctx: &Context,
        machines: &[&Machine],
    ) -> anyhow::Result<Provider> {
        Ok(match kind {
            ProviderKind::Local => {
                Provider::Local(Box::new(local::Local::prepare(ctx, machines).await?))
            }
            ProviderKind::CloudStack => Provider::CloudStack(Box::new(
                cloudstack::CloudStack::prepare(ctx, machines).await?,
            )),
        })
    }

    /// Builds the provider for work on machines that already exist (halt,
    /// destroy, refresh, snapshot): no image fetch, no name resolution
    /// beyond what that work needs.
    pub async fn open(kind: ProviderKind, ctx: &Context) -> anyhow::Result<Provider> {
        Ok(match kind {
            ProviderKind::Local => Provider::Local(Box::new(local::Local::open(ctx).await?)),
            ProviderKind::CloudStack => {
                Provider::CloudStack(Box::new(cloudstack::CloudStack::open(ctx).await?))
            }
        })
    }

    /// Creates the machine if needed, starts it, and returns its state with
    /// `status = Running` and `ssh` set. Idempotent: a running machine is
    /// returned as is; a half-created one is resumed.
    pub async fn up(&self, machine: &Machine, state: MachineState) -> anyhow::Result<MachineState> {
        match self {
            Provider::Local(p) => p.up(machine, state).await,
            Provider::CloudStack(p) => p.up(machine, state).await,
        }
    }

    /// Whether the machine runs now, asked before `up` so that `box up` can
    /// say "already running" instead of "starting". Changes nothing.
    pub async fn is_running(&self, state: &MachineState) -> anyhow::Result<bool> {
        match self {
            // Local refresh only checks the QEMU process: cheap and exact.
            Provider::Local(p) => Ok(p
                .refresh(vec![state.clone()])
                .await?
                .iter()
                .any(|s| s.status == Status::Running)),
            Provider::CloudStack(p) => p.is_running(state).await,
        }
    }

    /// Stops the machine (clean shutdown, or at once with `force`).
    pub async fn halt(&self, state: MachineState, force: bool) -> anyhow::Result<MachineState> {
        match self {
            Provider::Local(p) => p.halt(state, force).await,
            Provider::CloudStack(p) => p.halt(state, force).await,
        }
    }

    /// Whether the provider can save a machine's memory and resume it
    /// (`box suspend`); the others stop the machine instead.
    pub fn suspends(&self) -> bool {
        matches!(self, Provider::Local(_))
    }

    /// Suspends the machine: its memory and devices saved, its process gone
    /// (`status = Suspended`). A provider that cannot ([`Self::suspends`])
    /// stops it cleanly instead.
    pub async fn suspend(
        &self,
        machine: &Machine,
        state: MachineState,
    ) -> anyhow::Result<MachineState> {
        match self {
            Provider::Local(p) => p.suspend(machine, state).await,
            Provider::CloudStack(p) => p.halt(state, false).await,
        }
    }

    /// Deletes the machine and every resource recorded for it. On success
    /// the caller removes the machine's state.
    pub async fn destroy(&self, state: MachineState) -> anyhow::Result<()> {
        match self {
            Provider::Local(p) => p.destroy(state).await,
            Provider::CloudStack(p) => p.destroy(state).await,
        }
    }

    /// Project-wide clean-up once no machine of this provider is left
    /// (CloudStack: the key pair and security group).
    pub async fn destroy_project(&self) -> anyhow::Result<()> {
        match self {
            Provider::Local(_) => Ok(()),
            Provider::CloudStack(p) => p.destroy_project().await,
        }
    }

    /// Asks the provider for the real state of these machines.
    pub async fn refresh(&self, states: Vec<MachineState>) -> anyhow::Result<Vec<MachineState>> {
        match self {
            Provider::Local(p) => p.refresh(states).await,
            Provider::CloudStack(p) => p.refresh(states).await,
        }
    }

    pub async fn snapshot(
        &self,
        state: &MachineState,
        op: SnapshotOp,
    ) -> anyhow::Result<Vec<SnapshotInfo>> {
        match self {
            Provider::Local(p) => p.snapshot(state, op).await,
            Provider::CloudStack(p) => p.snapshot(state, op).await,
        }
    }
}
