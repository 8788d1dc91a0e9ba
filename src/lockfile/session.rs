//! One command's use of `Boxfile.lock`: providers ask it what a machine is
//! locked to and tell it what they resolved; the command saves it at the
//! end. Shared by the machines a provider prepares in parallel.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{path_in, LocalLock, Lockfile, LockfileError, ZoneLock, FILE_NAME};
use crate::error::Hinted;

/// How a command treats the lock.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Policy {
    /// Use what is locked; add machines that are not yet, and record a
    /// machine whose Boxfile settings no longer match its entry.
    #[default]
    Write,
    /// `--locked`: use what is locked; any change is an error.
    Locked,
    /// `box lock --update [MACHINE...]`: resolve these machines afresh
    /// (every machine when the set is empty).
    Update(BTreeSet<String>),
}

/// The lock as a command sees it. The default one is off: it locks
/// nothing and records nothing (commands that do not create machines).
#[derive(Clone, Default)]
pub struct Session {
    inner: Arc<Mutex<Inner>>,
}

#[derive(Default)]
struct Inner {
    /// `None`: the session is off.
    path: Option<PathBuf>,
    lock: Lockfile,
    existed: bool,
    policy: Policy,
    /// What changed: (machine, how), for the user.
    changes: Vec<(String, String)>,
}

impl Session {
    /// The lock of the project in `root` (empty when there is none yet).
    pub fn load(root: &Path, policy: Policy) -> Result<Session, LockfileError> {
        let path = path_in(root);
        let found = Lockfile::load(&path)?;
        Ok(Session {
            inner: Arc::new(Mutex::new(Inner {
                existed: found.is_some(),
                lock: found.unwrap_or_default(),
                path: Some(path),
                policy,
                changes: Vec::new(),
            })),
        })
    }

    fn inner(&self) -> MutexGuard<'_, Inner> {
        // A panic elsewhere while holding it leaves consistent data: every
        // change is one assignment.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `machine` is resolved afresh (`box lock --update`).
    fn updating(inner: &Inner, machine: &str) -> bool {
        match &inner.policy {
            Policy::Update(set) => set.is_empty() || set.contains(machine),
            _ => false,
        }
    }

    /// Whether this command resolves `machine` afresh (`box lock --update`).
    pub fn updates(&self, machine: &str) -> bool {
        Self::updating(&self.inner(), machine)
    }

    /// What `machine` is locked to on the local provider, unless it is
    /// being updated.
    pub fn local(&self, machine: &str) -> Option<LocalLock> {
        let inner = self.inner();
        if inner.path.is_none() || Self::updating(&inner, machine) {
            return None;
        }
        inner.lock.machine.get(machine)?.local.clone()
    }

    /// What `machine` is locked to in CloudStack zone `zone`, unless it is
    /// being updated.
    pub fn zone(&self, machine: &str, zone: &str) -> Option<ZoneLock> {
        let inner = self.inner();
        if inner.path.is_none() || Self::updating(&inner, machine) {
            return None;
        }
        inner
            .lock
            .machine
            .get(machine)?
            .cloudstack
            .get(zone)
            .cloned()
    }

    /// Records what `machine` resolved to locally. Under `--locked`, a
    /// change is an error that names the machine.
    pub fn record_local(&self, machine: &str, new: LocalLock) -> anyhow::Result<()> {
        let mut inner = self.inner();
        if inner.path.is_none() {
            return Ok(());
        }
        let locked = inner.policy == Policy::Locked;
        let entry = inner.lock.machine.entry(machine.to_string()).or_default();
        if entry.local.as_ref() == Some(&new) {
            return Ok(());
        }
        let change = match &entry.local {
            None => format!("box `{}` {} (new entry)", new.box_name, new.version),
            Some(old) => format!(
                "box `{}` {} -> `{}` {}",
                old.box_name, old.version, new.box_name, new.version
            ),
        };
        if locked {
            return Err(would_change(machine, &change));
        }
        entry.local = Some(new);
        inner.changes.push((machine.to_string(), change));
        Ok(())
    }

