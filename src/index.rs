//! The host-wide index of local environments, so `box ls` and
//! `box destroy --env` work from any folder.
//!
//! One JSON file, `environments.json` in box's data folder (`$BOX_HOME/data`,
//! else `~/.local/share/box`), lists every project folder that has machine
//! state: its folder, environment id and project name, and for each machine
//! its provider, last recorded state and the time box first recorded it.
//!
//! The state store calls [`Hook::saved`] and [`Hook::removed`] after each
//! machine write, so every verb keeps the index current with no code of its
//! own. An update takes an exclusive lock on `environments.lock`, reads the
//! file, changes it and writes it back atomically (temp file + rename), so
//! two box processes never lose each other's entries; readers need no lock.
//! The file is rewritten only when something in it changes, not on every
//! progress save.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Paths;
use crate::fsutil::write_atomic;
use crate::output::Printer;
use crate::provider::ProviderKind;
use crate::state::{MachineState, Status};

pub const FILE: &str = "environments.json";
const LOCK: &str = "environments.lock";
/// Bumped when the file's layout changes.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    #[error("cannot read the environment index {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the environment index {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the environment index {path} is corrupt ({reason}); move it aside: `box up` in each project records it again")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the environment index {path} has schema version {found}, newer than this box understands ({SCHEMA_VERSION}); upgrade box")]
    TooNew { path: PathBuf, found: u32 },
}

/// The whole file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexFile {
    pub schema: u32,
    #[serde(default)]
    pub environments: Vec<Entry>,
}

impl Default for IndexFile {
    fn default() -> Self {
        IndexFile {
            schema: SCHEMA_VERSION,
            environments: Vec::new(),
        }
    }
}

/// One project folder with machine state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The project folder (where the Boxfile is).
    pub root: PathBuf,
    /// The environment id (`box:env` on the cloud).
    pub env: String,
    /// The Boxfile's project name.
    pub project: String,
    #[serde(default)]
    pub machines: Vec<IndexedMachine>,
}

/// What the index remembers of a machine; `box ls` reads the live state
/// from the project's `.box/` and falls back to this.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndexedMachine {
    pub name: String,
    pub provider: ProviderKind,
    pub status: Status,
    /// Unix seconds when box first recorded the machine.
    pub created: u64,
}

/// The index file of one user (one `BOX_HOME`).
#[derive(Debug, Clone)]
pub struct Index {
    file: PathBuf,
}

impl Index {
    pub fn new(paths: &Paths) -> Index {
        Index {
            file: paths.data_dir.join(FILE),
        }
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The index as written last; none yet is an empty index.
    pub fn load(&self) -> Result<IndexFile, IndexError> {
        let bytes = match fs::read(&self.file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(IndexFile::default()),
            Err(source) => {
                return Err(IndexError::Read {
                    path: self.file.clone(),
                    source,
                })
            }
        };
        let value: serde_json::Value =
            serde_json::from_slice(&bytes).map_err(|e| self.corrupt(e))?;
        let found = value.get("schema").and_then(|v| v.as_u64()).unwrap_or(0);
        if found > u64::from(SCHEMA_VERSION) {
            return Err(IndexError::TooNew {
                path: self.file.clone(),
                found: found as u32,
            });
        }
        serde_json::from_value(value).map_err(|e| self.corrupt(e))
    }

    fn corrupt(&self, e: serde_json::Error) -> IndexError {
        IndexError::Corrupt {
            path: self.file.clone(),
            reason: e.to_string(),
        }
    }

    /// Changes the index under its lock: `change` returns whether it
    /// changed anything, and only then is the file written.
    pub fn update(&self, change: impl FnOnce(&mut IndexFile) -> bool) -> Result<(), IndexError> {
        let _lock = self.lock()?;
        let mut index = self.load()?;
        if !change(&mut index) {
            return Ok(());
        }
        index.schema = SCHEMA_VERSION;
        let mut bytes = serde_json::to_vec_pretty(&index).map_err(|e| IndexError::Write {
            path: self.file.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        write_atomic(&self.file, &bytes, 0o600).map_err(|source| IndexError::Write {
            path: self.file.clone(),
            source,
        })
    }

    /// Held until dropped; the OS releases it if the process dies.
    fn lock(&self) -> Result<File, IndexError> {
        let path = self.file.with_file_name(LOCK);
        let write_error = |source| IndexError::Write {
            path: path.clone(),
            source,
        };
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(write_error)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(write_error)?;
        file.lock().map_err(write_error)?;
        Ok(file)
    }

    /// Records `machine` of the project at `root` (added, or its provider
    /// or state changed).
    pub fn record(
        &self,
        root: &Path,
        project: &str,
        machine: &MachineState,
    ) -> Result<(), IndexError> {
        self.update(|index| record(index, root, project, machine, now()))
    }

    /// Forgets machine `name` of the project at `root`; the project goes
    /// with its last machine.
    pub fn forget_machine(&self, root: &Path, name: &str) -> Result<(), IndexError> {
        self.update(|index| forget_machine(index, root, name))
    }

    /// Forgets these project folders altogether (`box ls --prune`).
    pub fn forget(&self, roots: &[PathBuf]) -> Result<(), IndexError> {
        self.update(|index| {
            let before = index.environments.len();
            index.environments.retain(|e| !roots.contains(&e.root));
            index.environments.len() != before
        })
    }
}

fn record(index: &mut IndexFile, root: &Path, project: &str, m: &MachineState, now: u64) -> bool {
    let entry = match index.environments.iter().position(|e| e.root == root) {
        Some(i) => &mut index.environments[i],
        None => {
            index.environments.push(Entry {
                root: root.to_path_buf(),
                env: crate::project::environment_id(root),
                project: project.to_string(),
                machines: Vec::new(),
            });
            index.environments.sort_by(|a, b| a.root.cmp(&b.root));
            let Some(e) = index.environments.iter_mut().find(|e| e.root == root) else {
                return false;
            };
            e
        }
    };
    let mut changed = false;
    if entry.project != project {
        entry.project = project.to_string();
        changed = true;
    }
    let kind = m.provider.kind();
    match entry.machines.iter_mut().find(|x| x.name == m.name) {
        Some(x) if x.provider == kind && x.status == m.status => {}
        Some(x) => {
            x.provider = kind;
            x.status = m.status;
            changed = true;
        }
        None => {
            entry.machines.push(IndexedMachine {
                name: m.name.clone(),
                provider: kind,
                status: m.status,
                created: now,
            });
            entry.machines.sort_by(|a, b| a.name.cmp(&b.name));
            changed = true;
        }
    }
    changed
}

fn forget_machine(index: &mut IndexFile, root: &Path, name: &str) -> bool {
    let Some(i) = index.environments.iter().position(|e| e.root == root) else {
        return false;
    };
    let entry = &mut index.environments[i];
    let before = entry.machines.len();
    entry.machines.retain(|m| m.name != name);
    let changed = entry.machines.len() != before;
    if entry.machines.is_empty() {
        index.environments.remove(i);
        return true;
    }
    changed
}

pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the state store calls after each machine write: the project it
/// belongs to and where to report a failed index update. The index is a
/// convenience; failing to update it warns and never fails the command.
#[derive(Clone)]
pub struct Hook {
    index: Index,
    root: PathBuf,
    project: String,
    printer: Printer,
}

impl std::fmt::Debug for Hook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hook")
            .field("index", &self.index)
            .field("root", &self.root)
            .field("project", &self.project)
            .finish()
    }
}

impl Hook {
    pub fn new(paths: &Paths, root: &Path, project: &str, printer: &Printer) -> Hook {
        Hook {
            index: Index::new(paths),
            root: root.to_path_buf(),
            project: project.to_string(),
            printer: printer.clone(),
        }
    }

