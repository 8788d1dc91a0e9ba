//! Project state in `.box/`, beside the Boxfile.
//!
//! Layout:
//! - `.box/.gitignore` (`*`), so state is never committed;
//! - `.box/lock`, the project lock (see `lock.rs`);
//! - `.box/project.json`, project-wide resources (key pair, security group);
//! - `.box/machines/<name>.json`, one file per machine, so parallel
//!   bring-up writes never contend;
//! - `.box/machines/<name>/`, the machine's own files (disk overlay, console
//!   log, host key, sync manifest).
//!
//! Every write is atomic; each file carries a schema version. What a
//! provider keeps about a machine or the project is typed and defined by
//! that provider (see `provider::data`), under the keys release 1 wrote.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::fsutil::write_atomic;
use crate::provider::{ProjectData, ProviderData, ProviderKind};

/// Bumped when the layout of a state file changes; older files are migrated on read.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot read {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the state file {path} is corrupt ({reason}); move it aside and run `box status --refresh` or `box up` to rebuild it from the provider")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the state file {path} has schema version {found}, newer than this box understands ({SCHEMA_VERSION}); upgrade box")]
    TooNew { path: PathBuf, found: u32 },
}

/// The last known state of a machine, as recorded by box.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    #[default]
    NotCreated,
    Creating,
    Running,
    Stopped,
    /// Its memory and devices saved to disk (`box suspend`), no process.
    Suspended,
    /// The provider's process or VM is gone while box expected it to run.
    Dead,
    Error,
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Status::NotCreated => "not created",
            Status::Creating => "creating",
            Status::Running => "running",
            Status::Stopped => "stopped",
            Status::Suspended => "suspended",
            Status::Dead => "dead",
            Status::Error => "error",
        })
    }
}

/// Everything SSH needs to reach a machine, with its pinned host key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SshTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Path of the private key (a 0600 file under `.box/`), never its contents.
    pub identity_file: PathBuf,
    /// The pinned host public key, OpenSSH format (`ssh-ed25519 AAAA...`).
    pub host_key: String,
}

/// A host port forwarded to a guest port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardedPort {
    pub guest: u16,
    pub host: u16,
    /// The address users connect to (127.0.0.1 for local, a public IP on a cloud).
    pub address: String,
    /// The Boxfile's `host` port when it was taken and `auto_correct`
    /// forwarded `host` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wanted: Option<u16>,
}

/// What a [`Resource`] is: CloudStack's resource types, spelt as the state
/// files spell them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResourceKind {
    VirtualMachine,
    PortForwardingRule,
    FirewallRule,
    /// Static NAT on a public IP (its id is the IP's).
    StaticNat,
    PublicIp,
    SshKeyPair,
    SecurityGroup,
    /// A rule of a VPC tier's network ACL list.
    NetworkAclRule,
    /// A network ACL list box made and attached to a VPC tier.
    NetworkAclList,
}

impl ResourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::VirtualMachine => "virtualmachine",
            ResourceKind::PortForwardingRule => "portforwardingrule",
            ResourceKind::FirewallRule => "firewallrule",
            ResourceKind::StaticNat => "staticnat",
            ResourceKind::PublicIp => "publicip",
            ResourceKind::SshKeyPair => "sshkeypair",
            ResourceKind::SecurityGroup => "securitygroup",
            ResourceKind::NetworkAclRule => "networkaclrule",
            ResourceKind::NetworkAclList => "networkacllist",
        }
    }
}

