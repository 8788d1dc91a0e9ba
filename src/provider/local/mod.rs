//! The local provider: machines are QEMU processes on this computer.
//!
//! Each machine has a folder `.box/machines/<name>/` with a qcow2 overlay on
//! top of its box image, a cloud-init seed box wrote, its console log and
//! QEMU's pid file. QEMU runs daemonized, so it outlives `box up`; box finds
//! it again by pid and talks to it over a QMP socket. SSH and the Boxfile's
//! ports are forwarded from 127.0.0.1; the machines of a project share a
//! private network carried over Unix sockets by a hub process (see `hub`).

mod data;
mod hub;
mod image;
pub(crate) mod mount;
mod net;
mod process;
mod suspend;

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use guest::cloudinit::{self, DhcpNic, PrivateNic, Seed};
use guest::{accel, disk, qemu, qmp};

use crate::boxfile::{Accel, Machine};
use crate::error::Hinted;
use crate::provider::{Context, ProviderKind, SnapshotInfo, SnapshotOp};
use crate::state::{ForwardedPort, MachineState, SshTarget, StateStore, Status};

pub use data::{Boot, LocalData, LocalProjectData, Suspended};

use accel::Chosen;
use net::RunDir;

const DISK: &str = "disk.qcow2";
const SEED: &str = "seed.img";
/// The serial console log inside the machine folder (read by `box logs`).
pub(crate) const CONSOLE: &str = "console.log";
const PIDFILE: &str = "qemu.pid";
const HOST_KEY_PUB: &str = "host_ed25519.pub";

/// How long a guest may stay silent on its serial console before box
/// calls it hung (`BOX_BOOT_STAGE_TIMEOUT`, seconds). With KVM or HVF the
/// kernel speaks within seconds; under TCG on a loaded host it can take
/// far longer, and a hang is not what TCG is known for.
const BOOT_STAGE_TIMEOUT: Duration = Duration::from_secs(60);
const BOOT_STAGE_TIMEOUT_TCG: Duration = Duration::from_secs(300);
/// How long a clean shutdown may take before QEMU is stopped (`BOX_HALT_TIMEOUT`).
const HALT_TIMEOUT: Duration = Duration::from_secs(120);
/// `savevm` of a few hundred MiB of RAM, under TCG on a busy host.
const SNAPSHOT_TIMEOUT: Duration = Duration::from_secs(600);
/// Saving or loading a suspended machine's memory (`BOX_SUSPEND_TIMEOUT`).
const SUSPEND_TIMEOUT: Duration = Duration::from_secs(600);

pub struct Local {
    ctx: Context,
    run: RunDir,
    /// Serialises hub start and stop between machines coming up or going
    /// down in parallel.
    hub_lock: tokio::sync::Mutex<()>,
    /// Serialises box lookups, so two machines of one box fetch it once.
    image_lock: tokio::sync::Mutex<()>,
    key_lock: tokio::sync::Mutex<()>,
}

/// The Boxfile's `accel` as the guest machinery reads it.
fn wanted_accel(accel: Accel) -> accel::Accel {
    match accel {
        Accel::Auto => accel::Accel::Auto,
        Accel::Kvm => accel::Accel::Kvm,
        Accel::Hvf => accel::Accel::Hvf,
        Accel::Tcg => accel::Accel::Tcg,
    }
}

fn seconds_from_env(var: &str, default: Duration) -> Duration {
    std::env::var(var)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
        .unwrap_or(default)
}

/// The QEMU pid recorded for a machine.
/// The machine's state now, from its QEMU process (a `/proc` read, no
/// QMP) and its console: what `refresh` and `box ls` (from any folder) say.
pub fn live_status(store: &StateStore, state: &MachineState) -> Status {
    let dir = store.machine_dir(&state.name);
    if recorded_pid(state).is_some_and(|pid| process::alive(pid, &marker(&dir))) {
        Status::Running
    } else if matches!(state.status, Status::Running | Status::Creating) {
        observed_stop(&dir)
    } else {
        state.status
    }
}

fn recorded_pid(state: &MachineState) -> Option<u32> {
    state.provider.local().and_then(|d| d.pid)
}

fn recorded_accel(state: &MachineState) -> Option<Chosen> {
    state.provider.local().and_then(|d| d.accel)
}

/// The size of a suspended machine's saved state, for `box status`.
pub fn saved_state_bytes(state: &MachineState) -> Option<u64> {
    state
        .provider
        .local()
        .and_then(|d| d.suspended.as_ref())
        .map(|s| s.bytes)
}

