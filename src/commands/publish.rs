//! `box box publish NAME --zone Z`: a box from the local store becomes a
//! CloudStack template (the upload itself is the provider's
//! `publish` module), and the box's metadata records where, so machines
//! with this box in that zone deploy the same bits they run locally.

use anyhow::Context as _;

use crate::boxes::{with_hint, Store};
use crate::cli::BoxPublishArgs;
use crate::cloud_client;
use crate::error::Hinted;
use crate::provider::cloudstack::publish::{self, Outcome, Target};

use super::Settings;

pub(crate) async fn run(g: &Settings, store: &Store, a: BoxPublishArgs) -> anyhow::Result<()> {
    let p = &g.printer;
    let found = match &a.version {
        Some(v) => store.find_version(&a.name, v),
        None => store.find(&a.name),
    }
    .map_err(with_hint)?;
    let Some(image) = found else {
        return Err(Hinted::new(
            format!(
                "box `{}`{} is not in the store",
                a.name,
                a.version
                    .as_deref()
                    .map(|v| format!(" version {v}"))
                    .unwrap_or_default()
            ),
            "`box box list` shows the boxes there are; `box box add` or `box box build` adds one",
        )
        .into());
    };
    let profile = cloud_client::profile(a.profile.or_else(|| g.profile.clone()), None);
    let client = cloud_client::connect(p, &g.paths, &profile)?;
    let target = Target {
        zone: &a.zone,
        project: a.project.as_deref(),
        os_type_id: a.os_type_id.as_deref(),
    };
    let outcome = publish::publish(p, client, &image, &target)
        .await
        .with_context(|| format!("cannot publish box `{}` {}", image.name, image.version))?;
    match outcome {
        Outcome::Unchanged(r) => p.info(&format!(
            "box `{}` {} is already template `{}` ({}) in zone `{}` with the same checksum; nothing to do",
            image.name, image.version, r.template_name, r.template_id, r.zone_name
        )),
        Outcome::Published(r) => {
            let lock = store.lock_async(&image.name, p).await.map_err(with_hint)?;
            store
                .record_published(&lock, &image, r.clone())
                .map_err(with_hint)
                .context("the template is ready, but recording it in the box failed")?;
            p.info(&format!(
                "published box `{}` {} as template `{}` ({}) in zone `{}`",
                image.name, image.version, r.template_name, r.template_id, r.zone_name
            ));
        }
    }
    Ok(())
}
