//! The providers a verb works with: at most one per kind, each shared by
//! every machine of that kind (`up`, `reload`, `halt`, `destroy`, `status`).

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::Context as _;

use crate::boxfile::Machine;
use crate::provider::{Context, Provider, ProviderKind};
use crate::state::MachineState;

/// One provider per kind, opened or prepared once.
#[derive(Clone, Default)]
pub(crate) struct Providers(BTreeMap<ProviderKind, Arc<Provider>>);

impl Providers {
    /// Prepares each kind among `machines` for creating them (zones,
    /// images, networks resolved), local first.
    pub(crate) async fn prepare(ctx: &Context, machines: &[Machine]) -> anyhow::Result<Self> {
        let mut out = Providers::default();
        for kind in [ProviderKind::Local, ProviderKind::CloudStack] {
            let of_kind: Vec<&Machine> = machines.iter().filter(|m| m.provider == kind).collect();
            if !of_kind.is_empty() {
                let p = Provider::prepare(kind, ctx, &of_kind)
                    .await
                    .with_context(|| format!("cannot prepare the {kind} provider"))?;
                out.0.insert(kind, Arc::new(p));
            }
        }
        Ok(out)
    }

    /// Opens each kind among `states`, from the state alone.
    pub(crate) async fn for_states(ctx: &Context, states: &[MachineState]) -> anyhow::Result<Self> {
        let mut out = Providers::default();
        for s in states {
            out.open(s.provider.kind(), ctx).await?;
        }
        Ok(out)
    }

    /// The provider of `kind`, opened now unless it already is.
    pub(crate) async fn open(
        &mut self,
        kind: ProviderKind,
        ctx: &Context,
    ) -> anyhow::Result<Arc<Provider>> {
        if let Some(p) = self.0.get(&kind) {
            return Ok(p.clone());
        }
        let p = Arc::new(Provider::open(kind, ctx).await?);
        self.0.insert(kind, p.clone());
        Ok(p)
    }

    /// The provider of `kind`, if it was opened or prepared.
    pub(crate) fn get(&self, kind: ProviderKind) -> Option<Arc<Provider>> {
        self.0.get(&kind).cloned()
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ProviderKind, &Arc<Provider>)> {
        self.0.iter().map(|(k, p)| (*k, p))
    }
}
