//! The project lock: one `box` command at a time changes a project's state.
//!
//! A second command waits (and says so), then gives up after a timeout.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::output::Printer;

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("cannot open the lock file {path}")]
    Open {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("another box command has held {path} for {waited:?}; gave up waiting")]
    Timeout { path: PathBuf, waited: Duration },
}

/// Held for the lifetime of a command; the OS releases it if the process dies.
#[derive(Debug)]
pub struct ProjectLock {
    _file: File,
}

impl ProjectLock {
    pub fn acquire(
        state_dir: &Path,
        timeout: Duration,
        printer: &Printer,
    ) -> Result<Self, LockError> {
        let path = state_dir.join("lock");
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|source| LockError::Open {
                path: path.clone(),
                source,
            })?;
        let start = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(ProjectLock { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(source)) => {
                    return Err(LockError::Open {
                        path: path.clone(),
                        source,
                    })
                }
            }
            if !told {
                printer.info("waiting for another box command on this project to finish...");
                told = true;
            }
            if start.elapsed() >= timeout {
                return Err(LockError::Timeout {
                    path,
                    waited: start.elapsed(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