/// A snapshot name goes into a monitor command line: keep it plain.
fn check_snapshot_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Hinted::new(
            format!("`{name}` is not a valid snapshot name"),
            "use letters, digits, `-`, `_` and `.` (at most 64)",
        )
        .into())
    }
}

/// The boxes of `machines`, fetched or built if missing and checked
/// against Boxfile.lock, which records them; creates no machine (`box lock`,
/// and the start of `box up`). A machine that exists keeps its entry, or
/// gets one for the box it was made from, unless it is being updated.
pub async fn lock_machines(ctx: &Context, machines: &[&Machine]) -> anyhow::Result<()> {
    for m in machines {
        let exists = ctx.store.machine_dir(&m.name).join(DISK).exists();
        if !exists || ctx.lockfile.updates(&m.name) {
            image::for_machine(ctx, m).await?;
        } else if let Some(state) = ctx.store.load_machine(&m.name)? {
            image::record_existing(ctx, &state)?;
        }
    }
    Ok(())
}

impl Local {
    pub async fn prepare(ctx: &Context, machines: &[&Machine]) -> anyhow::Result<Self> {
        let local = Local::new(ctx);
        local.preflight()?;
        // Fetch or build missing boxes now, and check them against
        // Boxfile.lock, before any machine or key is made.
        lock_machines(ctx, machines).await?;
        local.login_key().await?;
        Ok(local)
    }

    pub async fn open(ctx: &Context) -> anyhow::Result<Self> {
        Ok(Local::new(ctx))
    }

