//! A resumed machine's clock: it stood still while the machine was
//! suspended, hours may have passed, and the guest may have no network to
//! ask. box sets it from this host's clock over the SSH session.

use std::time::{SystemTime, UNIX_EPOCH};

use crate::ssh::Session;

#[derive(Debug, thiserror::Error)]
pub enum ClockError {
    #[error(transparent)]
    Ssh(#[from] crate::ssh::SshError),
    #[error("`{command}` failed in the guest (exit {status}): {stderr}")]
    Refused {
        command: String,
        status: i32,
        stderr: String,
    },
}

/// Sets the guest's system clock to this host's time, then its hardware
/// clock where it has one (so a later reboot keeps it).
pub fn set(session: &Session) -> Result<(), ClockError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let command = command_for(now.as_secs(), now.subsec_millis());
    let out = session.capture(&command)?;
    if out.status != 0 {
        return Err(ClockError::Refused {
            command,
            status: out.status,
            stderr: out.stderr_text().trim().to_string(),
        });
    }
    Ok(())
}

/// The guest command: `date` from the host's epoch (root through sudo,
/// as provisioners run), and `hwclock` only where the guest has it.
fn command_for(secs: u64, millis: u32) -> String {
    format!(
        "sudo -n date -u -s @{secs}.{millis:03} >/dev/null && \
         {{ ! command -v hwclock >/dev/null || sudo -n hwclock --systohc --utc 2>/dev/null || true; }}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_clock_is_set_from_the_host_epoch_with_millis() {
        let c = command_for(1_795_629_600, 7);
        assert!(c.starts_with("sudo -n date -u -s @1795629600.007 "), "{c}");
    }
}
