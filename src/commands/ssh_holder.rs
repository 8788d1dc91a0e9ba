//! Connection reuse for the SSH verbs: the hidden `box ssh-holder` command
//! (the holder process itself, see [`crate::ssh::holder`]), starting it on
//! first use, and ending it for `box halt` and `box destroy`.
//!
//! `BOX_SSH_HOLDER_IDLE` sets how long the holder waits for the next
//! command before it ends (`600`, `90s`, `10m`; default 10 minutes);
//! `0` or `off` turns reuse off (every command connects directly).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::SshHolderArgs;
use crate::error::ExitStatus;
use crate::output::Printer;
use crate::ssh::holder::{self, Outcome, Pty, Streams};
use crate::state::{StateStore, Status};

pub(crate) const IDLE_ENV: &str = "BOX_SSH_HOLDER_IDLE";
const DEFAULT_IDLE: Duration = Duration::from_secs(600);

/// The holder's idle time; `None` when reuse is off. A value box cannot
/// read turns reuse off rather than guessing.
pub(crate) fn idle_time() -> Option<Duration> {
    match std::env::var(IDLE_ENV) {
        Err(_) => Some(DEFAULT_IDLE),
        Ok(v) => parse_idle(&v),
    }
}

fn parse_idle(v: &str) -> Option<Duration> {
    let v = v.trim();
    if v.eq_ignore_ascii_case("off") {
        return None;
    }
    let (digits, unit) = match v.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => v.split_at(i),
        None => (v, "s"),
    };
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// `box ssh-holder --box-dir DIR`: serves until idle or stopped.
pub(crate) fn serve(args: SshHolderArgs) -> anyhow::Result<ExitStatus> {
    let Some(idle) = idle_time() else {
        return Ok(ExitStatus::Success);
    };
    // It runs in `/`: a relative folder would be another project's.
    if !args.box_dir.is_absolute() {
        anyhow::bail!(
            "--box-dir {} is not an absolute path",
            args.box_dir.display()
        );
    }
    let Some(root) = args.box_dir.parent().map(Path::to_path_buf) else {
        anyhow::bail!("{} is not a project's .box folder", args.box_dir.display());
    };
    let lookup = move |machine: &str| {
        let store = StateStore::open(&root).map_err(|e| e.to_string())?;
        let state = store
            .load_machine(machine)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("`{machine}` is not created"))?;
        if state.status != Status::Running {
            return Err(format!("`{machine}` is {}", state.status));
        }
        state
            .ssh
            .ok_or_else(|| format!("`{machine}` has no SSH endpoint"))
    };
    // A held connection is no activity: the guest's idle watcher counts it
    // as a session unless it is marked as `box status --refresh` marks its
    // probe. (An interactive `box ssh` connects directly and counts.)
    let mark = guest::idle::PROBE_COMMAND.to_string();
    holder::serve(&args.box_dir, idle, Box::new(lookup), args.warm, Some(mark))?;
    Ok(ExitStatus::Success)
}

/// Runs a command on `machine` through the project's holder. `None` when
/// nothing ran and the caller connects directly; the holder is started
/// then (when reuse is on) so the next command finds it.
pub(crate) fn run(
    box_dir: &Path,
    machine: &str,
    command: Option<&str>,
    pty: Option<Pty>,
    streams: Streams,
    printer: &Printer,
) -> Result<Option<i32>, crate::ssh::SshError> {
    if idle_time().is_none() {
        return Ok(None);
    }
    match holder::run(box_dir, machine, command, pty, streams)? {
        Outcome::Ran(code) => {
            printer.debug(&format!("ssh: `{machine}` via the connection holder"));
            Ok(Some(code))
        }
        Outcome::Unavailable { reason, absent } => {
            printer.debug(&format!("ssh: not through the connection holder: {reason}"));
            if absent {
                start(box_dir, machine, printer);
            }
            Ok(None)
        }
    }
}

/// Starts the holder in the background, detached from this terminal and
/// from this process's output (a caller reading box's output to its end
/// must not wait for the holder).
fn start(box_dir: &Path, machine: &str, printer: &Printer) {
    // The holder runs in `/`, away from any folder it could keep busy.
    let (Ok(exe), Ok(box_dir)) = (std::env::current_exe(), std::path::absolute(box_dir)) else {
        return;
    };
    let mut cmd = Command::new(exe);
    cmd.arg("ssh-holder")
        .arg("--box-dir")
        .arg(&box_dir)
        .arg("--warm")
        .arg(machine)
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the holder leaves this session
    // so a terminal hangup or Ctrl-C of this command does not end it.
    unsafe {
        use std::os::unix::process::CommandExt as _;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    match cmd.spawn() {
        Ok(child) => printer.debug(&format!(
            "ssh: started the connection holder (pid {})",
            child.id()
        )),
        Err(e) => printer.debug(&format!("ssh: cannot start the connection holder: {e}")),
    }
}

/// Ends the holder's connections to `machine` (the whole holder when
/// `None`), for `box halt` and `box destroy`; waits until a holder that
/// ends is gone.
pub(crate) fn stop(box_dir: &Path, machine: Option<&str>, printer: &Printer) {
    if let Err(e) = holder::stop(box_dir, machine) {
        printer.debug(&format!("ssh: stopping the connection holder: {e}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_time_reads_seconds_minutes_and_off() {
        assert_eq!(parse_idle("600"), Some(Duration::from_secs(600)));
        assert_eq!(parse_idle("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_idle("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_idle("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_idle("0"), None);
        assert_eq!(parse_idle("off"), None);
        assert_eq!(parse_idle("soon"), None);
    }
}
