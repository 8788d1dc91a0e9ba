//! Finding a machine's box in the local store (the boxes module owns the
//! store; this is the provider's one door into it).

use anyhow::Context as _;

use crate::boxes::{self, BoxImage, Store};
use crate::boxfile::Machine;
use crate::lockfile::{self, LocalLock};
use crate::provider::Context;
use crate::state::MachineState;

/// The box a new machine starts from. A machine in `Boxfile.lock` gets
/// the locked version, which must still be in the store with the same
/// sha256; a machine not locked yet, or whose `box`/`box_version` no
/// longer fits its entry, gets the newest version that meets
/// `box_version`, and the lock records it.
pub async fn for_machine(ctx: &Context, machine: &Machine) -> anyhow::Result<BoxImage> {
    let store = Store::open(&ctx.paths).map_err(boxes::with_hint)?;
    let wanted = machine.box_version.as_ref();
    if let Some(pin) = ctx.lockfile.local(&machine.name) {
        if pin.box_name == machine.box_name && lockfile::meets(wanted, &pin.version) {
            return locked(&store, &machine.name, &pin);
        }
    }
    let name = &machine.box_name;
    let image = store
        .ensure_version(name, wanted, &ctx.printer)
        .await
        .with_context(|| format!("cannot get box `{name}`"))?;
    ctx.lockfile.record_local(&machine.name, pin_of(&image))?;
    Ok(image)
}

/// The locked box, checked against the store.
fn locked(store: &Store, machine: &str, pin: &LocalLock) -> anyhow::Result<BoxImage> {
    let (name, version) = (&pin.box_name, &pin.version);
    let versions = store.versions(name).map_err(boxes::with_hint)?;
    let Some(image) = versions.iter().find(|b| b.version == *version) else {
        // The same image under another version name (a teammate's store
        // that downloaded it on another day) is the same image.
        if let Some(same) = versions.iter().find(|b| b.sha256 == pin.sha256) {
            return Ok(same.clone());
        }
        let there: Vec<&str> = versions.iter().map(|b| b.version.as_str()).collect();
        let there = if there.is_empty() {
            "none".to_string()
        } else {
            there.join(", ")
        };
        return Err(lockfile::stale(
            machine,
            &format!(
                "the locked box `{name}` {version} is not in the box store (versions there: {there})"
            ),
        ));
    };
    // The store's record of the image: hashing gigabytes on every `up`
    // would cost more than the check is worth; a replaced box has a new one.
    if image.sha256 != pin.sha256 {
        return Err(lockfile::stale(
            machine,
            &format!(
                "box `{name}` {version} in the store has sha256 {}, but the lock says {}",
                image.sha256, pin.sha256
            ),
        ));
    }
    Ok(image.clone())
}

fn pin_of(image: &BoxImage) -> LocalLock {
    LocalLock {
        box_name: image.name.clone(),
        version: image.version.clone(),
        sha256: image.sha256.clone(),
    }
}

/// A machine created before it was locked: the lock records the box it
/// was made from, if the store still has it.
pub fn record_existing(ctx: &Context, state: &MachineState) -> anyhow::Result<()> {
    if ctx.lockfile.local(&state.name).is_some() {
        return Ok(());
    }
    let Some(data) = state.provider.local() else {
        return Ok(());
    };
    let (Some(name), Some(version)) = (&data.box_name, &data.box_version) else {
        return Ok(());
    };
    let store = Store::open(&ctx.paths).map_err(boxes::with_hint)?;
    if let Ok(Some(image)) = store.find_version(name, version) {
        ctx.lockfile.record_local(&state.name, pin_of(&image))?;
    }
    Ok(())
}

/// Tells the store this machine's overlay uses `image`, so prune keeps it.
pub fn register_use(ctx: &Context, image: &BoxImage, overlay: &std::path::Path) {
    if let Ok(store) = Store::open(&ctx.paths) {
        if let Err(e) = store.register_use(image, overlay) {
            ctx.printer.warn(&format!(
                "cannot record that a machine uses box `{}`: {e}",
                image.name
            ));
        }
    }
}

/// Forgets the use recorded by [`register_use`] (the machine is destroyed).
pub fn unregister_use(ctx: &Context, name: &str, version: &str, overlay: &std::path::Path) {
    let Ok(store) = Store::open(&ctx.paths) else {
        return;
    };
    if let Ok(Some(image)) = store.find_version(name, version) {
        let _ = store.unregister_use(&image, overlay);
    }
}
