//! The resolved Boxfile: defaults applied, `Boxfile.local` merged, paths
//! absolute. Everything after validation works on these types.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use crate::provider::ProviderKind;

#[derive(Debug, Clone, Serialize)]
pub struct Project {
    pub name: String,
    /// The folder holding the Boxfile.
    pub root: PathBuf,
    pub machines: Vec<Machine>,
    pub local: LocalSettings,
    pub cloudstack: CloudStackSettings,
    /// `[[trigger]]` tables, in Boxfile order.
    pub triggers: Vec<Trigger>,
}

impl Project {
    pub fn machine(&self, name: &str) -> Option<&Machine> {
        self.machines.iter().find(|m| m.name == name)
    }

    /// The machine `box ssh` uses when none is named.
    pub fn primary(&self) -> Option<&Machine> {
        self.machines
            .iter()
            .find(|m| m.primary)
            .or_else(|| self.machines.first())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub name: String,
    pub provider: ProviderKind,
    /// The box (image) name, e.g. `debian-12`.
    pub box_name: String,
    /// Which versions of the box will do (`box_version`); `None` takes the newest.
    pub box_version: Option<semver::VersionReq>,
    pub cpus: u32,
    /// MiB.
    pub memory: u32,
    /// The login user box creates in the guest.
    pub user: String,
    pub primary: bool,
    /// Brought up by `box up` and `box reload` without names (`autostart`);
    /// a machine that is `false` starts only when named or depended on.
    pub autostart: bool,
    pub depends_on: Vec<String>,
    /// Ansible groups of the machine in box's inventory (`groups`).
    pub groups: Vec<String>,
    pub ports: Vec<PortMapping>,
    pub sync: Vec<SyncFolder>,
    pub provision: Vec<Provisioner>,
    /// Extra cloud-init user data (a `#cloud-config` document) merged with box's.
    pub user_data: Option<String>,
    /// Local provider: `auto`, `kvm`, `hvf` or `tcg`.
    pub accel: Accel,
    /// Root disk size in GiB (grown on first boot); `None` keeps the image's.
    pub disk_size: Option<u32>,
    /// Seconds with no SSH session and a low load before the guest powers
    /// itself off (`idle_stop`); `None`: never.
    pub idle_stop: Option<u64>,
    /// Seconds after each start at which the guest powers itself off
    /// (`expires`); `None`: never.
    pub expires: Option<u64>,
    /// Forward the user's SSH agent to `ssh`, `exec` and provisioners
    /// (`forward_agent`).
    pub forward_agent: bool,
    /// The machine's effective CloudStack settings: its own `cloudstack`
    /// table merged over `[cloudstack]` (see `resolve::overlay`).
    pub cloudstack: CloudStackSettings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    #[default]
    Auto,
    Kvm,
    Hvf,
    Tcg,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMapping {
    pub guest: u16,
    pub host: u16,
    /// `tcp` or `udp`.
    pub protocol: String,
    /// Forward another free host port when `host` is taken (local provider).
    pub auto_correct: bool,
    /// The host address to listen on; `None`: 127.0.0.1.
    pub host_ip: Option<std::net::IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyncFolder {
    /// Absolute host path.
    pub from: PathBuf,
    /// Absolute guest path.
    pub to: String,
    /// Gitignore-style patterns, in addition to the folder's `.gitignore`.
    pub exclude: Vec<String>,
    /// Owner in the guest (default: the login user).
    pub owner: Option<String>,
    /// Paths relative to `from` brought back from the guest after
    /// provisioning and on `box sync` (`pull`), `/`-separated, no `..`.
    pub pull: Vec<String>,
    /// Leave out paths that cannot be read or sent instead of failing.
    pub skip_unreadable: bool,
    /// Copied over SSH, or mounted live (`type = "mount"`, local provider).
    pub kind: SyncKind,
}

/// How a sync folder reaches the guest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SyncKind {
    /// Copied over SSH on `up`, `reload` and `sync` (the default).
    #[default]
    Copy,
    /// The host folder itself, mounted in the guest over virtio-fs: live,
    /// both ways; the local provider only.
    Mount,
}

impl SyncFolder {
    pub fn is_mount(&self) -> bool {
        self.kind == SyncKind::Mount
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provisioner {
    /// Unique per machine; defaults to `<kind>-<index>` (1-based).
    pub name: String,
    pub kind: ProvisionerKind,
    /// Run through sudo (default true).
    pub privileged: bool,
    pub run: RunPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ProvisionerKind {
    Shell {
        inline: String,
    },
    Script {
        /// Absolute host path.
        path: PathBuf,
        args: Vec<String>,
        env: BTreeMap<String, String>,
    },
    File {
        /// Absolute host path.
        source: PathBuf,
        destination: String,
    },
    /// A playbook run from the host with `ansible-playbook`.
    Ansible(AnsibleStep),
    /// Images loaded and built, containers run, in the guest's Docker.
    Docker(DockerStep),
}

/// What a `docker` provisioner does, in this order: `load`, `build`, `run`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerStep {
    /// Image tarballs (absolute host paths) streamed into `docker load`.
    pub load: Vec<PathBuf>,
    pub build: Vec<DockerBuild>,
    pub run: Vec<DockerRun>,
}

/// An image built in the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerBuild {
    /// The build context, an absolute guest path.
    pub path: String,
    pub tag: String,
    /// Relative to `path`; `None` is `Dockerfile`.
    pub dockerfile: Option<String>,
    pub args: BTreeMap<String, String>,
}

/// A container run detached. Its serialized form is part of the
/// `box.config` label that tells an unchanged container from a changed one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerRun {
    pub name: String,
    pub image: String,
    /// As `docker run -p` takes them.
    pub ports: Vec<String>,
    pub env: BTreeMap<String, String>,
    /// As `docker run -v` takes them.
    pub volumes: Vec<String>,
    pub restart: String,
    pub args: Vec<String>,
}

/// What an `ansible` provisioner runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AnsibleStep {
    /// Absolute host path.
    pub playbook: PathBuf,
    pub extra_vars: BTreeMap<String, String>,
    /// Host pattern; `None` is the provisioning machine itself.
    pub limit: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum RunPolicy {
    #[default]
    Once,
    Always,
    Never,
}

/// `[local]`: settings of the QEMU provider.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LocalSettings {
    /// Guests reach nothing outside the host (QEMU `restrict=on`).
    pub isolated: bool,
}

/// `[cloudstack]`, and the same keys under a machine to override them.
/// All optional: a machine's settings are its own merged over the project's.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CloudStackSettings {
    pub profile: Option<String>,
    pub zone: Option<String>,
    pub template: Option<String>,
    pub service_offering: Option<String>,
    pub disk_offering: Option<String>,
    /// Data disk size in GiB (with a custom-size disk offering).
    pub data_disk_size: Option<u32>,
    pub root_disk_size: Option<u32>,
    pub network: Option<String>,
    pub security_groups: Vec<String>,
    pub affinity_groups: Vec<String>,
    /// `auto` (acquire one), `source-nat`, or an address.
    pub public_ip: Option<String>,
    pub static_nat: Option<bool>,
    /// Reach the NIC address directly (VPN users).
    pub private: Option<bool>,
    /// A VPC tier's ACL list: `tier` (its own custom list, the default) or
    /// `create` (box's list when the tier has a system list).
    pub vpc_acl: Option<String>,
    /// CIDRs allowed to reach SSH and the ports; unset means 0.0.0.0/0 with a warning.
    pub allow_from: Vec<String>,
    pub expunge: Option<bool>,
    /// VM host name pattern; `{project}`, `{machine}`, `{env}` are replaced.
    pub name_pattern: Option<String>,
    pub details: BTreeMap<String, String>,
    /// The CloudStack project (name or id) every machine lives in.
    pub project: Option<String>,
    /// The domain (path such as `ROOT/eng`, or id) of `account` or `project`.
    pub domain: Option<String>,
    /// The account box acts for (an administrator's or domain administrator's).
    pub account: Option<String>,
    /// An existing key pair to deploy with, instead of box's own.
    pub keypair: Option<String>,
    /// The private key of `keypair`, as an absolute host path.
    pub identity_file: Option<PathBuf>,
}

