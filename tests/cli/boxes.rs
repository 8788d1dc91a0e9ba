//! `box box ...`: adding qcow2 images and Vagrant libvirt boxes, checksums,
//! resumed downloads from a loopback server, list/remove/prune, and the
//! shared test image.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command as StdCommand;
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};

use crate::{guest, support};

struct Env {
    home: tempfile::TempDir,
    store: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Env {
    fn new() -> Env {
        Env {
            home: tempfile::tempdir().unwrap(),
            store: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn cmd(&self) -> assert_cmd::Command {
        let mut c = support::box_cmd(self.home.path());
        c.env("BOX_BOXES_DIR", self.store.path())
            .current_dir(self.work.path());
        c
    }

    fn list(&self) -> Vec<serde_json::Value> {
        guest::list(self.store.path())
    }

    /// A small valid qcow2 image whose content differs with `size_mb`.
    fn qcow2(&self, file: &str, size_mb: u32) -> PathBuf {
        support::require("qemu-img");
        let path = self.work.path().join(file);
        let ok = StdCommand::new("qemu-img")
            .args(["create", "-q", "-f", "qcow2"])
            .arg(&path)
            .arg(format!("{size_mb}M"))
            .status()
            .unwrap()
            .success();
        assert!(ok);
        path
    }

    /// Nothing half-added may stay behind in the store.
    fn assert_store_clean(&self) {
        assert!(self.list().is_empty(), "{:?}", self.list());
        for sub in [".tmp", ".downloads"] {
            let dir = self.store.path().join(sub);
            if dir.exists() {
                let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
                assert!(left.is_empty(), "{sub} holds {left:?}");
            }
        }
    }
}

fn sha256_of(path: &Path) -> String {
    let bytes = std::fs::read(path).unwrap();
    Sha256::digest(&bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Vagrant libvirt `.box` (tar.gz) holding `disk` as box.img and the given extra files.
pub(crate) fn vagrant_box(out: &Path, metadata: &str, disk: &Path, extra: &[(&str, &[u8])]) {
    let file = std::fs::File::create(out).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let mut add = |name: &str, bytes: &[u8]| {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, bytes).unwrap();
    };
    add("metadata.json", metadata.as_bytes());
    add("Vagrantfile", b"Vagrant.configure(\"2\") do |config| end\n");
    add("box.img", &std::fs::read(disk).unwrap());
    for (name, bytes) in extra {
        add(name, bytes);
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn plain_qcow2_is_added_listed_and_removed() {
    let env = Env::new();
    let img = env.qcow2("tiny.qcow2", 8);
    env.cmd()
        .args(["box", "add"])
        .arg(&img)
        .args(["--checksum", &format!("sha256:{}", sha256_of(&img))])
        .assert()
        .success();
    let boxes = env.list();
    assert_eq!(boxes.len(), 1);
    assert_eq!(boxes[0]["name"], "tiny");
    assert_eq!(boxes[0]["provider"], "local");
    assert_eq!(boxes[0]["sha256"], sha256_of(&img));
    assert!(boxes[0]["kernel"].is_null());
    let stored = PathBuf::from(boxes[0]["disk"].as_str().unwrap());
    assert!(stored.starts_with(env.store.path()));

    let out = env.cmd().args(["box", "list"]).output().unwrap();
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("tiny"), "{table}");

    env.cmd().args(["box", "remove", "tiny"]).assert().success();
    env.assert_store_clean();
    assert!(!env.store.path().join("tiny").exists());
}

#[test]
fn vagrant_libvirt_box_with_kernel_is_added() {
    let env = Env::new();
    let img = env.qcow2("disk.qcow2", 4);
    let boxfile = env.work.path().join("thing.box");
    vagrant_box(
        &boxfile,
        r#"{"provider":"libvirt","format":"qcow2","virtual_size":4,"version":"1.2.3","cloudstack_template":"Debian 12"}"#,
        &img,
        &[("vmlinuz", b"kernel"), ("initrd.img", b"initrd")],
    );
    env.cmd()
        .args(["box", "add"])
        .arg(&boxfile)
        .args(["--name", "vag"])
        .assert()
        .success();
    let b = &env.list()[0];
    assert_eq!(b["name"], "vag");
    assert_eq!(b["version"], "1.2.3");
    assert_eq!(b["cloudstack_template"], "Debian 12");
    assert_eq!(b["cmdline"], "root=/dev/vda rw console=ttyS0");
    assert_eq!(b["sha256"], sha256_of(&img));
    let kernel = PathBuf::from(b["kernel"].as_str().unwrap());
    assert_eq!(std::fs::read(kernel).unwrap(), b"kernel");
    assert!(PathBuf::from(b["initrd"].as_str().unwrap()).is_file());
    // Vagrant's other files are not kept.
    let entry = PathBuf::from(b["disk"].as_str().unwrap());
    assert!(!entry.parent().unwrap().join("Vagrantfile").exists());

    // The same version again needs --force.
    env.cmd()
        .args(["box", "add"])
        .arg(&boxfile)
        .args(["--name", "vag"])
        .assert()
        .success()
        .stderr(predicates::str::contains("already holds this image"));
    assert_eq!(env.list().len(), 1);
}

#[test]
fn vagrant_box_for_another_provider_is_refused() {
    let env = Env::new();
    let img = env.qcow2("disk.qcow2", 4);
    let boxfile = env.work.path().join("vb.box");
    vagrant_box(&boxfile, r#"{"provider":"virtualbox"}"#, &img, &[]);
    env.cmd()
        .args(["box", "add"])
        .arg(&boxfile)
        .assert()
        .failure()
        .stderr(predicates::str::contains("virtualbox"));
    env.assert_store_clean();
}

#[test]
fn file_that_is_not_a_box_is_refused() {
    let env = Env::new();
    let junk = env.work.path().join("junk.qcow2");
    std::fs::write(&junk, vec![7u8; 4096]).unwrap();
    env.cmd()
        .args(["box", "add"])
        .arg(&junk)
        .assert()
        .failure()
        .stderr(predicates::str::contains(
            "neither a qcow2 image nor a Vagrant box",
        ));
    env.assert_store_clean();
}

#[test]
fn checksum_mismatch_is_refused_and_leaves_nothing() {
    let env = Env::new();
    let img = env.qcow2("tiny.qcow2", 8);
    env.cmd()
        .args(["box", "add"])
        .arg(&img)
        .args(["--checksum", &format!("sha256:{}", "0".repeat(64))])
        .assert()
        .failure()
        .stderr(predicates::str::contains("checksum mismatch"));
    env.assert_store_clean();

    // The same over HTTP: the bad download is not kept for a resume.
    let server = Server::start(std::fs::read(&img).unwrap(), Mode::Normal);
    env.cmd()
        .args(["box", "add", &server.url("tiny.qcow2")])
        .args(["--checksum", &format!("sha256:{}", "0".repeat(64))])
        .assert()
        .failure()
        .stderr(predicates::str::contains("checksum mismatch"));
    env.assert_store_clean();
}

#[test]
fn unknown_box_name_gets_a_hint() {
    let env = Env::new();
    env.cmd()
        .args(["box", "add", "no-such-box"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("hint:"))
        .stderr(predicates::str::contains("debian-12"));
}

#[test]
fn prune_keeps_the_newest_version_of_each_box() {
    let env = Env::new();
    for (i, size) in [4, 5, 6].iter().enumerate() {
        let img = env.qcow2(&format!("v{i}.qcow2"), *size);
        env.cmd()
            .args(["box", "add"])
            .arg(&img)
            .args(["--name", "multi"])
            .assert()
            .success();
    }
    let other = env.qcow2("other.qcow2", 4);
    env.cmd()
        .args(["box", "add"])
        .arg(&other)
        .assert()
        .success();
    assert_eq!(env.list().len(), 4);
    let newest = env
        .list()
        .into_iter()
        .rfind(|b| b["name"] == "multi")
        .unwrap();

    env.cmd().args(["box", "prune"]).assert().success();
    let left = env.list();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.contains(&newest));
    assert!(left.iter().any(|b| b["name"] == "other"));

    // remove --version takes one version only.
    let version = newest["version"].as_str().unwrap();
    env.cmd()
        .args(["box", "remove", "multi", "--box-version", version])
        .assert()
        .success();
    assert_eq!(env.list().len(), 1);
    env.cmd()
        .args(["box", "remove", "multi"])
        .assert()
        .failure();
}

#[test]
fn parallel_adds_of_one_box_do_not_corrupt_the_store() {
    let env = Env::new();
    let img = env.qcow2("disk.qcow2", 16);
    let boxfile = env.work.path().join("same.box");
    vagrant_box(
        &boxfile,
        r#"{"provider":"libvirt","format":"qcow2"}"#,
        &img,
        &[],
    );
    let children: Vec<_> = (0..4)
        .map(|_| {
            let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin("box"));
            c.env("BOX_HOME", env.home.path())
                .env("BOX_BOXES_DIR", env.store.path())
                .args(["box", "add"])
                .arg(&boxfile)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped());
            c.spawn().unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let boxes = env.list();
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    assert_eq!(boxes[0]["sha256"], sha256_of(&img));
    let left: Vec<_> = std::fs::read_dir(env.store.path().join(".tmp"))
        .unwrap()
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn download_resumes_after_the_server_cuts_the_connection() {
    let env = Env::new();
    let img = env.qcow2("net.qcow2", 8);
    let bytes = std::fs::read(&img).unwrap();
    let server = Server::start(bytes.clone(), Mode::CutFirst);
    env.cmd()
        .args(["box", "add", &server.url("net.qcow2")])
        .args(["--checksum", &format!("sha256:{}", sha256_of(&img))])
        .assert()
        .success();
    let requests = server.requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], None);
    let half = bytes.len() / 2;
    assert_eq!(
        requests[1].as_deref(),
        Some(format!("bytes={half}-").as_str())
    );
    let b = &env.list()[0];
    assert_eq!(b["name"], "net");
    assert_eq!(b["sha256"], sha256_of(&img));
    assert!(b["source"]
        .as_str()
        .unwrap()
        .starts_with("http://127.0.0.1:"));
    let downloads = env.store.path().join(".downloads");
    assert_eq!(std::fs::read_dir(downloads).unwrap().count(), 0);
}

#[test]
fn interrupted_download_resumes_on_the_next_command() {
    let env = Env::new();
    let img = env.qcow2("net.qcow2", 8);
    let bytes = std::fs::read(&img).unwrap();
    let server = Server::start(bytes.clone(), Mode::CutThenUnavailable);
    env.cmd()
        .args(["box", "add", &server.url("net.qcow2")])
        .assert()
        .failure()
        .stderr(predicates::str::contains("resume"));
    assert!(env.list().is_empty());

    server.set_mode(Mode::Normal);
    env.cmd()
        .args(["box", "add", &server.url("net.qcow2")])
        .args(["--checksum", &format!("sha256:{}", sha256_of(&img))])
        .assert()
        .success()
        .stderr(predicates::str::contains("resuming"));
    let requests = server.requests();
    let half = bytes.len() / 2;
    assert_eq!(
        requests.last().unwrap().as_deref(),
        Some(format!("bytes={half}-").as_str()),
        "{requests:?}"
    );
    assert_eq!(env.list()[0]["sha256"], sha256_of(&img));
}

#[test]
fn test_guest_cache_holds_a_bootable_looking_debian_box() {
    let dir = guest::boxes_dir();
    let b = guest::test_box(&dir);
    assert_eq!(b["cloudstack_template"], "Debian 12");
    assert_eq!(b["cmdline"], "root=/dev/vda rw console=ttyS0");
    let disk = PathBuf::from(b["disk"].as_str().unwrap());
    let mut magic = [0u8; 4];
    std::fs::File::open(&disk)
        .unwrap()
        .read_exact(&mut magic)
        .unwrap();
    assert_eq!(&magic, b"QFI\xfb");
    for key in ["kernel", "initrd"] {
        let p = PathBuf::from(b[key].as_str().unwrap());
        assert!(
            std::fs::metadata(&p).unwrap().len() > 1_000_000,
            "{}",
            p.display()
        );
    }
    // A second call reuses the cache instead of building again.
    let before = guest::list(&dir).len();
    assert_eq!(guest::boxes_dir(), dir);
    assert_eq!(guest::list(&dir).len(), before);
}

/// How the loopback server misbehaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Normal,
    /// The first full download stops at half the file; ranges work.
    CutFirst,
    /// The first full download stops at half; later requests get 503.
    CutThenUnavailable,
}

/// A loopback HTTP server for one file that honours `Range` and records
/// each request's `Range` header.
struct Server {
    port: u16,
    state: Arc<Mutex<ServerState>>,
}

struct ServerState {
    mode: Mode,
    cut_done: bool,
    requests: Vec<Option<String>>,
}

impl Server {
    fn start(body: Vec<u8>, mode: Mode) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(ServerState {
            mode,
            cut_done: false,
            requests: Vec::new(),
        }));
        let shared = state.clone();
        let body = Arc::new(body);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let (state, body) = (shared.clone(), body.clone());
                std::thread::spawn(move || serve(stream, &state, &body));
            }
        });
        Server { port, state }
    }

    fn url(&self, file: &str) -> String {
        format!("http://127.0.0.1:{}/boxes/{file}", self.port)
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    fn requests(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().requests.clone()
    }
}

