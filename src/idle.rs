//! Idle stop and expiry, box's side: which watcher a machine's cloud-init
//! installs (the script itself is `guest::idle`), what box records when a
//! machine starts, and what `box status` says about when it stops.
//!
//! The guest decides and powers itself off; box never polls it. `box
//! status` answers from what box knows, without connecting, so it stays
//! instant: the expiry, recorded at each start, and the idle limit.
//! `box status --refresh`, which asks the providers anyway, also reads the
//! guest's idle time from the watcher's state file over SSH; that probe marks
//! itself so the watcher does not count it as a session (see `guest::idle`).

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::boxfile::duration;
use crate::boxfile::Machine;
use crate::state::MachineState;

/// The watcher the machine's cloud-init installs, if it has a limit.
pub fn watcher(machine: &Machine) -> Option<guest::idle::Watcher> {
    guest::idle::Watcher::new(machine.idle_stop, machine.expires)
}

/// What a machine was given, and when its current run expires; in its
/// state file under `stops`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Stops {
    /// Seconds with no session before the guest powers off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_stop_secs: Option<u64>,
    /// Seconds after each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_secs: Option<u64>,
    /// Unix seconds at which the current run expires.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
}

pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Records a start: the limits the machine runs with and its new expiry.
/// `started` is false when the machine was already running, whose expiry
/// stays (recorded by an earlier start) unless none was recorded yet.
pub fn record_start(state: &mut MachineState, machine: &Machine, started: bool) {
    let had = state.stops;
    if watcher(machine).is_none() && had.is_none() {
        return;
    }
    let mut s = had.unwrap_or(Stops {
        idle_stop_secs: machine.idle_stop,
        expires_secs: machine.expires,
        expires_at: None,
    });
    if started || s.expires_at.is_none() {
        s.expires_at = s.expires_secs.map(|e| now().saturating_add(e));
    }
    state.stops = Some(s);
}

/// `2026-12-01T10:05:00Z`, as the `box:expires` tag holds it.
pub fn timestamp(secs: u64) -> String {
    crate::clock::format_utc(
        secs,
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z"),
    )
}

/// For `box status`: the idle limit (with the idle time when the guest
/// was asked) and the time left before expiry, e.g. `after 2h idle, expires
/// in 5h40m` or `idle 12m of 2h, expires in 5h40m`; `None` for a machine
/// without limits.
pub fn describe(stops: &Stops, idle: Option<u64>, now: u64) -> Option<String> {
    let mut parts = Vec::new();
    match (stops.idle_stop_secs, idle) {
        (Some(limit), Some(idle)) => parts.push(format!(
            "idle {} of {}",
            duration::format(idle),
            duration::format(limit)
        )),
        (Some(limit), None) => parts.push(format!("after {} idle", duration::format(limit))),
        (None, _) => {}
    }
    if let Some(at) = stops.expires_at {
        parts.push(if at > now {
            format!("expires in {}", duration::format(round_minutes(at - now)))
        } else {
            format!("expired at {}", timestamp(at))
        });
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// Whole minutes above an hour; seconds only when under a minute.
fn round_minutes(secs: u64) -> u64 {
    if secs >= 3600 {
        secs / 60 * 60
    } else {
        secs
    }
}

/// The guest's idle time, read over SSH from the watcher's state file;
/// `None` when the guest cannot be reached quickly or has no watcher.
pub fn probe(target: &crate::state::SshTarget) -> Option<u64> {
    let session = crate::ssh::Session::connect(target, std::time::Duration::from_secs(5)).ok()?;
    let out = session.capture(guest::idle::PROBE_COMMAND).ok()?;
    guest::idle::parse_state(&out.stdout_text()).map(|s| s.idle_secs)
}

/// Whether a local guest's console ends with the kernel's power-off line:
/// the guest stopped itself (idle, expiry, `poweroff`) rather than QEMU
/// dying.
pub fn console_says_powered_off(console_tail: &str) -> bool {
    console_tail
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .is_some_and(|l| l.contains("reboot: Power down"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_names_the_idle_limit_and_the_time_left() {
        let s = Stops {
            idle_stop_secs: Some(7200),
            expires_secs: Some(8 * 3600),
            expires_at: Some(1000 + 5 * 3600 + 40 * 60 + 12),
        };
        assert_eq!(
            describe(&s, None, 1000).as_deref(),
            Some("after 2h idle, expires in 5h40m")
        );
        assert_eq!(
            describe(&s, Some(750), 1000).as_deref(),
            Some("idle 12m30s of 2h, expires in 5h40m")
        );
        assert_eq!(
            describe(&s, None, 100_000).as_deref(),
            Some("after 2h idle, expired at 1970-01-01T05:56:52Z")
        );
        assert_eq!(describe(&Stops::default(), None, 0), None);
    }

    #[test]
    fn a_clean_power_off_is_told_from_a_crash_by_the_console() {
        assert!(console_says_powered_off(
            "[  OK  ] Reached target power-off.\r\n[  130.1] reboot: Power down\r\n"
        ));
        assert!(!console_says_powered_off(
            "[  130.1] reboot: Power down\n[    0.0] Linux version 6.1\n"
        ));
        assert!(!console_says_powered_off(""));
    }
}
