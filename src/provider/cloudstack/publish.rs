//! `box box publish`, the cloud side: a box's disk becomes a template of
//! one zone through CloudStack's browser upload (`getUploadParamsForTemplate`
//! and a signed POST of the file), and a machine with that box deploys it
//! ([`published_template`], used when the Boxfile names no template).
//!
//! A failed upload never leaves a half template: the template registered
//! for it is deleted again, and nothing is recorded in the box.

use std::time::{Duration, Instant};

use cloudstack::{Params, Template, UploadParams};
use guest::store::{BoxImage, Published};

use crate::boxfile::CloudStackSettings;
use crate::error::Hinted;
use crate::output::Printer;

use super::api::{convert, Api};
use super::names;
use super::scope::Scope;

/// How long the cloud may take to make an uploaded template ready
/// (`BOX_PUBLISH_TIMEOUT`, seconds): a real secondary storage checks and
/// copies the image after the POST.
const READY_TIMEOUT: Duration = Duration::from_secs(1800);

/// Where to publish.
pub struct Target<'a> {
    pub zone: &'a str,
    pub project: Option<&'a str>,
    pub os_type_id: Option<&'a str>,
}

pub enum Outcome {
    /// The same bits are already a ready template there.
    Unchanged(Published),
    Published(Published),
}

/// Uploads `image` as a template of the target zone and waits until it is
/// ready; the record to keep in the box's metadata.
pub async fn publish(
    printer: &Printer,
    client: cloudstack::Client,
    image: &BoxImage,
    target: &Target<'_>,
) -> anyhow::Result<Outcome> {
    let api = Api {
        client,
        scope: Default::default(),
    };
    let c = &api.client;
    let cs = CloudStackSettings {
        project: target.project.map(str::to_string),
        ..Default::default()
    };
    let scope = Scope::resolve(c, &cs).await?;
    let project_id = scope.project_id().map(str::to_string);
    let api = api.scoped(scope);
    let c = &api.client;
    let zones = c
        .list_zones(&Params::new())
        .await
        .map_err(|e| convert(e, "cannot list zones"))?;
    let zone = names::pick(target.zone, &zones)
        .ok_or_else(|| {
            let known: Vec<String> = zones.iter().map(|z| format!("`{}`", z.name)).collect();
            Hinted::new(
                format!("unknown zone `{}`", target.zone),
                format!("pass --zone with one of: {}", known.join(", ")),
            )
        })?
        .clone();
    let endpoint = c.config().endpoint.clone();
    let templates = zone_templates(&api, &zone.id).await?;

    let earlier = image
        .published
        .iter()
        .find(|r| r.endpoint == endpoint && r.zone_id == zone.id && r.project_id == project_id);
    if let Some(r) = earlier.filter(|r| r.sha256 == image.sha256) {
        if templates
            .iter()
            .any(|t| t.id == r.template_id && t.isready == Some(true))
        {
            return Ok(Outcome::Unchanged(r.clone()));
        }
    }

    if image.kernel.is_some() {
        printer.warn(&format!(
            "box `{}` boots with its own kernel file (QEMU direct kernel boot): its disk has no boot loader, so a real cloud's KVM hosts cannot boot the template as it is (cloudstack-sim --backing qemu can); see \"Published boxes\" in docs/boxfile.md",
            image.name
        ));
    }
    let os_type = match target.os_type_id {
        Some(id) => id.to_string(),
        None => os_type_of(image, &templates)?,
    };
    let name = format!("{}-{}", image.name, image.version);
    let mut params = Params::new()
        .set("name", &name)
        .set(
            "displaytext",
            format!(
                "box {} {} (sha256 {})",
                image.name,
                image.version,
                &image.sha256[..image.sha256.len().min(12)]
            ),
        )
        .set("format", "QCOW2")
        .set("hypervisor", "KVM")
        .set("zoneid", &zone.id)
        .set("ostypeid", &os_type)
        .set("checksum", format!("{{SHA-256}}{}", image.sha256));
    if let Some(p) = &project_id {
        params.push("projectid", p.clone());
    }
    let upload = c
        .get_upload_params_for_template(&params)
        .await
        .map_err(|e| convert(e, "cannot register the template for upload"))?;
    printer.info(&format!(
        "uploading box `{}` {} ({}) to zone `{}` as template `{name}` ({})",
        image.name,
        image.version,
        size_of(&image.disk),
        zone.name,
        upload.id
    ));
    if let Err(e) = send_and_wait(printer, &api, &upload, image, &zone.id).await {
        // No half template: the cloud forgets it, the box records nothing.
        let mut del = Params::new().set("id", &upload.id);
        if let Some(p) = &project_id {
            del.push("projectid", p.clone());
        }
        if let Err(d) = c.call_and_wait("deleteTemplate", &del).await {
            printer.warn(&format!(
                "the template {} of the failed upload could not be deleted: {d}",
                upload.id
            ));
        }
        return Err(e);
    }
    Ok(Outcome::Published(Published {
        endpoint,
        zone_id: zone.id.clone(),
        zone_name: zone.name.clone(),
        project_id,
        template_id: upload.id.clone(),
        template_name: name,
        sha256: image.sha256.clone(),
        at: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
    }))
}

