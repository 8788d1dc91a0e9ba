//! `box exec` (not landed yet).

use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) async fn run(_g: &Globals, _args: crate::cli::ExecArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("exec"))
}
