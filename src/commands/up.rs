//! `box up` and `box reload` (not landed yet).

use crate::cli::UpArgs;
use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) enum Mode {
    Up,
    Reload,
}

pub(crate) async fn run(_g: &Globals, _args: UpArgs, mode: Mode) -> anyhow::Result<ExitStatus> {
    Err(not_yet(match mode {
        Mode::Up => "up",
        Mode::Reload => "reload",
    }))
}
