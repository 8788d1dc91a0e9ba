//! Machine networking: loopback ports for SSH and the Boxfile's `ports`,
//! stable MAC addresses, and the project's private network (addresses and
//! the Unix socket paths of its hub).

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use guest::qemu::Forward;
use sha2::{Digest, Sha256};

use crate::boxfile::Machine;
use crate::state::ForwardedPort;

/// The project's private subnet, inside the hub only: no host interface
/// has it, so its traffic never leaves the QEMU processes.
pub const PRIVATE_PREFIX: [u8; 3] = [10, 76, 0];
pub const PRIVATE_MASK: u8 = 24;
const FIRST_HOST: usize = 10;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no free loopback port: {0}")]
    NoPort(#[source] std::io::Error),
    #[error("host port {port}/{protocol} is already in use on {address}")]
    PortTaken {
        port: u16,
        protocol: String,
        address: IpAddr,
    },
    #[error("a project's private network holds at most {max} machines")]
    TooMany { max: usize },
}

/// The private address of the machine at `index` in the Boxfile.
pub fn private_address(index: usize) -> Result<Ipv4Addr, NetError> {
    let max = 250 - FIRST_HOST;
    if index >= max {
        return Err(NetError::TooMany { max });
    }
    let [a, b, c] = PRIVATE_PREFIX;
    Ok(Ipv4Addr::new(a, b, c, (FIRST_HOST + index) as u8))
}

/// A locally administered MAC derived from the project and machine, so
/// it survives restarts and cloud-init's match by MAC keeps working.
pub fn mac(project_dir: &Path, machine: &str, nic: u8) -> String {
    let mut h = Sha256::new();
    h.update(project_dir.to_string_lossy().as_bytes());
    h.update([0]);
    h.update(machine.as_bytes());
    let d = h.finalize();
    format!("52:54:{nic:02x}:{:02x}:{:02x}:{:02x}", d[0], d[1], d[2])
}

/// Ports handed out by this process and not yet bound by their QEMU:
/// machines come up in parallel, and two must never get the same port.
static RESERVED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

fn reserve(port: u16) -> bool {
    match RESERVED.lock() {
        Ok(mut set) => set.insert(port),
        Err(poisoned) => poisoned.into_inner().insert(port),
    }
}

/// Gives reserved ports back once QEMU holds them (or failed).
pub fn release(ports: &[u16]) {
    let mut set = match RESERVED.lock() {
        Ok(set) => set,
        Err(poisoned) => poisoned.into_inner(),
    };
    for p in ports {
        set.remove(p);
    }
}

/// True if `port` can be bound on 127.0.0.1 right now.
pub fn port_free(port: u16, protocol: &str) -> bool {
    port_free_at(Ipv4Addr::LOCALHOST.into(), port, protocol)
}

/// True if `port` can be bound on `address` right now.
pub fn port_free_at(address: IpAddr, port: u16, protocol: &str) -> bool {
    if protocol == "udp" {
        UdpSocket::bind((address, port)).is_ok()
    } else {
        TcpListener::bind((address, port)).is_ok()
    }
}

/// A free TCP port on 127.0.0.1, preferring `previous` so a restarted
/// machine keeps its SSH port.
pub fn pick_port(previous: Option<u16>) -> Result<u16, NetError> {
    if let Some(p) = previous.filter(|p| *p != 0) {
        if port_free(p, "tcp") && reserve(p) {
            return Ok(p);
        }
    }
    for _ in 0..64 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(NetError::NoPort)?;
        let port = listener.local_addr().map_err(NetError::NoPort)?.port();
        drop(listener);
        if reserve(port) {
            return Ok(port);
        }
    }
    Err(NetError::NoPort(std::io::Error::other(
        "every port offered was already handed out",
    )))
}

/// A Boxfile port on `address`: the host side is fixed, so it must be free.
pub fn claim_port_at(address: IpAddr, port: u16, protocol: &str) -> Result<u16, NetError> {
    if port_free_at(address, port, protocol) && reserve(port) {
        Ok(port)
    } else {
        Err(NetError::PortTaken {
            port,
            protocol: protocol.to_string(),
            address,
        })
    }
}

