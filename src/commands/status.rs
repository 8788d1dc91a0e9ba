//! `box status`: what box knows about each machine.
//!
//! Answers from `.box/` alone (no network, no provider call), so it is
//! instant; `--refresh` asks each provider once for all its machines.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::ExitStatus;
use crate::provider::ProviderKind;
use crate::state::{MachineState, Status};

use super::providers::Providers;
use super::workspace::Workspace;
use super::Settings;

#[derive(Serialize)]
struct Row {
    name: String,
    provider: ProviderKind,
    status: Status,
    ssh: Option<String>,
    ports: Vec<String>,
    /// False for a machine that has state but is no longer in the Boxfile.
    in_boxfile: bool,
    /// When the machine stops itself, e.g. `after 2h idle, expires in 5h40m`.
    #[serde(skip_serializing_if = "Option::is_none")]
    stops: Option<String>,
    /// Unix seconds at which the current run expires.
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<u64>,
    /// Seconds the guest has been idle, as its watcher says (`--refresh`).
    #[serde(skip_serializing_if = "Option::is_none")]
    idle_secs: Option<u64>,
    /// A suspended machine's saved state on disk, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    saved_state_bytes: Option<u64>,
}

pub(crate) async fn run(g: &Settings, args: StatusArgs) -> anyhow::Result<ExitStatus> {
    let mut ws = Workspace::load(g)?;
    let selected: Vec<String> = ws
        .select(&args.machines)?
        .iter()
        .map(|m| m.name.clone())
        .collect();
    let mut states: BTreeMap<String, MachineState> = ws
        .ctx
        .store
        .machines()?
        .into_iter()
        .map(|s| (s.name.clone(), s))
        .collect();

    let mut idle = BTreeMap::new();
    if args.refresh {
        ws.lock()?;
        states = refresh(&ws, states).await?;
        idle = idle_times(&states).await;
    } else {
        for s in states.values_mut() {
            crate::provider::local::observe(&ws.ctx.store, s);
        }
    }

    let mut rows = Vec::new();
    for name in &selected {
        let machine = ws.machine(name)?;
        rows.push(match states.remove(name) {
            Some(s) => {
                let idle = idle.get(name).copied();
                row(s, true, idle)
            }
            None => Row {
                name: name.clone(),
                provider: machine.provider,
                status: Status::NotCreated,
                ssh: None,
                ports: Vec::new(),
                in_boxfile: true,
                stops: None,
                expires_at: None,
                idle_secs: None,
                saved_state_bytes: None,
            },
        });
    }
    if args.machines.is_empty() {
        // Machines removed from the Boxfile still exist until destroyed.
        rows.extend(states.into_values().map(|s| row(s, false, None)));
    }

    if args.json {
        g.printer.data(&serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(g, &rows);
    }
    Ok(ExitStatus::Success)
}

/// The idle time of each running machine with a watcher, read over SSH
/// (machines in parallel; one that does not answer quickly has none).
async fn idle_times(states: &BTreeMap<String, MachineState>) -> BTreeMap<String, u64> {
    let probes = states.values().filter_map(|s| {
        let target = s
            .ssh
            .clone()
            .filter(|_| s.status == Status::Running && s.stops.is_some())?;
        let name = s.name.clone();
        Some(tokio::task::spawn_blocking(move || {
            (name, crate::idle::probe(&target))
        }))
    });
    futures_util::future::join_all(probes)
        .await
        .into_iter()
        .filter_map(|r| match r {
            Ok((name, Some(idle))) => Some((name, idle)),
            _ => None,
        })
        .collect()
}

async fn refresh(
    ws: &Workspace,
    states: BTreeMap<String, MachineState>,
) -> anyhow::Result<BTreeMap<String, MachineState>> {
    let ctx = ws.context();
    let mut by_kind: BTreeMap<ProviderKind, Vec<MachineState>> = BTreeMap::new();
    for s in states.into_values() {
        by_kind.entry(s.provider.kind()).or_default().push(s);
    }
    // A CloudStack project with lost state is found again by tag.
    if ws
        .ctx
        .project
        .machines
        .iter()
        .any(|m| m.provider == ProviderKind::CloudStack)
    {
        by_kind.entry(ProviderKind::CloudStack).or_default();
    }
    let mut providers = Providers::default();
    let mut out = BTreeMap::new();
    for (kind, states) in by_kind {
        let provider = providers.open(kind, &ctx).await?;
        for s in provider.refresh(states).await? {
            ws.ctx.store.save_machine(&s)?;
            out.insert(s.name.clone(), s);
        }
    }
    Ok(out)
}

fn row(s: MachineState, in_boxfile: bool, idle: Option<u64>) -> Row {
    let running = s.status == Status::Running;
    let stops = s.stops.filter(|_| running);
    Row {
        stops: stops.and_then(|st| crate::idle::describe(&st, idle, crate::idle::now())),
        expires_at: stops.and_then(|st| st.expires_at),
        idle_secs: idle.filter(|_| running),
        saved_state_bytes: crate::provider::local::saved_state_bytes(&s)
            .filter(|_| s.status == Status::Suspended),
        ssh: s
            .ssh
            .as_ref()
            .filter(|_| s.status == Status::Running)
            .map(|t| format!("{}@{}:{}", t.user, t.host, t.port)),
        ports: s
            .ports
            .iter()
            .map(|p| match p.wanted {
                // auto_correct moved it: say from where.
                Some(wanted) => {
                    format!("{}:{}->{} ({wanted} was taken)", p.address, p.host, p.guest)
                }
                None => format!("{}:{}->{}", p.address, p.host, p.guest),
            })
            .collect(),
        name: s.name,
        provider: s.provider.kind(),
        status: s.status,
        in_boxfile,
    }
}

fn print_table(g: &Settings, rows: &[Row]) {
    let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(7).max(7);
    g.printer.data(&format!(
        "{:<width$}  {:<10}  {:<11}  SSH",
        "MACHINE", "PROVIDER", "STATE"
    ));
    for r in rows {
        let mut state = r.status.to_string();
        if !r.in_boxfile {
            state.push_str(" (not in Boxfile)");
        }
        let mut ssh = r.ssh.clone().unwrap_or_else(|| "-".into());
        if !r.ports.is_empty() {
            ssh.push_str(&format!("  ports {}", r.ports.join(", ")));
        }
        if let Some(bytes) = r.saved_state_bytes {
            ssh.push_str(&format!(
                "  saved state {}",
                crate::sync::human_bytes(bytes)
            ));
        }
        if let Some(stops) = &r.stops {
            ssh.push_str(&format!("  stops {stops}"));
        }
        g.printer.data(&format!(
            "{:<width$}  {:<10}  {:<11}  {}",
            r.name,
            r.provider.to_string(),
            state,
            ssh
        ));
    }
}
