//! The frame every verb relies on: help, manual pages, shell completion,
//! progress on a terminal, state files, the project lock, status from
//! state, and secrets that never leak.

use std::fs;
use std::path::Path;
use std::sync::{Arc, Barrier};

use boxcli::provider::ProviderKind;
use boxcli::state::{MachineState, SshTarget, StateStore, Status};
use predicates::prelude::*;

use crate::cloud::Sim;
use crate::sshd::{Project, Sshd};
use crate::support::{self, box_cmd};

const VERBS: &[&str] = &[
    "init",
    "validate",
    "up",
    "status",
    "ls",
    "ssh",
    "ssh-config",
    "halt",
    "reload",
    "destroy",
    "provision",
    "sync",
    "snapshot",
    "box",
    "completions",
    "exec",
    "upload",
    "download",
    "logs",
    "api",
    "man",
];

fn project_with_machines(dir: &Path, n: usize) {
    let mut text = String::from("[project]\nname = \"shop\"\n\n");
    for i in 0..n {
        text.push_str(&format!("[[machine]]\nname = \"m{i}\"\n\n"));
    }
    fs::write(dir.join("Boxfile"), text).unwrap();
}

/// A running machine's state as a cloud machine: plain `status` shows a
/// cloud machine as recorded (a local one's QEMU is checked by its pid).
fn running_state(name: &str, port: u16) -> MachineState {
    let mut s = MachineState::new(name, ProviderKind::CloudStack);
    s.status = Status::Running;
    s.id = Some(name.to_string());
    s.ssh = Some(SshTarget {
        host: "127.0.0.1".into(),
        port,
        user: "box".into(),
        identity_file: "/nonexistent/id_ed25519".into(),
        host_key:
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB4tQ2Qm2RrKbbZ3ZCeQpDnBeWIw2x9Ob3VWRvg1ZmyB"
                .into(),
    });
    s
}

#[test]
fn help_lists_every_verb() {
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path()).arg("--help").assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for verb in VERBS {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "`box --help` does not list `{verb}`:\n{text}"
        );
    }
}

#[test]
fn usage_errors_exit_with_code_2() {
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path()).arg("frobnicate").assert().code(2);
}

#[test]
fn status_outside_a_project_says_how_to_start_one() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("no Boxfile"))
        .stderr(predicate::str::contains("hint: run `box init`"));
}

#[test]
fn status_reads_state_for_every_machine_without_a_provider() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 10);
    let store = StateStore::open(dir.path()).unwrap();
    for i in 0..5 {
        store
            .save_machine(&running_state(&format!("m{i}"), 2200 + i as u16))
            .unwrap();
    }
    let out = box_cmd(home.path())
        .current_dir(dir.path())
        .args(["status", "--json"])
        .assert()
        .success();
    let rows: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["name"], "m0");
    assert_eq!(rows[0]["status"], "running");
    assert_eq!(rows[0]["ssh"], "box@127.0.0.1:2200");
    assert_eq!(rows[9]["status"], "not-created");

    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("m3  "))
        .stdout(predicate::str::contains("not created"));
}

#[test]
fn status_reports_a_machine_dropped_from_the_boxfile() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    let store = StateStore::open(dir.path()).unwrap();
    store.save_machine(&running_state("old", 2222)).unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success()
        .stdout(predicate::str::contains("(not in Boxfile)"));
}

#[test]
fn a_corrupt_state_file_is_a_clear_error_not_a_panic() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    StateStore::open(dir.path()).unwrap();
    fs::write(
        dir.path().join(".box/machines/m0.json"),
        "{\"schema\": 1, \"na",
    )
    .unwrap();
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("m0.json is corrupt"))
        .stderr(predicate::str::contains("move it aside"))
        .stderr(predicate::str::contains("panicked").not());
}

#[test]
fn state_folder_is_never_committed() {
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("status")
        .assert()
        .success();
    let ignore = fs::read_to_string(dir.path().join(".box/.gitignore")).unwrap();
    assert!(ignore.lines().any(|l| l.trim() == "*"));
}