/// How many ports above a taken one `auto_correct` tries before it takes
/// any free port: `8081` for a taken `8080` reads better than `43127`.
const NEARBY: u16 = 100;

/// A port for an `auto_correct` forward whose `wanted` port is taken on
/// `address`: the one used last time (`previous`) if free, else the next
/// free one above `wanted`, else any free one.
pub fn corrected_port(
    address: IpAddr,
    wanted: u16,
    previous: Option<u16>,
    protocol: &str,
) -> Result<u16, NetError> {
    let nearby = (1..=NEARBY).filter_map(|i| wanted.checked_add(i));
    for port in previous.into_iter().chain(nearby) {
        if claim_port_at(address, port, protocol).is_ok() {
            return Ok(port);
        }
    }
    for _ in 0..64 {
        let port = if protocol == "udp" {
            UdpSocket::bind((address, 0)).and_then(|s| s.local_addr())
        } else {
            TcpListener::bind((address, 0)).and_then(|l| l.local_addr())
        }
        .map_err(NetError::NoPort)?
        .port();
        if reserve(port) {
            return Ok(port);
        }
    }
    Err(NetError::NoPort(std::io::Error::other(
        "every port offered was already handed out",
    )))
}

/// Claims the host side of every Boxfile port of `machine` (reserved until
/// [`release`]d): its `host` port on its `host_ip` (127.0.0.1 unless
/// written), or with `auto_correct` a free one when that is taken, which
/// `note` is told about. `previous` are the ports forwarded last time, so a
/// corrected port stays the same across restarts while it is free.
pub fn claim_ports(
    machine: &Machine,
    previous: &[ForwardedPort],
    mut note: impl FnMut(String),
) -> Result<(Vec<ForwardedPort>, Vec<Forward>), NetError> {
    let mut ports = Vec::new();
    let mut forwards = Vec::new();
    for p in &machine.ports {
        let address = p.host_ip.unwrap_or(Ipv4Addr::LOCALHOST.into());
        let claimed = match claim_port_at(address, p.host, &p.protocol) {
            Ok(port) => Ok(port),
            Err(taken) if p.auto_correct => {
                let before = previous
                    .iter()
                    .find(|f| f.guest == p.guest && f.wanted == Some(p.host))
                    .map(|f| f.host);
                corrected_port(address, p.host, before, &p.protocol)
                    .inspect(|port| {
                        note(format!(
                            "{} is taken, forwarding {port} -> {}",
                            p.host, p.guest
                        ))
                    })
                    .map_err(|_| taken)
            }
            Err(taken) => Err(taken),
        };
        let port = match claimed {
            Ok(port) => port,
            Err(e) => {
                release(
                    &ports
                        .iter()
                        .map(|f: &ForwardedPort| f.host)
                        .collect::<Vec<_>>(),
                );
                return Err(e);
            }
        };
        forwards.push(Forward {
            protocol: p.protocol.clone(),
            host_addr: match address {
                IpAddr::V4(a) => a.to_string(),
                IpAddr::V6(a) => format!("[{a}]"),
            },
            host: port,
            guest: p.guest,
        });
        ports.push(ForwardedPort {
            guest: p.guest,
            host: port,
            address: address.to_string(),
            wanted: (port != p.host).then_some(p.host),
        });
    }
    Ok((ports, forwards))
}

/// Where a project's sockets live: `.box/run`, or a short folder under
/// the temp dir when that path would pass the 108-byte limit of a Unix
/// socket address.
#[derive(Debug, Clone)]
pub struct RunDir {
    primary: PathBuf,
    fallback: PathBuf,
}

/// Longest socket path that still fits `sun_path` with room to spare.
const MAX_SOCKET_PATH: usize = 100;

