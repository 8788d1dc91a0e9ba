//! Finding a machine's box in the local store (the boxes module owns the
//! store; this is the provider's one door into it).

use anyhow::Context as _;

use crate::boxes::{self, BoxImage, Store};
use crate::provider::Context;

/// The box `name`, downloaded or built from its recipe if the store lacks it.
pub async fn resolve(ctx: &Context, name: &str) -> anyhow::Result<BoxImage> {
    let store = Store::open(&ctx.paths).map_err(boxes::with_hint)?;
    store
        .ensure(name, &ctx.printer)
        .await
        .with_context(|| format!("cannot get box `{name}`"))
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