#[test]
fn concurrent_state_writers_never_leave_a_torn_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    store.save_machine(&running_state("web", 1)).unwrap();
    let barrier = Arc::new(Barrier::new(3));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let store = store.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                for i in 0..300 {
                    let mut s = running_state("web", (w * 1000 + i) as u16);
                    // Vary the size so a torn write would show as bad JSON.
                    s.provisioned = (0..(i % 50)).map(|n| format!("step-{n}")).collect();
                    store.save_machine(&s).unwrap();
                }
            })
        })
        .collect();
    let reader = {
        let store = store.clone();
        let barrier = barrier.clone();
        std::thread::spawn(move || {
            barrier.wait();
            for _ in 0..600 {
                let s = store.load_machine("web").expect("every read parses");
                assert_eq!(s.unwrap().name, "web");
            }
        })
    };
    for w in writers {
        w.join().unwrap();
    }
    reader.join().unwrap();
    let leftovers: Vec<_> = fs::read_dir(dir.path().join(".box/machines"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
}

#[test]
fn the_project_lock_serialises_read_modify_write_across_holders() {
    use boxcli::lock::ProjectLock;
    use boxcli::output::{Level, Printer};
    let dir = tempfile::tempdir().unwrap();
    let store = StateStore::open(dir.path()).unwrap();
    store
        .save_machine(&MachineState::new("web", ProviderKind::Local))
        .unwrap();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let store = store.clone();
            std::thread::spawn(move || {
                let printer = Printer::new(Level::Quiet);
                for _ in 0..100 {
                    let _lock = ProjectLock::acquire(
                        store.dir(),
                        std::time::Duration::from_secs(60),
                        &printer,
                    )
                    .unwrap();
                    let mut s = store.load_machine("web").unwrap().unwrap();
                    s.provisioned.push("x".into());
                    store.save_machine(&s).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let s = store.load_machine("web").unwrap().unwrap();
    assert_eq!(s.provisioned.len(), 200, "an update was lost");
}

#[test]
fn a_second_command_waits_for_the_lock_and_says_so() {
    use boxcli::lock::ProjectLock;
    use boxcli::output::{Level, Printer};
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    project_with_machines(dir.path(), 1);
    let store = StateStore::open(dir.path()).unwrap();
    let lock = ProjectLock::acquire(
        store.dir(),
        std::time::Duration::from_secs(5),
        &Printer::new(Level::Quiet),
    )
    .unwrap();
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(1500));
        drop(lock);
    });
    // `halt` takes the lock; with nothing running it then has nothing to do.
    box_cmd(home.path())
        .current_dir(dir.path())
        .arg("halt")
        .assert()
        .success()
        .stderr(predicate::str::contains("waiting for another box command"));
    releaser.join().unwrap();
}

/// Every file under `dir`, recursively, as bytes.
fn all_files(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(all_files(&p));
        } else if let Ok(bytes) = fs::read(&p) {
            out.push((p, bytes));
        }
    }
    out
}

#[test]
fn the_secret_key_never_appears_in_output_or_state() {
    const SECRET: &str = "Zq7-very-secret-key-9Xb";
    let home = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Boxfile"),
        "[project]\nname = \"leak\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"zone1\"\n\n[[machine]]\nname = \"web\"\n",
    )
    .unwrap();
    let runs: &[&[&str]] = &[
        &["validate"],
        &["status", "--json"],
        &["-vv", "api", "listZones"],
        &["-vv", "api", "--dry-run", "listZones"],
        &["-vv", "up", "--no-connect"],
        &["-vv", "status", "--refresh"],
        &["-vv", "destroy", "--force"],
        &["-vv", "ls", "--all", "--json"],
        &["-vv", "destroy", "--env", "abc123", "--force"],
    ];
    for args in runs {
        let out = box_cmd(home.path())
            .current_dir(dir.path())
            // Port 9 (discard) is closed on loopback: every call fails fast.
            .env("CLOUDSTACK_API_URL", "http://127.0.0.1:9/client/api")
            .env("CLOUDSTACK_API_KEY", "some-api-key")
            .env("CLOUDSTACK_SECRET_KEY", SECRET)
            .args(*args)
            .output()
            .unwrap();
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let text = String::from_utf8_lossy(bytes);
            assert!(
                !text.contains(SECRET),
                "`box {}` printed the secret on {stream}:\n{text}",
                args.join(" ")
            );
            assert!(
                !text.contains("panicked"),
                "`box {}` panicked:\n{text}",
                args.join(" ")
            );
        }
    }
    for root in [dir.path(), home.path()] {
        for (path, bytes) in all_files(root) {
            assert!(
                !String::from_utf8_lossy(&bytes).contains(SECRET),
                "{} holds the secret",
                path.display()
            );
        }
    }
}

