//! From the merged, spanned tree to the resolved [`Project`]: every key is
//! type-checked, `[defaults]` is inherited, built-in defaults are filled in
//! and paths are made absolute. Problems local to one value are reported
//! here; problems between machines are left to `checks`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};

use super::diagnostic::shown;
use super::host_path::{self, Escape};
use super::model::*;
use super::node::{Entry, FileId, Node};
use super::reader::{Loc, Reader};
use super::schema;
use crate::provider::ProviderKind;

pub(crate) const DEFAULT_BOX: &str = "debian-12";
pub(crate) const DEFAULT_CPUS: u32 = 1;
pub(crate) const DEFAULT_MEMORY: u32 = 1024;
pub(crate) const DEFAULT_USER: &str = "box";

/// Where the values that cross-machine checks need came from.
#[derive(Debug, Default)]
pub(crate) struct MachineSpans {
    pub name: Option<Loc>,
    pub primary: Option<Loc>,
    pub depends_on: Vec<Loc>,
    /// One per port in `Machine::ports`.
    pub ports: Vec<Loc>,
    /// The machine's own `project`, `domain` or `account`, if it sets one.
    pub tenancy: Option<Loc>,
}

/// `[defaults]`, read once and inherited by every machine.
#[derive(Default)]
struct Defaults {
    box_name: Option<String>,
    cpus: Option<u32>,
    memory: Option<u32>,
    user: Option<String>,
    accel: Option<Accel>,
    disk_size: Option<u32>,
    provider: Option<ProviderKind>,
    /// `Some(None)` is `"off"`.
    idle_stop: Option<Option<u64>>,
    expires: Option<Option<u64>>,
    forward_agent: Option<bool>,
    auto_correct: Option<bool>,
}

pub(crate) fn project(
    r: &mut Reader,
    root_node: &Node,
    root: &Path,
) -> (Project, Vec<MachineSpans>) {
    let entries = r
        .table(root_node, "the Boxfile", &schema::TOP)
        .unwrap_or(&[]);
    let get = |k: &str| entries.iter().find(|e| e.key == k);

    let mut name = default_project_name(root);
    let mut project_provider = None;
    if let Some(e) = get("project") {
        if let Some(t) = r.table(&e.value, "[project]", &schema::PROJECT) {
            for e in t {
                match e.key.as_str() {
                    "name" => {
                        if let Some(n) = r.string(e) {
                            if let Err(why) = check_host_name(&n) {
                                r.error(
                                    &e.value.loc(),
                                    format!("invalid project name `{}`: {why}", shown(&n)),
                                    Some(HOST_NAME_HELP.into()),
                                );
                            }
                            name = n;
                        }
                    }
                    "provider" => project_provider = provider(r, e),
                    _ => {}
                }
            }
        }
    }

    let mut defaults = Defaults::default();
    if let Some(e) = get("defaults") {
        if let Some(t) = r.table(&e.value, "[defaults]", &schema::DEFAULTS) {
            for e in t {
                match e.key.as_str() {
                    "box" => defaults.box_name = box_name(r, e),
                    "cpus" => defaults.cpus = r.u32(e, 1),
                    "memory" => defaults.memory = r.u32(e, 1),
                    "user" => defaults.user = user(r, e),
                    "accel" => defaults.accel = accel(r, e),
                    "disk_size" => defaults.disk_size = r.u32(e, 1),
                    "provider" => defaults.provider = provider(r, e),
                    "idle_stop" => defaults.idle_stop = duration(r, e),
                    "expires" => defaults.expires = duration(r, e),
                    "forward_agent" => defaults.forward_agent = r.bool(e),
                    "auto_correct" => defaults.auto_correct = r.bool(e),
                    _ => {}
                }
            }
        }
    }
    let default_provider = defaults.provider.or(project_provider).unwrap_or_default();

    let mut local = LocalSettings::default();
    if let Some(e) = get("local") {
        if let Some(t) = r.table(&e.value, "[local]", &schema::LOCAL) {
            for e in t {
                if e.key == "isolated" {
                    local.isolated = r.bool(e).unwrap_or(false);
                }
            }
        }
    }

    let cloudstack = match get("cloudstack") {
        Some(e) => {
            let (cs, at) = cloudstack(r, &e.value, "[cloudstack]", root);
            check_pairs(r, &cs, &at);
            cs
        }
        None => CloudStackSettings::default(),
    };

    let mut machines = Vec::new();
    let mut spans = Vec::new();
    match get("machine") {
        Some(e) => {
            let per_machine = inherited_bytes(&defaults, &cloudstack);
            let mut copied = 0usize;
            for node in r.tables(e) {
                copied = copied.saturating_add(per_machine);
                if copied > MAX_INHERITED_BYTES {
                    r.error(
                        &node.loc(),
                        format!(
                            "too many machines for the size of [defaults] and [cloudstack]: each machine gets a copy ({per_machine} bytes), more than {} MiB in all",
                            MAX_INHERITED_BYTES >> 20
                        ),
                        Some("keep long lists out of [cloudstack] or use fewer machines".into()),
                    );
                    break;
                }
                let (m, s) = machine(r, node, root, &defaults, default_provider, &cloudstack);
                machines.push(m);
                spans.push(s);
            }
        }
        None => r.error(
            &root_node.loc(),
            "the Boxfile declares no machine",
            Some("add a `[[machine]]` table with a `name`, or run `box init` for a starter".into()),
        ),
    }

    let triggers = super::trigger::triggers(r, get("trigger"), &machines);
    let project = Project {
        name,
        root: root.to_path_buf(),
        machines,
        local,
        cloudstack,
        triggers,
    };
    (project, spans)
}

