//! The I/O loop of one channel: remote stdout and stderr out, local input
//! in, all on one thread without blocking on any single stream.
//!
//! A blocking read of stdout while the remote fills stderr would stall the
//! channel window and deadlock, so the session is switched to non-blocking
//! mode and the loop waits on the socket (and the input fd) with `poll`.

use std::io::{ErrorKind, Read, Write};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use ssh2::{BlockDirections, Channel};

use super::SshError;

/// What to do besides moving bytes: called about every `every`.
pub(crate) struct Tick<'a> {
    pub every: Duration,
    pub call: &'a mut dyn FnMut(&mut Channel) -> Result<(), SshError>,
}

/// Switches a session to non-blocking mode and back, even on error.
struct NonBlocking<'a>(&'a ssh2::Session);

impl<'a> NonBlocking<'a> {
    fn new(sess: &'a ssh2::Session) -> Self {
        sess.set_blocking(false);
        NonBlocking(sess)
    }
}

impl Drop for NonBlocking<'_> {
    fn drop(&mut self) {
        self.0.set_blocking(true);
    }
}

const CHUNK: usize = 64 * 1024;

/// Moves bytes until the remote side closes its output. `input` is a file
/// descriptor whose bytes go to the remote stdin; its EOF is forwarded.
pub(crate) fn pump(
    sess: &ssh2::Session,
    sock: RawFd,
    ch: &mut Channel,
    input: Option<RawFd>,
    out: &mut dyn Write,
    err: &mut dyn Write,
    mut tick: Option<Tick<'_>>,
) -> Result<(), SshError> {
    let _mode = NonBlocking::new(sess);
    let mut buf = vec![0u8; CHUNK];
    let mut pending: Vec<u8> = Vec::new();
    let mut input_open = input.is_some();
    let mut eof_to_send = false;
    let mut last_tick = Instant::now();
    loop {
        let mut progressed = false;
        let mut out_open = true;
        let mut err_open = true;
        // Remote stdout.
        loop {
            match ch.read(&mut buf) {
                Ok(0) => {
                    out_open = !ch.eof();
                    break;
                }
                Ok(n) => {
                    out.write_all(&buf[..n])
                        .map_err(SshError::io("write of output"))?;
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(SshError::io("read")(e)),
            }
        }
        // Remote stderr.
        loop {
            match ch.stderr().read(&mut buf) {
                Ok(0) => {
                    err_open = !ch.eof();
                    break;
                }
                Ok(n) => {
                    err.write_all(&buf[..n])
                        .map_err(SshError::io("write of output"))?;
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => return Err(SshError::io("read")(e)),
            }
        }
        if progressed {
            let _ = out.flush();
            let _ = err.flush();
        }
        if !out_open && !err_open && ch.eof() {
            return Ok(());
        }
        // Local input to the remote stdin.
        while !pending.is_empty() {
            match ch.write(&pending) {
                Ok(0) => break,
                Ok(n) => {
                    pending.drain(..n);
                    progressed = true;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                // The remote closed its stdin (command done): drop the rest.
                Err(_) => {
                    pending.clear();
                    input_open = false;
                }
            }
        }
        if eof_to_send && pending.is_empty() {
            match ch.send_eof() {
                Ok(()) => eof_to_send = false,
                Err(e) if is_would_block(&e) => {}
                Err(_) => eof_to_send = false,
            }
        }
        let mut input_ready = false;
        if let Some(t) = tick.as_mut() {
            if last_tick.elapsed() >= t.every {
                last_tick = Instant::now();
                (t.call)(ch)?;
            }
        }
        if !progressed {
            let _ = sess.keepalive_send();
            let timeout = tick.as_ref().map_or(Duration::from_secs(5), |t| t.every);
            let wait_input = input.filter(|_| input_open && pending.is_empty());
            input_ready = wait(sess, sock, wait_input, timeout)?;
        } else if let Some(fd) = input.filter(|_| input_open && pending.len() < CHUNK) {
            input_ready = poll_now(fd);
        }
        if input_ready {
            if let Some(fd) = input {
                let n = read_fd(fd, &mut buf);
                match n {
                    Ok(0) => {
                        input_open = false;
                        eof_to_send = true;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(_) => {
                        input_open = false;
                        eof_to_send = true;
                    }
                }
            }
        }
    }
}

fn is_would_block(e: &ssh2::Error) -> bool {
    matches!(e.code(), ssh2::ErrorCode::Session(-37))
}

pub(crate) fn read_fd(fd: RawFd, buf: &mut [u8]) -> std::io::Result<usize> {
    // SAFETY: buf is a valid writable buffer of buf.len() bytes.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    if n < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

fn poll_now(fd: RawFd) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: fds is a valid array of one pollfd.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, 0) };
    rc > 0 && fds[0].revents != 0
}

/// Waits until the socket is ready in the direction libssh2 needs, or the
/// input has bytes, or `timeout` passes; true when the input is readable.
fn wait(
    sess: &ssh2::Session,
    sock: RawFd,
    input: Option<RawFd>,
    timeout: Duration,
) -> Result<bool, SshError> {
    let mut events = libc::POLLIN;
    if matches!(
        sess.block_directions(),
        BlockDirections::Outbound | BlockDirections::Both
    ) {
        events |= libc::POLLOUT;
    }
    let mut fds = vec![libc::pollfd {
        fd: sock,
        events,
        revents: 0,
    }];
    if let Some(fd) = input {
        fds.push(libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        });
    }
    let ms = timeout.as_millis().min(i32::MAX as u128) as i32;
    // SAFETY: fds is a valid array of fds.len() pollfds.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == ErrorKind::Interrupted {
            return Ok(false);
        }
        return Err(SshError::io("poll")(e));
    }
    Ok(fds.get(1).is_some_and(|f| f.revents != 0))
}
