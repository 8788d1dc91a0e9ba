//! A private folder in the guest for what a step uploads before it runs or
//! places it. `mktemp -d` makes it mode 0700 under a name nobody can guess,
//! so another guest user can neither plant a file or link in its place nor
//! change an upload before root runs or copies it.

use crate::ssh::{quote, Session};

use super::ProvisionError;

pub(super) struct Staging {
    path: String,
}

impl Staging {
    pub(super) fn create(session: &Session, step: &str) -> Result<Staging, ProvisionError> {
        let out = session
            .capture("mktemp -d /tmp/box-provision.XXXXXXXX")
            .map_err(|source| ProvisionError::Ssh {
                step: step.to_string(),
                source: Box::new(source),
            })?;
        // The last line: a login shell may print something of its own first.
        let text = out.stdout_text();
        let path = text.lines().map(str::trim).rfind(|l| !l.is_empty());
        let path = path.unwrap_or_default().to_string();
        if out.status != 0 || !path.starts_with("/tmp/box-provision.") {
            return Err(ProvisionError::Staging {
                step: step.to_string(),
                message: out.stderr_text().trim().to_string(),
            });
        }
        Ok(Staging { path })
    }

    /// The path of `name` inside the folder.
    pub(super) fn join(&self, name: &str) -> String {
        format!("{}/{name}", self.path)
    }

    /// Removes the folder after a step failed before running its command;
    /// best effort, as the step's own error is the one to report.
    pub(super) fn discard(&self, session: &Session) {
        let _ = session.capture(&format!("rm -rf -- {}", quote(&self.path)));
    }

    /// `cmd`, then the folder removed, with `cmd`'s exit code kept.
    pub(super) fn then_remove(&self, cmd: &str) -> String {
        format!("{cmd}; rc=$?; rm -rf -- {}; exit $rc", quote(&self.path))
    }
}