    /// Records what `machine` resolved to in zone `zone`.
    pub fn record_zone(&self, machine: &str, zone: &str, new: ZoneLock) -> anyhow::Result<()> {
        let mut inner = self.inner();
        if inner.path.is_none() {
            return Ok(());
        }
        let locked = inner.policy == Policy::Locked;
        let entry = inner.lock.machine.entry(machine.to_string()).or_default();
        let old = entry.cloudstack.get(zone);
        if old == Some(&new) {
            return Ok(());
        }
        let change = match old {
            None => format!(
                "template `{}` ({}) in zone `{zone}` (new entry)",
                new.template_name, new.template_id
            ),
            Some(old) if old.template_id != new.template_id => format!(
                "template `{}` ({}) -> `{}` ({}) in zone `{zone}`",
                old.template_name, old.template_id, new.template_name, new.template_id
            ),
            Some(_) => format!("the offerings in zone `{zone}`"),
        };
        if locked {
            return Err(would_change(machine, &change));
        }
        entry.cloudstack.insert(zone.to_string(), new);
        inner.changes.push((machine.to_string(), change));
        Ok(())
    }

    /// Drops the entries of machines no longer in the Boxfile (`box lock`).
    pub fn retain(&self, machines: &[String]) {
        let mut inner = self.inner();
        let gone: Vec<String> = inner
            .lock
            .machine
            .keys()
            .filter(|k| !machines.contains(k))
            .cloned()
            .collect();
        for name in gone {
            inner.lock.machine.remove(&name);
            inner
                .changes
                .push((name, "removed (not in the Boxfile)".to_string()));
        }
    }

    /// Writes the lock when something changed or there was none yet;
    /// returns what changed.
    pub fn save(&self) -> Result<Vec<String>, LockfileError> {
        let mut inner = self.inner();
        let Some(path) = inner.path.clone() else {
            return Ok(Vec::new());
        };
        if inner.policy == Policy::Locked {
            return Ok(Vec::new());
        }
        if !inner.changes.is_empty() || !inner.existed {
            inner.lock.save(&path)?;
            inner.existed = true;
        }
        Ok(std::mem::take(&mut inner.changes)
            .into_iter()
            .map(|(machine, how)| format!("`{machine}`: {how}"))
            .collect())
    }

    /// A copy of the lock as it stands.
    pub fn snapshot(&self) -> Lockfile {
        self.inner().lock.clone()
    }
}

/// `--locked` and a machine whose entry would change.
fn would_change(machine: &str, change: &str) -> anyhow::Error {
    Hinted::new(
        format!("--locked: {FILE_NAME} would change for machine `{machine}`: {change}"),
        format!(
            "run `box lock` (or `box lock --update {machine}`) without --locked and commit {FILE_NAME}"
        ),
    )
    .into()
}

/// A machine's locked image or template is gone or changed: nothing may
/// be created from it. `what` says which and how.
pub fn stale(machine: &str, what: &str) -> anyhow::Error {
    Hinted::new(
        format!("{FILE_NAME}: machine `{machine}`: {what}; nothing was created"),
        format!(
            "if the new one is what you want, run `box lock --update {machine}` and commit {FILE_NAME}"
        ),
    )
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pin(version: &str) -> LocalLock {
        LocalLock {
            box_name: "deb".into(),
            version: version.into(),
            sha256: "00".into(),
        }
    }

    #[test]
    fn locked_refuses_a_change_and_names_the_machine() {
        let dir = tempfile::tempdir().unwrap();
        let s = Session::load(dir.path(), Policy::Write).unwrap();
        s.record_local("web", pin("1")).unwrap();
        assert_eq!(s.save().unwrap().len(), 1);
        let s = Session::load(dir.path(), Policy::Locked).unwrap();
        assert_eq!(s.local("web"), Some(pin("1")));
        s.record_local("web", pin("1")).unwrap();
        let err = s.record_local("db", pin("2")).unwrap_err();
        assert!(err.to_string().contains("machine `db`"), "{err}");
        let s = Session::load(dir.path(), Policy::Update(BTreeSet::new())).unwrap();
        assert_eq!(s.local("web"), None, "an update resolves afresh");
    }
}
