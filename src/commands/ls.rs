//! `box ls`: every environment of yours, wherever it runs, from any folder.
//!
//! Local environments come from the host-wide index (`index.rs`), their
//! state read now from each project's `.box/` (no QEMU query); cloud ones
//! from box's tags on every configured CloudStack profile and project
//! (see `environments.rs` for the calls). A cloud VM whose environment is in
//! the index is shown once, with the cloud's state and the local folder.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use cloudstack::VirtualMachine;
use serde::Serialize;

use crate::cli::LsArgs;
use crate::error::ExitStatus;
use crate::index::{self, Index};
use crate::provider::ProviderKind;
use crate::state::{MachineState, SshTarget, Status};

use super::environments::{self, LocalEnv};
use super::Settings;

/// One machine of one environment: `box ls --json` prints an array of these.
/// The field names are stable (documented in the README).
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    /// The Boxfile's project name (`box:project` on the cloud).
    pub project: String,
    /// The environment id (`box:env`), for `box destroy --env`.
    pub env: String,
    pub machine: String,
    pub provider: ProviderKind,
    /// `running`, `stopped`, `dead`... for local machines as `box status`
    /// says it; the cloud's VM state in lower case for cloud ones.
    pub state: String,
    /// `box:owner`: the user who made it.
    pub owner: String,
    /// When it was made, RFC 3339 UTC, if known.
    pub created: Option<String>,
    /// Seconds since `created`.
    pub age_secs: Option<u64>,
    /// Seconds without an SSH session, once the guest reports it.
    pub idle_secs: Option<u64>,
    /// When it stops itself (`box:expires`), as the tag gives it.
    pub expires: Option<String>,
    /// `expires` is in the past.
    pub expired: bool,
    /// The project folder, when this host's index knows it.
    pub folder: Option<PathBuf>,
    /// The index names a folder (or a `.box/`) that is gone.
    pub stale: bool,
    /// The CloudStack profile it was found with.
    pub profile: Option<String>,
    /// The CloudStack project it lives in (none: the account's own).
    pub cloudstack_project: Option<String>,
    /// The teammates `box share` gave access to (`box:shared`).
    pub shared_with: Vec<String>,
}

pub(crate) async fn run(g: &Settings, args: LsArgs) -> anyhow::Result<ExitStatus> {
    let index = Index::new(&g.paths);
    let locals = environments::local_envs(&index)?;
    for l in &locals {
        if let Some(reason) = &l.unreadable {
            g.printer.warn(&format!(
                "the state of {} cannot be read: {reason}",
                l.root().display()
            ));
        }
    }
    if args.prune {
        let stale = environments::stale_roots(&locals);
        index.forget(&stale)?;
        for root in &stale {
            g.printer
                .info(&format!("forgot {} (its state is gone)", root.display()));
        }
        if stale.is_empty() {
            g.printer.info("no stale environment to forget");
        }
        return Ok(ExitStatus::Success);
    }

    let me = crate::project::local_user();
    let now = index::now();
    let mut rows = Vec::new();
    let mut failed = false;
    // A VM seen through two accounts (members of one project) is one row.
    let mut seen = std::collections::BTreeSet::new();
    for account in environments::accounts(g) {
        let scopes = match environments::scopes(&account).await {
            Ok(s) => s,
            Err(e) => {
                failed = true;
                g.printer.warn(&format!(
                    "profile `{}` could not be listed: {e:#}",
                    account.profile
                ));
                continue;
            }
        };
        for scope in &scopes {
            let owner = (!args.all).then_some(me.as_str());
            match environments::cloud_vms(&account, scope, owner, None).await {
                Ok(vms) => rows.extend(
                    vms.iter()
                        .filter(|vm| seen.insert((account.endpoint.clone(), vm.id.clone())))
                        .map(|vm| cloud_row(vm, &account.profile, scope.name(), now)),
                ),
                Err(e) => {
                    failed = true;
                    g.printer.warn(&format!(
                        "profile `{}`{} could not be listed: {e:#}",
                        account.profile,
                        scope
                            .name()
                            .map(|n| format!(", project `{n}`"))
                            .unwrap_or_default()
                    ));
                }
            }
        }
    }
    merge_local(&mut rows, &locals, &me, now);
    let targets = idle_targets(&rows, &locals, &me);
    fill_idle(&mut rows, &targets);
    rows.sort_by(|a, b| {
        (&a.project, &a.env, &a.machine, &a.profile)
            .cmp(&(&b.project, &b.env, &b.machine, &b.profile))
    });

    if args.json {
        g.printer.data(&serde_json::to_string_pretty(&rows)?);
    } else {
        print_table(g, &rows, args.all);
    }
    Ok(if failed {
        ExitStatus::Partial
    } else {
        ExitStatus::Success
    })
}