// ---- manual pages -------------------------------------------------------

/// The page of `box`'s command `verb` (box.1 for the top level).
fn page_name(verb: &str) -> String {
    if verb.is_empty() {
        "box.1".to_string()
    } else {
        format!("box-{verb}.1")
    }
}

#[test]
fn man_pages_cover_every_command_and_man_finds_them_beside_the_binary() {
    let man = support::require("man");
    support::require("groff");
    let home = tempfile::tempdir().unwrap();
    // As for `cargo install` users: the binary in PREFIX/bin, the pages in
    // PREFIX/share/man/man1, which man-db searches for every folder on PATH.
    let prefix = tempfile::tempdir().unwrap();
    let bin = prefix.path().join("bin");
    let man1 = prefix.path().join("share/man/man1");
    fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(assert_cmd::cargo::cargo_bin("box"), bin.join("box")).unwrap();
    box_cmd(home.path())
        .arg("man")
        .arg("--out-dir")
        .arg(&man1)
        .assert()
        .success()
        .stderr(predicate::str::contains(man1.display().to_string()));

    for verb in std::iter::once("").chain(VERBS.iter().copied()) {
        let page = man1.join(page_name(verb));
        let text = fs::read_to_string(&page)
            .unwrap_or_else(|e| panic!("{} was not written: {e}", page.display()));
        let first = text
            .lines()
            .find(|l| !l.starts_with(".ie") && !l.starts_with(".el"))
            .unwrap_or_default();
        assert!(first.starts_with(".TH "), "{}: {first}", page.display());
    }
    let top = fs::read_to_string(man1.join("box.1")).unwrap();
    // `box man` alone prints the same box.1.
    let printed = box_cmd(home.path()).arg("man").assert().success();
    assert_eq!(String::from_utf8_lossy(&printed.get_output().stdout), top);

    let render = |args: &[&str]| {
        let out = std::process::Command::new(&man)
            .args(args)
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()))
            .env_remove("MANPATH")
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "100")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "man {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    // What the README documents: after `box man --out-dir`, `man box` works.
    let found = render(&["-w", "box"]);
    assert_eq!(found.trim(), man1.join("box.1").display().to_string());
    let text = render(&["box"]);
    for verb in VERBS {
        assert!(
            text.contains(&format!("box-{verb}(1)")),
            "`man box` does not mention box-{verb}(1):\n{text}"
        );
    }
    let up = render(&["-l", man1.join("box-up.1").to_str().unwrap()]);
    assert!(up.contains("--no-provision"), "{up}");
}

// ---- shell completion ---------------------------------------------------

/// A project whose machines have names found nowhere else in the output.
fn completion_project() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Boxfile"),
        "[project]\nname = \"shop\"\n\n[[machine]]\nname = \"webfront\"\n\n[[machine]]\nname = \"dbstore\"\n",
    )
    .unwrap();
    fs::create_dir(dir.path().join("src")).unwrap();
    dir
}

/// `box completions SHELL`, written to a file for the shell to source.
fn registration(home: &Path, shell: &str) -> std::path::PathBuf {
    let out = box_cmd(home)
        .args(["completions", shell])
        .assert()
        .success();
    let path = home.join(format!("box.{shell}"));
    fs::write(&path, &out.get_output().stdout).unwrap();
    path
}