/// `[[trigger]]`: a command run on the host or in the guest before or
/// after a machine's lifecycle event (see `crate::triggers`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Trigger {
    pub on: Vec<TriggerEvent>,
    /// The machines it runs for; empty: every machine.
    pub machines: Vec<String>,
    pub action: TriggerAction,
}

impl Trigger {
    /// Whether it runs for `machine` on `event`.
    pub fn applies(&self, event: TriggerEvent, machine: &str) -> bool {
        self.on.contains(&event)
            && (self.machines.is_empty() || self.machines.iter().any(|m| m == machine))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum TriggerAction {
    /// `run`: a host command, run by `sh -c` in the project folder.
    #[serde(rename = "run")]
    Host(String),
    /// `run_remote`: a guest command, run over SSH as the login user.
    #[serde(rename = "run_remote")]
    Remote(String),
}

/// The lifecycle events a trigger can run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TriggerEvent {
    BeforeUp,
    AfterUp,
    BeforeHalt,
    AfterHalt,
    BeforeDestroy,
    AfterDestroy,
    AfterProvision,
}

impl TriggerEvent {
    pub const ALL: [TriggerEvent; 7] = [
        TriggerEvent::BeforeUp,
        TriggerEvent::AfterUp,
        TriggerEvent::BeforeHalt,
        TriggerEvent::AfterHalt,
        TriggerEvent::BeforeDestroy,
        TriggerEvent::AfterDestroy,
        TriggerEvent::AfterProvision,
    ];

    /// As written in `on`, and as `BOX_EVENT` says it.
    pub fn name(self) -> &'static str {
        match self {
            TriggerEvent::BeforeUp => "before-up",
            TriggerEvent::AfterUp => "after-up",
            TriggerEvent::BeforeHalt => "before-halt",
            TriggerEvent::AfterHalt => "after-halt",
            TriggerEvent::BeforeDestroy => "before-destroy",
            TriggerEvent::AfterDestroy => "after-destroy",
            TriggerEvent::AfterProvision => "after-provision",
        }
    }

    pub fn from_name(name: &str) -> Option<TriggerEvent> {
        Self::ALL.into_iter().find(|e| e.name() == name)
    }

    /// Whether the guest is up at this event, so `run_remote` can run:
    /// not before it is first started, nor once it is halted or gone.
    pub fn guest_is_up(self) -> bool {
        !matches!(
            self,
            TriggerEvent::BeforeUp | TriggerEvent::AfterHalt | TriggerEvent::AfterDestroy
        )
    }
}

impl std::fmt::Display for TriggerEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