fn cloud_row(vm: &VirtualMachine, profile: &str, project: Option<&str>, now: u64) -> Row {
    let tag = |k: &str| vm.tag(k).map(str::to_string);
    let created = vm.created.as_deref().and_then(parse_time);
    let expires = tag("box:expires");
    Row {
        project: tag("box:project").unwrap_or_default(),
        env: tag("box:env").unwrap_or_default(),
        machine: tag("box:machine")
            .or_else(|| vm.name.clone())
            .unwrap_or_else(|| vm.id.clone()),
        provider: ProviderKind::CloudStack,
        state: vm
            .state
            .as_deref()
            .map(str::to_lowercase)
            .unwrap_or_else(|| "unknown".into()),
        owner: tag("box:owner").unwrap_or_default(),
        created: created.map(format_time),
        age_secs: created.map(|c| now.saturating_sub(c)),
        idle_secs: None,
        expired: expires
            .as_deref()
            .and_then(parse_time)
            .is_some_and(|t| t <= now),
        expires,
        folder: None,
        stale: false,
        profile: Some(profile.to_string()),
        cloudstack_project: project.map(str::to_string),
        shared_with: vm
            .tag("box:shared")
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|n| !n.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
    }
}

/// Adds the index's machines: a cloud row of the same environment and
/// machine gets the folder; any other machine gets a row of its own.
fn merge_local(rows: &mut Vec<Row>, locals: &[LocalEnv], me: &str, now: u64) {
    for local in locals {
        let e = &local.entry;
        for indexed in &e.machines {
            if let Some(r) = rows.iter_mut().find(|r| {
                r.env == e.env && r.machine == indexed.name && r.provider == indexed.provider
            }) {
                r.folder = Some(e.root.clone());
                r.stale = local.stale;
                continue;
            }
            // Read now from `.box/`; the index's copy when the state is gone.
            let live = local.machines.iter().find(|m| m.name == indexed.name);
            let state = match (live, &local.unreadable) {
                (Some(m), _) => m.status.to_string(),
                (None, Some(_)) => format!("{} (state unreadable)", indexed.status),
                (None, None) if local.stale => format!("{} (stale)", indexed.status),
                // Destroyed since the index was written.
                (None, None) => continue,
            };
            rows.push(Row {
                project: e.project.clone(),
                env: e.env.clone(),
                machine: indexed.name.clone(),
                provider: indexed.provider,
                state,
                owner: me.to_string(),
                created: Some(format_time(indexed.created)),
                age_secs: Some(now.saturating_sub(indexed.created)),
                idle_secs: None,
                expires: live.and_then(expires_at).map(crate::idle::timestamp),
                expired: live.and_then(expires_at).is_some_and(|at| at <= now),
                folder: Some(e.root.clone()),
                stale: local.stale,
                profile: None,
                cloudstack_project: None,
                shared_with: live.map(shared_with).unwrap_or_default(),
            });
        }
        // Machines with state the index has not seen yet (state written
        // by an older box).
        for m in &local.machines {
            if e.machines.iter().any(|x| x.name == m.name) {
                continue;
            }
            rows.push(Row {
                project: e.project.clone(),
                env: e.env.clone(),
                machine: m.name.clone(),
                provider: m.provider.kind(),
                state: m.status.to_string(),
                owner: me.to_string(),
                created: None,
                age_secs: None,
                idle_secs: None,
                expires: expires_at(m).map(crate::idle::timestamp),
                expired: expires_at(m).is_some_and(|at| at <= now),
                folder: Some(e.root.clone()),
                stale: false,
                profile: None,
                cloudstack_project: None,
                shared_with: shared_with(m),
            });
        }
    }
}

