//! `box completions SHELL`: a completion script on stdout.
//!
//! bash, zsh and fish get clap_complete's dynamic script (see
//! [`crate::complete`]): the shell asks `box` for candidates, so machine
//! names come from the Boxfile at the moment of completion. elvish and
//! PowerShell keep the static script, which completes commands and flags.

use clap::CommandFactory;
use clap_complete::env::{Bash, Fish, Zsh};
use clap_complete::Shell as S;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::error::ExitStatus;

use super::Settings;

pub(crate) fn run(g: &Settings, args: CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let script = match args.shell {
        Shell::Bash => crate::complete::registration(&Bash)?,
        Shell::Zsh => crate::complete::registration(&Zsh)?,
        Shell::Fish => crate::complete::registration(&Fish)?,
        Shell::Elvish => generated(S::Elvish),
        Shell::Powershell => generated(S::PowerShell),
    };
    g.printer.data_bytes(&script);
    Ok(ExitStatus::Success)
}

fn generated(shell: S) -> Vec<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "box", &mut script);
    script
}
