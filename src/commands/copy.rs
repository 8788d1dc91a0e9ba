//! `box upload` and `box download` (not landed yet).

use crate::cli::CopyArgs;
use crate::error::ExitStatus;

use super::{not_yet, Globals};

pub(crate) async fn upload(_g: &Globals, _args: CopyArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("upload"))
}

pub(crate) async fn download(_g: &Globals, _args: CopyArgs) -> anyhow::Result<ExitStatus> {
    Err(not_yet("download"))
}