/// The rows whose idle time can be asked for: your own running machines
/// with an idle watcher (`stops` set) whose project state on this host
/// knows their SSH target, by row index.
fn idle_targets(rows: &[Row], locals: &[LocalEnv], me: &str) -> Vec<(usize, SshTarget)> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.owner == me)
        .filter_map(|(i, r)| {
            let folder = r.folder.as_deref()?;
            let m = locals
                .iter()
                .filter(|l| l.root() == folder && l.entry.env == r.env)
                .flat_map(|l| &l.machines)
                .find(|m| m.name == r.machine && m.provider.kind() == r.provider)?;
            let target = m.ssh.clone()?;
            (m.status == Status::Running && m.stops.is_some()).then_some((i, target))
        })
        .collect()
}

/// How long `box ls` waits, in all, for the guests' idle times.
const IDLE_PROBE_BOUND: Duration = Duration::from_secs(3);

/// Reads each target's idle time over SSH, all at once; a guest that has
/// not answered within `IDLE_PROBE_BOUND` keeps `-`. The probes run on
/// threads of their own so one hung connection cannot hold up `box ls`:
/// the process exits without waiting for them.
fn fill_idle(rows: &mut [Row], targets: &[(usize, SshTarget)]) {
    if targets.is_empty() {
        return;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    for (i, target) in targets.iter().cloned() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let _ = tx.send((i, crate::idle::probe(&target)));
        });
    }
    drop(tx);
    let deadline = Instant::now() + IDLE_PROBE_BOUND;
    for _ in targets {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok((i, idle)) => rows[i].idle_secs = idle,
            Err(_) => break,
        }
    }
}

/// When the machine's current run expires, as its state records it.
fn expires_at(m: &MachineState) -> Option<u64> {
    m.stops.and_then(|s| s.expires_at)
}

/// The teammates `box share` gave access to, as its state records them.
fn shared_with(m: &MachineState) -> Vec<String> {
    m.shared.iter().map(|s| s.name.clone()).collect()
}

/// CloudStack's `2021-10-04T09:24:38+0000`, or RFC 3339, as Unix seconds.
pub fn parse_time(text: &str) -> Option<u64> {
    use time::format_description::well_known::Rfc3339;
    use time::OffsetDateTime;
    let cloudstack = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory][offset_minute]"
    );
    OffsetDateTime::parse(text, cloudstack)
        .or_else(|_| OffsetDateTime::parse(text, &Rfc3339))
        .ok()
        .and_then(|t| u64::try_from(t.unix_timestamp()).ok())
}

