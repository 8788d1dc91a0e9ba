//! `box exec`: one command on several machines at once, every output line
//! prefixed with the machine it came from.

use std::os::fd::AsRawFd;
use std::path::Path;

use anyhow::Context as _;

use crate::cli::ExecArgs;
use crate::error::{ExitStatus, Hinted};
use crate::output::Printer;
use crate::ssh::holder::Streams;
use crate::ssh::lines::Lines;

use super::ssh::{command_line, exit_with, forwarding};
use super::ssh_holder;
use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: ExecArgs) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    if !args.all && args.machines.is_empty() {
        return Err(Hinted::new(
            "name the machines to run on",
            "`box exec web db -- CMD`, or `box exec --all -- CMD`",
        )
        .into());
    }
    let machines = ws.select(&args.machines)?;
    let command = command_line(&args.argv);
    let args_agent = args.forward_agent;
    let mut tasks = Vec::new();
    for m in &machines {
        let name = m.name.clone();
        let target = running_target(&ws, &name);
        let printer = g.printer.clone();
        let command = command.clone();
        let box_dir = ws.ctx.store.dir().to_path_buf();
        let wants_agent = m.forward_agent;
        tasks.push((
            name.clone(),
            tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
                let target = target?;
                let mut out = Lines::new(|l: &str| printer.data(&format!("{name}: {l}")));
                let mut err = Lines::new(|l: &str| printer.machine(&name, l));
                let forward = forwarding(&target, &name, args_agent, wants_agent, &printer)?;
                if let Some(ssh) = forward {
                    printer.debug(&format!(
                        "exec {name} (OpenSSH, agent forwarded): {command}"
                    ));
                    return ssh
                        .run(Some(&command), false, &mut out, &mut err)
                        .with_context(|| format!("running the command on `{name}` failed"));
                }
                if let Some(code) = via_holder(&box_dir, &name, &command, &printer)? {
                    return Ok(code);
                }
                let session = connect(&target, &name, &printer)?;
                session
                    .exec(&command, &mut out, &mut err)
                    .with_context(|| format!("running the command on `{name}` failed"))
            }),
        ));
    }
    let single = tasks.len() == 1;
    let mut failed = 0;
    let mut last_code = 0;
    for (name, task) in tasks {
        let result = task
            .await
            .context("the SSH task stopped unexpectedly")
            .and_then(|r| r);
        match result {
            Ok(0) => {}
            Ok(code) => {
                failed += 1;
                last_code = code;
                if !single {
                    g.printer
                        .machine(&name, &format!("exited with code {code}"));
                }
            }
            Err(e) => {
                if single {
                    return Err(e);
                }
                failed += 1;
                g.printer.error(&e);
            }
        }
    }
    if single {
        return exit_with(last_code);
    }
    Ok(if failed == 0 {
        ExitStatus::Success
    } else {
        ExitStatus::Partial
    })
}

/// The command through the connection holder, its output through pipes so
/// each line gets its machine's prefix here. `None`: nothing ran.
fn via_holder(
    box_dir: &Path,
    name: &str,
    command: &str,
    printer: &Printer,
) -> anyhow::Result<Option<i32>> {
    let (out_r, out_w) = std::io::pipe().context("cannot create a pipe")?;
    let (err_r, err_w) = std::io::pipe().context("cannot create a pipe")?;
    let prefixed = |mut from: std::io::PipeReader, stdout: bool| {
        let printer = printer.clone();
        let name = name.to_string();
        std::thread::spawn(move || {
            let mut lines = Lines::new(|l: &str| {
                if stdout {
                    printer.data(&format!("{name}: {l}"))
                } else {
                    printer.machine(&name, l)
                }
            });
            let _ = std::io::copy(&mut from, &mut lines);
        })
    };
    let out = prefixed(out_r, true);
    let err = prefixed(err_r, false);
    let streams = Streams {
        stdin: None,
        stdout: out_w.as_raw_fd(),
        stderr: err_w.as_raw_fd(),
    };
    let result = ssh_holder::run(box_dir, name, Some(command), None, streams, printer);
    // The holder has its own copies; ours must close for the readers' EOF.
    drop((out_w, err_w));
    let _ = out.join();
    let _ = err.join();
    result.with_context(|| format!("running the command on `{name}` failed"))
}