    fn new(ctx: &Context) -> Local {
        Local {
            ctx: ctx.clone(),
            run: RunDir::new(ctx.store.dir()),
            hub_lock: tokio::sync::Mutex::new(()),
            image_lock: tokio::sync::Mutex::new(()),
            key_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// QEMU and qemu-img must be installed; the accelerator setting must parse.
    fn preflight(&self) -> anyhow::Result<()> {
        for (program, package) in [
            (qemu::binary(), "qemu-system-x86"),
            ("qemu-img", "qemu-utils"),
        ] {
            if !on_path(program) {
                let package = if program.ends_with("aarch64") {
                    "qemu-system-arm"
                } else {
                    package
                };
                return Err(Hinted::new(
                    format!(
                        "`{program}` is not installed; the local provider runs machines with it"
                    ),
                    format!("apt-get install {package} (or your system's QEMU package)"),
                )
                .into());
            }
        }
        accel::from_env()?;
        Ok(())
    }

    /// The project's login key, created on first use. Machines come up in
    /// parallel: two creating it at once would each put a different key in
    /// their seed, and one machine would refuse the key left on disk.
    async fn login_key(&self) -> anyhow::Result<crate::keys::KeyPair> {
        let _guard = self.key_lock.lock().await;
        crate::keys::project_key(self.ctx.store.dir(), &self.ctx.project.name)
            .context("cannot create the project's SSH key")
    }

    async fn image(&self, machine: &Machine) -> anyhow::Result<crate::boxes::BoxImage> {
        let _guard = self.image_lock.lock().await;
        image::for_machine(&self.ctx, machine).await
    }

    pub async fn up(
        &self,
        machine: &Machine,
        mut state: MachineState,
    ) -> anyhow::Result<MachineState> {
        let name = machine.name.clone();
        let dir = self.ctx.store.machine_dir(&name);
        if let Some(pid) = recorded_pid(&state) {
            if process::alive(pid, &marker(&dir)) {
                state.status = Status::Running;
                return Ok(state);
            }
        }
        self.preflight()?;
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create the machine folder {}", dir.display()))?;
        let disk_path = dir.join(DISK);
        state.id = Some(dir.to_string_lossy().into_owned());

        // Boot facts of the box, recorded at creation: a restart must not
        // depend on the store still offering the same newest version.
        let recorded_base = state.provider.local().and_then(|d| d.base.as_ref());
        if !disk_path.exists() || recorded_base.is_none() {
            state.status = Status::Creating;
            let image = self.image(machine).await?;
            let data = state.provider.local_mut();
            data.box_name = Some(image.name.clone());
            data.box_version = Some(image.version.clone());
            data.base = Some(image.disk.clone());
            data.boot = Some(Boot {
                kernel: image.kernel.clone(),
                initrd: image.initrd.clone(),
                cmdline: image.cmdline.clone().or_else(|| {
                    image
                        .kernel
                        .as_ref()
                        .map(|_| crate::boxes::DEFAULT_CMDLINE.to_string())
                }),
            });
            if !disk_path.exists() {
                self.ctx.printer.verbose(&format!(
                    "{name}: creating a copy-on-write disk over {}",
                    image.disk.display()
                ));
                let tmp = dir.join("disk.qcow2.tmp");
                net::remove_file(&tmp);
                disk::create_overlay(&image.disk, &tmp, machine.disk_size)
                    .await
                    .context("cannot create the machine's disk")?;
                std::fs::rename(&tmp, &disk_path)
                    .with_context(|| format!("cannot create {}", disk_path.display()))?;
                image::register_use(&self.ctx, &image, &disk_path);
            }
            self.ctx.store.save_machine(&state)?;
        }

        let host_key = self.ensure_seed(machine, &dir).await?;
        let login = self.login_key().await?;

        let private = self.private_link(&name).await?;
        let saved = self.saved_state(&mut state, &dir)?;
        // A saved state loads only into the accelerator that wrote it.
        let chosen = match (&saved, recorded_accel(&state)) {
            (Some(_), Some(recorded)) => recorded,
            _ => accel::choose(wanted_accel(machine.accel), accel::from_env()?),
        };
        // The console is appended to across boots: only new output counts.
        let console_start = std::fs::metadata(dir.join(CONSOLE))
            .map(|m| m.len())
            .unwrap_or(0);
        let (pid, ssh_port, ports) = self
            .launch(machine, &state, &dir, chosen, private, saved.as_ref())
            .await?;

        let data = state.provider.local_mut();
        data.pid = Some(pid);
        data.accel = Some(chosen);
        data.nat_mac = Some(net::mac(self.ctx.store.dir(), &name, 0));
        state.status = Status::Running;
        state.ssh = Some(SshTarget {
            host: "127.0.0.1".into(),
            port: ssh_port,
            user: machine.user.clone(),
            identity_file: login.private_path.clone(),
            host_key,
        });
        state.ports = ports;
        crate::idle::record_start(&mut state, machine, true);
        self.ctx.store.save_machine(&state)?;

        if let Some(saved) = saved {
            return self.resume(state, &dir, &saved).await;
        }
        if let Err(e) = self
            .watch_boot_stage(&name, &dir, pid, chosen, console_start)
            .await
        {
            self.stop_process(&state, true).await;
            state.status = Status::Error;
            state.provider.local_mut().pid = None;
            self.ctx.store.save_machine(&state)?;
            return Err(e);
        }
        Ok(state)
    }

    /// Writes the seed once per machine: its instance id and host key stay
    /// the same across restarts, so cloud-init does its per-instance work once.
    /// Returns the pinned host public key.
    async fn ensure_seed(&self, machine: &Machine, dir: &Path) -> anyhow::Result<String> {
        let seed_path = dir.join(SEED);
        let pub_path = dir.join(HOST_KEY_PUB);
        if seed_path.exists() {
            if let Ok(text) = std::fs::read_to_string(&pub_path) {
                return Ok(text.trim().to_string());
            }
        }
        let project = &self.ctx.project;
        let login = self.login_key().await?;
        let host = crate::keys::generate(&format!("box:{}:{}", project.name, machine.name))
            .context("cannot generate the machine's host key")?;
        let local_machines: Vec<&Machine> = local_machines(project);
        let mut hosts = Vec::new();
        let mut private_nics = Vec::new();
        if local_machines.len() > 1 {
            for (i, m) in local_machines.iter().enumerate() {
                let addr = net::private_address(i)?;
                hosts.push((addr.to_string(), m.name.clone()));
                if m.name == machine.name {
                    private_nics.push(PrivateNic {
                        mac: net::mac(self.ctx.store.dir(), &m.name, 2),
                        cidr: format!("{addr}/{}", net::PRIVATE_MASK),
                    });
                }
            }
        }
        let seed = Seed {
            instance_id: format!(
                "box-{}-{}-{:08x}",
                project.name,
                machine.name,
                rand::random::<u32>()
            ),
            hostname: machine.name.clone(),
            user: machine.user.clone(),
            authorized_keys: vec![login.public.clone()],
            host_key_private: Some(host.private_openssh.expose().into()),
            host_key_public: Some(host.public.clone()),
            hosts,
            dhcp_nics: vec![DhcpNic {
                mac: net::mac(self.ctx.store.dir(), &machine.name, 0),
            }],
            private_nics,
            extra_user_data: machine.user_data.clone(),
            watcher: crate::idle::watcher(machine),
            mounts: mount::guest_mounts(&mount::shares(machine, &self.run)?),
        };
        cloudinit::write_seed(&seed_path, &seed)?;
        crate::fsutil::write_atomic(&pub_path, format!("{}\n", host.public).as_bytes(), 0o644)
            .with_context(|| format!("cannot write {}", pub_path.display()))?;
        Ok(host.public)
    }

    /// The machine's link to the hub, starting the hub if needed; `None`
    /// for a project with a single local machine.
    async fn private_link(&self, name: &str) -> anyhow::Result<Option<qemu::DgramLink>> {
        let machines: Vec<String> = local_machines(&self.ctx.project)
            .iter()
            .map(|m| m.name.clone())
            .collect();
        if machines.len() < 2 {
            return Ok(None);
        }
        let _guard = self.hub_lock.lock().await;
        hub::ensure(&self.ctx, &self.run, &machines).await?;
        Ok(Some(qemu::DgramLink {
            local: self.run.machine_link(name)?,
            remote: self.run.hub_link(name)?,
        }))
    }

    /// Starts QEMU; retries with new ports if one was taken meanwhile.
    async fn launch(
        &self,
        machine: &Machine,
        state: &MachineState,
        dir: &Path,
        chosen: Chosen,
        private: Option<qemu::DgramLink>,
        restore: Option<&Suspended>,
    ) -> anyhow::Result<(u32, u16, Vec<ForwardedPort>)> {
        let boot = state
            .provider
            .local()
            .and_then(|d| d.boot.clone())
            .unwrap_or_default();
        let (kernel, initrd) = (boot.kernel, boot.initrd);
        for p in kernel.iter().chain(initrd.iter()) {
            if !p.exists() {
                return Err(Hinted::new(
                    format!("{} of box `{}` is gone from the store", p.display(), machine.box_name),
                    format!("add the box again (`box box add {}`), or `box destroy {}` and `box up` to start over", machine.box_name, machine.name),
                )
                .into());
            }
        }
        let qmp = self.run.qmp(&machine.name)?;
        let console = dir.join(CONSOLE);
        let pidfile = dir.join(PIDFILE);
        let previous_ssh = state.ssh.as_ref().map(|s| s.port);
        let shares = mount::shares(machine, &self.run)?;
        mount::preflight(&shares)?;
        let mut last_err = None;
        for _attempt in 0..3 {
            let ssh_port = net::pick_port(previous_ssh)?;
            let mut reserved = vec![ssh_port];
            let mut forwards = vec![qemu::Forward {
                protocol: "tcp".into(),
                host_addr: "127.0.0.1".into(),
                host: ssh_port,
                guest: 22,
            }];
            let printer = &self.ctx.printer;
            let note = |line: String| printer.machine(&machine.name, &line);
            let (ports, boxfile_forwards) = match net::claim_ports(machine, &state.ports, note) {
                Ok(claimed) => claimed,
                Err(e) => {
                    net::release(&reserved);
                    return Err(Hinted::new(
                        format!("{}: {e}", machine.name),
                        "stop what uses it, change `host` under `ports` in the Boxfile, or set `auto_correct = true` on the port to take a free one",
                    )
                    .into());
                }
            };
            reserved.extend(ports.iter().map(|p| p.host));
            forwards.extend(boxfile_forwards);
            let spec = qemu::VmSpec {
                name: format!("box-{}", machine.name),
                accel: chosen,
                // A saved state loads only into a QEMU of the same shape.
                cpus: restore.map_or(machine.cpus, |s| s.cpus),
                memory_mib: restore.map_or(machine.memory, |s| s.memory_mib),
                disk: dir.join(DISK),
                seed: dir.join(SEED),
                kernel: kernel.clone(),
                initrd: initrd.clone(),
                cmdline: boot.cmdline.clone(),
                nat_mac: net::mac(self.ctx.store.dir(), &machine.name, 0),
                forwards,
                restrict: self.ctx.isolated,
                private: private
                    .clone()
                    .map(|l| (net::mac(self.ctx.store.dir(), &machine.name, 2), l)),
                shares: mount::qemu_shares(&shares),
                qmp: qmp.clone(),
                console: console.clone(),
                pidfile: pidfile.clone(),
            };
            // Sockets of a QEMU that died keep their names bound.
            net::remove_file(&qmp);
            if let Some(l) = &private {
                net::remove_file(&l.local);
            }
            net::remove_file(&pidfile);
            self.ctx.printer.debug(&format!(
                "{}: {} {}{}",
                machine.name,
                qemu::binary(),
                if restore.is_some() {
                    "-incoming defer "
                } else {
                    ""
                },
                spec.args()
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            ));
            // Listening before QEMU starts, which connects at once.
            if let Err(e) = mount::start(dir, &shares).await {
                net::release(&reserved);
                return Err(e);
            }
            let mut args = spec.args();
            if restore.is_some() {
                // Start paused, waiting for the state box hands it over QMP.
                args.extend(["-incoming".into(), "defer".into()]);
            }
            let out = tokio::process::Command::new(qemu::binary())
                .args(args)
                .stdin(std::process::Stdio::null())
                .output()
                .await
                .with_context(|| format!("cannot run {}", qemu::binary()));
            net::release(&reserved);
            let out = out?;
            if out.status.success() {
                let pid = process::read_pidfile(&pidfile).with_context(|| {
                    format!("QEMU started but wrote no pid to {}", pidfile.display())
                })?;
                return Ok((pid, ssh_port, ports));
            }
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            let port_clash = stderr.contains("host forwarding");
            last_err = Some(stderr);
            if !port_clash {
                break;
            }
        }
        mount::stop(dir).await;
        let stderr = last_err.unwrap_or_default();
        let mut err = anyhow::anyhow!("QEMU failed to start {}: {stderr}", machine.name);
        if stderr.contains("kvm") || stderr.contains("KVM") {
            err = Hinted::new(
                format!("QEMU failed to start {}: {stderr}", machine.name),
                format!(
                    "set {}=tcg (or `accel = \"tcg\"` in the Boxfile) to run without KVM",
                    accel::ENV
                ),
            )
            .into();
        }
        Err(err)
    }

    /// A guest that writes nothing to its serial console never started to
    /// boot: seen with nested KVM where `/dev/kvm` opens but guests hang.
    async fn watch_boot_stage(
        &self,
        name: &str,
        dir: &Path,
        pid: u32,
        chosen: Chosen,
        start_len: u64,
    ) -> anyhow::Result<()> {
        let console = dir.join(CONSOLE);
        let default = if chosen == Chosen::Tcg {
            BOOT_STAGE_TIMEOUT_TCG
        } else {
            BOOT_STAGE_TIMEOUT
        };
        let timeout = seconds_from_env("BOX_BOOT_STAGE_TIMEOUT", default);
        let started = Instant::now();
        loop {
            let len = std::fs::metadata(&console).map(|m| m.len()).unwrap_or(0);
            if len > start_len {
                return Ok(());
            }
            if !process::alive(pid, &marker(dir)) {
                anyhow::bail!(Hinted::new(
                    format!("the QEMU process of {name} exited during boot"),
                    format!("see `box logs {name}`"),
                ));
            }
            if started.elapsed() >= timeout {
                let hint = if chosen == Chosen::Tcg {
                    format!(
                        "see `box logs {name}`; the box may not log to the serial console (ttyS0)"
                    )
                } else {
                    format!(
                        "this host's {} may be broken (common with nested virtualisation): set {}=tcg or `accel = \"tcg\"` in the Boxfile",
                        chosen.as_str(),
                        accel::ENV
                    )
                };
                anyhow::bail!(Hinted::new(
                    format!(
                        "{name} never reached its boot stage: nothing on its serial console after {}s (accelerator {})",
                        timeout.as_secs(),
                        chosen.as_str()
                    ),
                    hint,
                ));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Stops QEMU: a clean ACPI power-down first, unless `force`.
    async fn stop_process(&self, state: &MachineState, force: bool) {
        let dir = self.ctx.store.machine_dir(&state.name);
        let mark = marker(&dir);
        // A box killed between QEMU's start and its state save left no pid
        // (or the previous run's) in the state; QEMU's own pid file names it.
        let Some(pid) = [
            recorded_pid(state),
            process::read_pidfile(&dir.join(PIDFILE)),
        ]
        .into_iter()
        .flatten()
        .find(|pid| process::alive(*pid, &mark)) else {
            return;
        };
        let qmp_path = self.run.qmp(&state.name).ok();
        if !force {
            if let Some(path) = &qmp_path {
                match qmp::Qmp::connect(path).await {
                    Ok(mut q) => {
                        if q.execute("system_powerdown", None).await.is_ok() {
                            let timeout = seconds_from_env("BOX_HALT_TIMEOUT", HALT_TIMEOUT);
                            if process::wait_gone(pid, &mark, timeout).await {
                                return;
                            }
                            self.ctx.printer.warn(&format!(
                                "{}: no clean shutdown after {}s; stopping QEMU",
                                state.name,
                                timeout.as_secs()
                            ));
                        }
                    }
                    Err(e) => self
                        .ctx
                        .printer
                        .verbose(&format!("{}: {e}; stopping QEMU", state.name)),
                }
            }
        }
        if let Some(path) = &qmp_path {
            if let Ok(mut q) = qmp::Qmp::connect(path).await {
                // QEMU closes the connection as it quits: no answer is fine.
                let _ = q.execute("quit", None).await;
                if process::wait_gone(pid, &mark, Duration::from_secs(10)).await {
                    return;
                }
            }
        }
        process::terminate(pid, &mark).await;
    }

    fn remove_sockets(&self, name: &str) {
        for p in [self.run.qmp(name), self.run.machine_link(name)]
            .into_iter()
            .flatten()
        {
            net::remove_file(&p);
        }
    }

    /// Stops the hub once no machine of the project runs.
    async fn hub_if_idle(&self) {
        let _guard = self.hub_lock.lock().await;
        let any_running = self
            .ctx
            .store
            .machines()
            .unwrap_or_default()
            .iter()
            .any(|s| {
                recorded_pid(s).is_some_and(|pid| {
                    process::alive(pid, &marker(&self.ctx.store.machine_dir(&s.name)))
                })
            });
        if !any_running {
            hub::stop(&self.ctx, &self.run).await;
        }
    }

    /// Saves the running machine's memory and devices into its folder and
    /// stops QEMU; the next `up` resumes it where it was.
    pub async fn suspend(
        &self,
        machine: &Machine,
        mut state: MachineState,
    ) -> anyhow::Result<MachineState> {
        let name = state.name.clone();
        let dir = self.ctx.store.machine_dir(&name);
        if machine.sync.iter().any(|f| f.is_mount()) || mount::any_running(&dir) {
            return Err(mount::suspend_refused(&name));
        }
        let Some(pid) = recorded_pid(&state).filter(|pid| process::alive(*pid, &marker(&dir)))
        else {
            return Err(Hinted::new(
                format!("{name} is not running: there is nothing to suspend"),
                format!("`box up {name}` starts it"),
            )
            .into());
        };
        let file = dir.join(suspend::SAVED);
        let timeout = seconds_from_env("BOX_SUSPEND_TIMEOUT", SUSPEND_TIMEOUT);
        let bytes = suspend::save(&self.run.qmp(&name)?, &file, timeout)
            .await
            .with_context(|| format!("cannot suspend {name}; it keeps running"))?;
        // QEMU's migration stream has no record of the shape it came from.
        let spec = state.provider.local().cloned().unwrap_or_default();
        let data = state.provider.local_mut();
        data.suspended = Some(Suspended {
            file: suspend::SAVED.into(),
            bytes,
            at: crate::idle::now(),
            cpus: machine.cpus,
            memory_mib: machine.memory,
        });
        data.accel = spec.accel;
        state.status = Status::Suspended;
        // Recorded before QEMU goes: a box killed now still finds the state.
        self.ctx.store.save_machine(&state)?;
        if let Ok(mut q) = qmp::Qmp::connect(&self.run.qmp(&name)?).await {
            let _ = q.execute("quit", None).await;
        }
        if !process::wait_gone(pid, &marker(&dir), Duration::from_secs(10)).await {
            process::terminate(pid, &marker(&dir)).await;
        }
        self.remove_sockets(&name);
        state.provider.local_mut().pid = None;
        self.ctx.store.save_machine(&state)?;
        self.hub_if_idle().await;
        Ok(state)
    }

    /// The machine's saved state, if it is suspended and the file is there.
    /// A record whose file is gone is dropped with a warning: the machine
    /// boots from its disk.
    fn saved_state(
        &self,
        state: &mut MachineState,
        dir: &Path,
    ) -> anyhow::Result<Option<Suspended>> {
        let Some(saved) = state.provider.local().and_then(|d| d.suspended.clone()) else {
            return Ok(None);
        };
        if dir.join(&saved.file).is_file() {
            return Ok(Some(saved));
        }
        self.ctx.printer.warn(&format!(
            "{}: its saved state {} is gone; booting from its disk instead",
            state.name,
            dir.join(&saved.file).display()
        ));
        state.provider.local_mut().suspended = None;
        self.ctx.store.save_machine(state)?;
        Ok(None)
    }

    /// Loads the saved state into the QEMU `up` just started with
    /// `-incoming defer`; the file goes once the machine runs again.
    async fn resume(
        &self,
        mut state: MachineState,
        dir: &Path,
        saved: &Suspended,
    ) -> anyhow::Result<MachineState> {
        let name = state.name.clone();
        let file = dir.join(&saved.file);
        let timeout = seconds_from_env("BOX_SUSPEND_TIMEOUT", SUSPEND_TIMEOUT);
        if let Err(e) = suspend::restore(&self.run.qmp(&name)?, &file, timeout).await {
            self.stop_process(&state, true).await;
            self.remove_sockets(&name);
            state.provider.local_mut().pid = None;
            state.status = Status::Suspended;
            self.ctx.store.save_machine(&state)?;
            return Err(Hinted::new(
                format!(
                    "cannot resume {name} from its saved state {}: {}",
                    file.display(),
                    anyhow::Error::new(e).chain().map(|c| c.to_string()).collect::<Vec<_>>().join(": ")
                ),
                format!("`box halt --force {name}` discards the saved state; the next `box up` boots from the disk"),
            )
            .into());
        }
        self.discard_saved(&mut state)?;
        self.ctx.store.save_machine(&state)?;
        Ok(state)
    }

    /// Forgets a suspended machine's saved state and deletes its file.
    fn discard_saved(&self, state: &mut MachineState) -> anyhow::Result<()> {
        let Some(saved) = state.provider.local_mut().suspended.take() else {
            return Ok(());
        };
        let file = self.ctx.store.machine_dir(&state.name).join(saved.file);
        match std::fs::remove_file(&file) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).with_context(|| format!("cannot delete {}", file.display())),
        }
    }

    pub async fn halt(&self, mut state: MachineState, force: bool) -> anyhow::Result<MachineState> {
        self.stop_process(&state, force).await;
        mount::stop(&self.ctx.store.machine_dir(&state.name)).await;
        self.remove_sockets(&state.name);
        self.discard_saved(&mut state)?;
        state.provider.local_mut().pid = None;
        if state.status != Status::NotCreated {
            state.status = Status::Stopped;
        }
        state.ports.clear();
        self.ctx.store.save_machine(&state)?;
        self.hub_if_idle().await;
        Ok(state)
    }

    pub async fn destroy(&self, state: MachineState) -> anyhow::Result<()> {
        self.stop_process(&state, true).await;
        self.remove_sockets(&state.name);
        let dir = self.ctx.store.machine_dir(&state.name);
        mount::stop(&dir).await;
        if let Some(LocalData {
            box_name: Some(name),
            box_version: Some(version),
            ..
        }) = state.provider.local()
        {
            image::unregister_use(&self.ctx, name, version, &dir.join(DISK));
        }
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("cannot delete {}", dir.display()));
            }
        }
        let mut gone = state.clone();
        gone.provider.local_mut().pid = None;
        self.ctx.store.save_machine(&gone)?;
        self.hub_if_idle().await;
        let others = self
            .ctx
            .store
            .machines()
            .unwrap_or_default()
            .iter()
            .any(|s| s.name != state.name && self.ctx.store.machine_dir(&s.name).exists());
        if !others {
            self.run.remove_if_empty();
        }
        Ok(())
    }

