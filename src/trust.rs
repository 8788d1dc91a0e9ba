//! Trust in a Boxfile's host commands (`[[trigger]]` with `run`).
//!
//! A cloned repository's Boxfile must not run code on the user's computer
//! just because the user typed `box up`. So the first time a command is
//! about to run host triggers, box shows them and asks; the answer is kept
//! in `trusted.json` in box's data folder (`$BOX_HOME/data`, else
//! `~/.local/share/box`), keyed by the project folder and a SHA-256 digest
//! of every host trigger (its events, machines and command). Any change to
//! them is a new digest, so box asks again. Without a terminal, box refuses
//! unless `box trust` recorded the digest or `--trust` allows this one run.
//! Guest commands (`run_remote`) run inside the machine and need no trust.
//!
//! The file is changed under a lock on `trusted.lock` and written
//! atomically (temp file + rename), like the environment index.

use std::fs::{self, File, OpenOptions};
use std::io::{self, IsTerminal};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::boxfile::{Project, TriggerAction, TriggerEvent};
use crate::config::Paths;
use crate::error::Hinted;
use crate::fsutil::write_atomic;
use crate::output::Printer;

pub const FILE: &str = "trusted.json";
const LOCK: &str = "trusted.lock";

#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error("cannot read the trust file {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot write the trust file {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the trust file {path} is corrupt ({reason}); move it aside: box then asks again")]
    Corrupt { path: PathBuf, reason: String },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TrustFile {
    #[serde(default)]
    trusted: Vec<Trusted>,
}

/// One project folder's host triggers as the user accepted them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Trusted {
    root: PathBuf,
    /// `sha256:HEX` of [`digest`]'s text.
    digest: String,
    /// Unix seconds when it was trusted.
    at: u64,
}

/// Whether the user has trusted a project's host triggers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Trusted,
    /// Never trusted in this folder.
    New,
    /// Trusted once, but the host triggers changed since.
    Changed,
}

/// The trust file of one user (one `BOX_HOME`).
pub struct TrustStore {
    file: PathBuf,
}

impl TrustStore {
    pub fn new(paths: &Paths) -> TrustStore {
        TrustStore {
            file: paths.data_dir.join(FILE),
        }
    }

    pub fn verdict(&self, root: &Path, digest: &str) -> Result<Verdict, TrustError> {
        let root = key(root);
        let file = self.load()?;
        let mine = file.trusted.iter().filter(|t| t.root == root);
        let mut seen = false;
        for t in mine {
            if t.digest == digest {
                return Ok(Verdict::Trusted);
            }
            seen = true;
        }
        Ok(if seen { Verdict::Changed } else { Verdict::New })
    }

    /// Records `digest` as trusted for the folder `root`. Earlier digests
    /// of the folder are kept: switching back to a branch whose triggers
    /// were trusted does not ask again.
    pub fn trust(&self, root: &Path, digest: &str) -> Result<(), TrustError> {
        let write_error = |source| TrustError::Write {
            path: self.file.clone(),
            source,
        };
        let _lock = self.lock().map_err(write_error)?;
        let mut file = self.load()?;
        let root = key(root);
        file.trusted
            .retain(|t| !(t.root == root && t.digest == digest));
        file.trusted.push(Trusted {
            root,
            digest: digest.to_string(),
            at: crate::index::now(),
        });
        let mut bytes = serde_json::to_vec_pretty(&file).map_err(|e| write_error(e.into()))?;
        bytes.push(b'\n');
        write_atomic(&self.file, &bytes, 0o600).map_err(write_error)
    }

    fn load(&self) -> Result<TrustFile, TrustError> {
        match fs::read(&self.file) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| TrustError::Corrupt {
                path: self.file.clone(),
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(TrustFile::default()),
            Err(source) => Err(TrustError::Read {
                path: self.file.clone(),
                source,
            }),
        }
    }

    /// Held until dropped; the OS releases it if the process dies.
    fn lock(&self) -> io::Result<File> {
        let path = self.file.with_file_name(LOCK);
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?;
        file.lock()?;
        Ok(file)
    }
}

/// The folder as the trust file names it: the same folder reached through
/// a symbolic link is the same project.
fn key(root: &Path) -> PathBuf {
    fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())
}

/// The host triggers as the user is shown them and as they are hashed: one
/// line per trigger, `EVENTS (MACHINES): COMMAND`. Empty when there are none.
pub fn host_commands(project: &Project) -> Vec<String> {
    project
        .triggers
        .iter()
        .filter_map(|t| {
            let TriggerAction::Host(command) = &t.action else {
                return None;
            };
            let events: Vec<&str> = t.on.iter().map(|e| e.name()).collect();
            let machines = if t.machines.is_empty() {
                "every machine".to_string()
            } else {
                t.machines.join(", ")
            };
            Some(format!("{} ({machines}): {command}", events.join(", ")))
        })
        .collect()
}