fn serve(mut stream: TcpStream, state: &Mutex<ServerState>, body: &[u8]) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut range = None;
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            if k.eq_ignore_ascii_case("range") {
                range = Some(v.trim().to_string());
            }
        }
    }
    let (mode, cut) = {
        let mut s = state.lock().unwrap();
        s.requests.push(range.clone());
        let cut = s.mode != Mode::Normal && !s.cut_done && range.is_none();
        if cut {
            s.cut_done = true;
        }
        (s.mode, cut)
    };
    let etag = "\"v1\"";
    if mode == Mode::CutThenUnavailable && !cut {
        let _ = stream.write_all(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
        );
        return;
    }
    let start = range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.trim_end_matches('-').parse::<usize>().ok());
    let head = match start {
        Some(s) => format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Length: {}\r\nContent-Range: bytes {s}-{}/{}\r\nETag: {etag}\r\nConnection: close\r\n\r\n",
            body.len() - s,
            body.len() - 1,
            body.len()
        ),
        None => format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nETag: {etag}\r\nAccept-Ranges: bytes\r\nConnection: close\r\n\r\n",
            body.len()
        ),
    };
    let _ = stream.write_all(head.as_bytes());
    let from = start.unwrap_or(0);
    let to = if cut { body.len() / 2 } else { body.len() };
    let _ = stream.write_all(&body[from..to]);
    let _ = stream.flush();
    // Dropping the stream here closes the connection mid-file when cut.
    let _ = stream.shutdown(std::net::Shutdown::Both);
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest);
}

