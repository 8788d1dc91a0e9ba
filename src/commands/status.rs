//! `box status` (not landed yet).

use crate::cli::StatusArgs;
use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) async fn run(_g: &Globals, _args: StatusArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("status"))
}
