//! The Boxfile's vocabulary: which keys each table accepts and which values
//! each enumerated key takes. Kept in one place so unknown-key reports,
//! did-you-mean suggestions and `docs/boxfile.md` agree.

pub(crate) const TOP: &[&str] = &["project", "defaults", "local", "cloudstack", "machine"];

pub(crate) const PROJECT: &[&str] = &["name", "provider"];

pub(crate) const DEFAULTS: &[&str] = &[
    "box",
    "cpus",
    "memory",
    "user",
    "accel",
    "disk_size",
    "provider",
];

pub(crate) const LOCAL: &[&str] = &["isolated"];

pub(crate) const CLOUDSTACK: &[&str] = &[
    "profile",
    "zone",
    "template",
    "service_offering",
    "disk_offering",
    "data_disk_size",
    "root_disk_size",
    "network",
    "security_groups",
    "affinity_groups",
    "public_ip",
    "static_nat",
    "private",
    "allow_from",
    "expunge",
    "name_pattern",
    "details",
];

pub(crate) const MACHINE: &[&str] = &[
    "name",
    "primary",
    "provider",
    "box",
    "cpus",
    "memory",
    "user",
    "accel",
    "disk_size",
    "depends_on",
    "ports",
    "sync",
    "user_data",
    "cloudstack",
    "provision",
];

pub(crate) const PORT: &[&str] = &["guest", "host", "protocol"];

pub(crate) const SYNC: &[&str] = &["from", "to", "exclude", "owner", "skip_unreadable"];

pub(crate) const PROVISION: &[&str] = &[
    "name",
    "shell",
    "script",
    "args",
    "env",
    "file",
    "destination",
    "privileged",
    "run",
];

/// The keys that say what a provisioner does; exactly one is required.
pub(crate) const PROVISION_KINDS: &[&str] = &["shell", "script", "file"];

pub(crate) const PROVIDERS: &[&str] = &["local", "cloudstack"];
pub(crate) const RUN: &[&str] = &["once", "always", "never"];
pub(crate) const ACCEL: &[&str] = &["auto", "kvm", "hvf", "tcg"];
pub(crate) const PROTOCOLS: &[&str] = &["tcp", "udp"];

/// Placeholders `name_pattern` may use.
pub(crate) const NAME_PATTERN_VARS: &[&str] = &["project", "machine", "env"];