async fn send_and_wait(
    printer: &Printer,
    api: &Api,
    upload: &UploadParams,
    image: &BoxImage,
    zone_id: &str,
) -> anyhow::Result<()> {
    let bar = printer.spinner(&image.name, "uploading");
    let shown = bar.clone();
    let total = std::fs::metadata(&image.disk).map(|m| m.len()).unwrap_or(0);
    let sent = api
        .client
        .upload_file(upload, &image.disk, move |n| {
            shown.set_message(format!("uploading {}% ", n * 100 / total.max(1)));
        })
        .await;
    if let Err(e) = sent {
        printer.remove_bar(&bar);
        let hint = match &e {
            cloudstack::UploadError::Refused { status: 400, .. } => {
                "the upload server refused the signed request (expired or invalid signature): run `box box publish` again; if it keeps failing, check this host's clock"
            }
            _ => "run `box box publish` again; nothing was recorded and the template of this attempt is deleted",
        };
        return Err(Hinted::new(
            format!("the upload of box `{}` failed: {e}", image.name),
            hint,
        )
        .into());
    }
    bar.set_message("waiting for the cloud to make the template ready");
    let limit = std::env::var("BOX_PUBLISH_TIMEOUT")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(READY_TIMEOUT);
    let started = Instant::now();
    let result = loop {
        let listed = zone_templates(api, zone_id).await?;
        match listed.iter().find(|t| t.id == upload.id) {
            Some(t) if t.isready == Some(true) => break Ok(()),
            Some(t) if is_failed(t) => {
                break Err(Hinted::new(
                    format!(
                        "the cloud did not accept the uploaded image: {}",
                        t.status.as_deref().unwrap_or("failed")
                    ),
                    "nothing was recorded; fix the cause and run `box box publish` again",
                ))
            }
            None => {
                break Err(Hinted::new(
                    format!("template {} disappeared after the upload", upload.id),
                    "run `box box publish` again",
                ))
            }
            Some(_) if started.elapsed() > limit => {
                break Err(Hinted::new(
                    format!(
                        "template {} was not ready within {}s",
                        upload.id,
                        limit.as_secs()
                    ),
                    "raise BOX_PUBLISH_TIMEOUT (seconds) for a slow cloud",
                ))
            }
            Some(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    };
    printer.remove_bar(&bar);
    result.map_err(Into::into)
}

fn is_failed(t: &Template) -> bool {
    t.status.as_deref().is_some_and(|s| {
        let s = s.to_ascii_lowercase();
        s.contains("error") || s.contains("abandoned") || s.contains("failed")
    })
}

/// The zone's templates the caller may deploy, ready or not.
async fn zone_templates(api: &Api, zone_id: &str) -> anyhow::Result<Vec<Template>> {
    api.client
        .list_templates(
            &Params::new()
                .set("templatefilter", "executable")
                .set("zoneid", zone_id),
        )
        .await
        .map_err(|e| convert(e, "cannot list templates"))
}

/// The OS type of the template the box stands for (`cloudstack_template`,
/// e.g. `Debian 12`), so the new template boots with the same settings.
fn os_type_of(image: &BoxImage, templates: &[Template]) -> anyhow::Result<String> {
    let wanted = image
        .cloudstack_template
        .clone()
        .unwrap_or_else(|| names::default_templates(&image.name)[0].clone());
    templates
        .iter()
        .find(|t| t.name == wanted)
        .and_then(|t| t.ostypeid.clone())
        .ok_or_else(|| {
            Hinted::new(
                format!("cannot tell the OS type of box `{}`: the zone has no template `{wanted}` to take it from", image.name),
                "pass --os-type-id ID (`box api listOsTypes` lists them)",
            )
            .into()
        })
}

fn size_of(path: &std::path::Path) -> String {
    let n = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    format!("{:.1} MiB", n as f64 / (1024.0 * 1024.0))
}

/// The template a machine with box `box_name` deploys in `zone_id`, when the
/// box was published there: `Ok(None)` when it was not (the template is
/// then found by name). A published template the zone no longer has is an
/// error, not a silent fallback to other bits.
pub(super) fn published_template(
    endpoint: &str,
    box_name: &str,
    zone_id: &str,
    templates: &[Template],
) -> Result<Option<String>, Hinted> {
    let paths = crate::config::Paths::from_env();
    let Ok(store) = crate::boxes::Store::open(&paths) else {
        return Ok(None);
    };
    let Ok(versions) = store.versions(box_name) else {
        return Ok(None);
    };
    // The newest version published to this zone.
    let Some(r) = versions.iter().rev().find_map(|v| {
        v.published
            .iter()
            .find(|r| r.endpoint == endpoint && r.zone_id == zone_id)
    }) else {
        return Ok(None);
    };
    if templates.iter().any(|t| t.id == r.template_id) {
        return Ok(Some(r.template_id.clone()));
    }
    Err(Hinted::new(
        format!(
            "box `{box_name}` was published to zone `{}` as template `{}` ({}), which the zone no longer has",
            r.zone_name, r.template_name, r.template_id
        ),
        format!(
            "run `box box publish {box_name} --zone {}` again, or set `template` to deploy another",
            r.zone_name
        ),
    ))
}
