//! `box ssh`: a login shell with a PTY, or one command with its output
//! streamed and its exit code returned.

use std::io::Write;

use anyhow::Context as _;

use std::path::PathBuf;

use crate::cli::SshArgs;
use crate::error::Hinted;
use crate::error::{ExitStatus, RemoteExit};
use crate::output::Printer;
use crate::provider::{Provider, ProviderKind};
use crate::ssh::agent::{self, ForwardingSsh};
use crate::ssh::holder::Streams;
use crate::ssh::{interactive, quote};
use crate::state::SshTarget;

use super::ssh_holder;
use super::target::{connect, running_target};
use super::workspace::Workspace;
use super::Settings;

pub(crate) async fn run(g: &Settings, args: SshArgs) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let machine = ws.machine_or_primary(args.machine.as_deref())?;
    let name = machine.name.clone();
    let target = match &args.env {
        None => running_target(&ws, &name)?,
        Some(env) => teammate_target(&ws, env, machine, args.identity.clone()).await?,
    };
    let command = match (args.command, args.argv.is_empty()) {
        (Some(c), _) => Some(c),
        (None, false) => Some(command_line(&args.argv)),
        (None, true) => None,
    };
    let printer = g.printer.clone();
    // A teammate's machine is not in this project's state: no holder.
    let box_dir = args.env.is_none().then(|| ws.ctx.store.dir().to_path_buf());
    let forward = forwarding(
        &target,
        &name,
        args.forward_agent,
        machine.forward_agent,
        &printer,
    )?;
    let code = tokio::task::spawn_blocking(move || -> anyhow::Result<i32> {
        if let Some(ssh) = forward {
            return via_openssh(&ssh, &name, command.as_deref(), &printer);
        }
        if let Some(box_dir) = box_dir {
            if let Some(code) = via_holder(&box_dir, &name, command.as_deref(), &printer)? {
                return Ok(code);
            }
        }
        let session = connect(&target, &name, &printer)?;
        let mut out = PrinterOut(&printer);
        let code = match command {
            None if interactive::wants_pty() => interactive::login(&session, None, &mut out),
            // Piped input and no command: a shell reading from stdin, as ssh does.
            None => session.run(None, Some(0), &mut out, &mut PrinterErr(&printer)),
            Some(c) => {
                printer.debug(&format!("ssh {name}: {c}"));
                session.run(Some(&c), Some(0), &mut out, &mut PrinterErr(&printer))
            }
        };
        code.with_context(|| format!("SSH session with `{name}` failed"))
    })
    .await
    .context("the SSH task stopped unexpectedly")??;
    exit_with(code)
}

/// OpenSSH's `ssh` when `-A` (`explicit`) or the machine's `forward_agent`
/// asks for the agent (see [`agent::forwarding`]).
pub(crate) fn forwarding(
    target: &SshTarget,
    name: &str,
    explicit: bool,
    from_boxfile: bool,
    printer: &Printer,
) -> anyhow::Result<Option<ForwardingSsh>> {
    agent::forwarding(target, explicit, from_boxfile, |e| {
        printer.warn(&format!(
            "`{name}` has forward_agent = true, but {e}; going on without it"
        ))
    })
    .map_err(|e| {
        let hint = e.hint();
        Hinted::new(
            format!("cannot forward the SSH agent to `{name}`: {e}"),
            hint,
        )
        .into()
    })
}

/// `box ssh` with the agent forwarded: a login on this terminal, or the
/// command with its output through the printer.
fn via_openssh(
    ssh: &ForwardingSsh,
    name: &str,
    command: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<i32> {
    if let Some(c) = command {
        printer.debug(&format!("ssh {name} (OpenSSH, agent forwarded): {c}"));
    }
    let code = match command {
        None if interactive::wants_pty() => ssh.login(None),
        _ => ssh.run(
            command,
            true,
            &mut PrinterOut(printer),
            &mut PrinterErr(printer),
        ),
    };
    code.with_context(|| format!("SSH session with `{name}` failed"))
}

/// `box ssh` through the connection holder, with this process's own
/// stdin, stdout and stderr.
/// `None`: nothing ran, connect directly.
fn via_holder(
    box_dir: &std::path::Path,
    name: &str,
    command: Option<&str>,
    printer: &Printer,
) -> anyhow::Result<Option<i32>> {
    // An interactive login connects directly: it is the one session the
    // guest's idle watcher must see, and a handshake is nothing next to it.
    if command.is_none() && interactive::wants_pty() {
        return Ok(None);
    }
    let streams = Streams {
        stdin: Some(0),
        stdout: 1,
        stderr: 2,
    };
    if let Some(c) = command {
        printer.debug(&format!("ssh {name}: {c}"));
    }
    ssh_holder::run(box_dir, name, command, None, streams, printer)
        .with_context(|| format!("SSH session with `{name}` failed"))
}

/// A teammate's machine, found on the cloud by its environment id, reached
/// with your own key (`--identity`, else `~/.ssh/id_ed25519`) and the host
/// key pinned in its `box:hostkey` tag.
async fn teammate_target(
    ws: &Workspace,
    env: &str,
    machine: &crate::boxfile::Machine,
    identity: Option<PathBuf>,
) -> anyhow::Result<SshTarget> {
    let identity = match identity {
        Some(p) => p,
        None => std::env::var_os("HOME")
            .map(|h| PathBuf::from(h).join(".ssh").join("id_ed25519"))
            .context("HOME is not set; name your key with --identity FILE")?,
    };
    if !identity.is_file() {
        return Err(Hinted::new(
            format!("no private key at {}", identity.display()),
            "name the key whose public half was shared with you: `--identity FILE`",
        )
        .into());
    }
    if machine.provider != ProviderKind::CloudStack {
        return Err(Hinted::new(
            format!(
                "`{}` is a {} machine; --env finds machines on CloudStack",
                machine.name, machine.provider
            ),
            "ask its owner for `box ssh-config` instead",
        )
        .into());
    }
    let Provider::CloudStack(cs) = Provider::open(ProviderKind::CloudStack, &ws.context()).await?
    else {
        anyhow::bail!("the CloudStack provider did not open");
    };
    cs.teammate_target(env, machine, identity).await
}

/// Success for 0, otherwise the remote code as box's own exit code.
pub(crate) fn exit_with(code: i32) -> anyhow::Result<ExitStatus> {
    if code == 0 {
        Ok(ExitStatus::Success)
    } else {
        Err(RemoteExit(code.clamp(1, 255) as u8).into())
    }
}

/// The remote command for `-- WORDS`: one word is a shell command line as
/// typed (`box ssh web -- 'ls | wc -l'`); several are quoted word by word,
/// so `box ssh web -- sh -c 'exit 3'` means exactly that.
pub(crate) fn command_line(argv: &[String]) -> String {
    match argv {
        [one] => one.clone(),
        words => quote::join(words),
    }
}

/// Remote stdout, through the printer.
pub(crate) struct PrinterOut<'a>(pub &'a Printer);

impl Write for PrinterOut<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.data_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Remote stderr, through the printer.
pub(crate) struct PrinterErr<'a>(pub &'a Printer);

impl Write for PrinterErr<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.err_bytes(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