/// A shell run with a throwaway home, so no rc file of the developer's counts.
fn shell(program: &Path, home: &Path, cwd: &Path, script: &str) -> String {
    let out = std::process::Command::new("timeout")
        .arg("120")
        .arg(program)
        .args(if program.ends_with("fish") {
            &["--no-config", "-c"][..]
        } else if program.ends_with("zsh") {
            &["-f", "-c"][..]
        } else {
            &["--norc", "--noprofile", "-c"][..]
        })
        .arg(script)
        .current_dir(cwd)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("BOX_HOME", home)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{} -c {script}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn completion_scripts_are_what_the_complete_variable_prints() {
    let home = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let script = box_cmd(home.path())
            .args(["completions", shell])
            .assert()
            .success();
        let by_env = box_cmd(home.path())
            .env("COMPLETE", shell)
            .assert()
            .success();
        assert_eq!(
            script.get_output().stdout,
            by_env.get_output().stdout,
            "{shell}"
        );
    }
    // elvish and PowerShell keep their static scripts.
    for (shell, marker) in [
        ("elvish", "edit:completion:arg-completer[box]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        box_cmd(home.path())
            .args(["completions", shell])
            .assert()
            .success()
            .stdout(predicate::str::contains(marker).and(predicate::str::contains("ssh-config")));
    }
}

#[test]
fn bash_completes_machine_names_from_the_boxfile() {
    let bash = support::require("bash");
    let home = tempfile::tempdir().unwrap();
    let project = completion_project();
    let script = registration(home.path(), "bash");
    let complete = |cwd: &Path, words: &[&str]| {
        let list = words
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let cword = words.len() - 1;
        let current = words[cword];
        let previous = words[cword - 1];
        shell(
            &bash,
            home.path(),
            cwd,
            &format!(
                "source '{}'\nCOMP_WORDS=({list}); COMP_CWORD={cword}; COMP_TYPE=9\n\
                 _clap_complete_box box '{current}' '{previous}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
                script.display()
            ),
        )
    };
    let names = complete(project.path(), &["box", "halt", ""]);
    assert!(names.lines().any(|l| l == "webfront"), "{names}");
    assert!(names.lines().any(|l| l == "dbstore"), "{names}");
    // A prefix narrows them; a subfolder finds the Boxfile above it.
    let names = complete(&project.path().join("src"), &["box", "ssh", "we"]);
    assert_eq!(names.trim(), "webfront");
    // `-C DIR` names the project from anywhere.
    let dir = project.path().to_str().unwrap();
    let names = complete(home.path(), &["box", "-C", dir, "destroy", "db"]);
    assert_eq!(names.trim(), "dbstore");
    // Outside any project: no machine names, and no noise.
    let names = complete(home.path(), &["box", "up", ""]);
    assert!(!names.contains("webfront"), "{names}");
    assert!(names.contains("--no-provision"), "{names}");
}

#[test]
fn fish_completes_machine_names_from_the_boxfile() {
    let fish = support::require("fish");
    let home = tempfile::tempdir().unwrap();
    let project = completion_project();
    let script = registration(home.path(), "fish");
    let out = shell(
        &fish,
        home.path(),
        &project.path().join("src"),
        &format!("source '{}'; complete -C 'box up '", script.display()),
    );
    let values: Vec<&str> = out.lines().map(|l| l.split('\t').next().unwrap()).collect();
    assert!(values.contains(&"webfront"), "{out}");
    assert!(values.contains(&"dbstore"), "{out}");
    assert!(values.contains(&"--no-provision"), "{out}");
    let out = shell(
        &fish,
        home.path(),
        home.path(),
        &format!(
            "source '{}'; complete -C 'box -C {} snapshot list d'",
            script.display(),
            project.path().display()
        ),
    );
    assert_eq!(out.trim(), "dbstore");
}

#[test]
fn zsh_completes_machine_names_from_the_boxfile() {
    let zsh = support::require("zsh");
    let home = tempfile::tempdir().unwrap();
    let project = completion_project();
    let script = registration(home.path(), "zsh");
    // The zsh protocol itself: the variables its script sets, one candidate
    // a line as `value:description`.
    let out = box_cmd(home.path())
        .current_dir(project.path())
        .env("COMPLETE", "zsh")
        .env("_CLAP_COMPLETE_INDEX", "2")
        .env("_CLAP_IFS", "\n")
        .args(["--", "box", "provision", ""])
        .assert()
        .success();
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(text.lines().any(|l| l == "webfront"), "{text}");
    assert!(text.lines().any(|l| l == "dbstore"), "{text}");
    // A real interactive zsh (on a pseudo-terminal, through zpty) that
    // sources the script and presses Tab twice: the list shows the machines.
    // The read waits for the list; `timeout` only stops a broken setup.
    let driver = format!(
        r#"zmodload zsh/zpty
zpty z zsh -f -i
zpty -w z 'autoload -U compinit; compinit -u -D; source {script}; LISTMAX=10000'
zpty -w -n z $'box halt \t\t'
zpty -r z out '*dbstore*'
print -r -- "$out"
zpty -d z"#,
        script = script.display()
    );
    let out = shell(&zsh, home.path(), project.path(), &driver);
    assert!(out.contains("webfront"), "{out}");
    assert!(out.contains("--force"), "{out}");
}

#[test]
fn completion_never_fails_loudly() {
    let home = tempfile::tempdir().unwrap();
    let project = tempfile::tempdir().unwrap();
    fs::write(
        project.path().join("Boxfile"),
        "[[machine]\nname = \"web\"\n",
    )
    .unwrap();
    for shell in ["bash", "zsh", "fish"] {
        let out = box_cmd(home.path())
            .current_dir(project.path())
            .env("COMPLETE", shell)
            .env("_CLAP_COMPLETE_INDEX", "2")
            .args(["--", "box", "ssh", ""])
            .assert()
            .success();
        let output = out.get_output();
        assert!(output.stderr.is_empty(), "{shell}: {output:?}");
        assert!(!String::from_utf8_lossy(&output.stdout).contains("web"));
    }
}

#[test]
fn a_complete_variable_that_names_no_shell_leaves_box_working() {
    let home = tempfile::tempdir().unwrap();
    for value in ["1", "tcsh", ""] {
        box_cmd(home.path())
            .env("COMPLETE", value)
            .arg("--version")
            .assert()
            .success()
            .stdout(predicate::str::starts_with("box "));
    }
    // A shell named by its path, as `$SHELL` gives it, is a request.
    box_cmd(home.path())
        .env("COMPLETE", "/bin/bash")
        .assert()
        .success()
        .stdout(predicate::str::contains("_clap_complete_box"));
}

// ---- `box up` on machines that run, and progress on a terminal -----------

/// Makes the local provider take `name` for running, without booting
/// anything: its disk exists and its recorded pid is a live process whose
/// command line names that disk, as QEMU's does. SSH goes to the sshd the
/// state already points at. The process ends when the guard is dropped.
pub(crate) struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn pretend_running(project: &Path, name: &str) -> Running {
    let dir = project.join(".box/machines").join(name);
    fs::create_dir_all(&dir).unwrap();
    let disk = dir.join("disk.qcow2");
    fs::write(&disk, b"").unwrap();
    let child = std::process::Command::new(support::require("tail"))
        .arg("-f")
        .arg(&disk)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let file = project.join(".box/machines").join(format!("{name}.json"));
    let mut state: serde_json::Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
    state["provider_data"]["pid"] = child.id().into();
    fs::write(&file, serde_json::to_vec_pretty(&state).unwrap()).unwrap();
    Running(child)
}

const TWO_MACHINES: &str = r#"[project]
name = "shop"

[[machine]]
name = "web"
depends_on = ["db"]

[[machine]]
name = "db"
"#;

/// The local provider's preflight wants QEMU even when nothing boots.
pub(crate) fn require_qemu() {
    support::require(if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    });
    support::require("qemu-img");
}

