//! `Boxfile.lock` on CloudStack: per machine and zone, the template (id,
//! name, checksum) and the offering ids a machine is deployed from.
//!
//! After names are resolved and before anything is created, each plan is
//! checked against the lock. While the Boxfile still asks for the locked
//! template (its name resolves to the locked template's name or id), the
//! machine is deployed from the locked template id, which must still be in
//! the zone with the same checksum: a template replaced under the same
//! name stops `box up` with nothing created. A machine not locked yet, or
//! whose Boxfile now asks for another template, is recorded (an error
//! under `--locked`). Offerings are recorded as resolved; a different one
//! is a change of the lock, seen in its diff and refused under `--locked`.

use std::collections::BTreeMap;

use cloudstack::{Params, Template};

use crate::boxfile::Machine;
use crate::error::Hinted;
use crate::lockfile::{ZoneLock, FILE_NAME};
use crate::provider::Context;
use crate::state::Status;

use super::api::{convert, Api};
use super::names::{self, Plan};

/// Resolves and checks `machines` without creating anything: `box lock`.
pub async fn lock_machines(ctx: &Context, machines: &[&Machine]) -> anyhow::Result<()> {
    let api = Api::connect(ctx)?;
    let mut plans = names::resolve(&api, machines).await?;
    apply(ctx, &api, machines, &mut plans).await
}

/// Checks each plan against the lock, deploys locked machines from their
/// locked template and records the rest. Every stale machine is reported
/// together, before anything is created.
pub(super) async fn apply(
    ctx: &Context,
    api: &Api,
    machines: &[&Machine],
    plans: &mut BTreeMap<String, Plan>,
) -> anyhow::Result<()> {
    let mut templates: BTreeMap<String, Vec<Template>> = BTreeMap::new();
    let mut stale: Vec<(String, String)> = Vec::new();
    for m in machines {
        let Some(plan) = plans.get_mut(&m.name) else {
            continue;
        };
        if !templates.contains_key(&plan.zone_id) {
            let list = api
                .client
                .list_templates(
                    &Params::new()
                        .set("templatefilter", "executable")
                        .set("zoneid", &plan.zone_id),
                )
                .await
                .map_err(|e| convert(e, "cannot list templates"))?;
            templates.insert(plan.zone_id.clone(), list);
        }
        let in_zone = templates.get(&plan.zone_id).map_or(&[][..], Vec::as_slice);
        let resolved = in_zone.iter().find(|t| t.id == plan.template_id);
        let created = ctx
            .store
            .load_machine(&m.name)?
            .is_some_and(|s| s.status != Status::NotCreated);
        let pin = ctx.lockfile.zone(&m.name, &plan.zone_name);
        // A Boxfile that names a template by id asks for that one; by name
        // (or by default), for whichever template has the locked name.
        let by_id = m.cloudstack.template.as_deref() == Some(plan.template_id.as_str());
        let asks_for_locked = |pin: &ZoneLock| {
            pin.template_id == plan.template_id
                || (!by_id && resolved.is_some_and(|t| t.name == pin.template_name))
        };
        match pin {
            Some(pin) if asks_for_locked(&pin) => {
                if !created {
                    match check(&pin, in_zone, resolved, &plan.zone_name) {
                        Ok(()) => plan.template_id = pin.template_id.clone(),
                        Err(what) => {
                            stale.push((m.name.clone(), what));
                            continue;
                        }
                    }
                }
                // Only the offerings may have changed.
                let now = ZoneLock {
                    service_offering_id: plan.service_offering_id.clone(),
                    disk_offering_id: plan.disk_offering_id.clone(),
                    ..pin
                };
                ctx.lockfile.record_zone(&m.name, &plan.zone_name, now)?;
            }
            _ => ctx
                .lockfile
                .record_zone(&m.name, &plan.zone_name, entry(plan, resolved))?,
        }
    }
    if stale.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = stale.iter().map(|(m, _)| m.as_str()).collect();
    let lines: Vec<String> = stale
        .iter()
        .map(|(m, what)| format!("{FILE_NAME}: machine `{m}`: {what}"))
        .collect();
    Err(Hinted::new(
        format!("{}\nnothing was created", lines.join("\n")),
        format!(
            "if the new template is what you want, run `box lock --update {}` and commit {FILE_NAME}",
            names.join(" ")
        ),
    )
    .into())
}

/// Whether the locked template is still in the zone, unchanged; if not,
/// what happened to it.
fn check(
    pin: &ZoneLock,
    in_zone: &[Template],
    resolved: Option<&Template>,
    zone: &str,
) -> Result<(), String> {
    let (name, id) = (&pin.template_name, &pin.template_id);
    let Some(t) = in_zone.iter().find(|t| t.id == *id) else {
        let now = match resolved {
            Some(r) if r.id != *id => format!("; `{}` is now template {}", r.name, r.id),
            _ => String::new(),
        };
        return Err(format!(
            "the locked template `{name}` ({id}) is no longer in zone `{zone}`{now}"
        ));
    };
    match (&pin.template_checksum, &t.checksum) {
        (Some(locked), Some(now)) if locked != now => Err(format!(
            "template `{name}` ({id}) in zone `{zone}` has checksum {now}, but the lock says {locked}"
        )),
        _ => Ok(()),
    }
}

/// The lock entry of a plan deployed from `template`.
fn entry(plan: &Plan, template: Option<&Template>) -> ZoneLock {
    ZoneLock {
        zone_id: plan.zone_id.clone(),
        template_id: plan.template_id.clone(),
        template_name: template.map(|t| t.name.clone()).unwrap_or_default(),
        template_checksum: template
            .and_then(|t| t.checksum.clone())
            .filter(|c| !c.is_empty()),
        service_offering_id: plan.service_offering_id.clone(),
        disk_offering_id: plan.disk_offering_id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(id: &str, checksum: Option<&str>) -> Template {
        serde_json::from_value(serde_json::json!({
            "id": id, "name": "Debian 12", "checksum": checksum,
        }))
        .unwrap()
    }

    fn pin(checksum: Option<&str>) -> ZoneLock {
        ZoneLock {
            zone_id: "z".into(),
            template_id: "t1".into(),
            template_name: "Debian 12".into(),
            template_checksum: checksum.map(str::to_string),
            service_offering_id: "o".into(),
            disk_offering_id: None,
        }
    }

    #[test]
    fn a_locked_template_must_be_there_with_the_same_checksum() {
        let zone = [template("t1", Some("aa")), template("t2", Some("bb"))];
        assert_eq!(check(&pin(Some("aa")), &zone, Some(&zone[1]), "z"), Ok(()));
        // A cloud that reports no checksum, or a lock without one, checks the id only.
        assert_eq!(check(&pin(None), &zone, None, "z"), Ok(()));
        let changed = check(&pin(Some("cc")), &zone, None, "z").unwrap_err();
        assert!(
            changed.contains("has checksum aa, but the lock says cc"),
            "{changed}"
        );
        let gone = check(&pin(Some("aa")), &zone[1..], Some(&zone[1]), "z").unwrap_err();
        assert_eq!(
            gone,
            "the locked template `Debian 12` (t1) is no longer in zone `z`; `Debian 12` is now template t2"
        );
    }
}
