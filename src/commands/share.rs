//! `box share MACHINE --key FILE.pub [--name NAME]` and `box unshare
//! MACHINE NAME`: a teammate's key in (or out of) the machine's login
//! user's `authorized_keys`, over SSH; recorded in the machine's state and,
//! on CloudStack, in the VM's `box:shared` tag.

use anyhow::Context as _;

use crate::cli::{ShareArgs, UnshareArgs};
use crate::error::{ExitStatus, Hinted};
use crate::provider::{Provider, ProviderKind};
use crate::share::{self, Shared};

use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn share(g: &Settings, args: ShareArgs) -> anyhow::Result<ExitStatus> {
    let text = std::fs::read_to_string(&args.key)
        .with_context(|| format!("cannot read the public key {}", args.key.display()))?;
    let (key, comment) = share::parse_public_key(&text).map_err(|why| {
        Hinted::new(
            format!("{} is not a public key file: {why}", args.key.display()),
            "give the teammate's `.pub` file, e.g. `--key alice.pub`",
        )
    })?;
    let name = match args.name {
        Some(n) => n,
        None => comment
            .as_deref()
            .and_then(share::name_from_comment)
            .ok_or_else(|| {
                Hinted::new(
                    format!(
                        "{} has no comment box can take a name from",
                        args.key.display()
                    ),
                    "name the teammate: `--name alice`",
                )
            })?,
    };
    share::check_name(&name)?;
    let shared = Shared { name, key };
    edit(g, &args.machine, &shared.name, Some(&shared)).await?;
    g.printer.machine(
        &args.machine,
        &format!(
            "shared with {}: they connect with `box ssh --env ENV {}` (your environment id is in `box ls`)",
            shared.name, args.machine
        ),
    );
    Ok(ExitStatus::Success)
}

pub(crate) async fn unshare(g: &Settings, args: UnshareArgs) -> anyhow::Result<ExitStatus> {
    share::check_name(&args.name)?;
    edit(g, &args.machine, &args.name, None).await?;
    g.printer.machine(
        &args.machine,
        &format!("no longer shared with {}", args.name),
    );
    Ok(ExitStatus::Success)
}

/// Puts `shared` in (or, for `None`, takes `name` out of) the machine's
/// `authorized_keys`, then records it.
async fn edit(
    g: &Settings,
    machine: &str,
    name: &str,
    shared: Option<&Shared>,
) -> anyhow::Result<()> {
    let mut ws = Workspace::load(g)?;
    let machine = ws.machine(machine)?.name.clone();
    ws.lock()?;
    let mut state = ws
        .ctx
        .store
        .load_machine(&machine)?
        .with_context(|| format!("`{machine}` is not created"))?;
    if shared.is_none() && !state.shared.iter().any(|s| s.name == name) {
        let known: Vec<&str> = state.shared.iter().map(|s| s.name.as_str()).collect();
        return Err(Hinted::new(
            format!("`{machine}` is not shared with `{name}`"),
            if known.is_empty() {
                "`box share` has not shared it with anyone".to_string()
            } else {
                format!("it is shared with {}", known.join(", "))
            },
        )
        .into());
    }
    let target = running_target(&ws, &machine)?;
    let command = share::edit_command(name, shared.map(|s| s.key.as_str()));
    let printer = g.printer.clone();
    let who = machine.clone();
    let out = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let session = connect(&target, &who, &printer)?;
        Ok(session.capture(&command)?)
    })
    .await
    .context("the SSH task stopped unexpectedly")??;
    if out.status != 0 {
        anyhow::bail!(
            "cannot change the authorized keys on `{machine}` (exit {}): {}",
            out.status,
            out.stderr_text().trim()
        );
    }
    state.shared.retain(|s| s.name != name);
    if let Some(s) = shared {
        state.shared.push(s.clone());
    }
    ws.ctx.store.save_machine(&state)?;
    if state.provider.kind() == ProviderKind::CloudStack {
        if let Provider::CloudStack(cs) =
            Provider::open(ProviderKind::CloudStack, &ws.context()).await?
        {
            cs.tag_shared(&state).await?;
        }
    }
    Ok(())
}
