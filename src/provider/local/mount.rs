//! Live folders (`type = "mount"`): the host folder itself, served into
//! the guest over virtio-fs by one `virtiofsd` per folder.
//!
//! Why virtio-fs: box's boxes run Debian's cloud kernel, which has no 9p
//! (`CONFIG_NET_9P` is not set) but builds `virtiofs` as a module, and
//! QEMU's package ships the C `virtiofsd` at [`VIRTIOFSD`]. virtio-fs
//! needs the guest's memory in a shared memfd (see `guest::qemu::FsShare`)
//! and blocks migration, so `box suspend` refuses such a machine.
//!
//! Owner in the guest: virtiofsd hands the guest the host's numeric ids,
//! so a folder of host user 0 (or 1001) would belong to root (or nobody)
//! in the guest, and the login user could not write to it. box runs
//! virtiofsd in a user namespace that maps the host user (and group) to
//! [`GUEST_UID`], the login user box's boxes create: the user's files are
//! the login user's in the guest, and what the login user writes is the
//! host user's on the host. Nothing else is mapped: other owners show as
//! `nobody`, and guest root cannot create files in the folder (there is no
//! host id for it), which also keeps guest root from making root-owned
//! files on the host. `--keep-caps` gives virtiofsd the capabilities it
//! needs inside that namespace only.
//!
//! Lifetime: started before QEMU, which connects at once; virtiofsd ends
//! when that connection closes (halt, destroy, a QEMU killed). A virtiofsd
//! whose QEMU never came (box killed in between) is found by its pid file
//! in the machine folder and stopped by the next `up`, `halt` or `destroy`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use guest::cloudinit::GuestMount;
use guest::qemu::FsShare;

use super::net::{self, RunDir};
use super::process;
use crate::boxfile::Machine;
use crate::error::Hinted;

/// The C virtiofsd of Debian's `qemu-system-common` (bookworm has no
/// separate `virtiofsd` package).
pub const VIRTIOFSD: &str = "/usr/lib/qemu/virtiofsd";
/// The login user's uid and gid in box's boxes: the first user cloud-init
/// creates. `box up` checks it (see [`verify`]).
pub const GUEST_UID: u32 = 1000;
/// How long virtiofsd may take to listen on its socket.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(20);

/// One mounted folder of a machine.
#[derive(Debug, Clone)]
pub struct Share {
    pub tag: String,
    pub source: PathBuf,
    pub guest_path: String,
    pub socket: PathBuf,
}

/// The machine's mounted folders, in Boxfile order, tagged `box0`, `box1`…
pub fn shares(machine: &Machine, run: &RunDir) -> anyhow::Result<Vec<Share>> {
    machine
        .sync
        .iter()
        .filter(|f| f.is_mount())
        .enumerate()
        .map(|(i, f)| {
            let socket = run
                .path(&format!("{}-fs{i}.sock", machine.name))
                .context("cannot create the folder for the machine's sockets")?;
            Ok(Share {
                tag: format!("box{i}"),
                source: f.from.clone(),
                guest_path: f.to.clone(),
                socket,
            })
        })
        .collect()
}

/// What QEMU needs of the shares.
pub fn qemu_shares(shares: &[Share]) -> Vec<FsShare> {
    shares
        .iter()
        .map(|s| FsShare {
            tag: s.tag.clone(),
            socket: s.socket.clone(),
        })
        .collect()
}

/// What the seed mounts at boot.
pub fn guest_mounts(shares: &[Share]) -> Vec<GuestMount> {
    shares
        .iter()
        .map(|s| GuestMount {
            tag: s.tag.clone(),
            path: s.guest_path.clone(),
        })
        .collect()
}

fn pidfile(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("virtiofsd-{index}.pid"))
}

fn log_file(dir: &Path, index: usize) -> PathBuf {
    dir.join(format!("virtiofsd-{index}.log"))
}

/// `virtiofsd` and `unshare` must be installed; every shared folder must exist.
pub fn preflight(shares: &[Share]) -> anyhow::Result<()> {
    if shares.is_empty() {
        return Ok(());
    }
    if !Path::new(VIRTIOFSD).is_file() {
        return Err(Hinted::new(
            format!("{VIRTIOFSD} is not installed; box serves `type = \"mount\"` folders with it"),
            "apt-get install qemu-system-common (or change the sync entry to `type = \"copy\"`)",
        )
        .into());
    }
    if !super::on_path("unshare") {
        return Err(Hinted::new(
            "`unshare` is not installed; box runs virtiofsd in a user namespace with it",
            "apt-get install util-linux",
        )
        .into());
    }
    for s in shares {
        if !s.source.is_dir() {
            return Err(Hinted::new(
                format!("the mounted folder {} is not a folder", s.source.display()),
                "fix `from` of the sync entry with `type = \"mount\"`",
            )
            .into());
        }
    }
    Ok(())
}

/// Starts one virtiofsd per share and waits until each listens; on an
/// error, the ones already started are stopped.
pub async fn start(dir: &Path, shares: &[Share]) -> anyhow::Result<()> {
    stop(dir).await;
    for (i, share) in shares.iter().enumerate() {
        if let Err(e) = start_one(dir, i, share).await {
            stop(dir).await;
            return Err(e);
        }
    }
    Ok(())
}

