//! `box sync --pull` and a sync entry's `pull` against a real sshd on
//! loopback (the "guest" is a temp folder on this computer).

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::Path;

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

fn write(root: &Path, rel: &str, body: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

/// A project whose `app/` is synced to `guest`, with `extra` keys on the
/// sync entry and `more` appended to the Boxfile; pushed once.
fn pushed(sshd: &Sshd, guest: &Path, extra: &str, more: &str) -> Project {
    let boxfile = format!(
        "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\nsync = [{{ from = \"app\", to = \"{}\"{extra} }}]\n{more}",
        guest.display()
    );
    let p = Project::new(&boxfile, &[("web", sshd.target())]);
    let app = p.path().join("app");
    write(&app, "a.txt", "host a");
    write(&app, "src/lib.rs", "v1");
    write(&app, "old.txt", "old");
    write(&app, ".gitignore", "dist/\n");
    p.cmd().arg("sync").assert().success();
    assert_eq!(read(&guest.join("src/lib.rs")), "v1");
    p
}

#[test]
fn sync_pull_brings_back_guest_changes_and_leaves_a_conflict_alone_unless_forced() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = pushed(&sshd, &g, "", "");
    let app = p.path().join("app");

    // The guest generates a file, edits one, deletes one; both sides edit a.txt.
    write(&g, "generated/out.txt", "made in the guest");
    std::fs::set_permissions(
        g.join("generated/out.txt"),
        PermissionsExt::from_mode(0o750),
    )
    .unwrap();
    write(&g, "src/lib.rs", "v2 from the guest");
    std::fs::remove_file(g.join("old.txt")).unwrap();
    write(&g, "a.txt", "guest a");
    write(&app, "a.txt", "host a, edited");

    p.cmd().args(["sync", "--pull"]).assert().code(3).stderr(
        predicate::str::contains("web: pulled")
            .and(predicate::str::contains("conflict"))
            .and(predicate::str::contains("a.txt: changed on both sides"))
            .and(predicate::str::contains("--force")),
    );
    assert_eq!(read(&app.join("generated/out.txt")), "made in the guest");
    assert_eq!(mode(&app.join("generated/out.txt")), 0o750);
    assert_eq!(read(&app.join("src/lib.rs")), "v2 from the guest");
    assert!(!app.join("old.txt").exists(), "a guest deletion comes back");
    // The conflict is left alone on both sides.
    assert_eq!(read(&app.join("a.txt")), "host a, edited");
    assert_eq!(read(&g.join("a.txt")), "guest a");
    // Nothing written beside the files (temp files are renamed into place).
    let names: Vec<String> = std::fs::read_dir(app.join("generated"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, vec!["out.txt"]);

    // Pulled files are in step: the push sends nothing back.
    std::fs::remove_file(app.join("a.txt")).unwrap();
    write(&app, "a.txt", "guest a");
    p.cmd()
        .args(["sync", "--pull"])
        .assert()
        .success()
        .stderr(predicate::str::contains(": 0 pulled (0 B), 0 deleted"));
    p.cmd()
        .arg("sync")
        .assert()
        .success()
        .stderr(predicate::str::contains(": 0 sent (0 B), 0 deleted"));

    // A guest deletion against a host edit is a conflict too; --force
    // lets the guest's side win.
    write(&app, "src/lib.rs", "v3 on the host");
    std::fs::remove_file(g.join("src/lib.rs")).unwrap();
    write(&g, "a.txt", "guest a, again");
    write(&app, "a.txt", "host a, again");
    p.cmd()
        .args(["sync", "--pull", "web"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "lib.rs: deleted in the guest, changed on the host",
        ));
    assert_eq!(read(&app.join("src/lib.rs")), "v3 on the host");
    p.cmd()
        .args(["sync", "--pull", "--force", "web"])
        .assert()
        .success();
    assert_eq!(read(&app.join("a.txt")), "guest a, again");
    assert!(!app.join("src/lib.rs").exists());
}

#[test]
fn pull_key_brings_back_ignored_output_after_provision_and_on_sync() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let more = format!(
        "\n[[machine.provision]]\nshell = \"mkdir -p {g}/dist && echo built > {g}/dist/app.js && echo lock > {g}/Cargo.lock && echo junk > {g}/junk.txt\"\n",
        g = g.display()
    );
    let p = pushed(&sshd, &g, ", pull = [\"dist/\", \"Cargo.lock\"]", &more);
    let app = p.path().join("app");
    p.cmd()
        .arg("provision")
        .assert()
        .success()
        .stderr(predicate::str::contains("web: pulled"));
    assert_eq!(read(&app.join("dist/app.js")), "built\n");
    assert_eq!(read(&app.join("Cargo.lock")), "lock\n");
    assert!(
        !app.join("junk.txt").exists(),
        "only the listed paths come back"
    );

    // On `box sync` too, and the push leaves the ignored dist/ alone.
    write(&g, "dist/app.js", "rebuilt");
    p.cmd().arg("sync").assert().success().stderr(
        predicate::str::contains("web: pulled").and(predicate::str::contains("web: synced")),
    );
    assert_eq!(read(&app.join("dist/app.js")), "rebuilt");
    assert_eq!(read(&g.join("dist/app.js")), "rebuilt");

    // Both sides edit Cargo.lock: `box sync` lists it and sends neither way.
    write(&g, "Cargo.lock", "guest lock");
    write(&app, "Cargo.lock", "host lock");
    p.cmd()
        .arg("sync")
        .assert()
        .code(3)
        .stderr(predicate::str::contains(
            "Cargo.lock: changed on both sides",
        ));
    assert_eq!(read(&g.join("Cargo.lock")), "guest lock");
    assert_eq!(read(&app.join("Cargo.lock")), "host lock");
    // `box sync --force` sends the host's version.
    p.cmd().args(["sync", "--force"]).assert().success();
    assert_eq!(read(&g.join("Cargo.lock")), "host lock");

    // A guest path on the command line names the file to bring back.
    write(&g, "junk.txt", "wanted now");
    p.cmd()
        .args(["sync", "--pull", "web"])
        .arg(g.join("junk.txt"))
        .assert()
        .success();
    assert_eq!(read(&app.join("junk.txt")), "wanted now");
}

