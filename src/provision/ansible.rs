//! The `ansible` provisioner and the inventory behind it (also printed by
//! `box ansible-inventory`): every machine of the project that has an SSH
//! endpoint, its groups from the Boxfile's `groups`, and connection
//! settings that use box's key and check the pinned host keys
//! (`StrictHostKeyChecking=yes` against a known_hosts file box writes), so
//! Ansible never trusts a key on first use.
//!
//! The playbook runs on the host with `ansible-playbook` from PATH; box
//! never installs it.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::boxfile::{AnsibleStep, Project};
use crate::error::Hinted;
use crate::fsutil::write_atomic;
use crate::output::Printer;
use crate::ssh::quote;
use crate::ssh::ssh_config::{write_known_hosts, KNOWN_HOSTS};
use crate::state::{MachineState, SshTarget, StateStore};

use super::ProvisionError;

/// The program the provisioner runs.
pub const PLAYBOOK: &str = "ansible-playbook";

/// The inventory file under `.box/`, rewritten before every run.
const INVENTORY: &str = "ansible/inventory.yml";

/// The inventory as YAML, for the machines of `project` that `states` give
/// an SSH endpoint, in Boxfile order. `known_hosts` is the file with their
/// pinned host keys.
pub fn inventory(project: &Project, states: &[MachineState], known_hosts: &Path) -> String {
    let reachable: Vec<(&str, &SshTarget, &[String])> = project
        .machines
        .iter()
        .filter_map(|m| {
            let state = states.iter().find(|s| s.name == m.name)?;
            Some((m.name.as_str(), state.ssh.as_ref()?, m.groups.as_slice()))
        })
        .collect();
    let ssh_args = [
        format!(
            "-o UserKnownHostsFile={}",
            quote(&known_hosts.display().to_string())
        ),
        "-o StrictHostKeyChecking=yes".into(),
        "-o IdentitiesOnly=yes".into(),
        "-o PasswordAuthentication=no".into(),
    ]
    .join(" ");
    let mut y = String::new();
    let _ = writeln!(
        y,
        "# Ansible inventory of box project `{}`, from box's state (box ansible-inventory).",
        project.name
    );
    let _ = writeln!(y, "all:");
    let _ = writeln!(y, "  vars:");
    let _ = writeln!(y, "    ansible_ssh_common_args: {}", scalar(&ssh_args));
    // Debian's python3 is where Ansible looks; no discovery warning.
    let _ = writeln!(y, "    ansible_python_interpreter: auto_silent");
    if reachable.is_empty() {
        let _ = writeln!(y, "  hosts: {{}}");
        return y;
    }
    let _ = writeln!(y, "  hosts:");
    for (name, t, _) in &reachable {
        let _ = writeln!(y, "    {}:", scalar(name));
        let _ = writeln!(y, "      ansible_host: {}", scalar(&t.host));
        let _ = writeln!(y, "      ansible_port: {}", t.port);
        let _ = writeln!(y, "      ansible_user: {}", scalar(&t.user));
        let _ = writeln!(
            y,
            "      ansible_ssh_private_key_file: {}",
            scalar(&t.identity_file.display().to_string())
        );
    }
    let mut groups: Vec<&str> = Vec::new();
    for (_, _, gs) in &reachable {
        for g in gs.iter() {
            if !groups.contains(&g.as_str()) {
                groups.push(g);
            }
        }
    }
    if !groups.is_empty() {
        let _ = writeln!(y, "  children:");
        for g in groups {
            let _ = writeln!(y, "    {}:", scalar(g));
            let _ = writeln!(y, "      hosts:");
            for (name, _, gs) in &reachable {
                if gs.iter().any(|x| x == g) {
                    let _ = writeln!(y, "        {}: {{}}", scalar(name));
                }
            }
        }
    }
    y
}

/// A YAML scalar: a JSON string is a valid double-quoted YAML scalar, and
/// quoting keeps names like `no` or `on` from turning into booleans.
fn scalar(s: &str) -> String {
    serde_json::Value::String(s.to_string()).to_string()
}

/// Writes the known_hosts file (every machine's pinned key) and the
/// inventory under `.box/`; returns the inventory's path.
pub fn write_inventory(project: &Project, store: &StateStore) -> std::io::Result<PathBuf> {
    let states = store.machines().map_err(std::io::Error::other)?;
    let known_hosts = store.dir().join(KNOWN_HOSTS);
    write_known_hosts(&known_hosts, states.iter().filter_map(|s| s.ssh.as_ref()))?;
    let path = store.dir().join(INVENTORY);
    write_atomic(
        &path,
        inventory(project, &states, &known_hosts).as_bytes(),
        0o600,
    )?;
    Ok(path)
}

/// The hint when `ansible-playbook` is not on PATH.
pub fn missing() -> Hinted {
    Hinted::new(
        format!("`{PLAYBOOK}` was not found on PATH"),
        "install Ansible on this computer (Debian/Ubuntu: `apt install ansible-core`; \
         elsewhere `pipx install ansible-core`); box runs playbooks from the host",
    )
}

/// `program` found in one of PATH's folders.
fn on_path(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// What the provisioning machine's step needs besides its settings.
pub(super) struct Run<'a> {
    pub project: &'a Project,
    pub machine: &'a str,
    pub step_name: &'a str,
    /// `--become` (the step is privileged and the login user is not root).
    pub become_root: bool,
    pub store: &'a StateStore,
    pub printer: &'a Printer,
}

