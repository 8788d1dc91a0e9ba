//! What `halt`, `destroy` and `snapshot` share: opening the provider of
//! each machine that has state, from the state alone.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::sync::Arc;

use crate::provider::{Context, Provider, ProviderKind};
use crate::state::MachineState;

/// One opened provider per kind among `states`.
pub(crate) async fn providers_for(
    ctx: &Context,
    states: &[MachineState],
) -> anyhow::Result<BTreeMap<ProviderKind, Arc<Provider>>> {
    let mut out = BTreeMap::new();
    for s in states {
        let kind = s.provider.kind();
        if let Entry::Vacant(slot) = out.entry(kind) {
            slot.insert(Arc::new(Provider::open(kind, ctx).await?));
        }
    }
    Ok(out)
}

pub(crate) fn provider_of(
    providers: &BTreeMap<ProviderKind, Arc<Provider>>,
    kind: ProviderKind,
) -> anyhow::Result<Arc<Provider>> {
    providers
        .get(&kind)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no {kind} provider opened"))
}
