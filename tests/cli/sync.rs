//! `box sync` and `box sync --watch` against a real sshd on loopback (the
//! "guest" is a temp folder on this computer).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

fn boxfile(guest: &Path, extra: &str) -> String {
    format!(
        "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\nsync = [{{ from = \"app\", to = \"{}\", exclude = [\"secret.env\", \"tmp/\"]{extra} }}]\n",
        guest.display()
    )
}

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// A project folder `app/` with nested folders, links, an executable,
/// ignored and excluded paths.
fn project_with_tree(sshd: &Sshd, guest: &Path, extra: &str) -> Project {
    let dir = tempfile::tempdir().unwrap();
    let app = dir.path().join("app");
    write(&app, "README.md", "readme");
    write(&app, "src/main.rs", "fn main() {}");
    write(&app, "src/deep/nested/x.txt", "x");
    write(&app, "bin/run.sh", "#!/bin/sh\necho run\n");
    std::fs::set_permissions(app.join("bin/run.sh"), PermissionsExt::from_mode(0o755)).unwrap();
    symlink("src/main.rs", app.join("link")).unwrap();
    symlink("src", app.join("dirlink")).unwrap();
    write(&app, ".gitignore", "target/\n*.log\n");
    write(&app, "target/big.o", "object");
    write(&app, "debug.log", "log");
    write(&app, "secret.env", "TOKEN=1");
    write(&app, "tmp/scratch", "s");
    write(&app, ".box/machines/x.json", "{}");
    std::fs::create_dir_all(app.join("empty")).unwrap();
    let p = Project::new(&boxfile(guest, extra), &[("web", sshd.target())]);
    // Project::new made its own folder; move the tree in.
    std::fs::rename(&app, p.path().join("app")).unwrap();
    p
}

#[test]
fn sync_mirrors_a_tree_then_sends_only_changes_deletions_and_renames() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = project_with_tree(&sshd, &g, "");
    p.cmd()
        .arg("sync")
        .assert()
        .success()
        .stderr(predicate::str::contains("web: synced"));
    assert_eq!(
        std::fs::read_to_string(g.join("README.md")).unwrap(),
        "readme"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("src/deep/nested/x.txt")).unwrap(),
        "x"
    );
    assert_eq!(mode(&g.join("bin/run.sh")), 0o755);
    assert_eq!(mode(&g.join("README.md")), 0o644);
    assert_eq!(
        std::fs::read_link(g.join("link")).unwrap(),
        Path::new("src/main.rs")
    );
    assert_eq!(
        std::fs::read_link(g.join("dirlink")).unwrap(),
        Path::new("src")
    );
    assert!(g.join("empty").is_dir());
    assert!(g.join(".gitignore").is_file());
    for left_out in ["target", "debug.log", "secret.env", "tmp", ".box"] {
        assert!(!g.join(left_out).exists(), "{left_out} was synced");
    }
    // The owner is the login user (root here).
    assert_eq!(std::fs::metadata(g.join("README.md")).unwrap().uid(), 0);

    // Nothing changed: nothing sent.
    p.cmd()
        .arg("sync")
        .assert()
        .success()
        .stderr(predicate::str::contains(": 0 sent (0 B), 0 deleted"));

    // Change, delete, rename, add, and turn a file into a folder.
    let app = p.path().join("app");
    std::fs::remove_file(app.join("README.md")).unwrap();
    std::fs::rename(app.join("src/deep"), app.join("src/moved")).unwrap();
    write(&app, "src/main.rs", "fn main() { println!(\"v2\"); }");
    write(&app, "new/file.txt", "new");
    std::fs::remove_file(app.join("bin/run.sh")).unwrap();
    write(&app, "bin/run.sh/inner", "now a folder");
    std::fs::set_permissions(app.join("src/main.rs"), PermissionsExt::from_mode(0o700)).unwrap();
    p.cmd()
        .arg("sync")
        .assert()
        .success()
        .stderr(predicate::str::contains("deleted"));
    assert!(!g.join("README.md").exists());
    assert!(!g.join("src/deep").exists());
    assert_eq!(
        std::fs::read_to_string(g.join("src/moved/nested/x.txt")).unwrap(),
        "x"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("src/main.rs")).unwrap(),
        "fn main() { println!(\"v2\"); }"
    );
    assert_eq!(mode(&g.join("src/main.rs")), 0o700);
    assert_eq!(
        std::fs::read_to_string(g.join("new/file.txt")).unwrap(),
        "new"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("bin/run.sh/inner")).unwrap(),
        "now a folder"
    );
    assert_eq!(
        std::fs::read_to_string(g.join("link")).unwrap(),
        "fn main() { println!(\"v2\"); }"
    );

    // A recreated machine (a new host key) gets everything again.
    std::fs::remove_dir_all(&g).unwrap();
    let recreated = Sshd::start();
    let store = boxcli::state::StateStore::open(p.path()).unwrap();
    let mut state = p.state("web");
    state.ssh = Some(recreated.target());
    store.save_machine(&state).unwrap();
    p.cmd().arg("sync").assert().success().stderr(
        predicate::str::contains(" 0 deleted").and(predicate::str::contains(": 0 sent").not()),
    );
    assert_eq!(
        std::fs::read_to_string(g.join("new/file.txt")).unwrap(),
        "new"
    );
}