#[test]
fn up_on_running_machines_says_already_running() {
    require_qemu();
    let sshd = Sshd::start();
    let project = Project::new(
        TWO_MACHINES,
        &[("web", sshd.target()), ("db", sshd.target())],
    );
    let _web = pretend_running(project.path(), "web");
    let _db = pretend_running(project.path(), "db");
    let out = project.cmd().arg("up").assert().success();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    for name in ["web", "db"] {
        assert!(err.contains(&format!("{name}: already running")), "{err}");
        assert!(err.contains(&format!("{name}: ready")), "{err}");
        assert!(!err.contains(&format!("{name}: starting")), "{err}");
        assert!(!err.contains(&format!("{name}: waiting for SSH")), "{err}");
    }
    assert!(err.trim_end().ends_with("next: `box ssh web`"), "{err}");
}

#[test]
fn up_on_a_running_cloud_machine_says_already_running_and_a_halted_one_starting() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path();
    let sim = Sim::start(&[]);
    let dir = home.join("again");
    fs::create_dir_all(&dir).unwrap();
    fs::write(
        dir.join("Boxfile"),
        "[project]\nname = \"again\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"Sim-Advanced\"\nallow_from = [\"127.0.0.0/8\"]\n\n[[machine]]\nname = \"db\"\n",
    )
    .unwrap();
    let up = |expect: &str, never: &str| {
        let out = sim
            .cmd(home, &dir)
            .args(["up", "--no-connect"])
            .assert()
            .success();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        assert!(err.contains(expect), "{err}");
        assert!(!err.contains(never), "{err}");
    };
    up("db: starting", "already running");
    up("db: already running", "db: starting");
    sim.cmd(home, &dir).args(["halt", "db"]).assert().success();
    up("db: starting", "already running");
}

