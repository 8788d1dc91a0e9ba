//! The idle watcher box installs in a guest through cloud-init: a shell
//! script and a systemd timer (no extra package) that power the machine off
//! after a time with no SSH connection and a low load, or once it has been
//! up for its allowed time.
//!
//! Activity is sampled every [`INTERVAL_SECS`] seconds:
//! - an established TCP connection owned by sshd (`ss -tnp`), whatever its
//!   port, is a session: box's own commands run over SSH exec channels
//!   without a pty, which `who` and utmp never see, and an editor's or
//!   `box sync --watch`'s long-lived connection counts as long as it is open;
//! - a 1-minute load average of at least half a CPU per CPU is work (a build
//!   left running under `nohup`).
//!
//! Times are read from `/proc/uptime`, never the wall clock, which may jump
//! when the guest's clock is set. The state lives in `/run/box-idle/`
//! (a tmpfs), so every boot starts a fresh idle period, and `expires` is
//! counted from boot: a machine `box up` starts again runs its full time.
//! The watcher's last sample is in `/run/box-idle/state` for people and
//! tools on the guest.

use serde_json::{json, Value};

/// How often the watcher samples.
pub const INTERVAL_SECS: u64 = 30;
/// The script's path in the guest.
pub const SCRIPT_PATH: &str = "/usr/local/sbin/box-idle";
pub const SERVICE_PATH: &str = "/etc/systemd/system/box-idle.service";
pub const TIMER_PATH: &str = "/etc/systemd/system/box-idle.timer";
/// The file the watcher writes after each sample (`key=value` lines).
pub const STATE_PATH: &str = "/run/box-idle/state";
/// What `box status --refresh` runs to read the state: it marks its own
/// sshd process (the shell's parent) as a probe first, so the watcher does
/// not count it as a session.
pub const PROBE_COMMAND: &str =
    "touch /run/box-idle/probes/$PPID 2>/dev/null; cat /run/box-idle/state";

/// When the guest stops itself; at least one of the two is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Watcher {
    /// Seconds with no SSH session and a low load before the power-off.
    pub idle_stop_secs: Option<u64>,
    /// Seconds after boot at which the machine powers off.
    pub expires_secs: Option<u64>,
}

impl Watcher {
    /// `None` when neither limit is set: nothing to install.
    pub fn new(idle_stop_secs: Option<u64>, expires_secs: Option<u64>) -> Option<Watcher> {
        (idle_stop_secs.is_some() || expires_secs.is_some()).then_some(Watcher {
            idle_stop_secs,
            expires_secs,
        })
    }

