//! `box upload` and `box download`: files and folders over SFTP on the
//! machine's session.

use anyhow::Context as _;

use crate::cli::CopyArgs;
use crate::error::ExitStatus;
use crate::ssh::transfer;
use crate::sync::human_bytes;

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

#[derive(Clone, Copy)]
enum Direction {
    Up,
    Down,
}

pub(crate) async fn upload(g: &Settings, args: CopyArgs) -> anyhow::Result<ExitStatus> {
    copy(g, args, Direction::Up).await
}

pub(crate) async fn download(g: &Settings, args: CopyArgs) -> anyhow::Result<ExitStatus> {
    copy(g, args, Direction::Down).await
}

async fn copy(g: &Settings, args: CopyArgs, dir: Direction) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let name = ws.machine(&args.machine)?.name.clone();
    let target = running_target(&ws, &name)?;
    let printer = g.printer.clone();
    let cwd = g.cwd.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let session = connect(&target, &name, &printer)?;
        let (copied, verb) = match dir {
            Direction::Up => {
                let src = cwd.join(&args.source);
                let dest = args.destination.to_string_lossy().into_owned();
                let c = transfer::upload(&session, &src, &dest).with_context(|| {
                    format!("cannot upload {} to `{name}`:{dest}", src.display())
                })?;
                (c, "uploaded")
            }
            Direction::Down => {
                let src = args.source.to_string_lossy().into_owned();
                let dest = cwd.join(&args.destination);
                let c = transfer::download(&session, &src, &dest).with_context(|| {
                    format!("cannot download `{name}`:{src} to {}", dest.display())
                })?;
                (c, "downloaded")
            }
        };
        printer.machine(
            &name,
            &format!(
                "{verb} {} file(s), {}",
                copied.files,
                human_bytes(copied.bytes)
            ),
        );
        Ok(())
    })
    .await
    .context("the SSH task stopped unexpectedly")??;
    Ok(ExitStatus::Success)
}