/// What the copies of `[defaults]` and `[cloudstack]` in all machines may
/// weigh. Every machine holds its own copy, so a crafted Boxfile with a huge
/// `[cloudstack]` list and many machines would otherwise need gigabytes.
const MAX_INHERITED_BYTES: usize = 64 << 20;

/// About what one machine's copy of `[defaults]` and `[cloudstack]` weighs.
fn inherited_bytes(d: &Defaults, cs: &CloudStackSettings) -> usize {
    const STRING: usize = std::mem::size_of::<String>();
    let string = |s: &Option<String>| s.as_ref().map_or(0, |s| s.len() + STRING);
    let list = |l: &Vec<String>| l.iter().map(|s| s.len() + STRING).sum::<usize>();
    string(&d.box_name)
        + string(&d.user)
        + [
            &cs.profile,
            &cs.zone,
            &cs.template,
            &cs.service_offering,
            &cs.disk_offering,
            &cs.network,
            &cs.public_ip,
            &cs.name_pattern,
        ]
        .into_iter()
        .map(string)
        .sum::<usize>()
        + list(&cs.security_groups)
        + list(&cs.affinity_groups)
        + list(&cs.allow_from)
        + cs.details
            .iter()
            .map(|(k, v)| k.len() + v.len() + 2 * STRING)
            .sum::<usize>()
}

