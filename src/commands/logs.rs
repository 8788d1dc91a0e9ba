//! `box logs [MACHINE] [-f]`: a local machine's serial console, which QEMU
//! writes to `.box/machines/<name>/console.log`. The first place to look
//! when a machine does not answer SSH.

use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

use anyhow::Context as _;

use crate::cli::LogsArgs;
use crate::error::{ExitStatus, Hinted, NotAvailable};
use crate::provider::local::CONSOLE;
use crate::provider::ProviderKind;

use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: LogsArgs) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let machine = ws.machine_or_primary(args.machine.as_deref())?;
    let name = machine.name.clone();
    if machine.provider != ProviderKind::Local {
        // QEMU writes a local machine's serial console to a file; a cloud
        // keeps its VMs' consoles to itself.
        return Err(NotAvailable {
            verb: "logs".into(),
            on: format!("for `{name}` (a {} machine)", machine.provider),
            hint: format!(
                "box keeps the serial console of local machines only; read the guest's own log with `box ssh {name} -c 'sudo journalctl -b'`, or open the VM's console in the CloudStack UI"
            ),
        }
        .into());
    }
    let dir = ws.ctx.store.machine_dir(&name);
    let path = dir.join(CONSOLE);
    let mut file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Hinted::new(
                format!("`{name}` has no console log yet"),
                format!("run `box up {name}`; its console is logged from the first boot"),
            )
            .into())
        }
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut offset = copy_new(&mut file, 0, &g.printer)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if !args.follow {
        return Ok(ExitStatus::Success);
    }
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitStatus::Success),
        }
        if !dir.exists() {
            // The machine was destroyed: nothing more will come.
            return Ok(ExitStatus::Success);
        }
        // A log replaced by a new file (a re-created machine) starts over.
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if len < offset {
            file = std::fs::File::open(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            offset = 0;
        }
        offset = copy_new(&mut file, offset, &g.printer)
            .with_context(|| format!("cannot read {}", path.display()))?;
    }
}

/// Prints what the file holds past `offset`; returns the new offset.
fn copy_new(
    file: &mut std::fs::File,
    offset: u64,
    printer: &crate::output::Printer,
) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.read_to_end(&mut buf)?;
    if !buf.is_empty() {
        printer.data_bytes(&buf);
    }
    Ok(offset + buf.len() as u64)
}
