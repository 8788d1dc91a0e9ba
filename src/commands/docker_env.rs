//! `box docker-env [machine]`: the environment that points the host's
//! `docker` CLI at a machine's Docker over SSH, as `docker-machine env` did.
//!
//! The docker CLI reaches `ssh://…` hosts by running `ssh` from `PATH`, with
//! no way to pass options (no environment variable, no flag), and OpenSSH
//! reads no configuration file named by the environment. So box writes, in
//! `.box/docker-env/`, an OpenSSH configuration with the machines' `Host`
//! blocks (box's key, `StrictHostKeyChecking yes` against the host keys box
//! pinned: never trust on first use), followed by your own configuration,
//! and a `bin/ssh` that runs the real `ssh` with it. The environment puts
//! that folder first in `PATH` and sets `DOCKER_HOST=ssh://USER@ALIAS`.
//! Any other host you reach with `ssh` from that shell gets your own
//! configuration, as before; `--unset` takes both back out.

use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::cli::{DockerEnvArgs, DockerShell};
use crate::error::{ExitStatus, Hinted};
use crate::fsutil::write_atomic;
use crate::ssh::quote;
use crate::ssh::ssh_config::{alias, host_block};

use super::target::running_target;
use super::workspace::Workspace;
use super::Settings;

pub(crate) fn run(g: &Settings, args: DockerEnvArgs) -> anyhow::Result<ExitStatus> {
    let ws = Workspace::load(g)?;
    let dir = ws.ctx.store.dir().join("docker-env");
    let bin = dir.join("bin");
    let shell = args.shell.unwrap_or_else(shell_from_env);
    let path = std::env::var_os("PATH").unwrap_or_default();
    let others: Vec<PathBuf> = std::env::split_paths(&path).filter(|p| *p != bin).collect();
    if args.unset {
        for line in unset_lines(shell, &others) {
            g.printer.data(&line);
        }
        return Ok(ExitStatus::Success);
    }
    let m = ws.machine_or_primary(args.machine.as_deref())?;
    let target = running_target(&ws, &m.name)?;
    let ssh = real_ssh(&others).ok_or_else(|| {
        Hinted::new(
            "no `ssh` on PATH: the docker CLI reaches a machine's Docker through OpenSSH",
            "install OpenSSH's client (Debian: `apt install openssh-client`)",
        )
    })?;
    // Every machine with an endpoint gets its key and its block, so shells
    // pointed at different machines of the project share one file.
    let (states, known_hosts) = super::ssh_config::pin_every_host_key(&ws)?;
    let mut config = String::from(
        "# Written by `box docker-env`: box's machines, with box's key and the\n\
         # host keys box pinned, then your own OpenSSH configuration.\n",
    );
    for state in &states {
        if let Some(t) = &state.ssh {
            config.push_str(&host_block(
                &alias(&ws.ctx.project.name, &state.name),
                t,
                &known_hosts,
            ));
        }
    }
    config.push_str("Match all\n  Include ~/.ssh/config\n  Include /etc/ssh/ssh_config\n");
    let config_path = dir.join("ssh_config");
    std::fs::create_dir_all(&bin).with_context(|| format!("cannot create {}", bin.display()))?;
    write_atomic(&config_path, config.as_bytes(), 0o644)
        .with_context(|| format!("cannot write {}", config_path.display()))?;
    let wrapper = bin.join("ssh");
    write_atomic(
        &wrapper,
        wrapper_script(&ssh, &config_path).as_bytes(),
        0o755,
    )
    .with_context(|| format!("cannot write {}", wrapper.display()))?;

    let host = format!(
        "ssh://{}@{}",
        target.user,
        alias(&ws.ctx.project.name, &m.name)
    );
    let mut paths = vec![bin];
    paths.extend(others);
    for line in set_lines(shell, &host, &paths) {
        g.printer.data(&line);
    }
    let again = match shell {
        DockerShell::Bash => format!("eval \"$(box docker-env {})\"", m.name),
        DockerShell::Fish => format!("box docker-env {} --shell fish | source", m.name),
        DockerShell::Powershell => format!(
            "& box docker-env {} --shell powershell | Invoke-Expression",
            m.name
        ),
    };
    g.printer.data(&format!(
        "# Run this command to configure your shell:\n# {again}"
    ));
    Ok(ExitStatus::Success)
}