fn machine(
    r: &mut Reader,
    node: &Node,
    root: &Path,
    d: &Defaults,
    default_provider: ProviderKind,
    project_cs: &CloudStackSettings,
) -> (Machine, MachineSpans) {
    let mut spans = MachineSpans::default();
    let mut m = Machine {
        name: String::new(),
        provider: default_provider,
        box_name: d.box_name.clone().unwrap_or_else(|| DEFAULT_BOX.into()),
        box_version: None,
        cpus: d.cpus.unwrap_or(DEFAULT_CPUS),
        memory: d.memory.unwrap_or(DEFAULT_MEMORY),
        user: d.user.clone().unwrap_or_else(|| DEFAULT_USER.into()),
        primary: false,
        autostart: true,
        depends_on: Vec::new(),
        groups: Vec::new(),
        ports: Vec::new(),
        sync: Vec::new(),
        provision: Vec::new(),
        user_data: None,
        accel: d.accel.unwrap_or_default(),
        disk_size: d.disk_size,
        idle_stop: d.idle_stop.flatten(),
        expires: d.expires.flatten(),
        forward_agent: d.forward_agent.unwrap_or(false),
        cloudstack: project_cs.clone(),
    };
    let Some(entries) = r.table(node, "[[machine]]", &schema::MACHINE) else {
        return (m, spans);
    };
    let mut provision_entry = None;
    // Where `type = "mount"` was written: a mount cannot cross a cloud.
    let mut mounts: Vec<Loc> = Vec::new();
    // Port keys that mean something on the local host only.
    let mut local_only_keys: Vec<(Loc, &'static str)> = Vec::new();
    for e in entries {
        match e.key.as_str() {
            "name" => {
                if let Some(n) = r.string(e) {
                    if let Err(why) = check_host_name(&n) {
                        r.error(
                            &e.value.loc(),
                            format!("invalid machine name `{}`: {why}", shown(&n)),
                            Some(HOST_NAME_HELP.into()),
                        );
                    }
                    m.name = n;
                    spans.name = Some(e.value.loc());
                }
            }
            "primary" => {
                m.primary = r.bool(e).unwrap_or(false);
                if m.primary {
                    spans.primary = Some(e.key_loc());
                }
            }
            "autostart" => m.autostart = r.bool(e).unwrap_or(true),
            "provider" => m.provider = provider(r, e).unwrap_or(m.provider),
            "box" => m.box_name = box_name(r, e).unwrap_or(m.box_name),
            "box_version" => m.box_version = box_version(r, e),
            "cpus" => m.cpus = r.u32(e, 1).unwrap_or(m.cpus),
            "memory" => m.memory = r.u32(e, 1).unwrap_or(m.memory),
            "user" => m.user = user(r, e).unwrap_or(m.user),
            "accel" => m.accel = accel(r, e).unwrap_or(m.accel),
            "disk_size" => m.disk_size = r.u32(e, 1).or(m.disk_size),
            "idle_stop" => m.idle_stop = duration(r, e).unwrap_or(m.idle_stop),
            "expires" => m.expires = duration(r, e).unwrap_or(m.expires),
            "forward_agent" => m.forward_agent = r.bool(e).unwrap_or(m.forward_agent),
            "depends_on" => {
                for (dep, loc) in r.strings(e).unwrap_or_default() {
                    m.depends_on.push(dep);
                    spans.depends_on.push(loc);
                }
            }
            "groups" => m.groups = groups(r, e),
            "ports" => {
                for t in r.tables(e) {
                    if let Some((p, local)) = port(r, t, d.auto_correct) {
                        local_only_keys.extend(local);
                        m.ports.push(p);
                        spans.ports.push(t.loc());
                    }
                }
            }
            "sync" => {
                for t in r.tables(e) {
                    if let Some((s, mount_at)) = sync(r, t, root) {
                        mounts.extend(mount_at);
                        m.sync.push(s);
                    }
                }
            }
            "user_data" => m.user_data = user_data(r, e),
            "cloudstack" => {
                let (own, at) = cloudstack(r, &e.value, "[machine.cloudstack]", root);
                m.cloudstack = overlay(project_cs, own);
                check_pairs(r, &m.cloudstack, &at);
                spans.tenancy = at.project.or(at.domain).or(at.account);
            }
            "provision" => provision_entry = Some(e),
            _ => {}
        }
    }
    if spans.name.is_none() && !entries.iter().any(|e| e.key == "name") {
        r.error(
            &node.loc(),
            "this [[machine]] has no `name`",
            Some("add `name = \"web\"` (names become host names)".into()),
        );
    }
    if let Some(e) = provision_entry {
        m.provision = provisioners(r, e, root);
    }
    if m.provider == ProviderKind::CloudStack {
        for loc in &mounts {
            r.error(
                loc,
                format!(
                    "`type = \"mount\"` is for local machines; `{}` is a CloudStack machine, and no mount can cross the cloud",
                    shown(&m.name)
                ),
                Some("remove `type` (or write `type = \"copy\"`): the folder is then copied over SSH on `up` and `box sync`".into()),
            );
        }
        cloud_ports(r, &mut m, &local_only_keys);
    }
    (m, spans)
}

fn provisioners(r: &mut Reader, e: &Entry, root: &Path) -> Vec<Provisioner> {
    let mut out: Vec<Provisioner> = Vec::new();
    // Name locations, to point at the second of two equal names.
    let mut seen: HashMap<String, Loc> = HashMap::new();
    for (i, node) in r.tables(e).into_iter().enumerate() {
        let Some(entries) = r.table(node, "[[machine.provision]]", &schema::PROVISION) else {
            continue;
        };
        let get = |k: &str| entries.iter().find(|e| e.key == k);
        let kinds: Vec<&Entry> = entries
            .iter()
            .filter(|e| schema::PROVISION_KINDS.contains(&e.key.as_str()))
            .collect();
        let kind_entry = match kinds.as_slice() {
            [] => {
                r.error(
                    &node.loc(),
                    format!("a provisioner needs one of {}", kinds_list()),
                    Some("e.g. `shell = \"echo hello\"`".into()),
                );
                None
            }
            [one] => Some(*one),
            [first, second, ..] => {
                r.error(
                    &second.key_loc(),
                    format!(
                        "a provisioner takes only one of {}, found `{}` and `{}`",
                        kinds_list(),
                        first.key,
                        second.key
                    ),
                    Some("split it into two [[machine.provision]] entries".into()),
                );
                None
            }
        };
        let kind_name = kind_entry.map_or("", |k| k.key.as_str());
        for e in entries {
            // `args` needs `script`: it belongs to a `script` provisioner.
            let belongs = schema::PROVISION.key(&e.key).and_then(|k| {
                k.needs
                    .iter()
                    .copied()
                    .find(|n| schema::PROVISION_KINDS.contains(n))
            });
            if let Some(owner) = belongs {
                if kind_entry.is_some() && kind_name != owner {
                    r.error(
                        &e.key_loc(),
                        format!("`{}` only applies to a `{owner}` provisioner", e.key),
                        None,
                    );
                }
            }
        }
        let kind = kind_entry.and_then(|k| {
            provisioner_kind(
                r,
                k,
                get("args"),
                get("env"),
                get("destination"),
                node,
                root,
            )
        });
        let name = match get("name") {
            Some(n) => {
                let name = r.string(n);
                if let Some(name) = &name {
                    if name.is_empty()
                        || !name
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                    {
                        r.error(
                            &n.value.loc(),
                            format!("invalid provisioner name `{}`", shown(name)),
                            Some("use letters, digits, `-`, `_` and `.`".into()),
                        );
                    }
                }
                name.map(|s| (s, n.value.loc()))
            }
            None => (!kind_name.is_empty()).then(|| (format!("{kind_name}-{}", i + 1), node.loc())),
        };
        let privileged = get("privileged").and_then(|e| r.bool(e)).unwrap_or(true);
        let run = get("run")
            .and_then(|e| r.choice(e, schema::RUN))
            .map_or(RunPolicy::Once, |s| match s {
                "always" => RunPolicy::Always,
                "never" => RunPolicy::Never,
                _ => RunPolicy::Once,
            });
        if let Some((name, loc)) = name {
            match seen.get(&name) {
                Some(first) => {
                    let line = r.line(first);
                    let shown = shown(&name);
                    r.error(
                        &loc,
                        format!("duplicate provisioner name `{shown}` in this machine"),
                        Some(format!(
                            "the first `{shown}` is on line {line}; names must be unique per machine"
                        )),
                    );
                }
                None => {
                    seen.insert(name.clone(), loc);
                }
            }
            if let Some(kind) = kind {
                out.push(Provisioner {
                    name,
                    kind,
                    privileged,
                    run,
                });
            }
        }
    }
    out
}

fn provisioner_kind(
    r: &mut Reader,
    k: &Entry,
    args: Option<&Entry>,
    env: Option<&Entry>,
    destination: Option<&Entry>,
    node: &Node,
    root: &Path,
) -> Option<ProvisionerKind> {
    match k.key.as_str() {
        "shell" => Some(ProvisionerKind::Shell {
            inline: r.string(k)?,
        }),
        "script" => {
            let path = existing_path(r, k, root, true, "this machine's `provision`");
            let args = args
                .and_then(|a| r.strings(a))
                .map(|v| v.into_iter().map(|(s, _)| s).collect())
                .unwrap_or_default();
            // No `env` table is an empty one; a bad table drops the step (its
            // problems are already reported).
            let env = env.map_or(Some(BTreeMap::new()), |e| script_env(r, e));
            Some(ProvisionerKind::Script {
                path: path?,
                args,
                env: env?,
            })
        }
        "ansible" => ansible(r, k, root).map(ProvisionerKind::Ansible),
        "docker" => super::docker::step(r, k, root).map(ProvisionerKind::Docker),
        _ => {
            let source = existing_path(r, k, root, false, "this machine's `provision`");
            let destination = match destination {
                Some(d) => guest_path(r, d),
                None => {
                    r.error(
                        &node.loc(),
                        "a `file` provisioner needs a `destination` (an absolute guest path)",
                        None,
                    );
                    None
                }
            };
            Some(ProvisionerKind::File {
                source: source?,
                destination: destination?,
            })
        }
    }
}

/// The provisioner kinds as a message lists them: "`a`, `b` or `c`".
fn kinds_list() -> String {
    let quoted: Vec<String> = schema::PROVISION_KINDS
        .iter()
        .map(|k| format!("`{k}`"))
        .collect();
    match quoted.split_last() {
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => String::new(),
    }
}

/// `groups = [...]`: Ansible group names, which Ansible takes as Python
/// identifiers (it rewrites others with a warning).
fn groups(r: &mut Reader, e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    for (g, loc) in r.strings(e).unwrap_or_default() {
        if !is_variable_name(&g) || g == "all" || g == "ungrouped" {
            r.error(
                &loc,
                format!("invalid group name `{}`", shown(&g)),
                Some(
                    "a group name is a letter or `_`, then letters, digits or `_`; `all` and `ungrouped` are Ansible's own"
                        .into(),
                ),
            );
        } else if !out.contains(&g) {
            out.push(g);
        }
    }
    out
}

/// `ansible = { playbook = "...", extra_vars = {...}, limit = "..." }`.
fn ansible(r: &mut Reader, k: &Entry, root: &Path) -> Option<AnsibleStep> {
    let entries = r.table(&k.value, "`ansible`", &schema::ANSIBLE)?;
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    let playbook = match get("playbook") {
        Some(p) => existing_path(r, p, root, false, "this machine's `ansible` provisioner"),
        None => {
            r.error(
                &k.value.loc(),
                "an `ansible` provisioner needs a `playbook`",
                Some("e.g. `ansible = { playbook = \"site.yml\" }`".into()),
            );
            None
        }
    };
    let extra_vars = match get("extra_vars") {
        Some(e) => r.string_map(e)?.into_iter().collect(),
        None => BTreeMap::new(),
    };
    let limit = match get("limit") {
        Some(e) => Some(r.string(e)?).filter(|l| !l.trim().is_empty()),
        None => None,
    };
    Some(AnsibleStep {
        playbook: playbook?,
        extra_vars,
        limit,
    })
}

/// A CloudStack port forward lives on a public address, not on this
/// host: `host_ip` and `auto_correct` written on its ports are errors, and
/// `[defaults] auto_correct` (meant for the local machines) does not apply.
fn cloud_ports(r: &mut Reader, m: &mut Machine, written: &[(Loc, &'static str)]) {
    for (loc, key) in written {
        r.error(
            loc,
            format!(
                "`{key}` is for local machines; `{}` is a CloudStack machine, whose ports are forwarded on its public address",
                shown(&m.name)
            ),
            Some(format!(
                "remove `{key}`; pick a `host` port free on that address (`box status` lists the forwards)"
            )),
        );
    }
    for p in &mut m.ports {
        p.auto_correct = false;
    }
}

/// A port, and where it sets keys that only the local provider knows.
/// `default_auto_correct` is `[defaults] auto_correct`.
fn port(
    r: &mut Reader,
    node: &Node,
    default_auto_correct: Option<bool>,
) -> Option<(PortMapping, Vec<(Loc, &'static str)>)> {
    let entries = r.table(node, "a port", &schema::PORT)?;
    let get = |k: &str| entries.iter().find(|e| e.key == k);
    let field = |r: &mut Reader, key: &str| -> Option<u16> {
        match get(key) {
            Some(e) => r.int(e, 1, 65535).and_then(|v| u16::try_from(v).ok()),
            None => {
                r.error(
                    &node.loc(),
                    format!("a port needs `{key}`"),
                    Some("e.g. `{ guest = 80, host = 8080 }`".into()),
                );
                None
            }
        }
    };
    let guest = field(r, "guest");
    let host = field(r, "host");
    let protocol = match get("protocol") {
        Some(e) => r.choice(e, schema::PROTOCOLS)?,
        None => "tcp",
    };
    let auto_correct = match get("auto_correct") {
        Some(e) => r.bool(e)?,
        None => default_auto_correct.unwrap_or(false),
    };
    let host_ip = match get("host_ip") {
        Some(e) => Some(host_ip(r, e)?),
        None => None,
    };
    let local_only = ["auto_correct", "host_ip"]
        .into_iter()
        .filter_map(|k| get(k).map(|e| (e.key_loc(), k)))
        .collect();
    let mapping = PortMapping {
        guest: guest?,
        host: host?,
        protocol: protocol.to_string(),
        auto_correct,
        host_ip,
    };
    Some((mapping, local_only))
}

/// A port's `host_ip`: an IPv4 or IPv6 address, nothing else (no names).
fn host_ip(r: &mut Reader, e: &Entry) -> Option<IpAddr> {
    let text = r.string(e)?;
    match text.parse() {
        Ok(ip) => Some(ip),
        Err(_) => {
            r.error(
                &e.value.loc(),
                format!("`host_ip` must be an IP address, not \"{}\"", shown(&text)),
                Some("e.g. `\"127.0.0.1\"`, or `\"0.0.0.0\"` for every address".into()),
            );
            None
        }
    }
}

/// A sync folder, and where it says `type = "mount"`.
fn sync(r: &mut Reader, node: &Node, root: &Path) -> Option<(SyncFolder, Option<Loc>)> {
    let entries = r.table(node, "a sync folder", &schema::SYNC)?;
    let get = |k: &str| entries.iter().find(|e| e.key == k);
    let from = match get("from") {
        Some(e) => existing_path(r, e, root, false, "this machine's `sync`"),
        None => {
            r.error(
                &node.loc(),
                "a sync folder needs `from` (a host path)",
                None,
            );
            None
        }
    };
    let to = match get("to") {
        Some(e) => guest_path(r, e),
        None => {
            r.error(
                &node.loc(),
                "a sync folder needs `to` (an absolute guest path)",
                None,
            );
            None
        }
    };
    let exclude = get("exclude")
        .and_then(|e| r.strings(e))
        .map(|v| v.into_iter().map(|(s, _)| s).collect())
        .unwrap_or_default();
    let pull = get("pull").map(|e| pull_paths(r, e)).unwrap_or_default();
    let owner = get("owner").and_then(|e| owner(r, e));
    let kind = match get("type") {
        Some(e) => match r.choice(e, schema::SYNC_KINDS)? {
            "mount" => SyncKind::Mount,
            _ => SyncKind::Copy,
        },
        None => SyncKind::Copy,
    };
    let mount_at = get("type")
        .filter(|_| kind == SyncKind::Mount)
        .map(|e| e.value.loc());
    if kind == SyncKind::Mount {
        for (key, why) in [
            ("exclude", "a mount shows the whole folder"),
            (
                "owner",
                "a mounted folder belongs to the login user in the guest",
            ),
            (
                "pull",
                "a mount is live both ways, nothing needs bringing back",
            ),
        ] {
            if let Some(e) = get(key) {
                r.error(
                    &e.value.loc(),
                    format!("`{key}` does not apply to `type = \"mount\"`: {why}"),
                    Some(format!(
                        "remove `{key}`, or drop `type = \"mount\"` to copy the folder"
                    )),
                );
            }
        }
    }
    Some((
        SyncFolder {
            from: from?,
            to: to?,
            exclude,
            owner,
            pull,
            skip_unreadable: get("skip_unreadable")
                .and_then(|e| r.bool(e))
                .unwrap_or(false),
            kind,
        },
        mount_at,
    ))
}

/// Where a `[cloudstack]` table (or a machine's) set the keys that come in
/// pairs or must agree between machines.
#[derive(Debug, Default)]
pub(crate) struct TenancySpans {
    pub project: Option<Loc>,
    pub domain: Option<Loc>,
    pub account: Option<Loc>,
    pub keypair: Option<Loc>,
    pub identity_file: Option<Loc>,
}

/// `[cloudstack]` or a machine's `cloudstack` table, and where its
/// tenancy and key pair keys were written.
fn cloudstack(
    r: &mut Reader,
    node: &Node,
    what: &str,
    root: &Path,
) -> (CloudStackSettings, TenancySpans) {
    let mut cs = CloudStackSettings::default();
    let mut at = TenancySpans::default();
    let Some(entries) = r.table(node, what, &schema::CLOUDSTACK) else {
        return (cs, at);
    };
    let strings = |r: &mut Reader, e: &Entry| -> Vec<String> {
        r.strings(e)
            .map(|v| v.into_iter().map(|(s, _)| s).collect())
            .unwrap_or_default()
    };
    for e in entries {
        match e.key.as_str() {
            "profile" => cs.profile = r.string(e),
            "zone" => cs.zone = r.string(e),
            "template" => cs.template = r.string(e),
            "service_offering" => cs.service_offering = r.string(e),
            "disk_offering" => cs.disk_offering = r.string(e),
            "data_disk_size" => cs.data_disk_size = r.u32(e, 1),
            "root_disk_size" => cs.root_disk_size = r.u32(e, 1),
            "network" => cs.network = r.string(e),
            "security_groups" => cs.security_groups = strings(r, e),
            "affinity_groups" => cs.affinity_groups = strings(r, e),
            "public_ip" => {
                if let Some(ip) = r.string(e) {
                    if ip == "auto" || ip == "source-nat" || ip.parse::<IpAddr>().is_ok() {
                        cs.public_ip = Some(ip);
                    } else {
                        r.error(
                            &e.value.loc(),
                            format!("invalid `public_ip` value `{}`", shown(&ip)),
                            Some("expected `auto`, `source-nat` or an IP address".into()),
                        );
                    }
                }
            }
            "static_nat" => cs.static_nat = r.bool(e),
            "private" => cs.private = r.bool(e),
            "vpc_acl" => cs.vpc_acl = r.choice(e, schema::VPC_ACL).map(str::to_string),
            "allow_from" => {
                for (cidr, loc) in r.strings(e).unwrap_or_default() {
                    match check_cidr(&cidr) {
                        Ok(()) => cs.allow_from.push(cidr),
                        Err(why) => r.error(
                            &loc,
                            format!("invalid CIDR `{}` in `allow_from`: {why}", shown(&cidr)),
                            Some("write an address and a prefix length, e.g. `203.0.113.7/32` or `10.0.0.0/8`".into()),
                        ),
                    }
                }
            }
            "expunge" => cs.expunge = r.bool(e),
            "name_pattern" => {
                if let Some(p) = r.string(e) {
                    match check_name_pattern(&p) {
                        Ok(()) => cs.name_pattern = Some(p),
                        Err(why) => r.error(
                            &e.value.loc(),
                            format!("invalid `name_pattern`: {why}"),
                            Some("placeholders: `{project}`, `{machine}`, `{env}`".into()),
                        ),
                    }
                }
            }
            "details" => {
                cs.details = r
                    .string_map(e)
                    .map(|v| v.into_iter().collect())
                    .unwrap_or_default()
            }
            "project" => {
                cs.project = r.string(e);
                at.project = Some(e.value.loc());
            }
            "domain" => {
                cs.domain = r.string(e);
                at.domain = Some(e.value.loc());
            }
            "account" => {
                cs.account = r.string(e);
                at.account = Some(e.value.loc());
            }
            "keypair" => {
                cs.keypair = r.string(e);
                at.keypair = Some(e.value.loc());
            }
            "identity_file" => {
                let setting = format!("`identity_file` under {what}");
                cs.identity_file = existing_path(r, e, root, true, &setting);
                at.identity_file = Some(e.value.loc());
            }
            _ => {}
        }
    }
    (cs, at)
}

/// The keys that need another beside them (in the same table or merged
/// from `[cloudstack]`): `account` needs `domain`, `keypair` and
/// `identity_file` go together.
fn check_pairs(r: &mut Reader, merged: &CloudStackSettings, at: &TenancySpans) {
    if let (Some(loc), None) = (&at.account, &merged.domain) {
        r.error(
            loc,
            "`account` needs `domain`: CloudStack names an account within its domain",
            Some("set `domain` beside it, as a path such as `ROOT/eng` or an id".into()),
        );
    }
    if let (Some(loc), None, None) = (&at.keypair, &merged.identity_file, &at.identity_file) {
        r.error(
            loc,
            "`keypair` needs `identity_file`: the private key of that key pair, which box logs in with",
            Some("set `identity_file` beside it; a personal path goes in Boxfile.local, e.g. `identity_file = \"/home/me/.ssh/team_rsa\"`".into()),
        );
    }
    if let (Some(loc), None) = (&at.identity_file, &merged.keypair) {
        r.error(
            loc,
            "`identity_file` needs `keypair`: the name of the cloud's key pair it belongs to",
            Some("set `keypair` beside it, or remove `identity_file` to let box register its own key".into()),
        );
    }
}

/// A machine's CloudStack settings over the project's: a value the machine
/// sets wins; lists win when non-empty; `details` merge key by key.
pub(crate) fn overlay(base: &CloudStackSettings, own: CloudStackSettings) -> CloudStackSettings {
    let list =
        |own: Vec<String>, base: &Vec<String>| if own.is_empty() { base.clone() } else { own };
    let mut details = base.details.clone();
    details.extend(own.details);
    CloudStackSettings {
        profile: own.profile.or_else(|| base.profile.clone()),
        zone: own.zone.or_else(|| base.zone.clone()),
        template: own.template.or_else(|| base.template.clone()),
        service_offering: own
            .service_offering
            .or_else(|| base.service_offering.clone()),
        disk_offering: own.disk_offering.or_else(|| base.disk_offering.clone()),
        data_disk_size: own.data_disk_size.or(base.data_disk_size),
        root_disk_size: own.root_disk_size.or(base.root_disk_size),
        network: own.network.or_else(|| base.network.clone()),
        security_groups: list(own.security_groups, &base.security_groups),
        affinity_groups: list(own.affinity_groups, &base.affinity_groups),
        public_ip: own.public_ip.or_else(|| base.public_ip.clone()),
        static_nat: own.static_nat.or(base.static_nat),
        private: own.private.or(base.private),
        vpc_acl: own.vpc_acl.or_else(|| base.vpc_acl.clone()),
        allow_from: list(own.allow_from, &base.allow_from),
        expunge: own.expunge.or(base.expunge),
        name_pattern: own.name_pattern.or_else(|| base.name_pattern.clone()),
        details,
        project: own.project.or_else(|| base.project.clone()),
        domain: own.domain.or_else(|| base.domain.clone()),
        account: own.account.or_else(|| base.account.clone()),
        keypair: own.keypair.or_else(|| base.keypair.clone()),
        identity_file: own.identity_file.or_else(|| base.identity_file.clone()),
    }
}

fn provider(r: &mut Reader, e: &Entry) -> Option<ProviderKind> {
    r.choice(e, schema::PROVIDERS).map(|p| match p {
        "cloudstack" => ProviderKind::CloudStack,
        _ => ProviderKind::Local,
    })
}

fn accel(r: &mut Reader, e: &Entry) -> Option<Accel> {
    r.choice(e, schema::ACCEL).map(|a| match a {
        "kvm" => Accel::Kvm,
        "hvf" => Accel::Hvf,
        "tcg" => Accel::Tcg,
        _ => Accel::Auto,
    })
}

fn box_name(r: &mut Reader, e: &Entry) -> Option<String> {
    let b = r.string(e)?;
    if b.trim().is_empty() {
        r.error(
            &e.value.loc(),
            "`box` must not be empty",
            Some(format!("e.g. `box = \"{DEFAULT_BOX}\"`")),
        );
        return None;
    }
    Some(b)
}

/// A duration (`"2h"`), `Some(None)` for `"off"`; `None` after an error.
fn duration(r: &mut Reader, e: &Entry) -> Option<Option<u64>> {
    let text = r.string(e)?;
    match super::duration::parse(&text) {
        Ok(secs) => Some(secs),
        Err(why) => {
            r.error(
                &e.value.loc(),
                format!("`{}` is not a valid `{}`: {why}", shown(&text), e.key),
                Some(super::duration::HELP.into()),
            );
            None
        }
    }
}

/// A semver requirement such as `>= 1.2, < 2`.
fn box_version(r: &mut Reader, e: &Entry) -> Option<semver::VersionReq> {
    let text = r.string(e)?;
    match semver::VersionReq::parse(&text) {
        Ok(req) => Some(req),
        Err(why) => {
            r.error(
                &e.value.loc(),
                format!("`{}` is not a version requirement: {why}", shown(&text)),
                Some("e.g. `box_version = \">= 1.2, < 2\"` or `\"=12.0.20260101\"` (semver, as in Cargo.toml)".into()),
            );
            None
        }
    }
}

const USER_NAME_HELP: &str = "a user name starts with a lowercase letter or `_`, then lowercase letters, digits, `_` or `-` (at most 32)";

/// A user or group name, as `useradd` and `groupadd` accept it.
fn is_user_name(u: &str) -> bool {
    let mut chars = u.chars();
    u.len() <= 32
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A guest login name.
fn user(r: &mut Reader, e: &Entry) -> Option<String> {
    let u = r.string(e)?;
    if !is_user_name(&u) {
        r.error(
            &e.value.loc(),
            format!("invalid user name `{}` in `{}`", shown(&u), e.key),
            Some(USER_NAME_HELP.into()),
        );
        return None;
    }
    Some(u)
}

/// A sync folder's guest owner: `user` or `user:group`, as `chown` takes it.
fn owner(r: &mut Reader, e: &Entry) -> Option<String> {
    let o = r.string(e)?;
    let ok = match o.split_once(':') {
        Some((user, group)) => is_user_name(user) && is_user_name(group),
        None => is_user_name(&o),
    };
    if !ok {
        r.error(
            &e.value.loc(),
            format!("invalid owner `{}` in `{}`", shown(&o), e.key),
            Some(format!(
                "write `user` or `user:group`; {}; a group name follows the same rule",
                USER_NAME_HELP
            )),
        );
        return None;
    }
    Some(o)
}

/// A `script` provisioner's environment. Each key must be a shell variable
/// name: it ends up in the guest's environment, and a key such as
/// `--split-string` or `A=B` could otherwise be read as something else.
fn script_env(r: &mut Reader, e: &Entry) -> Option<BTreeMap<String, String>> {
    variable_map(r, e, "environment variable")
}

/// A table whose keys must be shell variable names (`env`, a docker
/// build's `args`); `what` names them in the message.
pub(super) fn variable_map(
    r: &mut Reader,
    e: &Entry,
    what: &str,
) -> Option<BTreeMap<String, String>> {
    let mut ok = true;
    for entry in e.value.entries().unwrap_or_default() {
        if !is_variable_name(&entry.key) {
            ok = false;
            r.error(
                &entry.key_loc(),
                format!(
                    "invalid {what} name `{}` in `{}`",
                    shown(&entry.key),
                    e.key
                ),
                Some("a name is a letter or `_`, then letters, digits or `_`, as in a shell variable".into()),
            );
        }
    }
    let env = r.string_map(e)?;
    ok.then(|| env.into_iter().collect())
}

/// `[A-Za-z_][A-Za-z0-9_]*`: a name the shell and `env` take as a variable.
pub(crate) fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn user_data(r: &mut Reader, e: &Entry) -> Option<String> {
    let s = r.string(e)?;
    if !s.trim_start().starts_with("#cloud-config") {
        r.error(
            &e.value.loc(),
            "`user_data` must be a cloud-config document",
            Some("start it with a `#cloud-config` line".into()),
        );
        return None;
    }
    Some(s)
}

/// A path on the host, relative to the Boxfile's folder, that must exist
/// (a file when `file_only`). A value from the Boxfile must lead inside the
/// project folder (see `host_path`); one from `Boxfile.local` may lead
/// anywhere. `setting` names the key that holds it, for the hint.
pub(super) fn existing_path(
    r: &mut Reader,
    e: &Entry,
    root: &Path,
    file_only: bool,
    setting: &str,
) -> Option<PathBuf> {
    let given = r.string(e)?;
    if given.len() > host_path::MAX_LEN {
        r.error(
            &e.value.loc(),
            format!(
                "`{}` path is longer than {} bytes",
                e.key,
                host_path::MAX_LEN
            ),
            None,
        );
        return None;
    }
    let path = absolute(root, &given);
    if e.value.file == FileId::Boxfile {
        if let Err(escape) = host_path::inside(root, &path) {
            let why = match escape {
                Escape::Outside(to) => format!(
                    "is outside the project folder (it leads to {})",
                    to.display()
                ),
                Escape::Unresolvable => "may lead outside the project folder (through `..` or a link to something missing)".into(),
            };
            r.error(
                &e.value.loc(),
                format!("`{}` path `{}` {why}", e.key, shown(&given)),
                Some(format!(
                    "a Boxfile reads host files only inside its folder ({}), so that a cloned project cannot reach yours; to use this path on purpose, set {setting} in Boxfile.local (personal, never committed), where paths may lead anywhere",
                    root.display()
                )),
            );
            return None;
        }
    }
    let ok = if file_only {
        path.is_file()
    } else {
        path.exists()
    };
    if !ok {
        let what = if path.is_dir() {
            "is a folder, not a file"
        } else {
            "does not exist"
        };
        let tilde = if given.starts_with('~') {
            "; `~` is not expanded"
        } else {
            ""
        };
        r.error(
            &e.value.loc(),
            format!("`{}` path `{}` {what}", e.key, shown(&given)),
            Some(format!(
                "paths are relative to the Boxfile's folder ({}){tilde}",
                root.display()
            )),
        );
        return None;
    }
    Some(path)
}

/// A sync entry's `pull`: paths inside the folder, relative, with no `..`
/// (what comes back from the guest must land inside the host folder) and
/// not box's own `.box`. A trailing `/` is allowed and dropped.
fn pull_paths(r: &mut Reader, e: &Entry) -> Vec<String> {
    let mut out = Vec::new();
    for (given, loc) in r.strings(e).unwrap_or_default() {
        match crate::sync::pull_path(&given) {
            Ok(p) => out.push(p),
            Err(why) => r.error(
                &loc,
                format!("`pull` path `{}` {why}", shown(&given)),
                Some(
                    "list paths relative to the sync folder's `from`, e.g. `dist/` or `Cargo.lock`"
                        .into(),
                ),
            ),
        }
    }
    out
}

/// An absolute path inside the guest.
pub(super) fn guest_path(r: &mut Reader, e: &Entry) -> Option<String> {
    let p = r.string(e)?;
    if !p.starts_with('/') {
        r.error(
            &e.value.loc(),
            format!(
                "`{}` must be an absolute guest path, found `{}`",
                e.key,
                shown(&p)
            ),
            Some(format!(
                "guest paths start with `/`, e.g. `/{}`",
                shown(p.trim_start_matches("./"))
            )),
        );
        return None;
    }
    Some(p)
}

/// `root` joined with `given`, without `.` components; `..` is kept, as
/// resolving it lexically would be wrong across symlinks.
pub(crate) fn absolute(root: &Path, given: &str) -> PathBuf {
    let joined = root.join(given);
    let mut out = PathBuf::new();
    for c in joined.components() {
        if c != Component::CurDir {
            out.push(c);
        }
    }
    out
}

pub const HOST_NAME_HELP: &str =
    "names become host names: lowercase letters, digits and `-`, not starting or ending with `-`, at most 63 characters";

/// Machine names become host names (RFC 1123 labels, lowercase only so they
/// are stable as file names and CloudStack names).
pub fn check_host_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("it is empty");
    }
    if name.len() > 63 {
        return Err("it is longer than 63 characters");
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err("it starts or ends with `-`");
    }
    if name.chars().any(|c| c.is_ascii_uppercase()) {
        return Err("it has uppercase letters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    {
        return Err("it has characters other than lowercase letters, digits and `-`");
    }
    Ok(())
}

fn check_cidr(cidr: &str) -> Result<(), String> {
    let Some((addr, len)) = cidr.split_once('/') else {
        return Err("no prefix length".into());
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("`{}` is not an IP address", shown(addr)))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match len.parse::<u8>() {
        Ok(n) if n <= max => Ok(()),
        _ => Err(format!("the prefix length must be 0 to {max}")),
    }
}

fn check_name_pattern(p: &str) -> Result<(), String> {
    let mut rest = p;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            return Err("a `{` is not closed".into());
        };
        let var = &after[..close];
        if !schema::NAME_PATTERN_VARS.contains(&var) {
            return Err(format!("unknown placeholder `{{{}}}`", shown(var)));
        }
        rest = &after[close + 1..];
    }
    if !p.contains("{machine}") {
        return Err("it must contain `{machine}`, or every machine would get the same name".into());
    }
    Ok(())
}

/// The folder name, made into a valid host-name label.
pub fn default_project_name(root: &Path) -> String {
    let raw = root
        .file_name()
        .map(|s| s.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let mut name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    name.truncate(63);
    let name = name.trim_matches('-').to_string();
    if name.is_empty() {
        "box".into()
    } else {
        name
    }
}