#[test]
fn sync_with_an_owner_gives_the_files_to_that_user() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = project_with_tree(&sshd, &g, ", owner = \"nobody\"");
    p.cmd().arg("sync").assert().success();
    // nobody is uid 65534 on Debian.
    assert_eq!(
        std::fs::metadata(g.join("src/main.rs")).unwrap().uid(),
        65534
    );
    assert_eq!(std::fs::metadata(g.join("src")).unwrap().uid(), 65534);
}

#[test]
fn sync_watch_sends_a_change_made_while_it_runs() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = project_with_tree(&sshd, &g, "");
    let mut child = Command::new(assert_cmd::cargo::cargo_bin("box"))
        .args(["sync", "--watch"])
        .current_dir(p.path())
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    // A failed assertion below must not leave the watcher running.
    let mut child = KillOnDrop(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line);
        }
    });
    // Deadlines below only keep a broken build from hanging the suite.
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("box sync --watch started");
        seen.push(line.clone());
        if line.contains("watching") {
            break;
        }
    }
    write(&p.path().join("app"), "src/added-while-watching.txt", "hot");
    let deadline = Instant::now() + Duration::from_secs(60);
    let target = g.join("src/added-while-watching.txt");
    while std::fs::read_to_string(&target).ok().as_deref() != Some("hot") {
        assert!(
            Instant::now() < deadline,
            "the change never reached the guest: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let line = loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("a sync line");
        if line.contains("synced") {
            break line;
        }
    };
    assert!(line.contains("1 sent"), "{line}");

    // A new nested folder, a deletion, and an ignored file in one burst.
    let app = p.path().join("app");
    write(&app, "fresh/a/b/c.txt", "deep");
    std::fs::remove_file(app.join("README.md")).unwrap();
    write(&app, "fresh/a/ignored.log", "not synced");
    let deep = g.join("fresh/a/b/c.txt");
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_to_string(&deep).ok().as_deref() != Some("deep")
        || g.join("README.md").exists()
    {
        assert!(
            Instant::now() < deadline,
            "the changes never reached the guest"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!g.join("fresh/a/ignored.log").exists());
    let _ = child.0.kill();
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `box` run through `sh -c`: after `setup` (a memory limit), under
/// `wrapper` (setpriv, or nothing), and killed after 5 minutes, a safety
/// net against hangs and not a measurement.
fn run_box(p: &Project, setup: &str, wrapper: &str, args: &str) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("box");
    let timeout = support::require("timeout");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{setup}; exec {} -s KILL 300 {wrapper} {} {args}",
            timeout.display(),
            bin.display()
        ))
        .current_dir(p.path())
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Runs box as root without the capabilities that let root read any file:
/// mode 000 then means unreadable, as for any user.
fn without_read_override() -> String {
    format!(
        "{} --bounding-set=-dac_override,-dac_read_search",
        support::require("setpriv").display()
    )
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A project whose `app/` holds one file; the caller adds the rest.
fn small_project(sshd: &Sshd, guest: &Path, extra: &str) -> Project {
    let p = Project::new(&boxfile(guest, extra), &[("web", sshd.target())]);
    write(&p.path().join("app"), "ok.txt", "ok");
    p
}

/// A `.gitignore` that is no regular file is never opened; the answer is a
/// clear error naming it (its rules cannot be known, so nothing is sent
/// that they might have kept back).
fn assert_refuses_gitignore(kind: &str, make: impl FnOnce(&Path)) {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let sub = p.path().join("app/sub");
    std::fs::create_dir_all(&sub).unwrap();
    make(&sub.join(".gitignore"));
    let out = run_box(&p, "ulimit -v 1000000", "", "sync");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("sub/.gitignore"), "{err}");
    assert!(err.contains(kind), "{err}");
    assert!(err.contains("hint:"), "{err}");
    assert!(!g.join("ok.txt").exists(), "nothing is sent");
}

