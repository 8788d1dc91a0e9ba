//! `box provision` against a real sshd on loopback: every provisioner kind,
//! `run = once | always | never`, `--with`, and a failing step.

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};

pub(crate) fn log_lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn provisioners_of_every_kind_run_in_order_once_steps_only_once() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
name = "first"
shell = "echo first >> {log}; echo hello from shell"

[[machine.provision]]
name = "tool"
script = "setup.sh"
args = ["one arg", "two"]
env = {{ GREETING = "hi there" }}
run = "always"

[[machine.provision]]
name = "config"
file = "files/app.conf"
destination = "{dest}"

[[machine.provision]]
name = "manual"
shell = "echo manual >> {log}"
run = "never"
"#,
        log = log.display(),
        dest = guest.path().join("etc/app.conf").display(),
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    std::fs::write(
        p.path().join("setup.sh"),
        format!(
            "#!/bin/sh\necho \"script $GREETING [$1] [$2]\" >> {}\necho from script >&2\n",
            log.display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(p.path().join("files")).unwrap();
    std::fs::write(p.path().join("files/app.conf"), "key = value\n").unwrap();

    p.cmd()
        .arg("provision")
        .assert()
        .success()
        .stderr(predicate::str::contains("web: hello from shell"))
        .stderr(predicate::str::contains("web: from script"))
        .stderr(predicate::str::contains("web: provisioned"));
    assert_eq!(
        log_lines(&log),
        ["first", "script hi there [one arg] [two]"]
    );
    assert_eq!(
        std::fs::read_to_string(guest.path().join("etc/app.conf")).unwrap(),
        "key = value\n"
    );
    assert_eq!(p.state("web").provisioned, ["first", "config"]);

    // Again: `once` steps are remembered, `always` runs, `never` does not.
    p.cmd().arg("provision").assert().success();
    assert_eq!(
        log_lines(&log),
        [
            "first",
            "script hi there [one arg] [two]",
            "script hi there [one arg] [two]"
        ]
    );

    // `--with` runs exactly the named steps, whatever their policy.
    p.cmd()
        .args(["provision", "--with", "manual", "--with", "first"])
        .assert()
        .success();
    assert_eq!(
        log_lines(&log)[3..],
        ["first".to_string(), "manual".to_string()]
    );

    p.cmd()
        .args(["provision", "web", "--with", "nope"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no provisioner named `nope`"));
}

#[test]
fn a_failing_step_stops_provisioning_and_names_the_step_and_its_code() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
shell = "echo one >> {log}"

[[machine.provision]]
name = "broken"
shell = "echo about to fail; exit 7"

[[machine.provision]]
shell = "echo three >> {log}"
"#,
        log = log.display()
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    p.cmd()
        .arg("provision")
        .assert()
        .failure()
        .stderr(predicate::str::contains("web: about to fail"))
        .stderr(predicate::str::contains(
            "provisioner `broken` exited with code 7",
        ));
    assert_eq!(log_lines(&log), ["one"]);
    // The step that succeeded is remembered; the rest are still due.
    assert_eq!(p.state("web").provisioned, ["shell-1"]);
}

/// Every entry under `root`, sorted: `path` for a folder, `path = content`
/// for a file, so two trees compare in one assertion.
fn tree(root: &std::path::Path) -> Vec<String> {
    fn walk(root: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        entries.sort();
        for path in entries {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            if path.is_dir() {
                out.push(format!("{rel}/"));
                walk(root, &path, out);
            } else {
                out.push(format!(
                    "{rel} = {}",
                    std::fs::read_to_string(&path).unwrap()
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// A login user's home as the guest has it: what a file provisioner must
/// never delete.
fn fake_home(dir: &std::path::Path) {
    std::fs::create_dir_all(dir.join(".ssh")).unwrap();
    std::fs::write(dir.join(".ssh/authorized_keys"), "ssh-ed25519 KEEP").unwrap();
}

/// The same `file` step twice, once privileged and once not, each onto its
/// own copy of the guest folders `homes` (made by `setup`).
fn file_step_both_ways(
    source: &str,
    destination: &str,
    setup: impl Fn(&std::path::Path),
    write_source: impl Fn(&std::path::Path),
) -> (tempfile::TempDir, assert_cmd::assert::Assert) {
    let sshd = Sshd::start();
    let guest = guest_dir();
    for side in ["root", "user"] {
        std::fs::create_dir_all(guest.path().join(side)).unwrap();
        setup(&guest.path().join(side));
    }
    let boxfile = format!(
        r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
name = "as-root"
file = "{source}"
destination = "{root}/{destination}"
run = "always"

[[machine.provision]]
name = "as-user"
file = "{source}"
destination = "{user}/{destination}"
privileged = false
run = "always"
"#,
        root = guest.path().join("root").display(),
        user = guest.path().join("user").display(),
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    write_source(p.path());
    let assert = p.cmd().arg("provision").assert();
    // Twice: a step that runs `always` must land in the same place again.
    let assert = if assert.get_output().status.success() {
        p.cmd().arg("provision").assert()
    } else {
        assert
    };
    (guest, assert)
}

#[test]
fn a_file_onto_an_existing_folder_goes_inside_it_privileged_or_not() {
    let (guest, assert) = file_step_both_ways(
        "motd.txt",
        "home",
        |side| fake_home(&side.join("home")),
        |project| std::fs::write(project.join("motd.txt"), "hello").unwrap(),
    );
    assert.success();
    let root = tree(&guest.path().join("root"));
    assert_eq!(
        root,
        [
            "home/",
            "home/.ssh/",
            "home/.ssh/authorized_keys = ssh-ed25519 KEEP",
            "home/motd.txt = hello",
        ]
    );
    assert_eq!(tree(&guest.path().join("user")), root);
}

#[test]
fn a_file_onto_an_existing_file_replaces_its_content() {
    let (guest, assert) = file_step_both_ways(
        "motd.txt",
        "etc/motd",
        |side| {
            std::fs::create_dir_all(side.join("etc")).unwrap();
            std::fs::write(side.join("etc/motd"), "old message of the day").unwrap();
        },
        |project| std::fs::write(project.join("motd.txt"), "new").unwrap(),
    );
    assert.success();
    let root = tree(&guest.path().join("root"));
    assert_eq!(root, ["etc/", "etc/motd = new"]);
    assert_eq!(tree(&guest.path().join("user")), root);
}

#[test]
fn a_folder_onto_an_existing_folder_merges_into_it_and_deletes_nothing() {
    let (guest, assert) = file_step_both_ways(
        "conf",
        "home",
        |side| fake_home(&side.join("home")),
        |project| {
            std::fs::create_dir_all(project.join("conf/sub")).unwrap();
            std::fs::write(project.join("conf/a.txt"), "a").unwrap();
            std::fs::write(project.join("conf/sub/b.txt"), "b").unwrap();
        },
    );
    assert.success();
    let root = tree(&guest.path().join("root"));
    assert_eq!(
        root,
        [
            "home/",
            "home/.ssh/",
            "home/.ssh/authorized_keys = ssh-ed25519 KEEP",
            "home/a.txt = a",
            "home/sub/",
            "home/sub/b.txt = b",
        ]
    );
    assert_eq!(tree(&guest.path().join("user")), root);
}

#[test]
fn a_folder_onto_a_destination_ending_in_slash_goes_inside_it() {
    let (guest, assert) = file_step_both_ways(
        "conf",
        "home/",
        |side| fake_home(&side.join("home")),
        |project| {
            std::fs::create_dir_all(project.join("conf")).unwrap();
            std::fs::write(project.join("conf/a.txt"), "a").unwrap();
        },
    );
    assert.success();
    let root = tree(&guest.path().join("root"));
    assert_eq!(
        root,
        [
            "home/",
            "home/.ssh/",
            "home/.ssh/authorized_keys = ssh-ed25519 KEEP",
            "home/conf/",
            "home/conf/a.txt = a",
        ]
    );
    assert_eq!(tree(&guest.path().join("user")), root);
}

#[test]
fn a_folder_onto_an_existing_file_fails_and_keeps_the_file() {
    let (guest, assert) = file_step_both_ways(
        "conf",
        "app.conf",
        |side| std::fs::write(side.join("app.conf"), "keep me").unwrap(),
        |project| {
            std::fs::create_dir_all(project.join("conf")).unwrap();
            std::fs::write(project.join("conf/a.txt"), "a").unwrap();
        },
    );
    assert
        .failure()
        .stderr(predicate::str::contains(
            "provisioner `as-root` could not copy",
        ))
        .stderr(predicate::str::contains("app.conf': File exists"));
    assert_eq!(tree(&guest.path().join("root")), ["app.conf = keep me"]);
}

#[test]
fn missing_destination_folders_are_created() {
    let (guest, assert) = file_step_both_ways(
        "motd.txt",
        "etc/new/deeper/motd",
        |_| {},
        |project| std::fs::write(project.join("motd.txt"), "hi").unwrap(),
    );
    assert.success();
    let root = tree(&guest.path().join("root"));
    assert_eq!(
        root,
        [
            "etc/",
            "etc/new/",
            "etc/new/deeper/",
            "etc/new/deeper/motd = hi"
        ]
    );
    assert_eq!(tree(&guest.path().join("user")), root);
}

/// A `script` step whose `env` holds keys the Boxfile would refuse, run
/// through the library (validation cannot stand in the way): no key may
/// turn into an option of the guest's `env`, and values arrive literally.
#[test]
fn env_keys_never_become_options_and_values_reach_the_script_literally() {
    use boxcli::boxfile::ProvisionerKind;

    let sshd = Sshd::start();
    let guest = guest_dir();
    let out = guest.path().join("seen");
    let pwned = guest.path().join("pwned");
    let boxfile = r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
name = "tool"
script = "show.sh"
env = { GREETING = "replaced below" }
"#;
    let p = Project::new(boxfile, &[("web", sshd.target())]);
    std::fs::write(
        p.path().join("show.sh"),
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$GREETING\" > {}\n",
            out.display()
        ),
    )
    .unwrap();
    let project = boxcli::boxfile::load(p.path()).unwrap();
    let mut machine = project.machine("web").unwrap().clone();
    let hostile_value = format!(
        "it's $(touch {0}) `touch {0}` \"; touch {0}",
        pwned.display()
    );
    let store = boxcli::state::StateStore::open(p.path()).unwrap();
    let printer = boxcli::output::Printer::new(boxcli::output::Level::Normal);
    let session =
        boxcli::ssh::Session::connect(&sshd.target(), std::time::Duration::from_secs(30)).unwrap();

    // A good key with a hostile value: the script sees the value as written.
    let ProvisionerKind::Script { env, .. } = &mut machine.provision[0].kind else {
        unreachable!()
    };
    env.insert("GREETING".into(), hostile_value.clone());
    let only = ["tool".to_string()];
    let mut state = p.state("web");
    boxcli::provision::run(
        &session, &project, &machine, &mut state, &store, &only, &printer,
    )
    .unwrap();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        format!("{hostile_value}\n")
    );
    assert!(!pwned.exists());

    for key in [
        "--split-string".to_string(),
        format!("--split-string=touch {}", pwned.display()),
        "-i".to_string(),
        "-u".to_string(),
        String::new(),
        "A=B".to_string(),
        "X Y".to_string(),
        "1ABC".to_string(),
    ] {
        std::fs::remove_file(&out).ok();
        let ProvisionerKind::Script { env, .. } = &mut machine.provision[0].kind else {
            unreachable!()
        };
        env.clear();
        env.insert(key.clone(), format!("touch {}", pwned.display()));
        let mut state = p.state("web");
        let err = boxcli::provision::run(
            &session, &project, &machine, &mut state, &store, &only, &printer,
        )
        .expect_err(&format!("env key {key:?} is refused"));
        let text = format!("{err:#}");
        assert!(text.contains("provisioner `tool`"), "{text}");
        assert!(text.contains("environment variable name"), "{text}");
        assert!(
            !pwned.exists(),
            "env key {key:?} ran a command in the guest"
        );
        assert!(!out.exists(), "the script ran with env key {key:?}");
    }
}

/// The issue's case on a real guest, where `privileged` means sudo: a file
/// provisioner onto the login user's home put the file inside it, never in
/// its place (SSH still works), and privileged and unprivileged steps place
/// files and folders alike (root owns what a privileged step created).
#[test]
fn a_privileged_file_onto_the_home_folder_goes_inside_and_ssh_still_works() {
    let p = crate::local::Project::new(
        r#"[project]
name = "prov"

[defaults]
box = "debian-12"
cpus = 1
memory = 512
user = "box"

[local]
isolated = true

[[machine]]
name = "m"

[[machine.provision]]
name = "motd-home"
file = "motd.txt"
destination = "/home/box"
run = "never"

[[machine.provision]]
name = "conf-root"
file = "conf"
destination = "/srv/root"
run = "never"

[[machine.provision]]
name = "motd-root"
file = "motd.txt"
destination = "/srv/root"
run = "never"

[[machine.provision]]
name = "conf-user"
file = "conf"
destination = "/home/box/user"
privileged = false
run = "never"

[[machine.provision]]
name = "motd-user"
file = "motd.txt"
destination = "/home/box/user"
privileged = false
run = "never"
"#,
        crate::guest::boxes_dir(),
    );
    std::fs::write(p.root.join("motd.txt"), "hello").unwrap();
    std::fs::create_dir_all(p.root.join("conf/sub")).unwrap();
    std::fs::write(p.root.join("conf/a.txt"), "a").unwrap();
    std::fs::write(p.root.join("conf/sub/b.txt"), "b").unwrap();
    p.ok(&["up"]);

    p.ok(&["provision", "--with", "motd-home"]);
    // SSH still logs in: the home folder and its authorized_keys are there.
    assert_eq!(
        p.sh("m", "cat /home/box/motd.txt; echo; stat -c %U /home/box/motd.txt; test -s /home/box/.ssh/authorized_keys && echo keys"),
        "hello\nroot\nkeys\n"
    );

    // Existing folders with something in them, one root's, one the user's.
    p.sh(
        "m",
        "sudo mkdir -p /srv/root && sudo touch /srv/root/keep && mkdir -p /home/box/user && touch /home/box/user/keep",
    );
    p.ok(&[
        "provision",
        "--with",
        "conf-root",
        "--with",
        "motd-root",
        "--with",
        "conf-user",
        "--with",
        "motd-user",
    ]);
    let listing = "find . | sort; cat motd.txt a.txt sub/b.txt";
    let as_root = p.sh("m", &format!("cd /srv/root && {listing}"));
    let as_user = p.sh("m", &format!("cd /home/box/user && {listing}"));
    assert_eq!(
        as_root,
        ".\n./a.txt\n./keep\n./motd.txt\n./sub\n./sub/b.txt\nhelloab"
    );
    assert_eq!(as_user, as_root);
    assert_eq!(
        p.sh("m", "stat -c %U /srv/root/a.txt /home/box/user/a.txt"),
        "root\nbox\n"
    );
    p.ok(&["destroy", "--force"]);
}

#[test]
fn a_script_without_env_or_args_runs_under_sh_from_its_staging_folder() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let log = guest.path().join("log");
    let boxfile = r#"[project]
name = "proj"

[[machine]]
name = "web"

[[machine.provision]]
script = "plain.sh"
"#;
    let p = Project::new(boxfile, &[("web", sshd.target())]);
    // No `#!`: it runs under sh; `$0` is its staged copy, removed after.
    std::fs::write(
        p.path().join("plain.sh"),
        format!("echo \"$0\" > {}\n", log.display()),
    )
    .unwrap();
    p.cmd().arg("provision").assert().success();
    let staged = std::fs::read_to_string(&log).unwrap();
    assert!(
        staged.starts_with("/tmp/box-provision.") && staged.ends_with("/plain.sh\n"),
        "{staged}"
    );
    assert!(!std::path::Path::new(staged.trim()).exists());
    assert_eq!(p.state("web").provisioned, ["script-1"]);
}