    pub async fn destroy_project(&self) -> anyhow::Result<()> {
        hub::stop(&self.ctx, &self.run).await;
        self.run.remove_if_empty();
        Ok(())
    }

    pub async fn refresh(&self, states: Vec<MachineState>) -> anyhow::Result<Vec<MachineState>> {
        Ok(states
            .into_iter()
            .map(|mut s| {
                s.status = live_status(&self.ctx.store, &s);
                s
            })
            .collect())
    }

    pub async fn snapshot(
        &self,
        state: &MachineState,
        op: SnapshotOp,
    ) -> anyhow::Result<Vec<SnapshotInfo>> {
        let dir = self.ctx.store.machine_dir(&state.name);
        let disk_path = dir.join(DISK);
        if !disk_path.exists() {
            return Err(Hinted::new(
                format!("{} has no disk yet", state.name),
                format!("run `box up {}` first", state.name),
            )
            .into());
        }
        let running = recorded_pid(state).is_some_and(|pid| process::alive(pid, &marker(&dir)));
        let qmp_path = self.run.qmp(&state.name)?;
        let hmp = |line: String| {
            let qmp_path = qmp_path.clone();
            async move {
                let mut q = qmp::Qmp::connect(&qmp_path).await?;
                q.hmp(&line, SNAPSHOT_TIMEOUT).await
            }
        };
        match op {
            SnapshotOp::List => {}
            SnapshotOp::Save(name) => {
                check_snapshot_name(&name)?;
                let done: anyhow::Result<()> = if running {
                    hmp(format!("savevm {name}"))
                        .await
                        .map(drop)
                        .map_err(Into::into)
                } else {
                    disk::snapshot_create(&disk_path, &name)
                        .await
                        .map_err(Into::into)
                };
                done.with_context(|| format!("cannot save snapshot `{name}` of {}", state.name))?;
            }
            SnapshotOp::Restore(name) => {
                check_snapshot_name(&name)?;
                if state.status == Status::Suspended {
                    return Err(Hinted::new(
                        format!("{} is suspended: its saved memory belongs to its disk as it is now", state.name),
                        format!("run `box up {0}` first, or `box halt --force {0}` to discard the saved state", state.name),
                    )
                    .into());
                }
                self.require_snapshot(&disk_path, &state.name, &name)
                    .await?;
                let done: anyhow::Result<()> = if running {
                    hmp(format!("loadvm {name}"))
                        .await
                        .map(drop)
                        .map_err(Into::into)
                } else {
                    disk::snapshot_apply(&disk_path, &name)
                        .await
                        .map_err(Into::into)
                };
                done.with_context(|| {
                    format!("cannot restore snapshot `{name}` of {}", state.name)
                })?;
            }
            SnapshotOp::Delete(name) => {
                check_snapshot_name(&name)?;
                self.require_snapshot(&disk_path, &state.name, &name)
                    .await?;
                let done: anyhow::Result<()> = if running {
                    hmp(format!("delvm {name}"))
                        .await
                        .map(drop)
                        .map_err(Into::into)
                } else {
                    disk::snapshot_delete(&disk_path, &name)
                        .await
                        .map_err(Into::into)
                };
                done.with_context(|| format!("cannot delete snapshot `{name}` of {}", state.name))?;
            }
        }
        let info = disk::info(&disk_path).await?;
        Ok(info
            .snapshots
            .into_iter()
            .map(|s| SnapshotInfo {
                name: s.name,
                created: Some(utc_timestamp(s.date_sec)),
            })
            .collect())
    }

