//! The starter Boxfile `box init` writes: one machine, the usual keys
//! shown, the rest commented. It lives here so tests can check it validates.

/// The starter Boxfile: one machine, the usual keys shown, the rest commented.
pub fn starter(name: &str) -> String {
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
