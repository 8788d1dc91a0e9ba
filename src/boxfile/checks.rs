//! Checks between machines: duplicate names, `depends_on` that is unknown or
//! cyclic, more than one primary, and host ports forwarded twice.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::diagnostic::shown;
use super::model::{Machine, Project};
use super::reader::{listing, Loc, Reader};
use super::resolve::MachineSpans;
use crate::provider::ProviderKind;

pub(crate) fn run(r: &mut Reader, project: &Project, spans: &[MachineSpans]) {
    let machines = &project.machines;
    duplicate_names(r, machines, spans);
    dependencies(r, machines, spans);
    primaries(r, machines, spans);
    ports(r, machines, spans);
    one_tenancy(r, machines, spans);
}

/// Every CloudStack machine lives in the same project, domain and account:
/// the environment's shared resources (key pair, security group, address)
/// and its adoption by tag are per project.
fn one_tenancy(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let tenancy = |m: &Machine| {
        let cs = &m.cloudstack;
        (cs.project.clone(), cs.domain.clone(), cs.account.clone())
    };
    let mut on_cloud = machines
        .iter()
        .zip(spans)
        .filter(|(m, _)| m.provider == ProviderKind::CloudStack);
    let Some((first, first_spans)) = on_cloud.next() else {
        return;
    };
    let wanted = tenancy(first);
    for (m, s) in on_cloud {
        if tenancy(m) == wanted {
            continue;
        }
        let Some(loc) = s.tenancy.as_ref().or(first_spans.tenancy.as_ref()) else {
            continue;
        };
        let shown_of = |t: &(Option<String>, Option<String>, Option<String>)| {
            let parts: Vec<String> = [("project", &t.0), ("domain", &t.1), ("account", &t.2)]
                .iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} `{}`", shown(v))))
                .collect();
            if parts.is_empty() {
                "the account of the credentials".to_string()
            } else {
                parts.join(", ")
            }
        };
        r.error(
            loc,
            format!(
                "machine `{}` is in {} but machine `{}` is in {}: all CloudStack machines of a Boxfile live in one project, domain and account",
                shown(&m.name),
                shown_of(&tenancy(m)),
                shown(&first.name),
                shown_of(&wanted)
            ),
            Some("set `project`, `domain` and `account` under [cloudstack] only".into()),
        );
    }
}

fn duplicate_names(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut first: HashMap<&str, &Loc> = HashMap::new();
    for (m, s) in machines.iter().zip(spans) {
        let Some(loc) = &s.name else { continue };
        match first.get(m.name.as_str()) {
            Some(prev) => {
                let line = r.line(prev);
                let name = shown(&m.name);
                r.error(
                    loc,
                    format!("duplicate machine name `{name}`"),
                    Some(format!("the first `{name}` is on line {line}")),
                );
            }
            None => {
                first.insert(&m.name, loc);
            }
        }
    }
}

fn dependencies(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    // Named machines, first occurrence of each name.
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    for (i, (m, s)) in machines.iter().zip(spans).enumerate() {
        if s.name.is_some() && !index.contains_key(m.name.as_str()) {
            index.insert(&m.name, i);
            names.push(&m.name);
        }
    }
    // Edges that point at a known machine, with where they were written.
    let mut edges: Vec<Vec<(usize, &Loc)>> = vec![Vec::new(); machines.len()];
    for (i, (m, s)) in machines.iter().zip(spans).enumerate() {
        for (dep, loc) in m.depends_on.iter().zip(&s.depends_on) {
            match index.get(dep.as_str()) {
                Some(&j) => edges[i].push((j, loc)),
                None => {
                    let help = match r.suggest(dep, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("machines: {}", listing(&names)),
                    };
                    r.error(
                        loc,
                        format!(
                            "`{}` depends on `{}`, which is not a machine in the Boxfile",
                            shown(&m.name),
                            shown(dep)
                        ),
                        Some(help),
                    );
                }
            }
        }
    }
    for (cycle, loc) in cycles(&edges) {
        let mut path: Vec<String> = cycle
            .iter()
            .map(|&i| shown(&machines[i].name).into_owned())
            .collect();
        // A cycle through thousands of machines is named by its ends.
        if path.len() > 12 {
            let hidden = path.len() - 10;
            path.splice(5..path.len() - 5, [format!("({hidden} more)")]);
        }
        r.error(
            loc,
            format!("`depends_on` forms a cycle: {}", path.join(" -> ")),
            Some(
                "machines are brought up after the ones they depend on, so a cycle can never start"
                    .into(),
            ),
        );
    }
}