#[test]
fn vagrant_box_of_the_debian_image_is_added_and_boots_with_box_up() {
    support::require("qemu-system-x86_64");
    let cache = guest::boxes_dir();
    let debian = guest::test_box(&cache);
    let env = Env::new();
    let work = env.work.path();

    // Vagrant's libvirt layout, carrying the kernel and initrd for direct boot.
    let boxfile = work.join("debian-12.box");
    {
        let mut tar = tar::Builder::new(std::fs::File::create(&boxfile).unwrap());
        let mut header = tar::Header::new_gnu();
        let meta = br#"{"provider":"libvirt","format":"qcow2","virtual_size":3}"#;
        header.set_size(meta.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, "metadata.json", &meta[..])
            .unwrap();
        for (key, name) in [
            ("disk", "box.img"),
            ("kernel", "vmlinuz"),
            ("initrd", "initrd.img"),
        ] {
            let src = PathBuf::from(debian[key].as_str().unwrap());
            tar.append_path_with_name(&src, name).unwrap();
        }
        tar.finish().unwrap();
    }
    env.cmd()
        .args(["box", "add"])
        .arg(&boxfile)
        .args(["--name", "deb-vagrant"])
        .assert()
        .success();
    let added = &env.list()[0];
    assert_eq!(added["sha256"], debian["sha256"]);

    // The added box is what a Boxfile names: `box up` boots it like any box.
    std::fs::write(
        work.join("Boxfile"),
        "[project]\nname = \"vagrant-box\"\n\n[local]\nisolated = true\n\n[[machine]]\nname = \"vm\"\nbox = \"deb-vagrant\"\nmemory = 1024\n",
    )
    .unwrap();
    let _machine = Destroy(env.cmd());
    env.cmd()
        .env("BOX_QEMU_ACCEL", "tcg")
        .arg("up")
        .timeout(std::time::Duration::from_secs(1800))
        .assert()
        .success();
    let out = env
        .cmd()
        .args(["ssh", "vm", "--"])
        .arg("grep VERSION_CODENAME /etc/os-release; sudo -n true && echo sudo-ok; sudo -n sshd -T | grep -i '^passwordauthentication'; sudo -n grep '^root:' /etc/shadow | cut -d: -f2; rsync --version | head -1")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("VERSION_CODENAME=bookworm"), "{text}");
    assert!(text.contains("sudo-ok"), "{text}");
    assert!(text.contains("passwordauthentication no"), "{text}");
    assert!(
        text.lines().any(|l| l == "*"),
        "root must stay locked: {text}"
    );
    assert!(text.contains("rsync"), "{text}");
}

