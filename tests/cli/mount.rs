//! Live folders (`type = "mount"`, issue 15 §1): the host folder mounted
//! in a local guest over virtio-fs, both ways, owned by the login user;
//! virtiofsd lives and dies with QEMU; CloudStack refuses the key.

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::harness::Test;
use crate::local::{pids_mentioning, unsafe_kill, Project};
use crate::{guest, support};

/// virtiofsd processes serving a folder under `root` (both the one box
/// started and the child it forks into its sandbox).
fn virtiofsd_pids(root: &Path) -> Vec<u32> {
    pids_mentioning(&["virtiofsd", &root.to_string_lossy()])
}

/// Waits (as a safety net against hangs, not a measure) until `done`.
fn eventually(what: &str, limit: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < limit, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Kills any virtiofsd a failed test leaves behind.
struct NoOrphans<'a>(&'a Path);

impl Drop for NoOrphans<'_> {
    fn drop(&mut self) {
        for pid in virtiofsd_pids(self.0) {
            unsafe_kill(pid);
        }
    }
}

fn my_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

#[test]
fn a_mounted_folder_is_live_both_ways_owned_by_the_login_user_and_leaves_no_virtiofsd() {
    support::require("unshare");
    assert!(
        Path::new("/usr/lib/qemu/virtiofsd").is_file(),
        "/usr/lib/qemu/virtiofsd is missing (package qemu-system-common)"
    );
    let p = Project::new(
        "[project]\nname = \"live\"\n\n[defaults]\nbox = \"debian-12\"\ncpus = 1\nmemory = 512\nuser = \"box\"\n\n\
         [local]\nisolated = true\n\n[[machine]]\nname = \"m\"\n\
         sync = [{ from = \"src\", to = \"/srv/live\", type = \"mount\" }]\n",
        guest::boxes_dir(),
    );
    let _guard = NoOrphans(&p.root);
    let src = p.root.join("src");
    fs::create_dir_all(src.join("sub")).unwrap();
    fs::write(src.join("hello.txt"), "v1\n").unwrap();
    fs::write(src.join("sub/deep.txt"), "deep\n").unwrap();

    let out = p.run(&["up"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        !stderr.contains("synced"),
        "a mount is not copied: {stderr}"
    );
    assert!(!virtiofsd_pids(&p.root).is_empty(), "no virtiofsd runs");

    // The host's files, as they are, owned by the login user in the guest.
    let seen = p.sh(
        "m",
        "findmnt -n -o FSTYPE --mountpoint /srv/live; cat /srv/live/hello.txt /srv/live/sub/deep.txt; \
         stat -c '%U:%G' /srv/live /srv/live/hello.txt /srv/live/sub",
    );
    assert_eq!(
        seen, "virtiofs\nv1\ndeep\nbox:box\nbox:box\nbox:box\n",
        "{seen}"
    );

    // A host edit shows in the guest (the guest polls; no time is asserted).
    fs::write(src.join("hello.txt"), "v2 from the host\n").unwrap();
    fs::write(src.join("new.txt"), "created on the host\n").unwrap();
    p.sh(
        "m",
        "for i in $(seq 300); do grep -qx 'v2 from the host' /srv/live/hello.txt && \
         test -f /srv/live/new.txt && exit 0; sleep 0.1; done; exit 1",
    );

    // A guest edit shows on the host, owned by the host user.
    p.sh(
        "m",
        "echo 'from the guest' > /srv/live/guest.txt && mkdir /srv/live/out && \
         echo built > /srv/live/out/artifact && echo 'v3 from the guest' > /srv/live/hello.txt && \
         rm /srv/live/new.txt",
    );
    eventually(
        "the guest's writes reach the host",
        Duration::from_secs(30),
        || {
            fs::read_to_string(src.join("guest.txt")).ok().as_deref() == Some("from the guest\n")
                && fs::read_to_string(src.join("out/artifact")).ok().as_deref() == Some("built\n")
                && fs::read_to_string(src.join("hello.txt")).ok().as_deref()
                    == Some("v3 from the guest\n")
                && !src.join("new.txt").exists()
        },
    );
    {
        use std::os::unix::fs::MetadataExt;
        for f in ["guest.txt", "out", "out/artifact"] {
            let meta = fs::metadata(src.join(f)).unwrap();
            assert_eq!(meta.uid(), my_uid(), "owner of {f} on the host");
        }
    }

    // QEMU cannot save a machine whose memory virtiofsd shares.
    let out = p.run(&["suspend"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("m has a mounted folder"), "{stderr}");
    assert!(
        stderr.contains("hint: `box halt m` stops it instead"),
        "{stderr}"
    );
    assert_eq!(p.state("m")["status"], "running");

    // virtiofsd ends with its QEMU, even one killed outright.
    for pid in p.qemu_pids() {
        unsafe_kill(pid);
    }
    eventually(
        "virtiofsd exits once its QEMU is gone",
        Duration::from_secs(60),
        || virtiofsd_pids(&p.root).is_empty(),
    );

    // A box killed (-9) while it starts the machine leaves nothing that
    // `destroy` does not remove: neither virtiofsd nor QEMU.
    let mut child = support::box_command(&p.root.parent().unwrap().join("home"))
        .current_dir(&p.root)
        .env("BOX_BOXES_DIR", guest::boxes_dir())
        .env("BOX_QEMU_ACCEL", "tcg")
        .env("BOX_ISOLATED", "1")
        .arg("up")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pidfile = p.root.join(".box/machines/m/virtiofsd-0.pid");
    eventually("box starts virtiofsd", Duration::from_secs(120), || {
        pidfile.exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // QEMU, if it was started, writes its pid file at once.
    let qemu_pidfile = p.root.join(".box/machines/m/qemu.pid");
    eventually(
        "QEMU is either not started or recorded",
        Duration::from_secs(30),
        || p.qemu_pids().is_empty() || qemu_pidfile.exists(),
    );
    p.ok(&["destroy", "--force"]);
    eventually(
        "virtiofsd is gone after destroy",
        Duration::from_secs(30),
        || virtiofsd_pids(&p.root).is_empty(),
    );
    assert!(p.qemu_pids().is_empty(), "QEMU left after destroy");
    assert!(!p.root.join(".box/machines/m").exists());
    // The host folder is the user's and stays.
    assert_eq!(
        fs::read_to_string(src.join("out/artifact")).unwrap(),
        "built\n"
    );
}

#[test]
fn a_mount_on_cloudstack_is_refused_at_its_line_and_column_with_a_hint() {
    let t = Test::new();
    let p = t.project(
        "cloud-mount",
        "[project]\nname = \"cm\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"z\"\n\n\
         [[machine]]\nname = \"web\"\nsync = [{ from = \".\", to = \"/srv\", type = \"mount\" }]\n",
    );
    let out = p.run(["validate"]).failure();
    out.stderr_has("Boxfile:10:43");
    out.stderr_has("`type = \"mount\"` is for local machines; `web` is a CloudStack machine");
    out.stderr_has("copied over SSH");
}
