//! `box ansible-inventory`: the inventory the `ansible` provisioner uses,
//! for users who run Ansible themselves. It also writes the known_hosts
//! file the inventory points at.

use anyhow::Context as _;

use crate::error::ExitStatus;
use crate::provision::ansible;
use crate::state::Status;

use super::workspace::Workspace;
use super::Settings;

pub(crate) fn run(g: &Settings) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let project = &ws.ctx.project;
    let path = ansible::write_inventory(project, &ws.ctx.store)
        .context("cannot write the inventory under .box/")?;
    let states = ws
        .ctx
        .store
        .machines()
        .context("cannot read the machine states")?;
    for m in &project.machines {
        match states.iter().find(|s| s.name == m.name) {
            Some(s) if s.ssh.is_some() => {
                if s.status != Status::Running {
                    g.printer.warn(&format!(
                        "`{}` is {}; Ansible may not reach it",
                        m.name, s.status
                    ));
                }
            }
            _ => g.printer.warn(&format!(
                "`{}` has no SSH endpoint yet and is left out (run `box up {}`)",
                m.name, m.name
            )),
        }
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    g.printer.data(text.trim_end());
    g.printer.info(&format!(
        "also written to {} (ansible-playbook -i {} ...)",
        path.display(),
        path.display()
    ));
    Ok(ExitStatus::Success)
}