impl std::fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A cloud resource box created and must remove on destroy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub kind: ResourceKind,
    pub id: String,
    /// What it is for, shown when something is left behind.
    #[serde(default)]
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineState {
    pub schema: u32,
    pub name: String,
    /// The provider and what it keeps about the machine (QEMU's pid and
    /// boot facts; CloudStack's pending jobs and host key): the file's
    /// `provider` and `provider_data`.
    #[serde(flatten)]
    pub provider: ProviderData,
    /// The provider's id (QEMU: the machine folder; CloudStack: the VM uuid).
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub status: Status,
    #[serde(default)]
    pub ssh: Option<SshTarget>,
    #[serde(default)]
    pub ports: Vec<ForwardedPort>,
    /// Names of `run = "once"` provisioners that have completed.
    #[serde(default)]
    pub provisioned: Vec<String>,
    /// Resources created for this machine, removed on destroy.
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Idle stop and expiry the machine runs with (see `idle`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stops: Option<crate::idle::Stops>,
    /// Teammates' keys `box share` added to the login user (see `share`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shared: Vec<crate::share::Shared>,
}

impl MachineState {
    pub fn new(name: &str, provider: ProviderKind) -> Self {
        MachineState {
            schema: SCHEMA_VERSION,
            name: name.to_string(),
            provider: ProviderData::new(provider),
            id: None,
            status: Status::NotCreated,
            ssh: None,
            ports: Vec::new(),
            provisioned: Vec::new(),
            resources: Vec::new(),
            stops: None,
            shared: Vec::new(),
        }
    }
}

/// Project-wide state: resources shared by all machines.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectState {
    pub schema: u32,
    #[serde(default)]
    pub resources: Vec<Resource>,
    /// Each provider's project-wide data (the hub's links, the cloud's key
    /// pair, security group and IPs).
    #[serde(default, rename = "provider_data")]
    pub providers: ProjectData,
}

impl Default for ProjectState {
    fn default() -> Self {
        ProjectState {
            schema: SCHEMA_VERSION,
            resources: Vec::new(),
            providers: ProjectData::default(),
        }
    }
}

/// The `.box/` folder of one project.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    /// Keeps the host-wide index (`box ls`) current after each machine write.
    index: Option<crate::index::Hook>,
}

impl StateStore {
    /// Opens (and creates on first use) `.box/` under the project root.
    pub fn open(project_root: &Path) -> Result<Self, StateError> {
        let dir = project_root.join(".box");
        let machines = dir.join("machines");
        fs::create_dir_all(&machines).map_err(|source| StateError::Write {
            path: machines.clone(),
            source,
        })?;
        let gitignore = dir.join(".gitignore");
        if !gitignore.exists() {
            write_atomic(&gitignore, b"# box state: never commit\n*\n", 0o644).map_err(
                |source| StateError::Write {
                    path: gitignore.clone(),
                    source,
                },
            )?;
        }
        Ok(StateStore { dir, index: None })
    }

    /// Opens `.box/` for reading only; a project with no state yet has no folder.
    pub fn existing(project_root: &Path) -> Option<Self> {
        let dir = project_root.join(".box");
        dir.is_dir().then_some(StateStore { dir, index: None })
    }

    /// Reports every machine write to the host-wide index.
    pub fn indexed(mut self, hook: crate::index::Hook) -> Self {
        self.index = Some(hook);
        self
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A machine's private folder (disk overlay, console log, host key...).
    pub fn machine_dir(&self, name: &str) -> PathBuf {
        self.dir.join("machines").join(name)
    }

    fn machine_file(&self, name: &str) -> PathBuf {
        self.dir.join("machines").join(format!("{name}.json"))
    }

    pub fn load_machine(&self, name: &str) -> Result<Option<MachineState>, StateError> {
        read_json(&self.machine_file(name))
    }

    pub fn save_machine(&self, state: &MachineState) -> Result<(), StateError> {
        write_json(&self.machine_file(&state.name), state)?;
        if let Some(index) = &self.index {
            index.saved(state);
        }
        Ok(())
    }

    /// Forgets a machine: its state file and its private folder.
    pub fn remove_machine(&self, name: &str) -> Result<(), StateError> {
        let file = self.machine_file(name);
        match fs::remove_file(&file) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(StateError::Write { path: file, source }),
        }
        if let Some(index) = &self.index {
            index.removed(name);
        }
        let dir = self.machine_dir(name);
        match fs::remove_dir_all(&dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(StateError::Write { path: dir, source }),
        }
    }

