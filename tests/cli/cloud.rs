//! A running `cloudstack-sim` for the tests that need a cloud: started on
//! a free loopback port with short jobs, stopped (SIGTERM first, so real
//! machines behind it stop too) when dropped.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::support;

pub const KEY: &str = "test-api-key";
pub const SECRET: &str = "test-secret-key";

/// A running simulator, stopped when dropped.
pub struct Sim {
    child: Child,
    pub url: String,
}

impl Drop for Sim {
    fn drop(&mut self) {
        // SIGTERM first: a simulator with real machines stops them on its way out.
        // SAFETY: kill(2) on the pid of the child this test started.
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        for _ in 0..300 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A second octet for a qemu-backed simulator's loopback addresses that no
/// other simulator running now uses, in this test process or another one
/// (helpers and CI run test binaries side by side): public addresses get
/// 30-39, 50-59, ... and basic-zone guests that plus 10, so the two ranges
/// never meet.
fn address_octet() -> u8 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let k = (std::process::id().wrapping_mul(7) + NEXT.fetch_add(1, Ordering::Relaxed)) % 110;
    (30 + 20 * (k / 10) + k % 10) as u8
}

impl Sim {
    pub fn start(extra: &[&str]) -> Sim {
        Self::start_with_state(extra, None)
    }

    pub fn start_with_state(extra: &[&str], state: Option<&Path>) -> Sim {
        Self::start_full(extra, state, &[])
    }

    pub fn start_full(extra: &[&str], state: Option<&Path>, envs: &[(&str, &str)]) -> Sim {
        let mut cmd = Command::new(support::sim_binary());
        // Guests hang under this host's KVM; TCG unless the caller says.
        if std::env::var_os("BOX_QEMU_ACCEL").is_none() {
            cmd.env("BOX_QEMU_ACCEL", "tcg");
        }
        cmd.envs(envs.iter().copied());
        if extra.contains(&"qemu") && !extra.iter().any(|a| a.starts_with("--address-octet")) {
            cmd.args(["--address-octet", &address_octet().to_string()]);
        }
        cmd.args(["--listen", "127.0.0.1:0", "--api-key", KEY])
            .env("CLOUDSTACK_SIM_SECRET_KEY", SECRET)
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(dir) = state {
            cmd.arg("--state").arg(dir);
        }
        if !extra.iter().any(|a| a.starts_with("--job-duration")) {
            cmd.args(["--job-duration", "50ms"]);
        }
        let mut child = cmd.spawn().expect("cloudstack-sim starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("cloudstack-sim says where it listens");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Sim { child, url }
    }

    /// A simulator whose VMs are real QEMU guests of the cached test box
    /// (`--backing qemu`), TCG unless `BOX_QEMU_ACCEL` says otherwise (as
    /// scripts/test does: on nested hosts /dev/kvm may open yet fail).
    pub fn start_qemu_backed(extra: &[&str]) -> Sim {
        support::require(if cfg!(target_arch = "aarch64") {
            "qemu-system-aarch64"
        } else {
            "qemu-system-x86_64"
        });
        support::require("qemu-img");
        let boxes = crate::guest::boxes_dir();
        let boxes_arg = boxes.to_string_lossy().into_owned();
        let accel = std::env::var("BOX_QEMU_ACCEL").unwrap_or_else(|_| "tcg".into());
        let mut args = vec!["--backing", "qemu", "--boxes-dir", &boxes_arg];
        args.extend_from_slice(extra);
        Self::start_full(&args, None, &[("BOX_QEMU_ACCEL", &accel)])
    }

    /// `box` in `dir` with this cloud's credentials.
    pub fn cmd(&self, home: &Path, dir: &Path) -> assert_cmd::Command {
        let mut cmd = support::box_cmd(home);
        cmd.current_dir(dir).envs(self.env());
        cmd
    }

    /// The environment that points `box` at this cloud.
    pub fn env(&self) -> [(&str, &str); 4] {
        [
            ("CLOUDSTACK_API_URL", &self.url),
            ("CLOUDSTACK_API_KEY", KEY),
            ("CLOUDSTACK_SECRET_KEY", SECRET),
            ("BOX_CLOUDSTACK_JOB_TIMEOUT", "120"),
        ]
    }

    /// The items of a list command, read with `box api`.
    pub fn list(&self, home: &Path, command: &str, params: &[&str]) -> Vec<Value> {
        let out = self
            .cmd(home, home)
            .arg("api")
            .arg(command)
            .arg("listall=true")
            .args(params)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "box api {command}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        v.as_object()
            .and_then(|o| o.iter().find(|(_, v)| v.is_array()))
            .map(|(_, v)| v.as_array().unwrap().clone())
            .unwrap_or_default()
    }

    /// Everything a box project may leave on the cloud, as counts.
    pub fn census(&self, home: &Path) -> Census {
        let vms: Vec<Value> = self
            .list(home, "listVirtualMachines", &[])
            .into_iter()
            .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
            .collect();
        let mut names: Vec<String> = vms
            .iter()
            .map(|v| v["name"].as_str().unwrap_or("").to_string())
            .collect();
        names.sort();
        Census {
            vm_names: names,
            pf_rules: self.list(home, "listPortForwardingRules", &[]).len(),
            fw_rules: self.list(home, "listFirewallRules", &[]).len(),
            keypairs: self.list(home, "listSSHKeyPairs", &[]).len(),
            groups: self
                .list(home, "listSecurityGroups", &[])
                .iter()
                .filter(|g| g["name"] != "default")
                .count(),
            extra_ips: self
                .list(home, "listPublicIpAddresses", &[])
                .iter()
                .filter(|ip| ip["issourcenat"] != Value::Bool(true))
                .count(),
        }
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        // SAFETY: kill(2) on the pid of the child this test started.
        let rc = unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM reaches the simulator");
        let status = self.child.wait().expect("the simulator exits");
        std::mem::forget(self);
        status
    }
}

/// What a box project may leave on a cloud: VMs by name (sorted), the rest
/// counted.
#[derive(Debug, PartialEq, Eq)]
pub struct Census {
    pub vm_names: Vec<String>,
    pub pf_rules: usize,
    pub fw_rules: usize,
    pub keypairs: usize,
    pub groups: usize,
    pub extra_ips: usize,
}

impl Census {
    /// A cloud with nothing of box's left on it.
    pub fn empty() -> Census {
        Census {
            vm_names: vec![],
            pf_rules: 0,
            fw_rules: 0,
            keypairs: 0,
            groups: 0,
            extra_ips: 0,
        }
    }
}