fn format_time(secs: u64) -> String {
    crate::clock::format_utc(
        secs,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// `45s`, `12m`, `3h`, `2d`: the largest whole unit.
fn short_duration(secs: u64) -> String {
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// With `all`, a SHARED column says who else may log in.
fn print_table(g: &Settings, rows: &[Row], all: bool) {
    if rows.is_empty() {
        g.printer.info("no environment found");
        return;
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let expires = match (&r.expires, r.expired) {
                (Some(e), true) => format!("{e} (expired)"),
                (Some(e), false) => e.clone(),
                (None, _) => "-".into(),
            };
            let mut place = match (&r.folder, &r.profile) {
                (Some(f), _) if r.stale => format!("{} (gone)", f.display()),
                (Some(f), _) => f.display().to_string(),
                (None, Some(p)) => format!("profile {p}"),
                (None, None) => "-".into(),
            };
            if let Some(cp) = &r.cloudstack_project {
                place.push_str(&format!(" [project {cp}]"));
            }
            let mut row = vec![
                r.project.clone(),
                r.env.clone(),
                r.machine.clone(),
                r.provider.to_string(),
                r.state.clone(),
                r.owner.clone(),
                r.age_secs.map(short_duration).unwrap_or_else(|| "-".into()),
                r.idle_secs
                    .map(short_duration)
                    .unwrap_or_else(|| "-".into()),
                expires,
            ];
            if all {
                row.push(if r.shared_with.is_empty() {
                    "-".into()
                } else {
                    r.shared_with.join(",")
                });
            }
            row.push(place);
            row
        })
        .collect();
    let mut header = vec![
        "PROJECT", "ENV", "MACHINE", "PROVIDER", "STATE", "OWNER", "AGE", "IDLE", "EXPIRES",
    ];
    if all {
        header.push("SHARED");
    }
    header.push("WHERE");
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cols: Vec<&str>| {
        let mut out = String::new();
        for (i, (c, w)) in cols.iter().zip(&widths).enumerate() {
            if i + 1 == cols.len() {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<w$}  "));
            }
        }
        out
    };
    g.printer.data(&line(header));
    for row in &cells {
        g.printer
            .data(&line(row.iter().map(String::as_str).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cloudstack_and_rfc3339_times_read_alike() {
        assert_eq!(parse_time("2024-01-01T00:00:00+0000"), Some(1_704_067_200));
        assert_eq!(parse_time("2024-01-01T01:00:00+0100"), Some(1_704_067_200));
        assert_eq!(parse_time("2024-01-01T00:00:00Z"), Some(1_704_067_200));
        assert_eq!(parse_time("yesterday"), None);
        assert_eq!(format_time(1_704_067_200), "2024-01-01T00:00:00Z");
    }

    fn target(port: u16) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: "box".into(),
            identity_file: PathBuf::from("/p/.box/id"),
            host_key: "ssh-ed25519 AAAA".into(),
        }
    }

    fn local_row(env: &str, machine: &str, owner: &str, folder: &str) -> Row {
        Row {
            project: "p".into(),
            env: env.into(),
            machine: machine.into(),
            provider: ProviderKind::Local,
            state: "running".into(),
            owner: owner.into(),
            created: None,
            age_secs: None,
            idle_secs: None,
            expires: None,
            expired: false,
            folder: Some(PathBuf::from(folder)),
            stale: false,
            profile: None,
            cloudstack_project: None,
            shared_with: vec![],
        }
    }

    #[test]
    fn idle_is_asked_only_of_own_running_watched_machines_with_a_known_target() {
        let machine = |name: &str, status: Status, watched: bool, port: Option<u16>| {
            let mut m = MachineState::new(name, ProviderKind::Local);
            m.status = status;
            m.stops = watched.then(crate::idle::Stops::default);
            m.ssh = port.map(target);
            m
        };
        let env = LocalEnv {
            entry: crate::index::Entry {
                root: PathBuf::from("/p"),
                env: "e1".into(),
                project: "p".into(),
                machines: vec![],
            },
            stale: false,
            unreadable: None,
            machines: vec![
                machine("watched", Status::Running, true, Some(2201)),
                machine("unwatched", Status::Running, false, Some(2202)),
                machine("halted", Status::Stopped, true, Some(2203)),
                machine("no-target", Status::Running, true, None),
            ],
        };
        let rows = vec![
            local_row("e1", "watched", "ana", "/p"),
            local_row("e1", "unwatched", "ana", "/p"),
            local_row("e1", "halted", "ana", "/p"),
            local_row("e1", "no-target", "ana", "/p"),
            // A teammate's machine of the same name, or one in a folder
            // this host does not know, has no target here.
            local_row("e1", "watched", "bo", "/p"),
            local_row("e1", "watched", "ana", "/elsewhere"),
            local_row("e2", "watched", "ana", "/p"),
        ];
        assert_eq!(
            idle_targets(&rows, std::slice::from_ref(&env), "ana"),
            vec![(0, target(2201))]
        );
    }

    #[test]
    fn an_unreachable_guest_leaves_idle_unknown() {
        // A port nothing listens on: the probe fails, the row keeps `-`.
        let free = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(9);
        let mut rows = vec![local_row("e1", "watched", "ana", "/p")];
        rows[0].idle_secs = Some(1);
        fill_idle(&mut rows, &[(0, target(free))]);
        assert_eq!(rows[0].idle_secs, None);
    }

    #[test]
    fn durations_show_their_largest_unit() {
        assert_eq!(short_duration(59), "59s");
        assert_eq!(short_duration(61), "1m");
        assert_eq!(short_duration(7200), "2h");
        assert_eq!(short_duration(3 * 86_400 + 5), "3d");
    }
}
