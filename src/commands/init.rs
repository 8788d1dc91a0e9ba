//! `box init` (not landed yet).

use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) fn run(_g: &Globals, _args: crate::cli::InitArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("init"))
}
