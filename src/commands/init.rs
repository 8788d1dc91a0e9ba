//! `box init`: write a commented starter Boxfile, never over an existing one.

use std::io::Write as _;

use anyhow::Context as _;

use crate::boxfile;
use crate::error::{ExitStatus, Hinted};
use crate::project::BOXFILE;

use super::Globals;

pub(crate) fn run(g: &Globals, args: crate::cli::InitArgs) -> anyhow::Result<ExitStatus> {
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
    file.write_all(starter(&name).as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))?;
    g.printer.info(&format!("wrote {}", path.display()));
    g.printer
        .info("next: `box validate` to check it, then `box up` to start the machine");
    Ok(ExitStatus::Success)
}

/// The starter Boxfile: one machine, the usual keys shown, the rest commented.
pub(crate) fn starter(name: &str) -> String {
    STARTER.replace("{name}", name)
}

const STARTER: &str = r#"# Boxfile: the machines of this project, for `box up`.
# `box validate` checks it; the reference is docs/boxfile.md in the box repository.
# Per-person settings (memory, zone, offering, allow_from...) belong in a
# Boxfile.local beside this file; it overrides this one and is not committed.

[project]
name = "{name}"
provider = "local"            # "local" (QEMU on this host) or "cloudstack"

[defaults]                    # every machine inherits these unless it sets its own
box = "debian-12"
cpus = 1
memory = 1024                 # MiB
user = "box"                  # the login user box creates in the guest

[[machine]]
name = "dev"                  # becomes the host name
primary = true                # the machine `box ssh` opens by default
# ports = [{ guest = 80, host = 8080 }]
sync = [{ from = ".", to = "/srv/app", exclude = [".git/", "target/"] }]

[[machine.provision]]
name = "motd"
shell = "echo 'Welcome to {name}, provisioned by box' > /etc/motd"
run = "once"                  # once | always | never

# To run on an Apache CloudStack cloud instead, set provider = "cloudstack"
# above and describe where machines go. Credentials never live here: they
# come from ~/.config/box/config.toml, CLOUDSTACK_* variables or CloudMonkey.
#
# [cloudstack]
# profile = "default"
# zone = "zone1"
# template = "Debian 12"
# service_offering = "Small Instance"
# network = "dev-net"
# allow_from = ["203.0.113.7/32"]   # who may reach SSH and the ports
"#;
