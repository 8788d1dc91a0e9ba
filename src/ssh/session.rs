//! One authenticated SSH connection to a machine, reused for every command,
//! SFTP transfer and sync of a box invocation.

use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs};
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use ssh2::MethodType;

use super::pump::{pump, Tick};
use super::{HostKey, SshError};
use crate::state::SshTarget;

/// Longest wait for one TCP connect or handshake.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// Seconds between keepalives on an idle connection (e.g. `sync --watch`).
const KEEPALIVE_SECS: u32 = 15;

pub struct Session {
    inner: ssh2::Session,
    sock: RawFd,
    addr: String,
    user: String,
    host_key: String,
    /// What this session was opened to, for a session handed to OpenSSH.
    target: SshTarget,
}

/// The result of a command whose output was captured.
#[derive(Debug, Clone)]
pub struct Output {
    pub status: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
}

impl Session {
    /// Connects, verifies the pinned host key and authenticates. Failures a
    /// booting machine produces are retried until `wait` is spent; an auth
    /// failure or a host key mismatch is returned at once.
    pub fn connect(target: &SshTarget, wait: Duration) -> Result<Session, SshError> {
        let pinned = HostKey::parse(&target.host_key)?;
        let start = Instant::now();
        let mut pause = Duration::from_millis(100);
        loop {
            let remaining = wait.saturating_sub(start.elapsed());
            let per_attempt = ATTEMPT_TIMEOUT.min(remaining).max(Duration::from_secs(1));
            match Session::attempt(target, &pinned, per_attempt) {
                Ok(s) => return Ok(s),
                Err(e) if e.is_transient() => {
                    if start.elapsed() + pause >= wait {
                        return Err(SshError::Unreachable {
                            addr: address(target),
                            waited_secs: start.elapsed().as_secs(),
                            source: Box::new(e),
                        });
                    }
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn attempt(
        target: &SshTarget,
        pinned: &HostKey,
        timeout: Duration,
    ) -> Result<Session, SshError> {
        let addr = address(target);
        let addrs: Vec<_> = (target.host.as_str(), target.port)
            .to_socket_addrs()
            .map_err(|source| SshError::Resolve {
                host: target.host.clone(),
                source,
            })?
            .collect();
        let mut last = std::io::Error::new(std::io::ErrorKind::NotFound, "no address");
        let mut stream = None;
        for a in &addrs {
            match TcpStream::connect_timeout(a, timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or_else(|| SshError::Connect {
            addr: addr.clone(),
            source: last,
        })?;
        let _ = stream.set_nodelay(true);
        let sock = stream.as_raw_fd();
        let mut sess = ssh2::Session::new().map_err(SshError::protocol("session setup"))?;
        sess.set_tcp_stream(stream);
        sess.method_pref(MethodType::HostKey, &pinned.method_pref())
            .map_err(SshError::protocol("host key preference"))?;
        sess.set_timeout(timeout.as_millis().min(u32::MAX as u128) as u32);
        sess.handshake().map_err(|source| SshError::Handshake {
            addr: addr.clone(),
            source,
        })?;
        let presented = match sess.host_key() {
            Some((blob, _)) => HostKey::from_blob(blob),
            None => return Err(SshError::NoHostKey { addr }),
        };
        if presented.blob != pinned.blob {
            return Err(SshError::HostKeyMismatch {
                addr,
                expected: pinned.fingerprint(),
                expected_type: pinned.algorithm.clone(),
                presented: presented.fingerprint(),
                presented_type: presented.algorithm,
            });
        }
        if let Err(source) = std::fs::metadata(&target.identity_file) {
            return Err(SshError::Identity {
                path: target.identity_file.clone(),
                source,
            });
        }
        sess.userauth_pubkey_file(&target.user, None, &target.identity_file, None)
            .map_err(|source| SshError::auth(&addr, target, source))?;
        sess.set_timeout(0);
        sess.set_keepalive(false, KEEPALIVE_SECS);
        Ok(Session {
            inner: sess,
            sock,
            addr,
            user: target.user.clone(),
            host_key: pinned.fingerprint(),
            target: target.clone(),
        })
    }

    /// `host:port`, for messages.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// The endpoint, key and pinned host key this session was opened with.
    pub fn target(&self) -> &SshTarget {
        &self.target
    }

    /// The login user.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The verified host key's fingerprint: it identifies this incarnation
    /// of the machine (box generates a new host key for every new machine).
    pub fn host_key_fingerprint(&self) -> &str {
        &self.host_key
    }

    pub fn raw(&self) -> &ssh2::Session {
        &self.inner
    }

    /// Runs `cmd` with its output streamed to `stdout` and `stderr`;
    /// returns the remote exit code (128+N for a signal, like a shell).
    pub fn exec(
        &self,
        cmd: &str,
        mut stdout: impl Write,
        mut stderr: impl Write,
    ) -> Result<i32, SshError> {
        self.exec_with_input(cmd, None, &mut stdout, &mut stderr)
    }

    /// Like [`exec`](Self::exec), with `input` (a readable fd) copied to the
    /// remote stdin until its EOF.
    pub fn exec_with_input(
        &self,
        cmd: &str,
        input: Option<RawFd>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<i32, SshError> {
        self.run(Some(cmd), input, stdout, stderr)
    }

    /// Runs `cmd`, or the login shell when `None` (without a PTY: for
    /// piped input), streaming as [`exec_with_input`](Self::exec_with_input).
    pub fn run(
        &self,
        cmd: Option<&str>,
        input: Option<RawFd>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<i32, SshError> {
        let ch = self.open(cmd, None)?;
        self.drive(ch, input, stdout, stderr, None)
    }

    /// Bounds each blocking libssh2 call (channel open, exec) to `wait`;
    /// `None` waits without a bound.
    pub(crate) fn set_wait(&self, wait: Option<Duration>) {
        let ms = wait.map_or(0, |w| w.as_millis().clamp(1, u32::MAX as u128) as u32);
        self.inner.set_timeout(ms);
    }

    /// Opens a channel and starts `cmd` on it, or the login shell when
    /// `None`, with a PTY of `(term, (cols, rows))` when `pty` is given.
    pub(crate) fn open(
        &self,
        cmd: Option<&str>,
        pty: Option<(&str, (u32, u32))>,
    ) -> Result<ssh2::Channel, SshError> {
        let mut ch = self
            .inner
            .channel_session()
            .map_err(SshError::protocol("channel open"))?;
        if let Some((term, (cols, rows))) = pty {
            ch.request_pty(term, None, Some((cols, rows, 0, 0)))
                .map_err(SshError::protocol("pty request"))?;
        }
        match cmd {
            Some(c) => ch.exec(c).map_err(SshError::protocol("exec"))?,
            None => ch.shell().map_err(SshError::protocol("shell"))?,
        }
        Ok(ch)
    }

    /// Moves the bytes of a started channel until the remote side closes
    /// (see [`pump`]); returns the remote exit code. Without `input` the
    /// remote stdin is closed at once.
    pub(crate) fn drive(
        &self,
        mut ch: ssh2::Channel,
        input: Option<RawFd>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
        tick: Option<Tick<'_>>,
    ) -> Result<i32, SshError> {
        if input.is_none() {
            let _ = ch.send_eof();
        }
        pump(&self.inner, self.sock, &mut ch, input, stdout, stderr, tick)?;
        finish(ch)
    }

    /// Runs `cmd` and returns its exit code and output.
    pub fn capture(&self, cmd: &str) -> Result<Output, SshError> {
        let mut stdout = Vec::new();
        let mut stderr = Vec::new();
        let status = self.exec_with_input(cmd, None, &mut stdout, &mut stderr)?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Runs `cmd` with a PTY of the given size, `input` as its keyboard, and
    /// `tick` called regularly (to forward window-size changes).
    pub(crate) fn exec_pty(
        &self,
        cmd: Option<&str>,
        term: &str,
        size: (u32, u32),
        input: RawFd,
        stdout: &mut dyn Write,
        tick: &mut dyn FnMut(&mut ssh2::Channel) -> Result<(), SshError>,
    ) -> Result<i32, SshError> {
        let ch = self.open(cmd, Some((term, size)))?;
        // With a PTY the remote merges stderr into the terminal stream.
        let mut sink = std::io::sink();
        self.drive(
            ch,
            Some(input),
            stdout,
            &mut sink,
            Some(Tick {
                every: Duration::from_millis(100),
                call: tick,
            }),
        )
    }

    pub fn sftp(&self) -> Result<ssh2::Sftp, SshError> {
        self.inner.sftp().map_err(SshError::protocol("SFTP start"))
    }

    /// Sends a keepalive if one is due, so idle connections survive NAT.
    pub fn keepalive(&self) {
        let _ = self.inner.keepalive_send();
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.inner.disconnect(None, "box is done", None);
    }
}

fn finish(mut ch: ssh2::Channel) -> Result<i32, SshError> {
    ch.wait_close()
        .map_err(SshError::protocol("channel close"))?;
    if let Ok(sig) = ch.exit_signal() {
        if let Some(name) = sig.exit_signal {
            return Ok(128 + signal_number(&name));
        }
    }
    ch.exit_status().map_err(SshError::protocol("exit status"))
}

fn signal_number(name: &str) -> i32 {
    match name {
        "HUP" => 1,
        "INT" => 2,
        "QUIT" => 3,
        "ILL" => 4,
        "ABRT" => 6,
        "FPE" => 8,
        "KILL" => 9,
        "USR1" => 10,
        "SEGV" => 11,
        "USR2" => 12,
        "PIPE" => 13,
        "ALRM" => 14,
        "TERM" => 15,
        _ => 127,
    }
}

fn address(target: &SshTarget) -> String {
    if target.host.contains(':') {
        format!("[{}]:{}", target.host, target.port)
    } else {
        format!("{}:{}", target.host, target.port)
    }
}
