//! What the local provider records in `.box/`: per machine, the boot facts
//! of its box and its QEMU process; per project, the hub's links. The
//! field names are the keys release 1 wrote under `provider_data`, so its
//! state files still load.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use guest::accel::Chosen;

/// A local machine's data, in its state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalData {
    /// The box the disk was made from, recorded at creation: a restart
    /// must not depend on the store still offering the same newest version.
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    pub box_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub box_version: Option<String>,
    /// The box's disk: the backing file of the machine's overlay.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub boot: Option<Boot>,
    /// QEMU's pid, while box believes it runs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The accelerator QEMU was last started with.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accel: Option<Chosen>,
    /// The MAC of the NAT NIC: outside tools (the benchmark's bare QEMU)
    /// need it to reuse the machine's seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nat_mac: Option<String>,
    /// The machine's saved memory and device state, while it is suspended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspended: Option<Suspended>,
}

/// A suspended machine's saved state (`box suspend`): QEMU's migration
/// stream in a file of the machine folder, and the shape of the QEMU that
/// wrote it, which the restoring QEMU must have again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suspended {
    /// The file's name in the machine folder.
    pub file: String,
    pub bytes: u64,
    /// Unix seconds of the suspend.
    pub at: u64,
    pub cpus: u32,
    pub memory_mib: u32,
}

/// How QEMU boots a box: its own kernel, or (all `None`) the disk's loader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Boot {
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
}

/// The local provider's project-wide data, in `project.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LocalProjectData {
    /// The machines the running hub has a link for: a machine added to the
    /// Boxfile needs the hub restarted.
    #[serde(rename = "local_hub_machines", skip_serializing_if = "Option::is_none")]
    pub hub_machines: Option<Vec<String>>,
}