    /// The shell script (POSIX sh, Debian's dash; only coreutils, iproute2's
    /// `ss`, grep and systemd).
    pub fn script(&self) -> String {
        let idle = self.idle_stop_secs.unwrap_or(0);
        let expires = self.expires_secs.unwrap_or(0);
        format!(
            r#"#!/bin/sh
# box idle watcher, written by box through cloud-init; run by box-idle.timer.
# Powers the machine off after IDLE_STOP seconds with no SSH session and a low
# load, or once it has been up EXPIRES seconds. 0 switches a limit off.
set -u
IDLE_STOP={idle}
EXPIRES={expires}
# Busy at a 1-minute load of this many hundredths per CPU, or more.
LOAD_BUSY=50
# Overridable only for box's own tests of this script.
DIR=${{BOX_IDLE_DIR:-/run/box-idle}}
PROC=${{BOX_IDLE_PROC:-/proc}}
KMSG=${{BOX_IDLE_KMSG:-/dev/kmsg}}

mkdir -p "$DIR/probes"
chmod 1777 "$DIR/probes"
read -r up _ < "$PROC/uptime"
now=${{up%.*}}
# `box status --refresh` reads this watcher's state over SSH, and marks its
# sshd process in $DIR/probes first: reading the idle time is no activity.
for f in "$DIR"/probes/*; do
  [ -e "$f" ] && [ ! -d "$PROC/${{f##*/}}" ] && rm -f "$f"
done
# An established connection owned by sshd (or OpenSSH 9.8's sshd-session):
# exec channels without a pty count too, and the port does not matter.
ss -Htnp state established 2>/dev/null | grep '"sshd' > "$DIR/sshd.tmp" || true
sessions=0
while read -r line; do
  probe=0
  for p in $(printf '%s\n' "$line" | grep -o 'pid=[0-9]*'); do
    [ -e "$DIR/probes/${{p#pid=}}" ] && probe=1
  done
  [ "$probe" = 1 ] || sessions=$((sessions + 1))
done < "$DIR/sshd.tmp"
read -r load1 _ < "$PROC/loadavg"
load=$(( ${{load1%.*}} * 100 + 1${{load1#*.}} - 100 ))
cpus=$(nproc 2>/dev/null || echo 1)
last=$(cat "$DIR/last-active" 2>/dev/null || echo "$now")
if [ "$sessions" -gt 0 ] || [ "$load" -ge $((LOAD_BUSY * cpus)) ]; then
  last=$now
fi
echo "$last" > "$DIR/last-active"
idle=$((now - last))
printf 'uptime=%s\nidle=%s\nsessions=%s\nload=%s\nidle_stop=%s\nexpires=%s\n' \
  "$now" "$idle" "$sessions" "$load1" "$IDLE_STOP" "$EXPIRES" > "$DIR/state.tmp"
mv "$DIR/state.tmp" "$DIR/state"

stop() {{
  # On the console too, where `box logs` and the provider see it.
  echo "box-idle: $1; powering off" > "$KMSG" 2>/dev/null || true
  logger -t box-idle "$1; powering off" 2>/dev/null || true
  systemctl poweroff
  exit 0
}}
if [ "$EXPIRES" -gt 0 ] && [ "$now" -ge "$EXPIRES" ]; then
  stop "expired after ${{now}}s up (expires = ${{EXPIRES}}s)"
fi
if [ "$IDLE_STOP" -gt 0 ] && [ "$idle" -ge "$IDLE_STOP" ]; then
  stop "idle for ${{idle}}s (idle_stop = ${{IDLE_STOP}}s)"
fi
"#
        )
    }

    pub fn service(&self) -> String {
        format!(
            "[Unit]\nDescription=box: power off when idle or expired\n\n\
             [Service]\nType=oneshot\nExecStart={SCRIPT_PATH}\n"
        )
    }

    pub fn timer(&self) -> String {
        format!(
            "[Unit]\nDescription=box: check for idleness every {INTERVAL_SECS} s\n\n\
             [Timer]\nOnBootSec={INTERVAL_SECS}\nOnUnitActiveSec={INTERVAL_SECS}\nAccuracySec=1\n\n\
             [Install]\nWantedBy=timers.target\n"
        )
    }

    /// cloud-init `write_files` entries.
    pub fn write_files(&self) -> Vec<Value> {
        vec![
            json!({"path": SCRIPT_PATH, "permissions": "0755", "content": self.script()}),
            json!({"path": SERVICE_PATH, "permissions": "0644", "content": self.service()}),
            json!({"path": TIMER_PATH, "permissions": "0644", "content": self.timer()}),
        ]
    }

    /// cloud-init `runcmd` entries. `--no-block`: cloud-init runs inside
    /// the boot transaction, and waiting on a start job there can deadlock.
    pub fn runcmd(&self) -> Vec<Value> {
        vec![
            json!(["systemctl", "daemon-reload"]),
            json!(["systemctl", "enable", "box-idle.timer"]),
            json!(["systemctl", "start", "--no-block", "box-idle.timer"]),
        ]
    }
}

/// What the watcher's state file says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    pub uptime_secs: u64,
    pub idle_secs: u64,
    pub sessions: u64,
}

/// Reads `/run/box-idle/state`; `None` when it is not the watcher's.
pub fn parse_state(text: &str) -> Option<Sample> {
    let mut s = Sample::default();
    let mut seen = 0;
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let v = v.trim().parse::<u64>();
        match (k.trim(), v) {
            ("uptime", Ok(v)) => (s.uptime_secs, seen) = (v, seen | 1),
            ("idle", Ok(v)) => (s.idle_secs, seen) = (v, seen | 2),
            ("sessions", Ok(v)) => (s.sessions, seen) = (v, seen | 4),
            _ => {}
        }
    }
    (seen == 7).then_some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w() -> Watcher {
        Watcher::new(Some(120), Some(8 * 3600)).unwrap()
    }

