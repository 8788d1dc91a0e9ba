//! `box init`: write a commented starter Boxfile, never over an existing one.

use std::io::Write as _;

use anyhow::Context as _;

use crate::boxfile;
use crate::error::{ExitStatus, Hinted};
use crate::project::BOXFILE;

use super::Settings;

pub(crate) fn run(g: &Settings, args: crate::cli::InitArgs) -> anyhow::Result<ExitStatus> {
    let name = match args.name {
        Some(n) => {
            boxfile::check_host_name(&n).map_err(|why| {
                Hinted::new(
                    format!("invalid project name `{n}`: {why}"),
                    boxfile::HOST_NAME_HELP,
                )
            })?;
            n
        }
        None => boxfile::default_project_name(&g.cwd),
    };
    let path = g.cwd.join(BOXFILE);
    // create_new: refusing to overwrite must hold even if two inits race.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Hinted::new(
                format!("a Boxfile already exists in {}", g.cwd.display()),
                "edit it, or move it away to start over",
            )
            .into())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot create {}", path.display())))
        }
    };
    file.write_all(boxfile::starter(&name).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    g.printer.info(&format!("wrote {}", path.display()));
    g.printer
        .info("next: `box validate` to check it, then `box up` to start the machine");
    Ok(ExitStatus::Success)
}
