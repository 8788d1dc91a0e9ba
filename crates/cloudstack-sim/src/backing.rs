//! `--backing qemu`: each deployed VM is a real local QEMU machine, booted
//! with box's own local-provider code from the template's box, its key
//! pairs and user data applied by cloud-init.
//!
//! Reachability follows the cloud's rules. Guests use QEMU user-mode
//! networking with `restrict=on` and no forwards at boot, so nothing reaches
//! them; the network rules of the simulated cloud are turned into QEMU
//! `hostfwd` entries on loopback addresses: a port-forwarding rule (with a
//! firewall rule admitting it) maps `public IP:public port` to the guest,
//! static NAT maps the firewall's ports on its IP, and in the Basic zone a
//! security group's ingress rules open the VM's own loopback address.
//!
//! In a VPC tier the tier's network ACL list decides instead of firewall
//! rules, and its rules' cidrs count: `hostfwd` cannot tell clients apart,
//! so a port is forwarded when the list admits [`CLIENT`], the source
//! address every loopback client connects from.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use guest::cloudinit::{self, DhcpNic, Seed};
use guest::qmp::Qmp;
use guest::store::{Store, DEFAULT_CMDLINE};
use guest::{accel, disk, qemu};
use serde_json::json;

use crate::model::{vpc, Cloud};

/// At most this many ports of one rule's range are forwarded: a rule for
/// 1-65535 must not make QEMU open 65,535 listening sockets.
const MAX_PORTS_PER_RULE: u16 = 64;

/// The source address of a client on this host reaching a loopback
/// address: what a VPC tier's ACL cidrs are matched against.
pub const CLIENT: std::net::Ipv4Addr = std::net::Ipv4Addr::LOCALHOST;

/// One QEMU `hostfwd`: protocol, host address and port, guest port.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Forward {
    pub protocol: String,
    pub host_addr: String,
    pub host_port: u16,
    pub guest_port: u16,
}

/// What a backed VM is booted from.
#[derive(Debug, Clone)]
pub struct Boot {
    pub id: String,
    pub name: String,
    pub number: u32,
    pub box_name: String,
    /// The uploaded image of a template made by `getUploadParamsForTemplate`;
    /// booted instead of a box.
    pub image: Option<PathBuf>,
    pub cpus: u32,
    pub memory_mib: u32,
    pub authorized_keys: Vec<String>,
    /// Base64, as the API took it.
    pub user_data: Option<String>,
    pub mac: String,
}

impl Boot {
    pub fn of(cloud: &Cloud, vm_id: &str) -> Option<Boot> {
        let vm = cloud.vm(vm_id)?;
        let template = cloud.templates.iter().find(|t| t.id == vm.template_id)?;
        let offering = cloud
            .service_offerings
            .iter()
            .find(|o| o.id == vm.service_offering_id)?;
        let authorized_keys = vm
            .keypairs
            .iter()
            .filter_map(|k| cloud.keypairs.iter().find(|x| &x.name == k))
            .map(|k| k.public_key.clone())
            .collect();
        Some(Boot {
            id: vm.id.clone(),
            name: vm.name.clone(),
            number: vm.number,
            box_name: template.box_name.clone(),
            image: template.upload.as_ref().and_then(|u| u.image.clone()),
            cpus: offering.cpu,
            memory_mib: offering.memory,
            authorized_keys,
            user_data: vm.user_data.clone(),
            mac: vm.nics.first().map(|n| n.mac.clone()).unwrap_or_default(),
        })
    }
}

struct Running {
    pid: u32,
    qmp: PathBuf,
    forwards: BTreeSet<Forward>,
}

pub struct QemuBacking {
    store: Store,
    dir: PathBuf,
    accel: accel::Chosen,
    /// Keeps a temporary machine folder alive as long as the backing.
    _temp: Option<tempfile::TempDir>,
    running: tokio::sync::Mutex<HashMap<String, Running>>,
}