/// `sha256:HEX` of the host triggers; `None` when the Boxfile has none.
pub fn digest(project: &Project) -> Option<String> {
    let commands = host_commands(project);
    if commands.is_empty() {
        return None;
    }
    let mut hasher = Sha256::new();
    for c in &commands {
        // A NUL ends each one: no two lists hash alike by moving text
        // between neighbours.
        hasher.update(c.as_bytes());
        hasher.update([0]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    Some(format!("sha256:{hex}"))
}

/// Before a command runs host triggers for `machines` on `events`: fine
/// when none is due, when `allow` (`--trust`) is given or the user trusted
/// these exact commands; on a terminal box shows them and asks (a yes is
/// remembered); otherwise an error saying how to trust them.
pub fn ensure(
    project: &Project,
    paths: &Paths,
    events: &[TriggerEvent],
    machines: &[String],
    allow: bool,
    printer: &Printer,
) -> anyhow::Result<()> {
    if allow || !crate::triggers::runs_host_code(project, events, machines) {
        return Ok(());
    }
    let Some(digest) = digest(project) else {
        return Ok(());
    };
    let store = TrustStore::new(paths);
    let verdict = store.verdict(&project.root, &digest)?;
    if verdict == Verdict::Trusted {
        return Ok(());
    }
    let why = if verdict == Verdict::Changed {
        "have changed since you trusted them"
    } else {
        "are not trusted yet"
    };
    if !io::stdin().is_terminal() {
        return Err(Hinted::new(
            format!(
                "refusing to run the Boxfile's host triggers: they {why}, and there is no terminal to ask on"
            ),
            "read the `run` commands of its [[trigger]] tables, then `box trust` (remembered), or pass `--trust` for this run",
        )
        .into());
    }
    printer.info(&format!(
        "{} runs these commands on this computer, and they {why}:",
        project.root.join(crate::project::BOXFILE).display()
    ));
    for c in host_commands(project) {
        printer.info(&format!("  {c}"));
    }
    let answer = printer.prompt("Trust them and run them? [y/N]")?;
    if !matches!(answer.trim(), "y" | "Y" | "yes") {
        return Err(Hinted::new(
            "the Boxfile's host triggers are not trusted; nothing was done",
            "`box trust` trusts them once you have read them",
        )
        .into());
    }
    store.trust(&project.root, &digest)?;
    printer.info("trusted; box asks again if they change");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project(boxfile: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        let checked = crate::boxfile::check_text(dir.path(), boxfile.to_string(), None);
        assert!(checked.diagnostics.is_empty(), "{:?}", checked.diagnostics);
        checked.project.unwrap()
    }

    const BOXFILE: &str = r#"
[[machine]]
name = "web"

[[trigger]]
on = ["before-up"]
run = "make assets"

[[trigger]]
on = ["after-up"]
run_remote = "echo inside"
"#;

    #[test]
    fn the_digest_covers_host_commands_only_and_changes_with_them() {
        let base = digest(&project(BOXFILE)).unwrap();
        assert!(base.starts_with("sha256:"), "{base}");
        let remote_changed = BOXFILE.replace("echo inside", "echo other");
        assert_eq!(digest(&project(&remote_changed)).unwrap(), base);
        let host_changed = BOXFILE.replace("make assets", "make assets; curl evil");
        assert_ne!(digest(&project(&host_changed)).unwrap(), base);
        let event_changed = BOXFILE.replace("[\"before-up\"]", "[\"after-destroy\"]");
        assert_ne!(digest(&project(&event_changed)).unwrap(), base);
        let no_host = "[[machine]]\nname = \"web\"\n";
        assert_eq!(digest(&project(no_host)), None);
    }

    #[test]
    fn trust_is_kept_per_folder_and_digest_and_a_change_is_told_apart() {
        let home = tempfile::tempdir().unwrap();
        let paths = Paths {
            config_file: home.path().join("config.toml"),
            cloudmonkey_file: home.path().join("cmk"),
            data_dir: home.path().join("data"),
            cache_dir: home.path().join("cache"),
        };
        let store = TrustStore::new(&paths);
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        assert_eq!(store.verdict(a.path(), "sha256:1").unwrap(), Verdict::New);
        store.trust(a.path(), "sha256:1").unwrap();
        assert_eq!(
            store.verdict(a.path(), "sha256:1").unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            store.verdict(a.path(), "sha256:2").unwrap(),
            Verdict::Changed
        );
        assert_eq!(store.verdict(b.path(), "sha256:1").unwrap(), Verdict::New);
        store.trust(a.path(), "sha256:2").unwrap();
        assert_eq!(
            store.verdict(a.path(), "sha256:1").unwrap(),
            Verdict::Trusted
        );
        assert_eq!(
            store.verdict(a.path(), "sha256:2").unwrap(),
            Verdict::Trusted
        );
    }
}
