//! The QEMU command lines box runs: one per machine, and one for the
//! project's network hub. Built as plain data so tests can read them.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::accel::Chosen;

/// The system emulator for this host's architecture.
pub fn binary() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    }
}

fn machine_type() -> &'static str {
    if cfg!(target_arch = "aarch64") {
        "virt"
    } else {
        "q35"
    }
}

/// A host port forwarded into the guest over user-mode networking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forward {
    /// `tcp` or `udp`.
    pub protocol: String,
    pub host_addr: String,
    pub host: u16,
    pub guest: u16,
}

/// One end of a point-to-point datagram link over Unix sockets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DgramLink {
    /// The socket this QEMU binds.
    pub local: PathBuf,
    /// The socket it sends to.
    pub remote: PathBuf,
}

/// A host folder served into the guest by a virtiofsd listening on
/// `socket`; the guest mounts it by `tag` (`mount -t virtiofs TAG DIR`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FsShare {
    pub tag: String,
    pub socket: PathBuf,
}

/// Everything one machine's QEMU needs.
#[derive(Debug, Clone)]
pub struct VmSpec {
    pub name: String,
    pub accel: Chosen,
    pub cpus: u32,
    pub memory_mib: u32,
    pub disk: PathBuf,
    pub seed: PathBuf,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub cmdline: Option<String>,
    pub nat_mac: String,
    pub forwards: Vec<Forward>,
    /// QEMU `restrict=on`: the guest reaches only the forwarded ports.
    pub restrict: bool,
    pub private: Option<(String, DgramLink)>,
    /// virtio-fs folders; any share puts guest memory in a shared memfd,
    /// which vhost-user needs (virtiofsd reads the guest's buffers).
    pub shares: Vec<FsShare>,
    pub qmp: PathBuf,
    pub console: PathBuf,
    pub pidfile: PathBuf,
}

/// QEMU splits option values at commas; a literal comma is doubled.
pub fn escape(path: &Path) -> String {
    path.to_string_lossy().replace(',', ",,")
}

fn push(args: &mut Vec<OsString>, flag: &str, value: impl Into<OsString>) {
    args.push(flag.into());
    args.push(value.into());
}

impl VmSpec {
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        push(
            &mut a,
            "-name",
            format!("{},process={}", self.name, self.name),
        );
        let memory = self.memory_mib.max(128);
        if self.shares.is_empty() {
            push(&mut a, "-machine", machine_type());
        } else {
            push(
                &mut a,
                "-object",
                format!("memory-backend-memfd,id=mem,size={memory}M,share=on"),
            );
            push(
                &mut a,
                "-machine",
                format!("{},memory-backend=mem", machine_type()),
            );
        }
        push(&mut a, "-accel", self.accel.qemu_arg());
        push(&mut a, "-cpu", self.accel.cpu());
        push(&mut a, "-smp", self.cpus.max(1).to_string());
        push(&mut a, "-m", format!("{memory}M"));
        a.push("-nodefaults".into());
        push(&mut a, "-display", "none");
        push(&mut a, "-vga", "none");
        push(
            &mut a,
            "-drive",
            format!(
                "file={},if=virtio,format=qcow2,discard=unmap",
                escape(&self.disk)
            ),
        );
        push(
            &mut a,
            "-drive",
            format!(
                "file={},if=virtio,format=raw,readonly=on",
                escape(&self.seed)
            ),
        );
        if let Some(kernel) = &self.kernel {
            push(&mut a, "-kernel", kernel.as_os_str());
            if let Some(initrd) = &self.initrd {
                push(&mut a, "-initrd", initrd.as_os_str());
            }
            if let Some(cmdline) = &self.cmdline {
                push(&mut a, "-append", cmdline.as_str());
            }
        }
        let mut user = String::from("user,id=nat");
        if self.restrict {
            user.push_str(",restrict=on");
        }
        for f in &self.forwards {
            user.push_str(&format!(
                ",hostfwd={}:{}:{}-:{}",
                f.protocol, f.host_addr, f.host, f.guest
            ));
        }
        push(&mut a, "-netdev", user);
        push(
            &mut a,
            "-device",
            format!("virtio-net-pci,netdev=nat,mac={}", self.nat_mac),
        );
        if let Some((mac, link)) = &self.private {
            push(
                &mut a,
                "-netdev",
                format!(
                    "dgram,id=priv,local.type=unix,local.path={},remote.type=unix,remote.path={}",
                    escape(&link.local),
                    escape(&link.remote)
                ),
            );
            push(
                &mut a,
                "-device",
                format!("virtio-net-pci,netdev=priv,mac={mac}"),
            );
        }
        for (i, share) in self.shares.iter().enumerate() {
            push(
                &mut a,
                "-chardev",
                format!("socket,id=fs{i},path={}", escape(&share.socket)),
            );
            push(
                &mut a,
                "-device",
                format!("vhost-user-fs-pci,chardev=fs{i},tag={}", share.tag),
            );
        }
        push(&mut a, "-device", "virtio-rng-pci");
        push(
            &mut a,
            "-qmp",
            format!("unix:{},server=on,wait=off", escape(&self.qmp)),
        );
        push(
            &mut a,
            "-chardev",
            format!("file,id=console,path={},append=on", escape(&self.console)),
        );
        push(&mut a, "-serial", "chardev:console");
        a.push("-daemonize".into());
        push(&mut a, "-pidfile", self.pidfile.as_os_str());
        a
    }
}