#[test]
fn sync_refuses_a_fifo_named_gitignore_without_opening_it() {
    let mkfifo = support::require("mkfifo");
    assert_refuses_gitignore("not a regular file", |path| {
        assert!(Command::new(mkfifo).arg(path).status().unwrap().success());
    });
}

#[test]
fn sync_refuses_a_gitignore_that_links_to_dev_zero_without_reading_it() {
    assert_refuses_gitignore("a symbolic link", |path| {
        symlink("/dev/zero", path).unwrap();
    });
}

#[test]
fn sync_refuses_a_gitignore_larger_than_one_mib() {
    assert_refuses_gitignore("larger than 1 MiB", |path| {
        std::fs::write(path, "#".repeat(2 * 1024 * 1024)).unwrap();
    });
}

#[test]
fn sync_applies_gitignore_rules_from_the_repository_root_down_only() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    // The project is a repository; above it, a .gitignore that ignores
    // everything must not count (git would not read it either).
    let outer = tempfile::tempdir().unwrap();
    std::fs::write(outer.path().join(".gitignore"), "*\n").unwrap();
    let p = Project::new_in(outer.path(), &boxfile(&g, ""), &[("web", sshd.target())]);
    std::fs::create_dir(p.path().join(".git")).unwrap();
    std::fs::write(p.path().join(".gitignore"), "*.log\n").unwrap();
    let app = p.path().join("app");
    write(&app, "keep.txt", "k");
    write(&app, "drop.log", "d");
    write(&app, "sub/.gitignore", "*.tmp\n!keep.tmp\n");
    write(&app, "sub/a.tmp", "a");
    write(&app, "sub/keep.tmp", "k");
    write(&app, "sub/deeper/b.tmp", "b");
    let out = run_box(&p, "true", "", "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(g.join("keep.txt").is_file());
    assert!(!g.join("drop.log").exists());
    assert!(g.join("sub/keep.tmp").is_file());
    assert!(!g.join("sub/a.tmp").exists());
    assert!(!g.join("sub/deeper/b.tmp").exists());
}

/// Makes `app/` hold what box cannot read or send: a mode-000 file, a
/// mode-000 folder with a file inside, and a name that is not UTF-8.
fn add_unreadable(app: &Path) {
    use std::os::unix::ffi::OsStrExt;
    write(app, "secret.txt", "s");
    std::fs::set_permissions(app.join("secret.txt"), PermissionsExt::from_mode(0o000)).unwrap();
    write(app, "locked/inner.txt", "i");
    std::fs::set_permissions(app.join("locked"), PermissionsExt::from_mode(0o000)).unwrap();
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff.txt");
    std::fs::write(app.join(name), "b").unwrap();
}

#[test]
fn sync_reports_each_path_it_cannot_read_and_fails_unless_told_to_skip_them() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let app = p.path().join("app");
    add_unreadable(&app);
    let out = run_box(&p, "true", &without_read_override(), "sync");
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    for (path, reason) in [
        ("secret.txt", "Permission denied"),
        ("locked", "Permission denied"),
        ("bad-\\xff.txt", "not valid UTF-8"),
    ] {
        let line = err
            .lines()
            .find(|l| l.starts_with("warning:") && l.contains(path))
            .unwrap_or_else(|| panic!("no warning about {path}: {err}"));
        assert!(line.contains(reason), "{line}");
    }
    assert!(err.contains("1 sent"), "{err}");
    assert!(err.contains("3 skipped"), "{err}");
    assert!(
        err.contains("skip_unreadable"),
        "the hint names the setting: {err}"
    );
    assert_eq!(std::fs::read_to_string(g.join("ok.txt")).unwrap(), "ok");
    assert!(!g.join("secret.txt").exists());
    assert!(!g.join("locked").exists());

    // Chosen on purpose: the same paths are left out, counted, and the
    // command succeeds.
    std::fs::write(
        p.path().join("Boxfile"),
        boxfile(&g, ", skip_unreadable = true"),
    )
    .unwrap();
    let out = run_box(&p, "true", &without_read_override(), "sync");
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("0 sent"), "{err}");
    assert!(err.contains("3 skipped"), "{err}");
    assert!(!err.contains("warning:"), "{err}");
    std::fs::set_permissions(app.join("locked"), PermissionsExt::from_mode(0o755)).unwrap();
}