/// Runs the playbook; returns `ansible-playbook`'s exit code. Its output
/// is printed line by line under the machine's name.
pub(super) fn run(r: &Run<'_>, step: &AnsibleStep) -> Result<i32, ProvisionError> {
    let host = |what: &str, source| ProvisionError::Host {
        step: r.step_name.to_string(),
        what: what.to_string(),
        source,
    };
    let program = on_path(PLAYBOOK).ok_or_else(|| ProvisionError::Missing {
        step: r.step_name.to_string(),
        source: missing(),
    })?;
    let inventory =
        write_inventory(r.project, r.store).map_err(|e| host("write the inventory", e))?;
    let mut cmd = Command::new(program);
    cmd.arg("--inventory")
        .arg(&inventory)
        .arg("--limit")
        .arg(step.limit.as_deref().unwrap_or(r.machine));
    if r.become_root {
        cmd.arg("--become");
    }
    // Variables go through a file (0600): a value may be a secret, and
    // process arguments are visible to every user of the host.
    let vars = r
        .store
        .dir()
        .join(format!("ansible/{}-{}.vars.json", r.machine, r.step_name));
    if !step.extra_vars.is_empty() {
        let json = serde_json::to_vec(&step.extra_vars).unwrap_or_default();
        write_atomic(&vars, &json, 0o600).map_err(|e| host("write the extra variables", e))?;
        cmd.arg("--extra-vars").arg(format!("@{}", vars.display()));
    }
    cmd.arg(&step.playbook)
        .current_dir(&r.project.root)
        // An ansible.cfg saying `host_key_checking = False` would put
        // `StrictHostKeyChecking=no` ahead of box's options, and OpenSSH
        // keeps the first value: the environment overrides the file.
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("PYTHONUNBUFFERED", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Pipelining sends modules over the SSH session instead of temporary
    // files: fewer round trips (guests under TCG are slow), and `become_user`
    // to an unprivileged user needs no ACL tools in the guest. A user's own
    // setting in the environment wins.
    if std::env::var_os("ANSIBLE_PIPELINING").is_none() {
        cmd.env("ANSIBLE_PIPELINING", "True");
    }
    // Ansible's 10 s for a connection and for sudo's prompt is short for a
    // guest under TCG on a busy host (a swarm's `sudo` once took longer).
    if std::env::var_os("ANSIBLE_TIMEOUT").is_none() {
        cmd.env("ANSIBLE_TIMEOUT", "120");
    }
    r.printer.debug(&format!("ansible: {cmd:?}"));
    let mut child = cmd.spawn().map_err(|e| host("start ansible-playbook", e))?;
    let out = child.stdout.take();
    let err = child.stderr.take();
    std::thread::scope(|s| {
        let print = |pipe: Option<Box<dyn std::io::Read + Send>>| {
            if let Some(pipe) = pipe {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    if !line.trim().is_empty() {
                        r.printer.machine(r.machine, &line);
                    }
                }
            }
        };
        s.spawn(move || print(out.map(|p| Box::new(p) as _)));
        print(err.map(|p| Box::new(p) as _));
    });
    let status = child
        .wait()
        .map_err(|e| host("wait for ansible-playbook", e))?;
    if !step.extra_vars.is_empty() {
        let _ = std::fs::remove_file(&vars);
    }
    Ok(status.code().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ProviderKind;

    fn project(boxfile: &str) -> Project {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Boxfile"), boxfile).unwrap();
        crate::boxfile::load(dir.path()).unwrap()
    }

    fn running(name: &str, port: u16) -> MachineState {
        let mut m = MachineState::new(name, ProviderKind::Local);
        m.ssh = Some(SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: "box".into(),
            identity_file: "/p/my project/.box/keys/id_ed25519".into(),
            host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB box".into(),
        });
        m
    }

    #[test]
    fn inventory_lists_reachable_machines_with_their_groups_and_pinned_keys() {
        let p = project(
            "[[machine]]\nname = \"web\"\ngroups = [\"front\", \"app\"]\n\n\
             [[machine]]\nname = \"db\"\ngroups = [\"app\"]\n\n\
             [[machine]]\nname = \"no\"\ngroups = [\"front\"]\n",
        );
        let y = inventory(
            &p,
            &[running("db", 2201), running("web", 2200)],
            Path::new("/p/my project/.box/ssh_known_hosts"),
        );
        assert!(y.contains(
            "    ansible_ssh_common_args: \"-o UserKnownHostsFile='/p/my project/.box/ssh_known_hosts' \
             -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes -o PasswordAuthentication=no\"\n"
        ));
        assert!(y.contains(
            "  hosts:\n    \"web\":\n      ansible_host: \"127.0.0.1\"\n      ansible_port: 2200\n      \
             ansible_user: \"box\"\n      ansible_ssh_private_key_file: \"/p/my project/.box/keys/id_ed25519\"\n    \"db\":\n"
        ));
        // `no` has no state: it is in no group either.
        assert!(y.ends_with(
            "  children:\n    \"front\":\n      hosts:\n        \"web\": {}\n    \
             \"app\":\n      hosts:\n        \"web\": {}\n        \"db\": {}\n"
        ));
    }

    #[test]
    fn inventory_without_machines_has_empty_hosts() {
        let p = project("[[machine]]\nname = \"web\"\n");
        let y = inventory(&p, &[], Path::new("/k"));
        assert!(y.ends_with("  hosts: {}\n"), "{y}");
    }
}