    pub fn saved(&self, machine: &MachineState) {
        self.report(self.index.record(&self.root, &self.project, machine));
    }

    pub fn removed(&self, name: &str) {
        self.report(self.index.forget_machine(&self.root, name));
    }

    fn report(&self, result: Result<(), IndexError>) {
        if let Err(e) = result {
            let cause = std::error::Error::source(&e)
                .map(|c| format!(": {c}"))
                .unwrap_or_default();
            self.printer
                .warn(&format!("{e}{cause}; `box ls` may not show this project"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paths(dir: &Path) -> Paths {
        Paths {
            config_file: dir.join("config.toml"),
            cloudmonkey_file: dir.join("cmk"),
            data_dir: dir.join("data"),
            cache_dir: dir.join("cache"),
        }
    }

    fn machine(name: &str, status: Status) -> MachineState {
        let mut m = MachineState::new(name, ProviderKind::Local);
        m.status = status;
        m
    }

    #[test]
    fn a_machine_is_recorded_once_and_its_state_follows() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::new(&paths(tmp.path()));
        let root = tmp.path().join("shop");
        index
            .record(&root, "shop", &machine("web", Status::Creating))
            .unwrap();
        let first = index.load().unwrap();
        let created = first.environments[0].machines[0].created;
        index
            .record(&root, "shop", &machine("web", Status::Running))
            .unwrap();
        let second = index.load().unwrap();
        assert_eq!(second.environments.len(), 1);
        let e = &second.environments[0];
        assert_eq!(e.env, crate::project::environment_id(&root));
        assert_eq!(e.project, "shop");
        assert_eq!(e.machines.len(), 1);
        assert_eq!(e.machines[0].status, Status::Running);
        assert_eq!(e.machines[0].created, created);
    }

    #[test]
    fn an_unchanged_state_does_not_rewrite_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::new(&paths(tmp.path()));
        let root = tmp.path().join("shop");
        let m = machine("web", Status::Running);
        index.record(&root, "shop", &m).unwrap();
        let mut file = index.load().unwrap();
        assert!(!record(&mut file, &root, "shop", &m, 5));
        assert!(record(
            &mut file,
            &root,
            "shop",
            &machine("web", Status::Stopped),
            5
        ));
    }

    #[test]
    fn the_last_machine_forgotten_forgets_the_project() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::new(&paths(tmp.path()));
        let root = tmp.path().join("shop");
        index
            .record(&root, "shop", &machine("web", Status::Running))
            .unwrap();
        index
            .record(&root, "shop", &machine("db", Status::Running))
            .unwrap();
        index.forget_machine(&root, "web").unwrap();
        assert_eq!(index.load().unwrap().environments[0].machines.len(), 1);
        index.forget_machine(&root, "db").unwrap();
        assert!(index.load().unwrap().environments.is_empty());
    }

    #[test]
    fn parallel_writers_lose_no_entry() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::new(&paths(tmp.path()));
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let index = index.clone();
                let root = tmp.path().join(format!("p{i}"));
                std::thread::spawn(move || {
                    for n in 0..5 {
                        index
                            .record(&root, "p", &machine(&format!("m{n}"), Status::Running))
                            .unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let file = index.load().unwrap();
        assert_eq!(file.environments.len(), 8);
        assert!(file.environments.iter().all(|e| e.machines.len() == 5));
    }

    #[test]
    fn a_newer_index_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let index = Index::new(&paths(tmp.path()));
        fs::create_dir_all(index.file().parent().unwrap()).unwrap();
        fs::write(index.file(), br#"{"schema": 9, "environments": []}"#).unwrap();
        assert!(matches!(
            index.load(),
            Err(IndexError::TooNew { found: 9, .. })
        ));
    }
}