#[test]
fn sync_of_a_folder_that_became_readable_succeeds_the_first_time() {
    let sshd = Sshd::start_as_nobody();
    let guest = guest_dir();
    std::os::unix::fs::chown(guest.path(), Some(65534), Some(65534)).unwrap();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let app = p.path().join("app");
    write(&app, "locked/inner.txt", "i");
    std::fs::set_permissions(app.join("locked"), PermissionsExt::from_mode(0o000)).unwrap();
    let out = run_box(&p, "true", &without_read_override(), "sync");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(g.join("ok.txt")).unwrap(), "ok");
    std::fs::set_permissions(app.join("locked"), PermissionsExt::from_mode(0o755)).unwrap();
    let out = run_box(&p, "true", &without_read_override(), "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(g.join("locked/inner.txt")).unwrap(),
        "i"
    );
    assert_eq!(mode(&g.join("locked")), 0o755);
}

#[test]
fn sync_into_folders_read_only_on_the_guest_succeeds_the_first_time() {
    let sshd = Sshd::start_as_nobody();
    let guest = guest_dir();
    std::os::unix::fs::chown(guest.path(), Some(65534), Some(65534)).unwrap();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let app = p.path().join("app");
    write(&app, "ro/old.txt", "old");
    write(&app, "gone/deep/f.txt", "f");
    for dir in ["ro", "gone/deep", "gone"] {
        std::fs::set_permissions(app.join(dir), PermissionsExt::from_mode(0o555)).unwrap();
    }
    let out = run_box(&p, "true", "", "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(mode(&g.join("ro")), 0o555);
    assert_eq!(mode(&g.join("gone/deep")), 0o555);
    // The host folders become writable and change; on the guest they are
    // still read-only when the next sync writes into them.
    for dir in ["ro", "gone", "gone/deep"] {
        std::fs::set_permissions(app.join(dir), PermissionsExt::from_mode(0o755)).unwrap();
    }
    std::fs::remove_file(app.join("ro/old.txt")).unwrap();
    write(&app, "ro/new.txt", "new");
    std::fs::remove_dir_all(app.join("gone")).unwrap();
    let out = run_box(&p, "true", "", "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(g.join("ro/new.txt")).unwrap(),
        "new"
    );
    assert!(!g.join("ro/old.txt").exists());
    assert!(!g.join("gone").exists());
    assert_eq!(mode(&g.join("ro")), 0o755);
}

#[test]
fn sync_keeps_a_link_to_the_root_folder_exactly() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let app = p.path().join("app");
    symlink("/", app.join("root")).unwrap();
    symlink("a//b/./c/", app.join("odd")).unwrap();
    let long = format!("/{}", "x".repeat(150));
    symlink(&long, app.join("long")).unwrap();
    let out = run_box(&p, "true", "", "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    // Compared as text: `Path` equality would call `//` and `/` the same.
    let target = |name: &str| std::fs::read_link(g.join(name)).unwrap().into_os_string();
    assert_eq!(target("root"), "/");
    assert_eq!(target("odd"), "a//b/./c/");
    assert_eq!(target("long"), long.as_str());
}

#[test]
fn sync_sends_a_link_out_of_the_project_as_a_link_and_never_what_it_points_to() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = small_project(&sshd, &g, "");
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("id_ed25519"), "PRIVATE").unwrap();
    let app = p.path().join("app");
    symlink(outside.path(), app.join("keys")).unwrap();
    symlink(outside.path().join("id_ed25519"), app.join("key")).unwrap();
    let out = run_box(&p, "true", "", "sync");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read_link(g.join("keys")).unwrap(), outside.path());
    assert_eq!(
        std::fs::read_link(g.join("key")).unwrap(),
        outside.path().join("id_ed25519")
    );
    // Nothing of the target travelled: no file on the guest holds it.
    let found = Command::new("grep")
        .args(["-r", "PRIVATE"])
        .arg(&g)
        .output()
        .unwrap();
    assert!(
        found.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&found.stdout)
    );
}
