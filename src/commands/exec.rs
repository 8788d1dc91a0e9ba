//! `box exec`: one command on several machines at once, every output line
//! prefixed with the machine it came from.

use anyhow::Context as _;

use crate::cli::ExecArgs;
use crate::error::{ExitStatus, Hinted};
use crate::ssh::lines::Lines;

use super::ssh::{command_line, exit_with};
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
    let mut tasks = Vec::new();
    for m in &machines {
        let name = m.name.clone();
        let target = running_target(&ws, &name);
        let printer = g.printer.clone();
        let command = command.clone();
        tasks.push((
            name.clone(),
            tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
                let target = target?;
                let session = connect(&target, &name, &printer)?;
                let mut out = Lines::new(|l: &str| printer.data(&format!("{name}: {l}")));
                let mut err = Lines::new(|l: &str| printer.machine(&name, l));
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