/// Destroys the test's machine however the test ends, so no QEMU outlives it.
struct Destroy(assert_cmd::Command);

impl Drop for Destroy {
    fn drop(&mut self) {
        let _ = self.0.args(["destroy", "--force"]).output();
    }
}

fn recipe(dir: &Path, toml: &str, script: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("box.toml"), toml).unwrap();
    std::fs::write(dir.join("build.sh"), script).unwrap();
}

#[test]
fn recipe_build_adds_the_box_with_its_kernel_and_template() {
    support::require("qemu-img");
    let env = Env::new();
    let dir = env.work.path().join("boxes/tiny");
    recipe(
        &dir,
        "name = \"tiny\"\ncloudstack_template = \"Tiny 1\"\ncmdline = \"root=/dev/vda quiet\"\n\n[build]\nscript = \"build.sh\"\nrequires = [{ program = \"qemu-img\", package = \"qemu-utils\" }]\n",
        "set -e\necho 'I: making the disk...' >&2\nqemu-img create -q -f qcow2 \"$1/disk.qcow2\" 4M\necho k > \"$1/vmlinuz\"\necho i > \"$1/initrd.img\"\n",
    );
    env.cmd()
        .args(["-v", "box", "build", "boxes/tiny"])
        .assert()
        .success()
        .stderr(predicates::str::contains("tiny: making the disk"))
        .stderr(predicates::str::contains("built box `tiny`"));
    let log = env.store.path().join(".logs/tiny-build.log");
    assert!(std::fs::read_to_string(log)
        .unwrap()
        .contains("I: making the disk..."));
    let b = &env.list()[0];
    assert_eq!(b["name"], "tiny");
    assert_eq!(b["cloudstack_template"], "Tiny 1");
    assert_eq!(b["cmdline"], "root=/dev/vda quiet");
    assert!(b["source"].as_str().unwrap().starts_with("recipe:"));
    assert!(PathBuf::from(b["kernel"].as_str().unwrap()).is_file());

    // A second build is a new, newer version.
    env.cmd()
        .args(["box", "build", "boxes/tiny"])
        .assert()
        .success();
    assert_eq!(env.list().len(), 2);
}

