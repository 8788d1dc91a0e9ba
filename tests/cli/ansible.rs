//! The `ansible` provisioner and `box ansible-inventory` against real
//! OpenSSH servers on loopback (one per machine, each with its own host
//! key) and the real `ansible-playbook` from `ansible-core`.

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

/// A playbook that writes `<out>/<host>` with a variable's value, on every
/// host it is limited to.
const PLAYBOOK: &str = r#"- hosts: all
  gather_facts: false
  tasks:
    - name: write a file named after the host
      ansible.builtin.copy:
        dest: "{{ out }}/{{ inventory_hostname }}"
        content: "{{ greeting }} from {{ inventory_hostname }}\n"
"#;

fn two_machines(web: &Sshd, db: &Sshd, provision: &str) -> Project {
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"
groups = ["app", "front"]
{provision}

[[machine]]
name = "db"
groups = ["app"]
"#
    );
    let p = Project::new(&boxfile, &[("web", web.target()), ("db", db.target())]);
    std::fs::write(p.path().join("site.yml"), PLAYBOOK).unwrap();
    p
}

/// A provisioner running PLAYBOOK unprivileged (the sshd
/// sessions are root's, and this host has no sudo): `limit` is a key and
/// value with a trailing comma and space, or nothing.
fn site_step(limit: &str, out: &std::path::Path, greeting: &str) -> String {
    format!(
        "[[machine.provision]]\nprivileged = false\nansible = {{ playbook = \"site.yml\", {limit}\
         extra_vars = {{ out = \"{}\", greeting = \"{greeting}\" }} }}\n",
        out.display()
    )
}

/// `box` with Ansible's own folders (`~/.ansible`) in the test's home.
fn cmd(p: &Project) -> assert_cmd::Command {
    let mut c = p.cmd();
    c.env("HOME", p.home.path()).env_remove("ANSIBLE_CONFIG");
    c
}

#[test]
fn ansible_playbook_creates_a_file_on_two_machines_through_the_pinned_inventory() {
    support::require("ansible-playbook");
    support::require("ssh");
    let (web, db) = (Sshd::start(), Sshd::start());
    let guest = guest_dir();
    let p = two_machines(
        &web,
        &db,
        &format!(
            "{}name = \"site\"\n",
            site_step("limit = \"app\", ", guest.path(), "hello there")
        ),
    );
    cmd(&p)
        .args(["provision", "web"])
        .assert()
        .success()
        .stderr(predicate::str::contains(
            "web: provisioning `site` (ansible)",
        ))
        .stderr(predicate::str::contains("web: PLAY RECAP"))
        .stderr(predicate::str::contains("web: provisioned"));
    for host in ["web", "db"] {
        assert_eq!(
            std::fs::read_to_string(guest.path().join(host)).unwrap(),
            format!("hello there from {host}\n")
        );
    }
    // The inventory box wrote pins both servers' keys, which differ.
    let known = std::fs::read_to_string(p.path().join(".box/ssh_known_hosts")).unwrap();
    for sshd in [&web, &db] {
        let key = sshd.host_key.rsplit_once(' ').unwrap().0;
        assert!(
            known.contains(&format!("[127.0.0.1]:{} {key}", sshd.port)),
            "{known}"
        );
    }
    // Variables went through a file, which is gone; the run is recorded.
    assert!(!p.path().join(".box/ansible/web-site.vars.json").exists());
    assert_eq!(p.state("web").provisioned, ["site"]);
}

#[test]
fn ansible_limit_defaults_to_the_provisioning_machine() {
    support::require("ansible-playbook");
    let (web, db) = (Sshd::start(), Sshd::start());
    let guest = guest_dir();
    let p = two_machines(&web, &db, &site_step("", guest.path(), "hi"));
    cmd(&p).arg("provision").assert().success();
    assert!(guest.path().join("web").exists());
    assert!(!guest.path().join("db").exists());
}

