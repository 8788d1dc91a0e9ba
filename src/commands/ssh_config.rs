//! `box ssh-config`: OpenSSH `Host` blocks for the machines, with the
//! pinned host keys written to a known_hosts file under `.box/`.

use anyhow::Context as _;

use crate::cli::MachinesArgs;
use crate::error::ExitStatus;
use crate::ssh::ssh_config::{alias, host_block, write_known_hosts, KNOWN_HOSTS};
use crate::state::{MachineState, Status};

use super::workspace::Workspace;
use super::Settings;

pub(crate) fn run(g: &Settings, args: MachinesArgs) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let machines = ws.select(&args.machines)?;
    // Every known machine's key goes in, so one file serves all blocks
    // printed now or earlier.
    let (states, known_hosts) = pin_every_host_key(&ws)?;
    let mut blocks = Vec::new();
    for m in machines {
        let state = states.iter().find(|s| s.name == m.name);
        match state.and_then(|s| s.ssh.as_ref().map(|t| (s.status, t))) {
            Some((status, target)) => {
                if status != Status::Running {
                    g.printer.warn(&format!(
                        "`{}` is {status}; its block may not connect",
                        m.name
                    ));
                }
                blocks.push(host_block(
                    &alias(&ws.ctx.project.name, &m.name),
                    target,
                    &known_hosts,
                ));
            }
            None => g.printer.warn(&format!(
                "`{}` has no SSH endpoint yet (run `box up {}`)",
                m.name, m.name
            )),
        }
    }
    g.printer.data(blocks.join("\n").trim_end());
    Ok(ExitStatus::Success)
}

/// Writes `.box/ssh_known_hosts` with the pinned key of every machine of
/// the project, so one file serves every `Host` block box hands to OpenSSH
/// (`ssh-config`, `docker-env`), and returns the states it read.
pub(super) fn pin_every_host_key(
    ws: &Workspace,
) -> anyhow::Result<(Vec<MachineState>, std::path::PathBuf)> {
    let states = ws
        .ctx
        .store
        .machines()
        .context("cannot read the machine states")?;
    let known_hosts = ws.ctx.store.dir().join(KNOWN_HOSTS);
    write_known_hosts(&known_hosts, states.iter().filter_map(|s| s.ssh.as_ref()))
        .with_context(|| format!("cannot write {}", known_hosts.display()))?;
    Ok((states, known_hosts))
}