    #[test]
    fn no_limit_installs_no_watcher() {
        assert_eq!(Watcher::new(None, None), None);
    }

    #[test]
    fn the_script_carries_both_limits_in_seconds_and_zero_for_an_unset_one() {
        let s = w().script();
        assert!(s.starts_with("#!/bin/sh\n"));
        assert!(s.contains("\nIDLE_STOP=120\n"), "{s}");
        assert!(s.contains("\nEXPIRES=28800\n"), "{s}");
        let only_idle = Watcher::new(Some(60), None).unwrap().script();
        assert!(only_idle.contains("\nEXPIRES=0\n"), "{only_idle}");
    }

    #[test]
    fn the_script_counts_sshd_connections_not_logins_and_reads_time_from_uptime() {
        let s = w().script();
        assert!(s.contains("ss -Htnp state established"), "{s}");
        assert!(s.contains("grep '\"sshd'"), "{s}");
        assert!(
            s.contains("PROC=${BOX_IDLE_PROC:-/proc}") && s.contains("\"$PROC/uptime\""),
            "{s}"
        );
        assert!(!s.contains("$(date"), "the wall clock may jump: {s}");
        assert!(s.contains("systemctl poweroff"), "{s}");
    }

    #[test]
    fn the_script_is_valid_posix_shell() {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(w().script())
            .output()
            .expect("sh");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the script with fake `/proc` files and `ss`, `systemctl` and
    /// `logger` on PATH that record what they were asked.
    struct Run {
        dir: tempfile::TempDir,
    }

    impl Run {
        fn new() -> Run {
            let dir = tempfile::tempdir().unwrap();
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            for (name, body) in [
                ("ss", "cat \"$FAKE/ss\" 2>/dev/null\n"),
                ("systemctl", "echo \"$*\" >> \"$FAKE/systemctl\"\n"),
                ("logger", "true\n"),
                ("nproc", "echo 1\n"),
            ] {
                let path = bin.join(name);
                std::fs::write(&path, format!("#!/bin/sh\n{body}")).unwrap();
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
            }
            std::fs::create_dir_all(dir.path().join("proc")).unwrap();
            Run { dir }
        }

        /// One sample at `uptime` seconds; true when it powered off.
        fn sample(&self, w: &Watcher, uptime: u64, load: &str, ssh: &str) -> bool {
            let p = self.dir.path();
            std::fs::write(p.join("proc/uptime"), format!("{uptime}.42 10.00\n")).unwrap();
            std::fs::write(
                p.join("proc/loadavg"),
                format!("{load} 0.10 0.10 1/80 999\n"),
            )
            .unwrap();
            std::fs::write(p.join("ss"), ssh).unwrap();
            let _ = std::fs::remove_file(p.join("systemctl"));
            let path = format!(
                "{}:{}",
                p.join("bin").display(),
                std::env::var("PATH").unwrap()
            );
            let out = std::process::Command::new("sh")
                .arg("-c")
                .arg(w.script())
                .env("PATH", path)
                .env("FAKE", p)
                .env("BOX_IDLE_DIR", p.join("run"))
                .env("BOX_IDLE_PROC", p.join("proc"))
                .env("BOX_IDLE_KMSG", p.join("kmsg"))
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::fs::read_to_string(p.join("systemctl")).is_ok_and(|s| s.contains("poweroff"))
        }

        fn state(&self) -> Sample {
            parse_state(&std::fs::read_to_string(self.dir.path().join("run/state")).unwrap())
                .unwrap()
        }
    }

    const SSHD: &str =
        "0 0 10.0.2.15:22 10.0.2.2:40000 users:((\"sshd\",pid=700,fd=4),(\"sshd\",pid=690,fd=4))\n";
    const CLIENT: &str = "0 0 10.0.2.15:40000 10.0.2.2:22 users:((\"ssh\",pid=800,fd=3))\n";

    #[test]
    fn the_script_powers_off_after_idle_stop_without_sessions_and_not_before() {
        let w = Watcher::new(Some(120), None).unwrap();
        let run = Run::new();
        // Boot counts as activity: the idle period starts at the first sample.
        assert!(!run.sample(&w, 40, "0.00", ""));
        assert!(!run.sample(&w, 100, "0.00", SSHD));
        assert_eq!(run.state().sessions, 1);
        assert!(
            !run.sample(&w, 200, "0.00", CLIENT),
            "an outgoing ssh is no session"
        );
        assert_eq!(run.state().idle_secs, 100);
        assert!(run.sample(&w, 220, "0.00", ""));
        assert!(std::fs::read_to_string(run.dir.path().join("kmsg"))
            .unwrap()
            .contains("box-idle: idle for 120s"));
    }

    #[test]
    fn a_busy_machine_is_not_idle() {
        let w = Watcher::new(Some(60), None).unwrap();
        let run = Run::new();
        assert!(!run.sample(&w, 30, "0.00", ""));
        assert!(!run.sample(&w, 100, "0.75", ""));
        assert_eq!(run.state().idle_secs, 0);
        assert!(!run.sample(&w, 130, "0.49", ""));
        assert!(run.sample(&w, 160, "0.10", ""));
    }

    #[test]
    fn a_status_probe_is_no_session_and_its_mark_goes_with_its_process() {
        let w = Watcher::new(Some(120), None).unwrap();
        let run = Run::new();
        assert!(!run.sample(&w, 30, "0.00", ""));
        let probes = run.dir.path().join("run/probes");
        std::fs::write(probes.join("700"), "").unwrap();
        std::fs::create_dir_all(run.dir.path().join("proc/700")).unwrap();
        assert!(!run.sample(&w, 100, "0.00", SSHD));
        assert_eq!(run.state().sessions, 0);
        assert_eq!(run.state().idle_secs, 70);
        // The probe's process is gone: its mark is removed.
        std::fs::remove_dir(run.dir.path().join("proc/700")).unwrap();
        assert!(!run.sample(&w, 110, "0.00", ""));
        assert!(!probes.join("700").exists());
        // The same pid later serving a real session counts again.
        assert!(!run.sample(&w, 120, "0.00", SSHD));
        assert_eq!(run.state().sessions, 1);
    }

    #[test]
    fn the_script_powers_off_at_expiry_even_with_a_session() {
        let w = Watcher::new(None, Some(3600)).unwrap();
        let run = Run::new();
        assert!(!run.sample(&w, 3599, "0.00", SSHD));
        assert!(run.sample(&w, 3600, "0.00", SSHD));
    }

    #[test]
    fn the_timer_runs_the_service_every_interval_and_starts_at_boot() {
        let t = w().timer();
        assert!(
            t.contains(&format!("OnUnitActiveSec={INTERVAL_SECS}\n")),
            "{t}"
        );
        assert!(t.contains("WantedBy=timers.target"), "{t}");
        assert!(w()
            .service()
            .contains(&format!("ExecStart={SCRIPT_PATH}\n")));
        let paths: Vec<String> = w()
            .write_files()
            .iter()
            .map(|f| f["path"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(paths, [SCRIPT_PATH, SERVICE_PATH, TIMER_PATH]);
    }

    #[test]
    fn the_state_file_is_read_back() {
        let text = "uptime=300\nidle=95\nsessions=0\nload=0.01\nidle_stop=120\nexpires=0\n";
        assert_eq!(
            parse_state(text),
            Some(Sample {
                uptime_secs: 300,
                idle_secs: 95,
                sessions: 0
            })
        );
        assert_eq!(parse_state("hello\n"), None);
    }
}
