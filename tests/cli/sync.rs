//! `box sync` and `box sync --watch` against a real sshd on loopback (the
//! "guest" is a temp folder on this computer).

use std::io::{BufRead, BufReader};
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};

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
