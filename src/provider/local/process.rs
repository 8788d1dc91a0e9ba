//! QEMU runs detached from box (it must outlive `box up`), so box finds it
//! again by pid. A pid alone can be reused by another program: on Linux box
//! also checks the process's command line for a path only that QEMU has.

use std::path::Path;
use std::time::{Duration, Instant};

/// Reads a pid file written by QEMU's `-pidfile`.
pub fn read_pidfile(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// True if `pid` is a live process whose command line contains `marker`.
pub fn alive(pid: u32, marker: &str) -> bool {
    if pid == 0 || pid > i32::MAX as u32 {
        return false;
    }
    if cfg!(target_os = "linux") {
        // An exited, unreaped process has an empty command line: dead.
        match std::fs::read(format!("/proc/{pid}/cmdline")) {
            Ok(bytes) => {
                let text = String::from_utf8_lossy(&bytes);
                !text.is_empty() && text.contains(marker)
            }
            Err(_) => false,
        }
    } else {
        // SAFETY: kill with signal 0 only checks that the process exists.
        unsafe { libc::kill(pid as i32, 0) == 0 }
    }
}

/// Sends a signal; a process already gone is not an error.
pub fn signal(pid: u32, sig: i32) {
    if pid == 0 || pid > i32::MAX as u32 {
        return;
    }
    // SAFETY: a plain kill(2) on a pid we verified to be our QEMU.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// Waits until the process is gone; false if it still runs after `timeout`.
pub async fn wait_gone(pid: u32, marker: &str, timeout: Duration) -> bool {
    let start = Instant::now();
    loop {
        if !alive(pid, marker) {
            return true;
        }
        if start.elapsed() >= timeout {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Stops a process: SIGTERM, then SIGKILL if it lingers.
pub async fn terminate(pid: u32, marker: &str) {
    if !alive(pid, marker) {
        return;
    }
    signal(pid, libc::SIGTERM);
    if !wait_gone(pid, marker, Duration::from_secs(5)).await {
        signal(pid, libc::SIGKILL);
        wait_gone(pid, marker, Duration::from_secs(5)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_only_with_a_marker_from_its_command_line() {
        let me = std::process::id();
        let exe = std::env::args().next().unwrap();
        assert!(alive(me, &exe));
        if cfg!(target_os = "linux") {
            assert!(!alive(me, "certainly-not-in-the-command-line"));
        }
        assert!(!alive(0, &exe));
    }
}