#[test]
fn sync_pull_never_writes_outside_the_folder_nor_follows_guest_links() {
    let sshd = Sshd::start();
    let guest = guest_dir();
    let g = guest.path().join("app");
    let p = pushed(&sshd, &g, "", "");
    let app = p.path().join("app");
    let outside = tempfile::tempdir().unwrap();
    write(outside.path(), "secret.txt", "guest secret");

    // Links in the guest that lead out of the folder are refused, never followed.
    symlink(outside.path(), g.join("dist")).unwrap();
    symlink("/etc/passwd", g.join("passwd")).unwrap();
    symlink("src/lib.rs", g.join("inner-link")).unwrap();
    // Special files are refused with the reason.
    let mkfifo = support::require("mkfifo");
    assert!(std::process::Command::new(mkfifo)
        .arg(g.join("pipe"))
        .status()
        .unwrap()
        .success());
    // A host link in the way: a write there would land outside.
    let host_outside = tempfile::tempdir().unwrap();
    symlink(host_outside.path(), app.join("gen")).unwrap();
    write(&g, "gen/x.txt", "through the link");

    p.cmd()
        .args(["sync", "--pull", "web"])
        .assert()
        .code(3)
        .stderr(
            predicate::str::contains("dist: is a link leading out of the folder")
                .and(predicate::str::contains(
                    "passwd: is a link leading out of the folder",
                ))
                .and(predicate::str::contains("pipe: is a named pipe (fifo)"))
                .and(predicate::str::contains("a link on the host")),
        );
    assert!(std::fs::symlink_metadata(app.join("dist")).is_err());
    assert!(std::fs::symlink_metadata(app.join("passwd")).is_err());
    assert!(std::fs::symlink_metadata(app.join("pipe")).is_err());
    assert_eq!(
        std::fs::read_link(app.join("inner-link")).unwrap(),
        Path::new("src/lib.rs")
    );
    assert_eq!(std::fs::read_dir(host_outside.path()).unwrap().count(), 0);

    // Asking for a path below the guest link does not follow it either.
    p.cmd()
        .args(["sync", "--pull", "web", "app/dist/secret.txt"])
        .assert()
        .success();
    assert!(std::fs::symlink_metadata(app.join("dist")).is_err());

    // `..` out of the folder, on the command line, is refused before anything runs.
    p.cmd()
        .args(["sync", "--pull", "web", "app/../Boxfile"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "is not inside a synced folder of `web`",
        ));
    p.cmd()
        .args(["sync", "--pull", "web", "app/.box"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("box's own state folder"));
}

/// `box validate` of a Boxfile whose one machine has `sync = [SYNC]`
/// fails, saying `message` at line 6.
fn refused_at_line_6(sync: &str, message: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("app")).unwrap();
    std::fs::write(
        dir.path().join("Boxfile"),
        format!("[project]\nname = \"p\"\n\n[[machine]]\nname = \"web\"\nsync = [{sync}]\n"),
    )
    .unwrap();
    assert_cmd::assert::Assert::new(support::validate(dir.path()))
        .failure()
        .stderr(predicate::str::contains("Boxfile:6:").and(predicate::str::contains(message)));
}

