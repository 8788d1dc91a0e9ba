//! `box man`: manual pages generated from the command-line definitions, so
//! they never drift from `--help`. Without `--out-dir`, box.1 on stdout.

use anyhow::Context as _;
use clap::CommandFactory;

use crate::cli::{Cli, ManArgs};
use crate::error::ExitStatus;

use super::Settings;

pub(crate) fn run(g: &Settings, args: ManArgs) -> anyhow::Result<ExitStatus> {
    let Some(dir) = args.out_dir else {
        let mut page = Vec::new();
        // As `generate_to` does: `help` is no command of its own in a manual.
        clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
            .render(&mut page)
            .context("cannot render the manual page")?;
        g.printer.data_bytes(&page);
        return Ok(ExitStatus::Success);
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    clap_mangen::generate_to(Cli::command(), &dir)
        .with_context(|| format!("cannot write the manual pages into {}", dir.display()))?;
    g.printer.info(&format!(
        "wrote box.1 and a page per command into {}",
        dir.display()
    ));
    Ok(ExitStatus::Success)
}
