//! `box trust`: show the Boxfile's host triggers and trust them, so the
//! commands that run them (`up`, `reload`, `halt`, `destroy`, `provision`)
//! do so without asking, until they change (see `crate::trust`).

use crate::error::ExitStatus;
use crate::trust::{self, TrustStore};

use super::workspace::Workspace;
use super::Settings;

pub(crate) fn run(g: &Settings) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let project = &ws.ctx.project;
    let Some(digest) = trust::digest(project) else {
        g.printer
            .info("this Boxfile has no host triggers (`run`); nothing to trust");
        return Ok(ExitStatus::Success);
    };
    g.printer.info(&format!(
        "trusting the host commands of {}:",
        project.root.join(crate::project::BOXFILE).display()
    ));
    for c in trust::host_commands(project) {
        g.printer.info(&format!("  {c}"));
    }
    TrustStore::new(&g.paths).trust(&project.root, &digest)?;
    g.printer.info("trusted; box asks again if they change");
    Ok(ExitStatus::Success)
}