async fn start_one(dir: &Path, index: usize, share: &Share) -> anyhow::Result<()> {
    net::remove_file(&share.socket);
    let log_path = log_file(dir, index);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("cannot create {}", log_path.display()))?;
    let id = GUEST_UID.to_string();
    let mut cmd = tokio::process::Command::new("unshare");
    cmd.args([
        "--user",
        "--map-user",
        &id,
        "--map-group",
        &id,
        "--keep-caps",
        "--",
    ])
    .arg(VIRTIOFSD)
    .arg(format!("--socket-path={}", share.socket.display()))
    .arg("-o")
    // virtiofsd splits its -o values at commas.
    .arg(format!("source={}", share.source.display()))
    .args(["-o", "cache=auto", "-o", "log_level=warn"])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(log)
    // Its own process group: a Ctrl-C at `box up` must not reach it,
    // it serves the machine after box exits.
    .process_group(0)
    .kill_on_drop(false);
    if share.source.to_string_lossy().contains(',') {
        return Err(Hinted::new(
            format!(
                "cannot mount {}: virtiofsd cannot serve a path with a comma",
                share.source.display()
            ),
            "rename the folder, or use `type = \"copy\"`",
        )
        .into());
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot run {VIRTIOFSD}"))?;
    let pid = child.id().context("virtiofsd exited at once")?;
    // `unshare` execs virtiofsd: the pid is virtiofsd's.
    crate::fsutil::write_atomic(
        &pidfile(dir, index),
        format!("{pid}\n{}\n", share.socket.display()).as_bytes(),
        0o644,
    )?;
    let marker = share.socket.to_string_lossy().into_owned();
    let started = Instant::now();
    loop {
        if share.socket.exists() {
            // Not waited on: it outlives box, like QEMU.
            drop(child);
            return Ok(());
        }
        if !process::alive(pid, &marker) || started.elapsed() >= LISTEN_TIMEOUT {
            let said = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(Hinted::new(
                format!(
                    "virtiofsd did not start for {}: {}",
                    share.source.display(),
                    said.trim()
                ),
                format!("see {}", log_path.display()),
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The virtiofsd processes recorded for the machine: `(pid file, pid, socket)`.
fn recorded(dir: &Path) -> Vec<(PathBuf, u32, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("virtiofsd-") && n.ends_with(".pid"))
        })
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            let mut lines = text.lines();
            let pid = lines.next()?.trim().parse().ok()?;
            let socket = lines.next()?.to_string();
            Some((p, pid, socket))
        })
        .collect()
}

/// True while a virtiofsd of the machine runs.
pub fn any_running(dir: &Path) -> bool {
    recorded(dir)
        .iter()
        .any(|(_, pid, socket)| process::alive(*pid, socket))
}

/// Stops the machine's virtiofsd processes (normally gone with QEMU) and
/// removes their pid files and sockets.
pub async fn stop(dir: &Path) {
    for (file, pid, socket) in recorded(dir) {
        process::terminate(pid, &socket).await;
        net::remove_file(Path::new(&socket));
        net::remove_file(&file);
    }
}

/// The error `box suspend` gives a machine with a mounted folder.
pub fn suspend_refused(name: &str) -> anyhow::Error {
    Hinted::new(
        format!("{name} has a mounted folder (`type = \"mount\"`): QEMU cannot save a machine whose memory it shares with virtiofsd"),
        format!("`box halt {name}` stops it instead; or change the sync entry to `type = \"copy\"`, then `box reload {name}`"),
    )
    .into()
}

/// Checks in the guest that each mounted folder is a virtio-fs mount
/// owned by the login user (`box up`, after SSH answers). A folder the
/// seed does not know yet (added to the Boxfile after the machine was
/// made: cloud-init writes its seed once) is mounted now.
pub fn verify(session: &crate::ssh::Session, machine: &Machine) -> anyhow::Result<()> {
    use crate::ssh::quote::quote;
    for (i, f) in machine.sync.iter().filter(|f| f.is_mount()).enumerate() {
        let path = quote(&f.to);
        let out = session
            .capture(&format!(
                "mountpoint -q {path} || {{ sudo -n mkdir -p {path} && sudo -n mount -t virtiofs box{i} {path}; }} >/dev/null 2>&1; \
                 findmnt -n -o FSTYPE --mountpoint {path}; stat -c %u {path}; id -u"
            ))
            .with_context(|| format!("cannot check the mount {} in the guest", f.to))?;
        let text = out.stdout_text();
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        if lines.first() != Some(&"virtiofs") {
            return Err(Hinted::new(
                format!(
                    "{} is not mounted in `{}` (from {})",
                    f.to,
                    machine.name,
                    f.from.display()
                ),
                format!(
                    "a folder added while the machine ran needs `box reload {0}`; otherwise the box lacks the `virtiofs` kernel module (see `box logs {0}`)",
                    machine.name
                ),
            )
            .into());
        }
        let (owner, login) = (lines.get(1), lines.get(2));
        if owner != login {
            return Err(Hinted::new(
                format!(
                    "{} in `{}` belongs to uid {} but the login user `{}` is uid {}",
                    f.to,
                    machine.name,
                    owner.unwrap_or(&"?"),
                    machine.user,
                    login.unwrap_or(&"?")
                ),
                format!("box maps the host user to uid {GUEST_UID}, the login user of box's boxes; use a box whose login user is uid {GUEST_UID}, or `type = \"copy\"`"),
            )
            .into());
        }
    }
    Ok(())
}
