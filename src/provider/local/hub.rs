//! The hub of a project's private network: a QEMU with no machine (`-machine
//! none`) whose datagram links, one per machine, are joined by a QEMU hub.
//! It is a separate process because it must outlive `box up` and serve
//! machines started by later commands; QEMU is already installed, so no
//! helper binary ships with box.
//!
//! Links are Unix datagram sockets: traffic stays on this host, with no
//! multicast and no host address involved. A machine sends to its hub
//! socket by path, so a hub restarted (for a machine added to the
//! Boxfile) reconnects every running machine by itself.

use anyhow::Context as _;

use super::net::{self, RunDir};
use super::process;
use crate::provider::Context;
use guest::qemu::{self, DgramLink, HubSpec};

/// Makes sure a hub runs with a link for each of `machines`.
pub async fn ensure(ctx: &Context, run: &RunDir, machines: &[String]) -> anyhow::Result<()> {
    let pidfile = run.hub_pidfile()?;
    let mark = pidfile.to_string_lossy().into_owned();
    let mut project = ctx.store.load_project()?;
    let recorded = project
        .providers
        .local
        .hub_machines
        .clone()
        .unwrap_or_default();
    if let Some(pid) = process::read_pidfile(&pidfile) {
        if process::alive(pid, &mark) {
            if machines.iter().all(|m| recorded.contains(m)) {
                return Ok(());
            }
            // A machine was added to the Boxfile: restart with a link for it.
            process::terminate(pid, &mark).await;
        }
    }
    let mut links = Vec::new();
    for m in machines {
        let link = DgramLink {
            local: run.hub_link(m)?,
            remote: run.machine_link(m)?,
        };
        net::remove_file(&link.local);
        links.push(link);
    }
    net::remove_file(&pidfile);
    let spec = HubSpec {
        name: format!("box-hub-{}", ctx.project.name),
        links,
        pidfile: pidfile.clone(),
    };
    ctx.printer.verbose("starting the private network hub");
    let out = tokio::process::Command::new(qemu::binary())
        .args(spec.args())
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run {}", qemu::binary()))?;
    if !out.status.success() {
        anyhow::bail!(
            "cannot start the private network hub: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    project.providers.local.hub_machines = Some(machines.to_vec());
    ctx.store.save_project(&project)?;
    Ok(())
}

/// Stops the hub and removes its sockets and its record.
pub async fn stop(ctx: &Context, run: &RunDir) {
    if let Ok(mut project) = ctx.store.load_project() {
        if project.providers.local.hub_machines.take().is_some() {
            let _ = ctx.store.save_project(&project);
        }
    }
    let Ok(pidfile) = run.hub_pidfile() else {
        return;
    };
    let mark = pidfile.to_string_lossy().into_owned();
    if let Some(pid) = process::read_pidfile(&pidfile) {
        process::terminate(pid, &mark).await;
    }
    net::remove_file(&pidfile);
    for dir in run.dirs() {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let name = e.file_name();
                if name.to_string_lossy().starts_with("hub-") {
                    net::remove_file(&e.path());
                }
            }
        }
    }
}
