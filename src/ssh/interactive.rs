//! `box ssh` on a terminal: a remote PTY, the local terminal in raw mode,
//! and window-size changes forwarded while the session lasts.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Session, SshError};

/// Raw mode on stdin until dropped, so a panic or an error still gives the
/// user their terminal back.
pub(crate) struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    pub(crate) fn enable() -> Option<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it or fails.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(0, libc::TCSANOW, &raw) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the attributes read in `enable`.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.saved);
        }
    }
}

static RESIZED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_winch(_: libc::c_int) {
    RESIZED.store(true, Ordering::Relaxed);
}

/// Columns and rows of the local terminal.
pub(crate) fn window_size() -> (u32, u32) {
    // SAFETY: winsize is plain data; ioctl fills it or fails.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        for fd in [1, 0, 2] {
            if libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) == 0 && ws.ws_col > 0 {
                return (ws.ws_col as u32, ws.ws_row as u32);
            }
        }
    }
    (80, 24)
}

/// True when `box ssh` should open a PTY: both ends are a terminal.
pub fn wants_pty() -> bool {
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// The local terminal's type, for the remote PTY.
pub(crate) fn terminal_type() -> String {
    std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".to_string())
}

/// Notes window-size changes from now on (see [`resized`]).
pub(crate) fn watch_resizes() {
    // SAFETY: installs an async-signal-safe handler that only stores a flag.
    unsafe {
        libc::signal(libc::SIGWINCH, on_winch as *const () as libc::sighandler_t);
    }
}

/// True once after each window-size change.
pub(crate) fn resized() -> bool {
    RESIZED.swap(false, Ordering::Relaxed)
}

/// An interactive login (or `cmd`) with a PTY; returns the remote exit code.
pub fn login(
    session: &Session,
    cmd: Option<&str>,
    stdout: &mut dyn Write,
) -> Result<i32, SshError> {
    let term = terminal_type();
    watch_resizes();
    let initial = window_size();
    let mut size = initial;
    let raw = RawMode::enable();
    let mut forward_resize = |ch: &mut ssh2::Channel| {
        if resized() {
            let now = window_size();
            if now != size {
                size = now;
                let _ = ch.request_pty_size(now.0, now.1, None, None);
            }
        }
        Ok(())
    };
    let result = session.exec_pty(cmd, &term, initial, 0, stdout, &mut forward_resize);
    drop(raw);
    let _ = stdout.flush();
    result
}
