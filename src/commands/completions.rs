//! `box completions SHELL`: a completion script on stdout.

use clap::CommandFactory;
use clap_complete::Shell as S;

use crate::cli::{Cli, CompletionsArgs, Shell};
use crate::error::ExitStatus;

use super::Globals;

pub(crate) fn run(_g: &Globals, args: CompletionsArgs) -> anyhow::Result<ExitStatus> {
    let shell = match args.shell {
        Shell::Bash => S::Bash,
        Shell::Zsh => S::Zsh,
        Shell::Fish => S::Fish,
        Shell::Elvish => S::Elvish,
        Shell::Powershell => S::PowerShell,
    };
    let mut cmd = Cli::command();
    clap_complete::generate(shell, &mut cmd, "box", &mut std::io::stdout());
    Ok(ExitStatus::Success)
}