/// Every cycle closed by a back edge of a depth-first search, as the
/// machines along it (first and last equal) and the edge that closes it.
/// Iterative: a `depends_on` chain of 50,000 machines would overflow the
/// stack of a recursive search.
fn cycles<'l>(edges: &[Vec<(usize, &'l Loc)>]) -> Vec<(Vec<usize>, &'l Loc)> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark = vec![Mark::New; edges.len()];
    // Where each active machine sits on the path, to cut the cycle out.
    let mut depth = vec![0; edges.len()];
    let mut found = Vec::new();
    for root in 0..edges.len() {
        if mark[root] != Mark::New {
            continue;
        }
        // The path from `root`, each machine with the next edge to follow.
        let mut path: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = Mark::Active;
        while let Some((i, next)) = path.last_mut() {
            let i = *i;
            let Some(&(j, loc)) = edges[i].get(*next) else {
                mark[i] = Mark::Done;
                path.pop();
                continue;
            };
            *next += 1;
            match mark[j] {
                Mark::New => {
                    mark[j] = Mark::Active;
                    depth[j] = path.len();
                    path.push((j, 0));
                }
                Mark::Active => {
                    let mut cycle: Vec<usize> = path[depth[j]..].iter().map(|&(k, _)| k).collect();
                    cycle.push(j);
                    found.push((cycle, loc));
                }
                Mark::Done => {}
            }
        }
    }
    found
}

fn primaries(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut first: Option<(&str, &Loc)> = None;
    for (m, s) in machines.iter().zip(spans) {
        let Some(loc) = &s.primary else { continue };
        match first {
            Some((name, prev)) => {
                let line = r.line(prev);
                let name = shown(name);
                r.error(
                    loc,
                    format!(
                        "more than one primary machine (`{name}` and `{}`)",
                        shown(&m.name)
                    ),
                    Some(format!("`{name}` is already primary (line {line}); keep `primary = true` on one machine")),
                );
            }
            None => first = Some((&m.name, loc)),
        }
    }
}

/// Two forwards of one host port collide on the local host; on CloudStack
/// only when both machines share a fixed public address (each `auto`
/// machine gets its own).
fn ports(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut seen: HashMap<(String, u16, String), (usize, &Loc)> = HashMap::new();
    for (i, (m, s)) in machines.iter().zip(spans).enumerate() {
        let host = match m.provider {
            ProviderKind::Local => "local".to_string(),
            ProviderKind::CloudStack => match m.cloudstack.public_ip.as_deref() {
                Some(ip) if ip != "auto" => format!("cloudstack {ip}"),
                _ => format!("cloudstack machine {i}"),
            },
        };
        for (p, loc) in m.ports.iter().zip(&s.ports) {
            // A port that may move to a free one never collides.
            if p.auto_correct {
                continue;
            }
            let address = p.host_ip.unwrap_or(Ipv4Addr::LOCALHOST.into());
            let key = (format!("{host} {address}"), p.host, p.protocol.clone());
            match seen.get(&key) {
                Some(&(j, prev)) => {
                    let line = r.line(prev);
                    let message = if j == i {
                        format!(
                            "host port {}/{} is forwarded twice by `{}`",
                            p.host,
                            p.protocol,
                            shown(&m.name)
                        )
                    } else {
                        format!(
                            "host port {}/{} is already forwarded by machine `{}`",
                            p.host,
                            p.protocol,
                            shown(&machines[j].name)
                        )
                    };
                    r.error(
                        loc,
                        message,
                        Some(format!(
                            "the first forward is on line {line}; pick another `host` port"
                        )),
                    );
                }
                None => {
                    seen.insert(key, (i, loc));
                }
            }
        }
    }
}
