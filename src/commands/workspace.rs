//! The project a command works on: the Boxfile, its state, and the lock.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;

use crate::boxfile::{self, LoadError, Machine};
use crate::error::Hinted;
use crate::lock::ProjectLock;
use crate::project;
use crate::provider::Context;
use crate::state::StateStore;

use super::Settings;

/// How long a second command waits for the first before giving up.
const LOCK_TIMEOUT: Duration = Duration::from_secs(600);

/// A loaded project: what providers get (the [`Context`]) plus the lock
/// held by commands that change state.
pub struct Workspace {
    pub ctx: Context,
    _lock: Option<ProjectLock>,
}

impl Workspace {
    /// Loads the Boxfile at or above `cwd` and opens its state (read-only
    /// commands: no lock, no network).
    pub fn load(settings: &Settings) -> anyhow::Result<Self> {
        let cwd = &settings.cwd;
        let root = project::find_root(cwd).ok_or_else(|| {
            Hinted::new(
                format!("no Boxfile in {} or any parent folder", cwd.display()),
                "run `box init` to write a starter Boxfile",
            )
        })?;
        let project = boxfile::load(&root).map_err(|e| match e {
            LoadError::Invalid(diags) => {
                let rendered: Vec<String> = diags.iter().map(|d| d.to_string()).collect();
                anyhow::Error::new(Hinted::new(
                    format!("the Boxfile is invalid:\n{}", rendered.join("\n")),
                    "run `box validate` to see every problem",
                ))
            }
            other => anyhow::Error::new(other),
        })?;
        let store = StateStore::open(&root)
            .context("cannot open the project state in .box/")?
            .indexed(crate::index::Hook::new(
                &settings.paths,
                &root,
                &project.name,
                &settings.printer,
            ));
        Ok(Workspace {
            ctx: Context {
                isolated: settings.isolated || project.local.isolated,
                project: Arc::new(project),
                store,
                printer: settings.printer.clone(),
                paths: settings.paths.clone(),
                profile: settings.profile.clone(),
                lockfile: Default::default(),
            },
            _lock: None,
        })
    }

    /// The project at `root` known only from its state (`box destroy
    /// --env` when the Boxfile is gone): no machine declared, the Boxfile's
    /// settings at their defaults.
    pub fn from_state(
        settings: &Settings,
        root: &std::path::Path,
        name: &str,
    ) -> anyhow::Result<Self> {
        let project = boxfile::Project {
            name: name.to_string(),
            root: root.to_path_buf(),
            machines: Vec::new(),
            local: Default::default(),
            cloudstack: Default::default(),
            triggers: Vec::new(),
        };
        let store = StateStore::open(root)
            .context("cannot open the project state in .box/")?
            .indexed(crate::index::Hook::new(
                &settings.paths,
                root,
                name,
                &settings.printer,
            ));
        Ok(Workspace {
            ctx: Context {
                isolated: settings.isolated,
                project: Arc::new(project),
                store,
                printer: settings.printer.clone(),
                paths: settings.paths.clone(),
                profile: settings.profile.clone(),
                lockfile: Default::default(),
            },
            _lock: None,
        })
    }

    /// Takes the project lock, for commands that change state.
    pub fn lock(&mut self) -> anyhow::Result<()> {
        if self._lock.is_none() {
            self._lock = Some(ProjectLock::acquire(
                self.ctx.store.dir(),
                LOCK_TIMEOUT,
                &self.ctx.printer,
            )?);
        }
        Ok(())
    }

    pub fn root(&self) -> &PathBuf {
        &self.ctx.project.root
    }

    /// The named machines, or all when none is named. An unknown name is
    /// an error with a suggestion.
    pub fn select(&self, names: &[String]) -> anyhow::Result<Vec<&Machine>> {
        if names.is_empty() {
            return Ok(self.ctx.project.machines.iter().collect());
        }
        names.iter().map(|n| self.machine(n)).collect()
    }

    pub fn machine(&self, name: &str) -> anyhow::Result<&Machine> {
        self.ctx.project.machine(name).ok_or_else(|| {
            let known: Vec<&str> = self
                .ctx
                .project
                .machines
                .iter()
                .map(|m| m.name.as_str())
                .collect();
            let hint = match crate::suggest::did_you_mean(name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`? machines: {}", known.join(", ")),
                None => format!("machines in this Boxfile: {}", known.join(", ")),
            };
            Hinted::new(format!("no machine named `{name}` in the Boxfile"), hint).into()
        })
    }

    /// The named machine, or the primary one.
    pub fn machine_or_primary(&self, name: Option<&str>) -> anyhow::Result<&Machine> {
        match name {
            Some(n) => self.machine(n),
            None => self
                .ctx
                .project
                .primary()
                .ok_or_else(|| anyhow::anyhow!("the Boxfile declares no machine")),
        }
    }

    pub fn context(&self) -> Context {
        self.ctx.clone()
    }
}