#[test]
fn recipe_build_without_its_tools_says_what_to_install() {
    let env = Env::new();
    let dir = env.work.path().join("needs");
    recipe(
        &dir,
        "name = \"needs\"\n[build]\nscript = \"build.sh\"\nrequires = [{ program = \"box-test-no-such-program\", package = \"box-test-pkg\" }]\n",
        "exit 0\n",
    );
    env.cmd()
        .args(["box", "build", "needs"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("box-test-no-such-program"))
        .stderr(predicates::str::contains(
            "hint: apt-get install box-test-pkg",
        ));
    env.assert_store_clean();
}

#[test]
fn failed_recipe_build_shows_the_log_and_leaves_nothing() {
    let env = Env::new();
    let dir = env.work.path().join("broken");
    recipe(
        &dir,
        "name = \"broken\"\n[build]\nscript = \"build.sh\"\n",
        "echo 'E: no mirror reachable' >&2\nexit 3\n",
    );
    env.cmd()
        .args(["box", "build", "broken"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("E: no mirror reachable"))
        .stderr(predicates::str::contains("broken-build.log"));
    env.assert_store_clean();
}

#[test]
fn adding_a_recipe_box_that_is_present_reuses_it() {
    let cache = guest::boxes_dir();
    let before = guest::test_box(&cache);
    let home = tempfile::tempdir().unwrap();
    support::box_cmd(home.path())
        .env("BOX_BOXES_DIR", &cache)
        .args(["box", "add", guest::BOX_NAME])
        .assert()
        .success()
        .stderr(predicates::str::contains("already in the store"));
    assert_eq!(guest::test_box(&cache), before);
}

#[test]
fn parallel_downloads_of_one_url_do_not_corrupt_each_other() {
    let env = Env::new();
    let img = env.qcow2("par.qcow2", 32);
    let server = Server::start(std::fs::read(&img).unwrap(), Mode::Normal);
    let url = server.url("par.qcow2");
    let checksum = format!("sha256:{}", sha256_of(&img));
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(assert_cmd::cargo::cargo_bin("box"))
                .env("BOX_HOME", env.home.path())
                .env("BOX_BOXES_DIR", env.store.path())
                .args(["box", "add", &url, "--checksum", &checksum])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let boxes = env.list();
    assert_eq!(boxes.len(), 1, "{boxes:?}");
    assert_eq!(boxes[0]["sha256"], sha256_of(&img));
    let downloads = env.store.path().join(".downloads");
    assert_eq!(std::fs::read_dir(downloads).unwrap().count(), 0);
}

#[test]
fn download_recipe_checks_the_image_against_its_checksum_list() {
    let env = Env::new();
    let img = env.qcow2("dl.qcow2", 4);
    let image_server = Server::start(std::fs::read(&img).unwrap(), Mode::Normal);
    let good = Server::start(
        format!(
            "{}  dl.qcow2\n{}  other.qcow2\n",
            sha256_of(&img),
            "1".repeat(64)
        )
        .into_bytes(),
        Mode::Normal,
    );
    let bad = Server::start(
        format!("{}  dl.qcow2\n", "2".repeat(64)).into_bytes(),
        Mode::Normal,
    );
    let write = |dir: &str, list: &Server| {
        let dir = env.work.path().join(dir);
        recipe(
            &dir,
            &format!(
                "name = \"dl\"\ncloudstack_template = \"DL 1\"\nget = \"download\"\n\n[download]\nurl = \"{}\"\nchecksum_url = \"{}\"\n",
                image_server.url("dl.qcow2"),
                list.url("SHA256SUMS")
            ),
            "exit 1\n",
        );
        dir
    };
    let bad_dir = write("bad", &bad);
    env.cmd()
        .args(["box", "add"])
        .arg(&bad_dir)
        .assert()
        .failure()
        .stderr(predicates::str::contains("checksum mismatch"));
    env.assert_store_clean();

    let good_dir = write("good", &good);
    env.cmd()
        .args(["box", "add"])
        .arg(&good_dir)
        .assert()
        .success();
    let b = &env.list()[0];
    assert_eq!(b["name"], "dl");
    assert_eq!(b["cloudstack_template"], "DL 1");
    assert_eq!(b["sha256"], sha256_of(&img));
    assert_eq!(b["source"], image_server.url("dl.qcow2"));

    // Present already: nothing is fetched again.
    let before = image_server.requests().len();
    env.cmd()
        .args(["box", "add"])
        .arg(&good_dir)
        .assert()
        .success()
        .stderr(predicates::str::contains("already in the store"));
    assert_eq!(image_server.requests().len(), before);
}
