//! Checks between machines: duplicate names, `depends_on` that is unknown or
//! cyclic, more than one primary, and host ports forwarded twice.

use std::collections::HashMap;

use super::model::{Machine, Project};
use super::reader::{suggest, Loc, Reader};
use super::resolve::MachineSpans;
use crate::state::ProviderKind;

pub(crate) fn run(r: &mut Reader, project: &Project, spans: &[MachineSpans]) {
    let machines = &project.machines;
    duplicate_names(r, machines, spans);
    dependencies(r, machines, spans);
    primaries(r, machines, spans);
    ports(r, machines, spans);
}

fn line_of(r: &Reader, loc: &Loc) -> usize {
    r.sources
        .diagnostic(loc.file, loc.span.clone(), String::new(), None)
        .line
}

fn duplicate_names(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut first: HashMap<&str, &Loc> = HashMap::new();
    for (m, s) in machines.iter().zip(spans) {
        let Some(loc) = &s.name else { continue };
        match first.get(m.name.as_str()) {
            Some(prev) => {
                let line = line_of(r, prev);
                r.error(
                    loc,
                    format!("duplicate machine name `{}`", m.name),
                    Some(format!("the first `{}` is on line {line}", m.name)),
                );
            }
            None => {
                first.insert(&m.name, loc);
            }
        }
    }
}

fn dependencies(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut names: Vec<&str> = Vec::new();
    for (m, s) in machines.iter().zip(spans) {
        if s.name.is_some() && !names.contains(&m.name.as_str()) {
            names.push(&m.name);
        }
    }
    let index: HashMap<&str, usize> = machines
        .iter()
        .enumerate()
        .rev()
        .map(|(i, m)| (m.name.as_str(), i))
        .collect();
    // Edges that point at a known machine, with where they were written.
    let mut edges: Vec<Vec<(usize, &Loc)>> = vec![Vec::new(); machines.len()];
    for (i, (m, s)) in machines.iter().zip(spans).enumerate() {
        for (dep, loc) in m.depends_on.iter().zip(&s.depends_on) {
            match index.get(dep.as_str()) {
                Some(&j) if names.contains(&dep.as_str()) => edges[i].push((j, loc)),
                _ => {
                    let help = match suggest(dep, &names) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!("machines: {}", names.join(", ")),
                    };
                    r.error(
                        loc,
                        format!(
                            "`{}` depends on `{dep}`, which is not a machine in the Boxfile",
                            m.name
                        ),
                        Some(help),
                    );
                }
            }
        }
    }
    // Depth-first search; a back edge closes a cycle, reported once.
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    fn visit(
        i: usize,
        edges: &[Vec<(usize, &Loc)>],
        mark: &mut [Mark],
        stack: &mut Vec<usize>,
        cycles: &mut Vec<(Vec<usize>, Loc)>,
    ) {
        mark[i] = Mark::Active;
        stack.push(i);
        for &(j, loc) in &edges[i] {
            match mark[j] {
                Mark::New => visit(j, edges, mark, stack, cycles),
                Mark::Active => {
                    let from = stack.iter().position(|&k| k == j).unwrap_or(0);
                    let mut cycle = stack[from..].to_vec();
                    cycle.push(j);
                    cycles.push((cycle, loc.clone()));
                }
                Mark::Done => {}
            }
        }
        stack.pop();
        mark[i] = Mark::Done;
    }
    let mut mark = vec![Mark::New; machines.len()];
    let mut cycles = Vec::new();
    for i in 0..machines.len() {
        if mark[i] == Mark::New {
            visit(i, &edges, &mut mark, &mut Vec::new(), &mut cycles);
        }
    }
    for (cycle, loc) in cycles {
        let path: Vec<&str> = cycle.iter().map(|&i| machines[i].name.as_str()).collect();
        r.error(
            &loc,
            format!("`depends_on` forms a cycle: {}", path.join(" -> ")),
            Some(
                "machines are brought up after the ones they depend on, so a cycle can never start"
                    .into(),
            ),
        );
    }
}

fn primaries(r: &mut Reader, machines: &[Machine], spans: &[MachineSpans]) {
    let mut first: Option<(&str, &Loc)> = None;
    for (m, s) in machines.iter().zip(spans) {
        let Some(loc) = &s.primary else { continue };
        match first {
            Some((name, prev)) => {
                let line = line_of(r, prev);
                r.error(
                    loc,
                    format!("more than one primary machine (`{name}` and `{}`)", m.name),
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
            let key = (host.clone(), p.host, p.protocol.clone());
            match seen.get(&key) {
                Some(&(j, prev)) => {
                    let line = line_of(r, prev);
                    let message = if j == i {
                        format!(
                            "host port {}/{} is forwarded twice by `{}`",
                            p.host, p.protocol, m.name
                        )
                    } else {
                        format!(
                            "host port {}/{} is already forwarded by machine `{}`",
                            p.host, p.protocol, machines[j].name
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