    async fn require_snapshot(
        &self,
        disk_path: &Path,
        machine: &str,
        name: &str,
    ) -> anyhow::Result<()> {
        let info = disk::info(disk_path).await?;
        if info.snapshots.iter().any(|s| s.name == name) {
            return Ok(());
        }
        let known: Vec<String> = info.snapshots.into_iter().map(|s| s.name).collect();
        Err(Hinted::new(
            format!("{machine} has no snapshot named `{name}`"),
            if known.is_empty() {
                format!("save one with `box snapshot save {machine} NAME`")
            } else {
                format!("snapshots of {machine}: {}", known.join(", "))
            },
        )
        .into())
    }
}

/// The local machines of the project, in Boxfile order (their private
/// addresses follow it).
fn local_machines(project: &crate::boxfile::Project) -> Vec<&Machine> {
    project
        .machines
        .iter()
        .filter(|m| m.provider == ProviderKind::Local)
        .collect()
}

/// A machine box thought running whose QEMU is gone: stopped when the
/// guest powered itself off (idle stop, expiry, `poweroff`), else dead.
pub(crate) fn observed_stop(dir: &Path) -> Status {
    use std::io::{Read, Seek, SeekFrom};
    let tail = std::fs::File::open(dir.join(CONSOLE)).and_then(|mut f| {
        let len = f.metadata()?.len();
        f.seek(SeekFrom::Start(len.saturating_sub(2048)))?;
        let mut buf = Vec::new();
        f.read_to_end(&mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    });
    match tail {
        Ok(t) if crate::idle::console_says_powered_off(&t) => Status::Stopped,
        _ => Status::Dead,
    }
}

/// `box status` without a provider call: a local machine recorded as
/// running whose QEMU is gone is shown stopped or dead (this host's process
/// table and the console are all it reads).
pub fn observe(store: &crate::state::StateStore, state: &mut MachineState) {
    if state.provider.kind() == ProviderKind::Local && state.status == Status::Running {
        state.status = live_status(store, state);
    }
}

/// What only this machine's QEMU has on its command line: its disk path.
fn marker(dir: &Path) -> String {
    dir.join(DISK).to_string_lossy().into_owned()
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
}

/// `2026-11-25T18:00:00Z` from Unix seconds.
fn utc_timestamp(secs: u64) -> String {
    crate::clock::format_utc(
        secs,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_iso8601() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_629_600), "2026-11-25T18:00:00Z");
    }

    #[test]
    fn snapshot_names_that_could_inject_monitor_commands_are_refused() {
        assert!(check_snapshot_name("before-upgrade_1.2").is_ok());
        for bad in ["", "a b", "x;quit", "x\nquit"] {
            assert!(check_snapshot_name(bad).is_err(), "{bad:?}");
        }
    }
}