impl RunDir {
    pub fn new(state_dir: &Path) -> RunDir {
        let digest = Sha256::digest(state_dir.to_string_lossy().as_bytes());
        let short: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        RunDir {
            primary: state_dir.join("run"),
            fallback: std::env::temp_dir().join(format!("box-{short}")),
        }
    }

    /// The path of the socket or file `name`, its folder created.
    pub fn path(&self, name: &str) -> std::io::Result<PathBuf> {
        let p = self.primary.join(name);
        let dir = if p.as_os_str().len() < MAX_SOCKET_PATH {
            &self.primary
        } else {
            &self.fallback
        };
        std::fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        Ok(dir.join(name))
    }

    pub fn qmp(&self, machine: &str) -> std::io::Result<PathBuf> {
        self.path(&format!("{machine}.qmp"))
    }

    /// The machine's end of its link to the hub.
    pub fn machine_link(&self, machine: &str) -> std::io::Result<PathBuf> {
        self.path(&format!("{machine}.net"))
    }

    /// The hub's end of its link to the machine.
    pub fn hub_link(&self, machine: &str) -> std::io::Result<PathBuf> {
        self.path(&format!("hub-{machine}.net"))
    }

    pub fn hub_pidfile(&self) -> std::io::Result<PathBuf> {
        self.path("hub.pid")
    }

    /// Both folders sockets may be in.
    pub fn dirs(&self) -> [&Path; 2] {
        [&self.primary, &self.fallback]
    }

    /// Removes the folders once empty (the last machine is gone).
    pub fn remove_if_empty(&self) {
        let _ = std::fs::remove_dir(&self.primary);
        let _ = std::fs::remove_dir(&self.fallback);
    }
}

/// Removes a stale socket or file; missing is fine.
pub fn remove_file(path: &Path) {
    let _ = std::fs::remove_file(path);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_picks_never_hand_out_the_same_port() {
        let ports: Vec<u16> = (0..20).map(|_| pick_port(None).unwrap()).collect();
        let unique: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(unique.len(), ports.len());
        release(&ports);
    }

    #[test]
    fn a_taken_port_is_refused_with_its_number() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let err = claim_port_at(Ipv4Addr::LOCALHOST.into(), port, "tcp").unwrap_err();
        assert!(err.to_string().contains(&port.to_string()));
    }

    #[test]
    fn a_taken_port_is_corrected_to_a_free_one_nearby_or_the_previous_one() {
        let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let taken = l.local_addr().unwrap().port();
        let local = IpAddr::from(Ipv4Addr::LOCALHOST);
        let port = corrected_port(local, taken, None, "tcp").unwrap();
        assert_ne!(port, taken);
        assert!(port_free(port, "tcp"));
        release(&[port]);
        // The port used last time wins when it is free again.
        let previous = pick_port(None).unwrap();
        release(&[previous]);
        assert_eq!(
            corrected_port(local, taken, Some(previous), "tcp").unwrap(),
            previous
        );
        release(&[previous]);
    }

    #[test]
    fn macs_are_stable_locally_administered_and_differ_per_machine() {
        let p = Path::new("/p");
        assert_eq!(mac(p, "web", 0), mac(p, "web", 0));
        assert_ne!(mac(p, "web", 0), mac(p, "db", 0));
        assert!(mac(p, "web", 2).starts_with("52:54:02:"));
    }

    #[test]
    fn private_addresses_follow_boxfile_order() {
        assert_eq!(private_address(0).unwrap().to_string(), "10.76.0.10");
        assert_eq!(private_address(1).unwrap().to_string(), "10.76.0.11");
        assert!(private_address(400).is_err());
    }

    #[test]
    fn long_project_paths_put_sockets_in_a_short_folder() {
        let long = PathBuf::from(format!("/tmp/{}/.box", "x".repeat(120)));
        let run = RunDir::new(&long);
        let p = run.qmp("web").unwrap();
        assert!(p.as_os_str().len() < MAX_SOCKET_PATH, "{}", p.display());
        let _ = std::fs::remove_file(&p);
        run.remove_if_empty();
    }
}