    /// Every machine with a state file, sorted by name.
    pub fn machines(&self) -> Result<Vec<MachineState>, StateError> {
        let dir = self.dir.join("machines");
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(source) => return Err(StateError::Read { path: dir, source }),
        };
        let mut out = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| StateError::Read {
                path: dir.clone(),
                source,
            })?;
            let path = entry.path();
            if path.extension().is_some_and(|e| e == "json") {
                if let Some(state) = read_json::<MachineState>(&path)? {
                    out.push(state);
                }
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Removes everything the project's machines left in `.box/` (keys,
    /// known hosts, project resources) once none is left: only the lock
    /// (held by the caller) and `.gitignore` stay.
    pub fn forget_project(&self) -> Result<(), StateError> {
        let entries = fs::read_dir(&self.dir).map_err(|source| StateError::Read {
            path: self.dir.clone(),
            source,
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if name == "lock" || name == ".gitignore" {
                continue;
            }
            let result = if path.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            match result {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StateError::Write { path, source }),
            }
        }
        Ok(())
    }

    pub fn load_project(&self) -> Result<ProjectState, StateError> {
        Ok(read_json(&self.dir.join("project.json"))?.unwrap_or_default())
    }

    pub fn save_project(&self, state: &ProjectState) -> Result<(), StateError> {
        write_json(&self.dir.join("project.json"), state)
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StateError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(source) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    let schema = value.get("schema").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if schema > SCHEMA_VERSION {
        return Err(StateError::TooNew {
            path: path.to_path_buf(),
            found: schema,
        });
    }
    // Schema 0 (files without a version) needs no change beyond the field default.
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| StateError::Corrupt {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<(), StateError> {
    let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Write {
        path: path.to_path_buf(),
        source: io::Error::other(e),
    })?;
    bytes.push(b'\n');
    write_atomic(path, &bytes, 0o600).map_err(|source| StateError::Write {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_state_round_trips() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        let mut m = MachineState::new("web", ProviderKind::Local);
        m.status = Status::Running;
        store.save_machine(&m).unwrap();
        assert_eq!(store.load_machine("web").unwrap(), Some(m));
        assert!(tmp.path().join(".box/.gitignore").exists());
    }

    #[test]
    fn provider_kinds_keep_the_names_state_files_and_boxfiles_have() {
        for kind in [ProviderKind::Local, ProviderKind::CloudStack] {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name, kind.as_str());
            assert_eq!(serde_json::from_value::<ProviderKind>(name).unwrap(), kind);
        }
        assert_eq!(ProviderKind::CloudStack.as_str(), "cloudstack");
    }

    #[test]
    fn resource_kinds_keep_the_names_state_files_have() {
        use ResourceKind::*;
        for kind in [
            VirtualMachine,
            PortForwardingRule,
            FirewallRule,
            StaticNat,
            PublicIp,
            SshKeyPair,
            SecurityGroup,
            NetworkAclRule,
            NetworkAclList,
        ] {
            let name = serde_json::to_value(kind).unwrap();
            assert_eq!(name, kind.as_str());
            assert_eq!(serde_json::from_value::<ResourceKind>(name).unwrap(), kind);
        }
    }

    #[test]
    fn corrupt_state_is_an_error_with_a_recovery_path() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        fs::write(tmp.path().join(".box/machines/web.json"), b"{not json").unwrap();
        let err = store.load_machine("web").unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
        assert!(err.contains("move it aside"), "{err}");
    }

    #[test]
    fn a_suspended_machine_round_trips_and_older_files_load_without_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        // A local machine as box wrote it before suspend existed.
        fs::write(
            tmp.path().join(".box/machines/web.json"),
            br#"{"schema": 1, "name": "web", "provider": "local", "status": "stopped",
                "provider_data": {"pid": null, "accel": "tcg"}}"#,
        )
        .unwrap();
        let mut m = store.load_machine("web").unwrap().unwrap();
        assert_eq!(m.status, Status::Stopped);
        assert_eq!(m.provider.local().unwrap().suspended, None);
        m.status = Status::Suspended;
        m.provider.local_mut().suspended = Some(crate::provider::local::Suspended {
            file: "suspend.state".into(),
            bytes: 241_730_460,
            at: 1_795_629_600,
            cpus: 1,
            memory_mib: 512,
        });
        store.save_machine(&m).unwrap();
        let text = fs::read_to_string(tmp.path().join(".box/machines/web.json")).unwrap();
        assert!(text.contains(r#""status": "suspended""#), "{text}");
        assert!(text.contains(r#""schema": 1"#), "{text}");
        assert_eq!(store.load_machine("web").unwrap(), Some(m));
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::open(tmp.path()).unwrap();
        fs::write(
            tmp.path().join(".box/machines/web.json"),
            br#"{"schema": 99, "name": "web", "provider": "local"}"#,
        )
        .unwrap();
        assert!(matches!(
            store.load_machine("web"),
            Err(StateError::TooNew { found: 99, .. })
        ));
    }
}