impl std::fmt::Debug for QemuBacking {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QemuBacking")
            .field("dir", &self.dir)
            .field("accel", &self.accel)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BackingError {
    #[error("cannot create the machine folder")]
    Folder(#[source] std::io::Error),
    #[error(transparent)]
    Accel(#[from] accel::BadAccel),
}

impl QemuBacking {
    /// Machines live under `state/machines` with `--state`, else in a
    /// temporary folder removed at exit.
    pub fn new(boxes_dir: &Path, state_dir: Option<&Path>) -> Result<Self, BackingError> {
        let store = Store::at(boxes_dir.to_path_buf());
        let (dir, temp) = match state_dir {
            Some(s) => (s.join("machines"), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("cs-sim-")
                    .tempdir()
                    .map_err(BackingError::Folder)?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        std::fs::create_dir_all(&dir).map_err(BackingError::Folder)?;
        let accel = accel::choose(accel::Accel::Auto, accel::from_env()?);
        Ok(QemuBacking {
            store,
            dir,
            accel,
            _temp: temp,
            running: tokio::sync::Mutex::new(HashMap::new()),
        })
    }

    /// The box behind a built-in template.
    fn boxed(&self, box_name: &str) -> Result<BootFiles, String> {
        if box_name.is_empty() {
            return Err("this template has no box behind it; use the Debian 12 template with --backing qemu".into());
        }
        let image = self
            .store
            .find(box_name)
            .map_err(|e| format!("cannot read the box store: {e}"))?
            .ok_or_else(|| {
                format!(
                    "the box `{box_name}` is not in the store at {}",
                    self.store.root().display()
                )
            })?;
        Ok(BootFiles {
            cmdline: image
                .cmdline
                .clone()
                .or_else(|| image.kernel.as_ref().map(|_| DEFAULT_CMDLINE.into())),
            disk: image.disk,
            kernel: image.kernel,
            initrd: image.initrd,
        })
    }

    fn machine_dir(&self, id: &str) -> PathBuf {
        self.dir.join(id)
    }

    /// Boots the VM (creating its disk on first boot). Errors are the text
    /// of the failed job.
    pub async fn start(&self, boot: &Boot) -> Result<(), String> {
        let mut running = self.running.lock().await;
        if running.contains_key(&boot.id) {
            return Ok(());
        }
        let image = match &boot.image {
            Some(disk) => uploaded(disk).await?,
            None => self.boxed(&boot.box_name)?,
        };
        let dir = self.machine_dir(&boot.id);
        std::fs::create_dir_all(&dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let overlay = dir.join("disk.qcow2");
        if !overlay.exists() {
            disk::create_overlay(&image.disk, &overlay, None)
                .await
                .map_err(|e| format!("cannot create the VM's disk: {e}"))?;
        }
        let user_data = match &boot.user_data {
            None => None,
            Some(b64) => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map_err(|_| "user data is not base64".to_string())?;
                Some(String::from_utf8_lossy(&raw).into_owned())
            }
        };
        let seed_path = dir.join("seed.img");
        let seed = Seed {
            instance_id: boot.id.clone(),
            hostname: boot.name.clone(),
            // The default user of Debian's cloud images.
            user: "debian".into(),
            authorized_keys: boot.authorized_keys.clone(),
            host_key_private: None,
            host_key_public: None,
            hosts: vec![],
            dhcp_nics: vec![DhcpNic {
                mac: boot.mac.clone(),
            }],
            private_nics: vec![],
            extra_user_data: user_data,
            watcher: None,
            mounts: Vec::new(),
        };
        cloudinit::write_seed(&seed_path, &seed)
            .map_err(|e| format!("cannot write the cloud-init seed: {e}"))?;
        let qmp = dir.join("qmp.sock");
        let pidfile = dir.join("qemu.pid");
        let _ = std::fs::remove_file(&qmp);
        let spec = qemu::VmSpec {
            name: format!("cs-sim-{}", boot.number),
            accel: self.accel,
            cpus: boot.cpus,
            memory_mib: boot.memory_mib.max(512),
            disk: overlay,
            seed: seed_path,
            kernel: image.kernel.clone(),
            initrd: image.initrd.clone(),
            cmdline: image.cmdline.clone(),
            nat_mac: boot.mac.clone(),
            forwards: vec![],
            restrict: true,
            private: None,
            shares: Vec::new(),
            qmp: qmp.clone(),
            console: dir.join("console.log"),
            pidfile: pidfile.clone(),
        };
        let out = tokio::process::Command::new(qemu::binary())
            .args(spec.args())
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", qemu::binary()))?;
        if !out.status.success() {
            return Err(format!(
                "QEMU failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let pid = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .ok_or_else(|| "QEMU started but wrote no pid".to_string())?;
        running.insert(
            boot.id.clone(),
            Running {
                pid,
                qmp,
                forwards: BTreeSet::new(),
            },
        );
        Ok(())
    }

    /// Powers the VM off at once (the simulated cloud's stop is not a
    /// guest shutdown), and waits until QEMU is gone.
    pub async fn stop(&self, id: &str) {
        let Some(r) = self.running.lock().await.remove(id) else {
            return;
        };
        if let Ok(mut q) = Qmp::connect(&r.qmp).await {
            let _ = q.execute("quit", None).await;
        }
        for _ in 0..100 {
            if !alive(r.pid) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // SAFETY: a plain kill(2) on the pid QEMU wrote for itself.
        unsafe {
            libc::kill(r.pid as i32, libc::SIGKILL);
        }
    }

    pub async fn reboot(&self, id: &str) {
        let qmp = self.running.lock().await.get(id).map(|r| r.qmp.clone());
        if let Some(qmp) = qmp {
            if let Ok(mut q) = Qmp::connect(&qmp).await {
                let _ = q.execute("system_reset", None).await;
            }
        }
    }

    /// Stops the VM and deletes its disk.
    pub async fn remove(&self, id: &str) {
        self.stop(id).await;
        let _ = std::fs::remove_dir_all(self.machine_dir(id));
    }

    pub async fn stop_all(&self) {
        let ids: Vec<String> = self.running.lock().await.keys().cloned().collect();
        for id in ids {
            self.stop(&id).await;
        }
    }

    /// The VMs whose QEMU exited by itself (the guest powered off, e.g. box's
    /// idle watcher), forgotten here so the cloud can mark them Stopped, as
    /// CloudStack's power-state sync does.
    pub async fn powered_off(&self) -> Vec<String> {
        let mut running = self.running.lock().await;
        let gone: Vec<String> = running
            .iter()
            .filter(|(_, r)| !alive(r.pid))
            .map(|(id, _)| id.clone())
            .collect();
        for id in &gone {
            running.remove(id);
        }
        gone
    }

    /// Makes every running VM's forwards what the cloud's rules say; the
    /// rules are read after the lock is taken, so the latest state wins.
    pub async fn reconcile(&self, desired: impl FnOnce() -> HashMap<String, BTreeSet<Forward>>) {
        let mut running = self.running.lock().await;
        let desired = desired();
        for (id, r) in running.iter_mut() {
            let want = desired.get(id).cloned().unwrap_or_default();
            if want == r.forwards {
                continue;
            }
            let Ok(mut q) = Qmp::connect(&r.qmp).await else {
                continue;
            };
            for f in r.forwards.difference(&want) {
                let cmd = format!(
                    "hostfwd_remove nat {}:{}:{}",
                    f.protocol, f.host_addr, f.host_port
                );
                hmp(&mut q, &cmd).await;
            }
            for f in want.difference(&r.forwards) {
                let cmd = format!(
                    "hostfwd_add nat {}:{}:{}-:{}",
                    f.protocol, f.host_addr, f.host_port, f.guest_port
                );
                hmp(&mut q, &cmd).await;
            }
            r.forwards = want;
        }
    }
}

/// What a VM boots: a disk, and a kernel when the disk has no loader.
struct BootFiles {
    disk: PathBuf,
    kernel: Option<PathBuf>,
    initrd: Option<PathBuf>,
    cmdline: Option<String>,
}

/// How an uploaded image boots. A partitioned disk (Debian's genericcloud
/// image) boots its own loader, as a KVM host boots any template. A
/// whole-disk ext4 root, as box builds its boxes, has no boot sector a
/// BIOS could run: its kernel and initrd are read out of its `/boot` (with
/// `debugfs`, no mount needed) for QEMU's direct kernel boot, and cached
/// beside the image.
async fn uploaded(disk: &Path) -> Result<BootFiles, String> {
    let dir = disk
        .parent()
        .ok_or_else(|| "the uploaded image has no folder".to_string())?;
    let (kernel, initrd) = (dir.join("vmlinuz"), dir.join("initrd.img"));
    let loader = dir.join("boots-itself");
    let known = loader.exists() || (kernel.exists() && initrd.exists());
    if !known {
        let raw = dir.join("root.raw");
        let converted = tokio::process::Command::new("qemu-img")
            .args(["convert", "-O", "raw"])
            .arg(disk)
            .arg(&raw)
            .output()
            .await
            .map_err(|e| format!("cannot run qemu-img: {e}"))?;
        if !converted.status.success() {
            let _ = std::fs::remove_file(&raw);
            return Err(format!(
                "qemu-img cannot read the uploaded image: {}",
                String::from_utf8_lossy(&converted.stderr).trim()
            ));
        }
        let found = extract_kernel(&raw, &kernel, &initrd).await;
        let _ = std::fs::remove_file(&raw);
        if !found? {
            let _ = std::fs::write(&loader, b"");
        }
    }
    if loader.exists() {
        return Ok(BootFiles {
            disk: disk.to_path_buf(),
            kernel: None,
            initrd: None,
            cmdline: None,
        });
    }
    Ok(BootFiles {
        disk: disk.to_path_buf(),
        kernel: Some(kernel),
        initrd: Some(initrd),
        cmdline: Some(DEFAULT_CMDLINE.into()),
    })
}

/// Copies `/boot/vmlinuz-*` and `/boot/initrd.img-*` out of a raw ext4
/// image; false when it is not one or has none.
async fn extract_kernel(raw: &Path, kernel: &Path, initrd: &Path) -> Result<bool, String> {
    let debugfs = |request: String| {
        let raw = raw.to_path_buf();
        async move {
            tokio::process::Command::new("debugfs")
                .arg("-R")
                .arg(request)
                .arg(&raw)
                .output()
                .await
                .map_err(|e| format!("cannot run debugfs (package e2fsprogs): {e}"))
        }
    };
    let listing = debugfs("ls -p /boot".into()).await?;
    // `ls -p` lines: /inode/mode/uid/gid/name/size/
    let names: Vec<String> = String::from_utf8_lossy(&listing.stdout)
        .lines()
        .filter_map(|l| l.split('/').nth(5).map(str::to_string))
        .collect();
    let newest = |prefix: &str| {
        names
            .iter()
            .filter(|n| n.starts_with(prefix))
            .max_by(|a, b| guest::store::compare_versions(a, b))
            .cloned()
    };
    let (Some(k), Some(i)) = (newest("vmlinuz-"), newest("initrd.img-")) else {
        return Ok(false);
    };
    for (name, to) in [(k, kernel), (i, initrd)] {
        let out = debugfs(format!("dump /boot/{name} {}", to.display())).await?;
        if !to.is_file() {
            return Err(format!(
                "cannot copy /boot/{name} out of the uploaded image: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    Ok(true)
}

async fn hmp(q: &mut Qmp, command: &str) {
    match q
        .execute(
            "human-monitor-command",
            Some(json!({"command-line": command})),
        )
        .await
    {
        Ok(v) if v.as_str().is_some_and(|s| !s.trim().is_empty()) => {
            eprintln!(
                "cloudstack-sim: QEMU: {command}: {}",
                v.as_str().unwrap_or_default().trim()
            );
        }
        Ok(_) => {}
        Err(e) => eprintln!("cloudstack-sim: QEMU: {command}: {e}"),
    }
}

fn alive(pid: u32) -> bool {
    // An exited QEMU nobody reaped yet is a zombie: its command line is empty.
    if let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) {
        return !cmdline.is_empty();
    }
    // SAFETY: signal 0 only checks that the process exists.
    unsafe { libc::kill(pid as i32, 0) == 0 }
}

fn ports(start: u16, end: u16) -> impl Iterator<Item = u16> {
    let end = end.min(start.saturating_add(MAX_PORTS_PER_RULE - 1));
    start..=end
}

/// The forwards the cloud's network rules call for, per running VM.
pub fn forwards(cloud: &Cloud) -> HashMap<String, BTreeSet<Forward>> {
    let mut out: HashMap<String, BTreeSet<Forward>> = HashMap::new();
    let admitted = |ip_id: &str, protocol: &str, port: u16| {
        cloud.fw_rules.iter().any(|f| {
            f.ip_id == ip_id
                && f.state == "Active"
                && (f.protocol == "all"
                    || (f.protocol == protocol
                        && f.start_port
                            .zip(f.end_port)
                            .is_some_and(|(s, e)| s <= port && port <= e)))
        })
    };
    for vm in cloud.vms.iter().filter(|v| v.state == "Running") {
        let set = out.entry(vm.id.clone()).or_default();
        for r in cloud
            .pf_rules
            .iter()
            .filter(|r| r.vm_id == vm.id && r.state == "Active")
        {
            let Some(ip) = cloud.ip(&r.ip_id) else {
                continue;
            };
            for (i, public) in ports(r.public_port, r.public_end_port).enumerate() {
                let open = match (&ip.vpc_id, &ip.network_id) {
                    // The tier's list sees the traffic after the forward, on the guest's port.
                    (Some(_), Some(tier)) => {
                        vpc::admits(cloud, tier, &r.protocol, r.private_port + i as u16, CLIENT)
                    }
                    (Some(_), None) => false,
                    (None, _) => admitted(&ip.id, &r.protocol, public),
                };
                if open {
                    set.insert(Forward {
                        protocol: r.protocol.clone(),
                        host_addr: ip.address.clone(),
                        host_port: public,
                        guest_port: r.private_port + i as u16,
                    });
                }
            }
        }
        for ip in cloud
            .ips
            .iter()
            .filter(|i| i.static_nat_vm.as_deref() == Some(vm.id.as_str()))
        {
            for f in cloud
                .fw_rules
                .iter()
                .filter(|f| f.ip_id == ip.id && f.state == "Active")
            {
                let Some((s, e)) = f.start_port.zip(f.end_port) else {
                    continue;
                };
                for port in ports(s, e) {
                    set.insert(Forward {
                        protocol: f.protocol.clone(),
                        host_addr: ip.address.clone(),
                        host_port: port,
                        guest_port: port,
                    });
                }
            }
            let tier = ip.vpc_id.as_ref().and(ip.network_id.as_deref());
            for protocol in ["tcp", "udp"] {
                let Some(tier) = tier else { break };
                for (s, e) in vpc::open_ports(cloud, tier, protocol, CLIENT) {
                    for port in
                        ports(s, e).filter(|p| vpc::admits(cloud, tier, protocol, *p, CLIENT))
                    {
                        set.insert(Forward {
                            protocol: protocol.into(),
                            host_addr: ip.address.clone(),
                            host_port: port,
                            guest_port: port,
                        });
                    }
                }
            }
        }
        let basic = vm
            .nics
            .first()
            .and_then(|n| cloud.network(&n.network_id))
            .is_some_and(|n| n.kind == "Shared");
        if basic {
            let addr = vm.nics.first().map(|n| n.ip.clone()).unwrap_or_default();
            for g in cloud
                .security_groups
                .iter()
                .filter(|g| vm.security_group_ids.contains(&g.id))
            {
                for r in g
                    .ingress
                    .iter()
                    .filter(|r| r.protocol == "tcp" || r.protocol == "udp")
                {
                    let Some((s, e)) = r.start_port.zip(r.end_port) else {
                        continue;
                    };
                    for port in ports(s.max(1), e) {
                        set.insert(Forward {
                            protocol: r.protocol.clone(),
                            host_addr: addr.clone(),
                            host_port: port,
                            guest_port: port,
                        });
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{FwRule, PfRule};
    use crate::seed;

    fn with_vm(cloud: &mut Cloud, zone: &str) -> String {
        let zone = cloud
            .zones
            .iter()
            .find(|z| z.name == zone)
            .unwrap()
            .id
            .clone();
        let net = cloud
            .networks
            .iter()
            .find(|n| n.zone_id == zone)
            .unwrap()
            .id
            .clone();
        let sg = cloud.security_groups[0].id.clone();
        cloud.vms.push(crate::model::Vm {
            id: "vm".into(),
            name: "vm".into(),
            display_name: "vm".into(),
            zone_id: zone,
            template_id: cloud.templates[0].id.clone(),
            service_offering_id: cloud.service_offerings[0].id.clone(),
            disk_offering_id: None,
            keypairs: vec![],
            user_data: None,
            group: None,
            state: "Running".into(),
            created: 0,
            number: 1,
            nics: vec![crate::model::Nic {
                id: "n".into(),
                network_id: net,
                ip: "127.20.0.3".into(),
                mac: "m".into(),
            }],
            security_group_ids: vec![sg],
            affinity_group_ids: vec![],
            owner: Default::default(),
        });
        "vm".into()
    }

    #[test]
    fn a_port_forwarding_rule_opens_only_with_a_firewall_rule() {
        let mut c = seed::cloud();
        let vm = with_vm(&mut c, seed::ADVANCED_ZONE);
        let ip = c.ips[0].clone();
        c.pf_rules.push(PfRule {
            id: "r".into(),
            ip_id: ip.id.clone(),
            protocol: "tcp".into(),
            private_port: 22,
            private_end_port: 22,
            public_port: 2222,
            public_end_port: 2222,
            vm_id: vm.clone(),
            cidrs: String::new(),
            state: "Active".into(),
            owner: Default::default(),
        });
        assert!(
            forwards(&c)[&vm].is_empty(),
            "no firewall rule, nothing open"
        );
        c.fw_rules.push(FwRule {
            id: "f".into(),
            ip_id: ip.id.clone(),
            protocol: "tcp".into(),
            start_port: Some(2222),
            end_port: Some(2222),
            cidrs: "0.0.0.0/0".into(),
            state: "Active".into(),
            owner: Default::default(),
        });
        let f: Vec<Forward> = forwards(&c)[&vm].iter().cloned().collect();
        assert_eq!(
            f,
            vec![Forward {
                protocol: "tcp".into(),
                host_addr: ip.address.clone(),
                host_port: 2222,
                guest_port: 22
            }]
        );
        c.vms[0].state = "Stopped".into();
        assert!(!forwards(&c).contains_key(&vm), "a stopped VM has none");
    }

    #[test]
    fn basic_zone_ingress_rules_open_the_vms_own_address() {
        let mut c = seed::cloud();
        let vm = with_vm(&mut c, seed::BASIC_ZONE);
        assert!(forwards(&c)[&vm].is_empty());
        c.security_groups[0]
            .ingress
            .push(crate::model::IngressRule {
                id: "i".into(),
                protocol: "tcp".into(),
                start_port: Some(22),
                end_port: Some(22),
                cidr: "0.0.0.0/0".into(),
            });
        let f: Vec<Forward> = forwards(&c)[&vm].iter().cloned().collect();
        assert_eq!(f[0].host_addr, "127.20.0.3");
        assert_eq!((f[0].host_port, f[0].guest_port), (22, 22));
    }
}
