//! `box ssh`, `box exec`, `box ssh-config`, `box upload`/`download` against
//! a real sshd on loopback.

use std::path::Path;
use std::process::Command;

use predicates::prelude::*;

use crate::sshd::{guest_dir, Project, Sshd};
use crate::support;

const ONE: &str = "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n";
const TWO: &str =
    "[project]\nname = \"proj\"\n\n[[machine]]\nname = \"web\"\n\n[[machine]]\nname = \"db\"\n";

#[test]
fn ssh_command_streams_output_and_returns_the_remote_exit_code() {
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    p.cmd()
        .args(["ssh", "web", "-c", "echo out; echo err >&2; exit 3"])
        .assert()
        .code(3)
        .stdout("out\n")
        .stderr(predicate::str::contains("err\n"));
    // Several words after `--` are one argv, quoted word by word.
    p.cmd()
        .args(["ssh", "web", "--", "sh", "-c", "exit 42"])
        .assert()
        .code(42);
    // The primary machine is the default; stdin reaches the command.
    p.cmd()
        .args(["ssh", "--", "cat"])
        .write_stdin("hello from stdin")
        .assert()
        .success()
        .stdout("hello from stdin");
}

#[test]
fn ssh_command_with_large_stdout_and_stderr_at_once_does_not_stall() {
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    // 8 MB on each stream, written concurrently: a reader blocked on one
    // stream while the other fills the channel window would hang here.
    let out = p
        .cmd()
        .args([
            "ssh",
            "web",
            "-c",
            "head -c 8000000 /dev/zero | tr '\\0' o & head -c 8000000 /dev/zero | tr '\\0' e >&2; wait",
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(out.stdout.len(), 8_000_000);
    assert!(out.stdout.iter().all(|&b| b == b'o'));
    assert_eq!(out.stderr.len(), 8_000_000);
}

#[test]
fn a_host_key_other_than_the_pinned_one_is_refused_with_both_fingerprints() {
    let sshd = Sshd::start();
    let impostor = boxcli::keys::generate("impostor").unwrap();
    let mut target = sshd.target();
    target.host_key = impostor.public.clone();
    let p = Project::new(ONE, &[("web", target)]);
    let expected = boxcli::ssh::HostKey::parse(&impostor.public)
        .unwrap()
        .fingerprint();
    let presented = boxcli::ssh::HostKey::parse(&sshd.host_key)
        .unwrap()
        .fingerprint();
    p.cmd()
        .args(["ssh", "web", "--", "touch", "/tmp/box-should-never-run"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("HOST KEY MISMATCH"))
        .stderr(predicate::str::contains(expected))
        .stderr(predicate::str::contains(presented));
}

#[test]
fn ssh_to_a_machine_that_is_not_created_says_how_to_create_it() {
    let p = Project::new(ONE, &[]);
    p.cmd()
        .args(["ssh", "web", "--", "true"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("`web` is not created"))
        .stderr(predicate::str::contains("hint: run `box up web`"));
}

#[test]
fn exec_runs_on_every_machine_and_prefixes_each_line() {
    let sshd = Sshd::start();
    let p = Project::new(TWO, &[("web", sshd.target()), ("db", sshd.target())]);
    let out = p
        .cmd()
        .args(["exec", "--all", "--", "printf 'a\\nb\\n'"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let mut lines: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    assert_eq!(lines, ["db: a", "db: b", "web: a", "web: b"]);
    // One machine failing makes the whole command fail (partial: exit 3).
    p.cmd()
        .args(["exec", "web", "db", "--", "test -e /nonexistent-box-file"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("web: exited with code 1"));
    // A single machine: its own exit code.
    p.cmd()
        .args(["exec", "db", "--", "exit 5"])
        .assert()
        .code(5);
}

#[test]
fn ssh_config_is_usable_by_the_openssh_client_with_strict_host_key_checking() {
    let ssh = support::require("ssh");
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let out = p
        .cmd()
        .arg("ssh-config")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("Host proj-web\n"), "{text}");
    assert!(text.contains("StrictHostKeyChecking yes"), "{text}");
    let known = std::fs::read_to_string(p.path().join(".box/ssh_known_hosts")).unwrap();
    assert!(
        known.starts_with(&format!("[127.0.0.1]:{} ssh-ed25519 ", sshd.port)),
        "{known}"
    );
    let config = p.path().join("ssh_config");
    // No control master in the test: nothing may outlive it.
    std::fs::write(
        &config,
        text.replace("ControlMaster auto", "ControlMaster no"),
    )
    .unwrap();
    let run = Command::new(&ssh)
        .arg("-F")
        .arg(&config)
        .args(["-o", "BatchMode=yes", "proj-web", "echo", "via-openssh"])
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "via-openssh\n");
}

/// The README's way to use `box ssh-config` with OpenSSH, run as written
/// (only the project name differs), so the documented form keeps working.
#[test]
fn readme_ssh_config_form_works_with_the_real_openssh_client() {
    support::require("ssh");
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let write = "box ssh-config > .box/ssh_config";
    let connect = "ssh -F .box/ssh_config shop-web";
    assert!(readme.contains(write), "the README documents `{write}`");
    assert!(readme.contains(connect), "the README documents `{connect}`");
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let box_bin = assert_cmd::cargo::cargo_bin("box");
    let path = format!(
        "{}:{}",
        box_bin.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!(
        "{write} && {} -o BatchMode=yes echo via-readme; rc=$?; \
         ssh -F .box/ssh_config -O exit proj-web 2>/dev/null; exit $rc",
        connect.replace("shop-web", "proj-web")
    );
    let run = Command::new("sh")
        .arg("-c")
        .arg(&script)
        .current_dir(p.path())
        .env("PATH", path)
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&run.stdout), "via-readme\n");
}

#[test]
fn upload_and_download_copy_files_and_folders() {
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let guest = guest_dir();
    let src = p.path().join("tree");
    std::fs::create_dir_all(src.join("sub/deeper")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    std::fs::write(src.join("sub/deeper/b.bin"), vec![7u8; 300_000]).unwrap();
    let tool = src.join("sub/tool.sh");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).unwrap();
    let dest = guest.path().join("copy");
    p.cmd()
        .args(["upload", "web", "tree"])
        .arg(&dest)
        .assert()
        .success()
        .stderr(predicate::str::contains("uploaded 3 file(s)"));
    assert_eq!(
        std::fs::read_to_string(dest.join("a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read(dest.join("sub/deeper/b.bin")).unwrap().len(),
        300_000
    );
    let mode = std::fs::metadata(dest.join("sub/tool.sh"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o755);
    // A single file into an existing folder keeps its name.
    p.cmd()
        .args(["upload", "web", "tree/a.txt"])
        .arg(guest.path())
        .assert()
        .success();
    assert!(guest.path().join("a.txt").is_file());

    let back = p.path().join("back");
    p.cmd()
        .args(["download", "web"])
        .arg(&dest)
        .arg("back")
        .assert()
        .success()
        .stderr(predicate::str::contains("downloaded 3 file(s)"));
    assert_eq!(
        std::fs::read_to_string(back.join("a.txt")).unwrap(),
        "alpha"
    );
    assert_eq!(
        std::fs::read(back.join("sub/deeper/b.bin")).unwrap(),
        vec![7u8; 300_000]
    );
    p.cmd()
        .args(["download", "web"])
        .arg(dest.join("a.txt"))
        .arg("single.txt")
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(p.path().join("single.txt")).unwrap(),
        "alpha"
    );
}

#[test]
fn interactive_ssh_gets_a_pty_of_the_terminal_size_and_returns_the_exit_code() {
    let script = support::require("script");
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let bin = assert_cmd::cargo::cargo_bin("box");
    // `script` gives box a terminal; its size is set before box starts.
    let out = Command::new(script)
        .args(["-q", "-e", "-c"])
        .arg(format!("stty cols 111 rows 33; {} ssh web", bin.display()))
        .arg("/dev/null")
        .current_dir(p.path())
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"tty; stty size; echo $((6*7)); exit 5\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(5), "{text}");
    assert!(text.contains("/dev/pts/"), "{text}");
    assert!(text.contains("33 111"), "{text}");
    assert!(text.contains("\n42"), "{text}");
}

/// `box` run through `sh -c` after `setup` (a umask, a memory limit), and
/// killed after 5 minutes: a safety net against hangs, not a measurement.
pub fn box_in_shell(p: &Project, setup: &str, args: &str) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("box");
    let timeout = support::require("timeout");
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "{setup}; exec {} -s KILL 300 {} {args}",
            timeout.display(),
            bin.display()
        ))
        .current_dir(p.path())
        .env("BOX_HOME", p.home.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn download_keeps_only_the_permission_bits_and_applies_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let guest = guest_dir();
    let tree = guest.path().join("tree");
    std::fs::create_dir_all(&tree).unwrap();
    for (name, mode) in [
        ("suid", 0o4755),
        ("sgid", 0o2755),
        ("open", 0o666),
        ("sticky", 0o1777),
    ] {
        std::fs::write(tree.join(name), name).unwrap();
        std::fs::set_permissions(tree.join(name), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    // An existing local file gets the new mode, through the umask too.
    let back = p.path().join("back");
    std::fs::create_dir_all(back.join("tree")).unwrap();
    std::fs::write(back.join("tree/open"), "old").unwrap();
    std::fs::set_permissions(
        back.join("tree/open"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out = box_in_shell(
        &p,
        "umask 022",
        &format!("download web {} back", tree.display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |rel: &str| {
        std::fs::metadata(back.join(rel))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777
    };
    assert_eq!(mode("tree/suid"), 0o755);
    assert_eq!(mode("tree/sgid"), 0o755);
    assert_eq!(mode("tree/open"), 0o644);
    assert_eq!(mode("tree/sticky"), 0o755);
    assert_eq!(
        std::fs::read_to_string(back.join("tree/open")).unwrap(),
        "open"
    );
    // A single file, under a stricter umask.
    let out = box_in_shell(
        &p,
        "umask 077",
        &format!("download web {} one", tree.join("suid").display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(mode("../one"), 0o700);
}

#[test]
fn download_copies_a_symlink_loop_as_a_link_and_ends() {
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let guest = guest_dir();
    let tree = guest.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f.txt"), "f").unwrap();
    std::os::unix::fs::symlink(".", tree.join("a")).unwrap();
    std::os::unix::fs::symlink("/etc", tree.join("sub/etc")).unwrap();
    // The timeout and memory limit are a safety net against the old endless
    // recursion, not the thing measured.
    let out = box_in_shell(
        &p,
        "ulimit -v 2000000",
        &format!("download web {} back", tree.display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let back = p.path().join("back");
    assert_eq!(std::fs::read_link(back.join("a")).unwrap(), Path::new("."));
    assert_eq!(
        std::fs::read_link(back.join("sub/etc")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_to_string(back.join("sub/f.txt")).unwrap(),
        "f"
    );
}

#[test]
fn upload_copies_links_as_links_and_ends_on_a_symlink_loop() {
    let sshd = Sshd::start();
    let p = Project::new(ONE, &[("web", sshd.target())]);
    let guest = guest_dir();
    let tree = p.path().join("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("sub/f.txt"), "f").unwrap();
    std::os::unix::fs::symlink(".", tree.join("a")).unwrap();
    // A link out of the folder must not pull the host's files along.
    std::os::unix::fs::symlink("/etc", tree.join("sub/etc")).unwrap();
    let dest = guest.path().join("copy");
    let out = box_in_shell(
        &p,
        "ulimit -v 2000000",
        &format!("upload web tree {}", dest.display()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("uploaded 1 file(s)"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_link(dest.join("a")).unwrap(), Path::new("."));
    assert_eq!(
        std::fs::read_link(dest.join("sub/etc")).unwrap(),
        Path::new("/etc")
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("sub/f.txt")).unwrap(),
        "f"
    );
    // Again onto the copy: links and files are replaced in place.
    let out = box_in_shell(&p, "true", &format!("upload web tree/. {}", dest.display()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(std::fs::read_link(dest.join("a")).unwrap(), Path::new("."));
}
