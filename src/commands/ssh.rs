//! `box ssh` (not landed yet).

use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) async fn run(_g: &Globals, _args: crate::cli::SshArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("ssh"))
}