/// `fish` when `$SHELL` is fish, else `bash` (POSIX shells all read it).
fn shell_from_env() -> DockerShell {
    let shell = std::env::var("SHELL").unwrap_or_default();
    if Path::new(&shell).file_name().is_some_and(|n| n == "fish") {
        DockerShell::Fish
    } else {
        DockerShell::Bash
    }
}

/// The first `ssh` on `PATH`, box's own folder left out.
fn real_ssh(path: &[PathBuf]) -> Option<PathBuf> {
    path.iter().map(|d| d.join("ssh")).find(|p| p.is_file())
}

fn wrapper_script(ssh: &Path, config: &Path) -> String {
    format!(
        "#!/bin/sh\n\
         # Written by `box docker-env`: the docker CLI runs `ssh`; this one reads\n\
         # box's configuration for box's machines, then yours.\n\
         exec {} -F {} \"$@\"\n",
        quote(&ssh.to_string_lossy()),
        quote(&config.to_string_lossy())
    )
}

fn joined(paths: &[PathBuf]) -> String {
    std::env::join_paths(paths)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// A PowerShell single-quoted string.
fn ps_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn set_lines(shell: DockerShell, host: &str, paths: &[PathBuf]) -> Vec<String> {
    match shell {
        DockerShell::Bash => vec![
            format!("export DOCKER_HOST={}", quote(host)),
            format!("export PATH={}", quote(&joined(paths))),
        ],
        DockerShell::Fish => vec![
            format!("set -gx DOCKER_HOST {};", quote(host)),
            format!("set -gx PATH {};", fish_list(paths)),
        ],
        DockerShell::Powershell => vec![
            format!("$Env:DOCKER_HOST = {}", ps_quote(host)),
            format!("$Env:PATH = {}", ps_quote(&joined(paths))),
        ],
    }
}

fn unset_lines(shell: DockerShell, paths: &[PathBuf]) -> Vec<String> {
    match shell {
        DockerShell::Bash => vec![
            "unset DOCKER_HOST".to_string(),
            format!("export PATH={}", quote(&joined(paths))),
        ],
        DockerShell::Fish => vec![
            "set -e DOCKER_HOST;".to_string(),
            format!("set -gx PATH {};", fish_list(paths)),
        ],
        DockerShell::Powershell => vec![
            "Remove-Item Env:DOCKER_HOST".to_string(),
            format!("$Env:PATH = {}", ps_quote(&joined(paths))),
        ],
    }
}

fn fish_list(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| quote(&p.to_string_lossy()))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_shell_sets_and_unsets_docker_host_and_path_in_its_own_syntax() {
        let paths = [
            PathBuf::from("/p/my app/.box/docker-env/bin"),
            PathBuf::from("/usr/bin"),
        ];
        assert_eq!(
            set_lines(DockerShell::Bash, "ssh://box@shop-web", &paths),
            [
                "export DOCKER_HOST=ssh://box@shop-web",
                "export PATH='/p/my app/.box/docker-env/bin:/usr/bin'"
            ]
        );
        assert_eq!(
            set_lines(DockerShell::Fish, "ssh://box@shop-web", &paths)[1],
            "set -gx PATH '/p/my app/.box/docker-env/bin' /usr/bin;"
        );
        assert_eq!(
            set_lines(DockerShell::Powershell, "ssh://box@shop-web", &paths)[0],
            "$Env:DOCKER_HOST = 'ssh://box@shop-web'"
        );
        assert_eq!(
            unset_lines(DockerShell::Bash, &paths[1..])[0],
            "unset DOCKER_HOST"
        );
        assert_eq!(
            unset_lines(DockerShell::Fish, &paths[1..])[0],
            "set -e DOCKER_HOST;"
        );
        assert_eq!(
            unset_lines(DockerShell::Powershell, &paths[1..]),
            ["Remove-Item Env:DOCKER_HOST", "$Env:PATH = '/usr/bin'"]
        );
    }

    #[test]
    fn the_wrapper_runs_the_real_ssh_with_box_config() {
        let s = wrapper_script(Path::new("/usr/bin/ssh"), Path::new("/p/a b/ssh_config"));
        assert!(s.starts_with("#!/bin/sh\n"), "{s}");
        assert!(
            s.ends_with("exec /usr/bin/ssh -F '/p/a b/ssh_config' \"$@\"\n"),
            "{s}"
        );
    }
}