/// The project's private network: a QEMU with no machine whose netdevs
/// are joined by one hub, so every frame a machine sends reaches the
/// others. Unix datagram sockets only: nothing leaves the host, and no
/// multicast or host address is involved.
#[derive(Debug, Clone)]
pub struct HubSpec {
    pub name: String,
    /// One link per machine (hub side).
    pub links: Vec<DgramLink>,
    pub pidfile: PathBuf,
}

impl HubSpec {
    pub fn args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = Vec::new();
        push(
            &mut a,
            "-name",
            format!("{},process={}", self.name, self.name),
        );
        push(&mut a, "-machine", "none");
        a.push("-nodefaults".into());
        push(&mut a, "-display", "none");
        for (i, link) in self.links.iter().enumerate() {
            push(
                &mut a,
                "-netdev",
                format!(
                    "dgram,id=link{i},local.type=unix,local.path={},remote.type=unix,remote.path={}",
                    escape(&link.local),
                    escape(&link.remote)
                ),
            );
            push(
                &mut a,
                "-netdev",
                format!("hubport,id=port{i},hubid=0,netdev=link{i}"),
            );
        }
        a.push("-daemonize".into());
        push(&mut a, "-pidfile", self.pidfile.as_os_str());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> VmSpec {
        VmSpec {
            name: "box-web".into(),
            accel: Chosen::Tcg,
            cpus: 2,
            memory_mib: 1024,
            disk: "/p/.box/machines/web/disk.qcow2".into(),
            seed: "/p/.box/machines/web/seed.img".into(),
            kernel: Some("/store/vmlinuz".into()),
            initrd: Some("/store/initrd.img".into()),
            cmdline: Some("root=/dev/vda rw console=ttyS0".into()),
            nat_mac: "52:54:00:01:02:03".into(),
            forwards: vec![
                Forward {
                    protocol: "tcp".into(),
                    host_addr: "127.0.0.1".into(),
                    host: 40022,
                    guest: 22,
                },
                Forward {
                    protocol: "tcp".into(),
                    host_addr: "127.0.0.1".into(),
                    host: 8080,
                    guest: 80,
                },
            ],
            restrict: true,
            private: Some((
                "52:54:02:01:02:03".into(),
                DgramLink {
                    local: "/r/web.net".into(),
                    remote: "/r/hub-web.net".into(),
                },
            )),
            shares: Vec::new(),
            qmp: "/r/web.qmp".into(),
            console: "/p/a,b/console.log".into(),
            pidfile: "/p/.box/machines/web/qemu.pid".into(),
        }
    }

    fn joined(args: &[OsString]) -> String {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn isolated_user_network_forwards_ssh_and_ports_on_loopback_only() {
        let line = joined(&spec().args());
        assert!(
            line.contains("-netdev user,id=nat,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22,hostfwd=tcp:127.0.0.1:8080-:80"),
            "{line}"
        );
    }

    #[test]
    fn private_network_is_a_unix_datagram_link_never_multicast() {
        let line = joined(&spec().args());
        assert!(line.contains("dgram,id=priv,local.type=unix,local.path=/r/web.net,remote.type=unix,remote.path=/r/hub-web.net"), "{line}");
        assert!(!line.contains("mcast"), "{line}");
    }

    #[test]
    fn tcg_machine_runs_daemonized_with_qmp_console_and_direct_kernel_boot() {
        let line = joined(&spec().args());
        for part in [
            "-accel tcg,thread=multi",
            "-cpu max",
            "-smp 2",
            "-m 1024M",
            "-display none",
            "-kernel /store/vmlinuz",
            "-append root=/dev/vda rw console=ttyS0",
            "-qmp unix:/r/web.qmp,server=on,wait=off",
            "path=/p/a,,b/console.log",
            "-daemonize",
        ] {
            assert!(line.contains(part), "missing {part} in {line}");
        }
    }

    #[test]
    fn a_mounted_folder_shares_guest_memory_with_its_virtiofsd() {
        let mut s = spec();
        s.shares = vec![FsShare {
            tag: "box0".into(),
            socket: "/r/web-fs0.sock".into(),
        }];
        let line = joined(&s.args());
        for part in [
            "-object memory-backend-memfd,id=mem,size=1024M,share=on",
            "-machine q35,memory-backend=mem",
            "-chardev socket,id=fs0,path=/r/web-fs0.sock",
            "-device vhost-user-fs-pci,chardev=fs0,tag=box0",
        ] {
            assert!(line.contains(part), "missing {part} in {line}");
        }
        let plain = joined(&spec().args());
        assert!(!plain.contains("memory-backend"), "{plain}");
        assert!(!plain.contains("vhost-user"), "{plain}");
    }

    #[test]
    fn hub_joins_every_link_to_one_hub() {
        let hub = HubSpec {
            name: "box-hub".into(),
            links: vec![
                DgramLink {
                    local: "/r/hub-web.net".into(),
                    remote: "/r/web.net".into(),
                },
                DgramLink {
                    local: "/r/hub-db.net".into(),
                    remote: "/r/db.net".into(),
                },
            ],
            pidfile: "/r/hub.pid".into(),
        };
        let line = joined(&hub.args());
        assert!(line.contains("-machine none"));
        assert!(
            line.contains("hubport,id=port1,hubid=0,netdev=link1"),
            "{line}"
        );
    }
}