#[test]
fn ansible_refuses_a_machine_whose_host_key_changed() {
    support::require("ansible-playbook");
    let (web, mut db) = (Sshd::start(), Sshd::start());
    let guest = guest_dir();
    let p = two_machines(
        &web,
        &db,
        &site_step("limit = \"db\", ", guest.path(), "hi"),
    );
    // Another server behind db's recorded address: the key box pinned no
    // longer matches, and Ansible must not connect (no trust on first use,
    // no "accept the new key").
    db.restart_with_new_host_key();
    cmd(&p)
        .args(["provision", "web"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("Host key verification failed"))
        .stderr(predicate::str::contains(
            "provisioner `ansible-1` exited with code",
        ));
    assert!(!guest.path().join("db").exists());
    assert!(p.state("web").provisioned.is_empty());
}

#[test]
fn ansible_inventory_prints_every_reachable_machine_with_groups_and_pinned_keys() {
    support::require("ansible-inventory");
    let (web, db) = (Sshd::start(), Sshd::start());
    let p = two_machines(&web, &db, "");
    let out = cmd(&p).arg("ansible-inventory").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    assert!(text.contains("StrictHostKeyChecking=yes"), "{text}");
    assert!(
        text.contains(&format!("ansible_port: {}", web.port)),
        "{text}"
    );
    let inventory = p.path().join("inventory.yml");
    std::fs::write(&inventory, &text).unwrap();
    // Ansible itself reads the groups as the Boxfile has them.
    let listed = std::process::Command::new("ansible-inventory")
        .args(["--list", "-i"])
        .arg(&inventory)
        .env("HOME", p.home.path())
        .output()
        .unwrap();
    assert!(listed.status.success(), "{listed:?}");
    let json: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let hosts = |g: &str| -> Vec<String> {
        json[g]["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| h.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(hosts("app"), ["web", "db"]);
    assert_eq!(hosts("front"), ["web"]);
    assert_eq!(
        json["_meta"]["hostvars"]["db"]["ansible_port"],
        serde_json::json!(db.port)
    );
    // And reaches both machines with it, checking their keys.
    let ping = std::process::Command::new(support::require("ansible"))
        .args(["all", "-m", "ansible.builtin.ping", "-i"])
        .arg(&inventory)
        .env("HOME", p.home.path())
        .env("ANSIBLE_HOST_KEY_CHECKING", "True")
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
}

#[test]
fn ansible_inventory_leaves_out_machines_that_were_never_started() {
    let web = Sshd::start();
    let p = Project::new(
        "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\ngroups = [\"app\"]\n\n\
         [[machine]]\nname = \"db\"\ngroups = [\"app\"]\n",
        &[("web", web.target())],
    );
    cmd(&p)
        .arg("ansible-inventory")
        .assert()
        .success()
        .stdout(predicate::str::contains("\"web\": {}"))
        .stdout(predicate::str::contains("\"db\"").not())
        .stderr(predicate::str::contains(
            "`db` has no SSH endpoint yet and is left out (run `box up db`)",
        ));
}

#[test]
fn ansible_provisioner_without_ansible_playbook_says_how_to_get_it() {
    let web = Sshd::start();
    let p = Project::new(
        "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n\n\
         [[machine.provision]]\nansible = { playbook = \"site.yml\" }\n",
        &[("web", web.target())],
    );
    std::fs::write(p.path().join("site.yml"), PLAYBOOK).unwrap();
    let empty = tempfile::tempdir().unwrap();
    cmd(&p)
        .env("PATH", empty.path())
        .arg("provision")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "caused by: provisioner `ansible-1` cannot run\n  caused by: `ansible-playbook` was not found on PATH",
        ))
        .stderr(predicate::str::contains(
            "hint: install Ansible on this computer",
        ));
    assert!(p.state("web").provisioned.is_empty());
}

#[test]
fn ansible_keys_are_validated_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("site.yml"), PLAYBOOK).unwrap();
    std::fs::write(
        dir.path().join("Boxfile"),
        "[[machine]]\nname = \"web\"\ngroups = [\"app\", \"bad-name\", \"all\"]\n\n\
         [[machine.provision]]\nansible = { playbok = \"site.yml\" }\n\n\
         [[machine.provision]]\nansible = { playbook = \"missing.yml\", limit = 3 }\n",
    )
    .unwrap();
    support::box_cmd(home.path())
        .current_dir(dir.path())
        .arg("validate")
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "Boxfile:3:18: invalid group name `bad-name`",
        ))
        .stderr(predicate::str::contains(
            "Boxfile:3:30: invalid group name `all`",
        ))
        .stderr(predicate::str::contains(
            "Boxfile:6:13: unknown key `playbok` in `ansible`",
        ))
        .stderr(predicate::str::contains("did you mean `playbook`?"))
        .stderr(predicate::str::contains(
            "Boxfile:6:11: an `ansible` provisioner needs a `playbook`",
        ))
        .stderr(predicate::str::contains(
            "Boxfile:9:24: `playbook` path `missing.yml` does not exist",
        ))
        .stderr(predicate::str::contains(
            "Boxfile:9:47: `limit` must be a string, found an integer",
        ));
}