/// Runs `box` (with `args`, a shell word list) in `dir` under a
/// pseudo-terminal, as at a user's terminal, feeding it `input`. Returns the
/// exit status and what the terminal received.
fn on_a_terminal(home: &Path, dir: &Path, args: &str, input: &str) -> (i32, String) {
    use std::io::Write as _;
    let program = assert_cmd::cargo::cargo_bin("box");
    let mut child = std::process::Command::new(support::require("script"))
        .arg("-qec")
        .arg(format!("'{}' {args}", program.display()))
        .arg("/dev/null")
        .current_dir(dir)
        .env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .env("TERM", "xterm")
        .env_remove("CLOUDSTACK_API_URL")
        .env_remove("CLOUDSTACK_API_KEY")
        .env_remove("CLOUDSTACK_SECRET_KEY")
        .env_remove("BOX_PROFILE")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
    )
}

/// The lines a terminal shows, roughly: escape sequences dropped, each line
/// cut to what follows its last carriage return.
fn screen_lines(raw: &str) -> Vec<String> {
    let mut plain = String::new();
    let mut chars = raw.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        plain.push(c);
    }
    plain
        .split('\n')
        .map(|line| {
            line.split('\r')
                .rfind(|s| !s.trim().is_empty())
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn up_on_a_terminal_ends_with_the_next_step_and_every_spinner_has_a_phase() {
    require_qemu();
    let sshd = Sshd::start();
    let project = Project::new(
        TWO_MACHINES,
        &[("web", sshd.target()), ("db", sshd.target())],
    );
    let _web = pretend_running(project.path(), "web");
    let _db = pretend_running(project.path(), "db");
    let (code, raw) = on_a_terminal(project.home.path(), project.path(), "up", "");
    assert_eq!(code, 0, "{raw}");
    let lines = screen_lines(&raw);
    let last = lines.iter().rev().find(|l| !l.is_empty()).unwrap();
    assert_eq!(last, "next: `box ssh web`", "{raw:?}");
    // A spinner frame is `GLYPH NAME PHASE ELAPSED`; never without PHASE.
    for frame in raw.split(['\r', '\n']).flat_map(screen_lines) {
        let words: Vec<&str> = frame.split_whitespace().collect();
        if words.len() >= 2 && ["web", "db"].contains(&words[1]) && words[0].chars().count() == 1 {
            assert!(words.len() >= 4, "a spinner without a phase: {frame:?}");
        }
    }
    assert!(
        lines.iter().any(|l| l.starts_with("web: ready (")),
        "{lines:?}"
    );
}

#[test]
fn destroy_asks_through_the_terminal_and_no_keeps_everything() {
    let sshd = Sshd::start();
    let project = Project::new(TWO_MACHINES, &[("web", sshd.target())]);
    let (code, raw) = on_a_terminal(project.home.path(), project.path(), "destroy", "n\n");
    // The answer was typed ahead, so the terminal's echo of it comes first.
    assert!(
        raw.contains("Destroy web and everything box created for them? [y/N] "),
        "{raw:?}"
    );
    assert!(raw.contains("nothing destroyed\r\n"), "{raw:?}");
    assert_eq!(code, 1, "{raw}");
    assert_eq!(project.state("web").status, Status::Running);
}