#[test]
fn a_pull_path_that_leaves_the_folder_is_rejected_at_its_line_and_column() {
    refused_at_line_6(
        "{ from = \"app\", to = \"/srv/app\", pull = [\"dist/\", \"../x\"] }",
        "`pull` path `../x` leads out of the folder",
    );
}

/// A run of `box`: exit code, stdout, stderr.
type Ran = (Option<i32>, String, String);

/// The guest side of the end-to-end pull checks, on any provider: `run`
/// is `box ARGS` in the project folder (exit code, stdout, stderr); the
/// project's `app/` is synced to `/srv/app` with `pull = ["dist/"]`, and a
/// provisioner builds `dist/out.js` in the guest.
fn pull_end_to_end(root: &Path, run: &dyn Fn(&[&str]) -> Ran) {
    let ok = |args: &[&str]| {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "`box {}`:\n{out}\n{err}", args.join(" "));
        (out, err)
    };
    let app = root.join("app");
    let (_, err) = ok(&["up"]);
    assert!(err.contains("web: pulled"), "{err}");
    // Built by the provisioner in the guest, ignored by the push, pulled.
    assert_eq!(read(&app.join("dist/out.js")), "built\n");

    // The guest makes a file and edits one the host edits too.
    ok(&[
        "ssh",
        "web",
        "-c",
        "echo made in the guest > /srv/app/gen.txt && echo guest > /srv/app/a.txt",
    ]);
    write(&app, "a.txt", "host\n");
    let (code, _, err) = run(&["sync", "--pull", "web"]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("a.txt: changed on both sides"), "{err}");
    assert_eq!(read(&app.join("gen.txt")), "made in the guest\n");
    assert_eq!(
        read(&app.join("a.txt")),
        "host\n",
        "the conflict is left alone"
    );
    let (out, _) = ok(&["ssh", "web", "-c", "cat /srv/app/a.txt"]);
    assert_eq!(out.trim(), "guest");
    ok(&["destroy", "--force"]);
}

const E2E_MACHINE: &str = r#"
[[machine]]
name = "web"
sync = [{ from = "app", to = "/srv/app", pull = ["dist/"] }]

[[machine.provision]]
shell = "mkdir -p /srv/app/dist && echo built > /srv/app/dist/out.js"
privileged = false
"#;

fn e2e_app(root: &Path) {
    write(&root.join("app"), "a.txt", "start\n");
    write(&root.join("app"), ".gitignore", "dist/\n");
}

#[test]
fn pull_on_a_local_tcg_guest_brings_back_built_and_generated_files_and_lists_a_conflict() {
    let p = crate::local::Project::new(
        &format!(
            "[project]\nname = \"pull\"\n\n[defaults]\nbox = \"debian-12\"\ncpus = 1\nmemory = 512\n\n\
             [local]\nisolated = true\n{E2E_MACHINE}"
        ),
        crate::guest::boxes_dir(),
    );
    e2e_app(&p.root);
    pull_end_to_end(&p.root, &|args| {
        let out = p.run(args);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    });
    assert!(p.qemu_pids().is_empty(), "QEMU left after destroy");
}

#[test]
fn pull_on_a_cloudstack_simulator_machine_brings_back_built_and_generated_files_and_lists_a_conflict(
) {
    support::require("qemu-system-x86_64");
    support::require("qemu-img");
    let boxes = crate::guest::boxes_dir();
    let boxes_arg = boxes.to_string_lossy().into_owned();
    let t = crate::harness::Test::new().with_simulator(crate::cloud::Sim::start_full(
        &["--backing", "qemu", "--boxes-dir", &boxes_arg],
        None,
        &[("BOX_QEMU_ACCEL", "tcg")],
    ));
    let p = t.project(
        "pull",
        &format!(
            "[project]\nname = \"pull\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"Sim-Advanced\"\n\
             template = \"Debian 12\"\nallow_from = [\"127.0.0.0/8\"]\n{E2E_MACHINE}"
        ),
    );
    e2e_app(p.dir());
    pull_end_to_end(p.dir(), &|args| {
        let out = p.run(args).output();
        (out.status.code(), out.stdout, out.stderr)
    });
    assert_eq!(t.census(), crate::cloud::Census::empty());
}

#[test]
fn a_pull_on_a_mounted_folder_is_rejected_at_its_line_and_column() {
    refused_at_line_6(
        "{ from = \"app\", to = \"/srv/app\", type = \"mount\", pull = [\"dist/\"] }",
        "`pull` does not apply to `type = \"mount\"`",
    );
}
