//! `[[trigger]]` tables: when they run (`on`), for which machines, and
//! what (`run` on the host or `run_remote` in the guest). Read after the
//! machines, so unknown machine names are reported at their place.

use super::diagnostic::shown;
use super::model::{Machine, Trigger, TriggerAction, TriggerEvent};
use super::node::Entry;
use super::reader::{listing, Reader};
use super::schema;

pub(crate) fn triggers(r: &mut Reader, e: Option<&Entry>, machines: &[Machine]) -> Vec<Trigger> {
    let Some(e) = e else {
        return Vec::new();
    };
    let names: Vec<&str> = machines.iter().map(|m| m.name.as_str()).collect();
    r.tables(e)
        .into_iter()
        .filter_map(|node| {
            let entries = r.table(node, "[[trigger]]", &schema::TRIGGER)?;
            let get = |k: &str| entries.iter().find(|e| e.key == k);
            let action = action(r, entries, node);
            let on = match get("on") {
                Some(e) => events(r, e, action.as_ref()),
                None => {
                    r.error(
                        &node.loc(),
                        "this [[trigger]] has no `on`",
                        Some("e.g. `on = [\"after-up\"]`".into()),
                    );
                    None
                }
            };
            let machines = match get("machines") {
                Some(e) => known_machines(r, e, &names)?,
                None => Vec::new(),
            };
            Some(Trigger {
                on: on?,
                machines,
                action: action?,
            })
        })
        .collect()
}

fn action(r: &mut Reader, entries: &[Entry], node: &super::node::Node) -> Option<TriggerAction> {
    let kinds: Vec<&Entry> = entries
        .iter()
        .filter(|e| schema::TRIGGER_KINDS.contains(&e.key.as_str()))
        .collect();
    match kinds.as_slice() {
        [] => {
            r.error(
                &node.loc(),
                "a trigger needs `run` (a host command) or `run_remote` (a guest command)",
                Some("e.g. `run = \"echo $BOX_MACHINE is up\"`".into()),
            );
            None
        }
        [one] => {
            let command = r.string(one)?;
            if command.trim().is_empty() {
                r.error(&one.value.loc(), format!("`{}` is empty", one.key), None);
                return None;
            }
            Some(if one.key == "run" {
                TriggerAction::Host(command)
            } else {
                TriggerAction::Remote(command)
            })
        }
        [_, second, ..] => {
            r.error(
                &second.key_loc(),
                "a trigger takes only one of `run` or `run_remote`",
                Some("split it into two [[trigger]] tables".into()),
            );
            None
        }
    }
}

fn events(r: &mut Reader, e: &Entry, action: Option<&TriggerAction>) -> Option<Vec<TriggerEvent>> {
    let items = r.strings(e)?;
    if items.is_empty() {
        r.error(
            &e.value.loc(),
            "`on` names no event",
            Some(format!("events: {}", event_names().join(", "))),
        );
        return None;
    }
    let mut out = Vec::new();
    let mut ok = true;
    for (name, loc) in items {
        let Some(event) = TriggerEvent::from_name(&name) else {
            ok = false;
            let names = event_names();
            let help = match r.suggest(&name, &names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("events: {}", names.join(", ")),
            };
            r.error(
                &loc,
                format!("unknown event `{}`", shown(&name)),
                Some(help),
            );
            continue;
        };
        if matches!(action, Some(TriggerAction::Remote(_))) && !event.guest_is_up() {
            ok = false;
            r.error(
                &loc,
                format!("`run_remote` cannot run on `{event}`: the guest is not up then"),
                Some(
                    "use `run` for a host command, or an event the guest is up for: after-up, after-provision, before-halt, before-destroy"
                        .into(),
                ),
            );
            continue;
        }
        if !out.contains(&event) {
            out.push(event);
        }
    }
    ok.then_some(out)
}

fn event_names() -> Vec<&'static str> {
    TriggerEvent::ALL.iter().map(|e| e.name()).collect()
}

fn known_machines(r: &mut Reader, e: &Entry, names: &[&str]) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, loc) in r.strings(e)? {
        if !names.contains(&name.as_str()) {
            ok = false;
            let help = match r.suggest(&name, names) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("machines: {}", listing(names)),
            };
            r.error(
                &loc,
                format!(
                    "the trigger names `{}`, which is not a machine in the Boxfile",
                    shown(&name)
                ),
                Some(help),
            );
        }
        out.push(name);
    }
    ok.then_some(out)
}
