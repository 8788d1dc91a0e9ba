//! The connection holder: a per-project background process that keeps one
//! authenticated session per machine and runs later commands over it, so
//! `box ssh web -- CMD` pays a channel open instead of a full handshake.
//!
//! It listens on `.box/holder/ssh.sock` (folder 0700, socket 0600) and
//! serves only its own user (checked with `SO_PEERCRED`). A client sends
//! one request with its stdin/stdout/stderr as file descriptors, as
//! OpenSSH's ControlMaster clients do, so the bytes never pass through the
//! client; it gets back `started` and the exit code. Every connection it
//! makes checks the pinned host key from state, as a direct one does.
//!
//! Any failure before the command started means "connect directly": the
//! holder never makes a command fail that would have worked without it.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::pump::Tick;
use super::{interactive, Session, SshError};
use crate::state::SshTarget;

/// Longest wait of the holder for a machine: a longer outage is the direct
/// connection's to wait out and to report.
const CONNECT_WAIT: Duration = Duration::from_secs(3);
/// Bound on each blocking call on a held connection (channel open, exec).
const CALL_WAIT: Duration = Duration::from_secs(10);
/// A socket path longer than this does not fit in `sockaddr_un`.
const MAX_SOCKET_PATH: usize = 107;

/// The holder's socket in a project's `.box` folder.
pub fn socket_path(box_dir: &Path) -> PathBuf {
    box_dir.join("holder").join("ssh.sock")
}

/// The holder's process id, written beside its socket while it runs.
pub fn pid_path(box_dir: &Path) -> PathBuf {
    box_dir.join("holder").join("pid")
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ToHolder {
    /// Run a command; the message carries stdin (when `stdin`), stdout and
    /// stderr as file descriptors.
    Run {
        machine: String,
        command: Option<String>,
        pty: Option<Pty>,
        stdin: bool,
    },
    /// The client's terminal changed size.
    Resize { cols: u32, rows: u32 },
    /// Drop the connections to `machine` (all when `None`); the holder ends
    /// when it holds none.
    Stop { machine: Option<String> },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum FromHolder {
    Started,
    Exit {
        code: i32,
    },
    /// Nothing ran: connect directly.
    Unavailable {
        reason: String,
    },
    /// The command started and then the connection failed.
    Failed {
        reason: String,
    },
    /// Not this user's holder.
    Refused {
        reason: String,
    },
    Stopped,
}

/// What became of a request to the holder.
#[derive(Debug)]
pub enum Outcome {
    /// The command ran through the holder with this exit code.
    Ran(i32),
    /// Nothing ran (no holder, or it could not reach the machine): connect
    /// directly. `absent` says no holder is listening.
    Unavailable { reason: String, absent: bool },
}

/// The streams of a command run through the holder.
pub struct Streams {
    pub stdin: Option<RawFd>,
    pub stdout: RawFd,
    pub stderr: RawFd,
}

/// Runs `command` (a login shell when `None`) on `machine` through the
/// project's holder. Errors only once the command may have started.
pub fn run(
    box_dir: &Path,
    machine: &str,
    command: Option<&str>,
    pty: Option<Pty>,
    streams: Streams,
) -> Result<Outcome, SshError> {
    let path = socket_path(box_dir);
    let unavailable = |reason: String, absent: bool| Ok(Outcome::Unavailable { reason, absent });
    if path.as_os_str().len() > MAX_SOCKET_PATH {
        return unavailable(
            format!("{} is too long for a socket", path.display()),
            false,
        );
    }
    let mut conn = match UnixStream::connect(&path) {
        Ok(c) => c,
        Err(e) => return unavailable(format!("no holder at {}: {e}", path.display()), true),
    };
    let interactive_pty = pty.is_some();
    let request = ToHolder::Run {
        machine: machine.to_string(),
        command: command.map(str::to_string),
        pty,
        stdin: streams.stdin.is_some(),
    };
    let mut fds: Vec<RawFd> = streams.stdin.into_iter().collect();
    fds.extend([streams.stdout, streams.stderr]);
    if let Err(e) = send(&conn, &request, &fds) {
        return unavailable(format!("cannot send to the holder: {e}"), false);
    }
    let mut replies = Replies::default();
    let mut started = false;
    loop {
        if interactive_pty && interactive::resized() {
            let (cols, rows) = interactive::window_size();
            let _ = send(&conn, &ToHolder::Resize { cols, rows }, &[]);
        }
        let wait = if interactive_pty { 100 } else { -1 };
        let reply = match replies.next(&mut conn, wait) {
            Ok(Some(r)) => r,
            Ok(None) => continue,
            Err(e) if !started => {
                return unavailable(format!("the holder closed the connection: {e}"), false)
            }
            Err(e) => return Err(SshError::io("connection to the holder")(e)),
        };
        match reply {
            FromHolder::Started => started = true,
            FromHolder::Exit { code } => return Ok(Outcome::Ran(code)),
            FromHolder::Unavailable { reason } | FromHolder::Refused { reason } if !started => {
                return unavailable(reason, false)
            }
            FromHolder::Failed { reason }
            | FromHolder::Unavailable { reason }
            | FromHolder::Refused { reason } => {
                return Err(SshError::io("session through the holder")(
                    std::io::Error::other(reason),
                ))
            }
            FromHolder::Stopped => {}
        }
    }
}

/// Asks the holder to drop its connections to `machine` (all when `None`)
/// and waits until it did; when it holds none it ends, and this returns
/// once the process is gone. Nothing to do without a holder.
pub fn stop(box_dir: &Path, machine: Option<&str>) -> std::io::Result<()> {
    let mut conn = match UnixStream::connect(socket_path(box_dir)) {
        Ok(c) => c,
        Err(_) => return Ok(()),
    };
    conn.set_read_timeout(Some(Duration::from_secs(30)))?;
    send(
        &conn,
        &ToHolder::Stop {
            machine: machine.map(str::to_string),
        },
        &[],
    )?;
    // The holder answers, and an ending holder keeps this connection open
    // until it exits: EOF means the process is gone.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)?;
    Ok(())
}

/// Where the holder finds a machine's current endpoint (its state): an
/// error text when the machine is not running.
pub type Lookup = dyn Fn(&str) -> Result<SshTarget, String> + Send + Sync;

/// Runs the holder of the project whose `.box` folder is `box_dir` until
/// it has been idle for `idle` or is stopped. Returns at once when another
/// holder serves the project. `warm` is a machine to connect to at once;
/// `on_connect` runs once on every new connection (its result is ignored).
pub fn serve(
    box_dir: &Path,
    idle: Duration,
    lookup: Box<Lookup>,
    warm: Option<String>,
    on_connect: Option<String>,
) -> std::io::Result<()> {
    let dir = box_dir.join("holder");
    std::fs::create_dir_all(&dir)?;
    let meta = std::fs::metadata(&dir)?;
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(std::io::Error::other(format!(
            "{} belongs to another user",
            dir.display()
        )));
    }
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    // One holder per project: the lock is held for the process's life.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join("lock"))?;
    // SAFETY: flock on an fd we own.
    if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        return Ok(());
    }
    let sock = socket_path(box_dir);
    let _ = std::fs::remove_file(&sock);
    let listener = UnixListener::bind(&sock)?;
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o600))?;
    let sock_ino = std::fs::metadata(&sock)?.ino();
    std::fs::write(pid_path(box_dir), format!("{}\n", std::process::id()))?;
    let shared = Arc::new(Shared {
        pools: Mutex::new(HashMap::new()),
        active: AtomicUsize::new(0),
        last_use: Mutex::new(Instant::now()),
        lookup,
        sock: sock.clone(),
        pid: pid_path(box_dir),
        uid: me,
        on_connect,
    });
    if let Some(machine) = warm {
        let shared = shared.clone();
        std::thread::spawn(move || {
            if let Ok(target) = (shared.lookup)(&machine) {
                if let Ok(session) = shared.connect(&target) {
                    shared.put_back(&machine, Held { target, session });
                }
            }
        });
    }
    listener.set_nonblocking(true)?;
    loop {
        match listener.accept() {
            Ok((conn, _)) => {
                let _ = conn.set_nonblocking(false);
                let shared = shared.clone();
                std::thread::spawn(move || shared.handle(conn));
                continue;
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
        let idle_for = shared
            .last_use
            .lock()
            .map(|t| t.elapsed())
            .unwrap_or_default();
        if shared.active.load(Ordering::SeqCst) == 0 && idle_for >= idle {
            shared.end();
        }
        // `box destroy` removed the project folder, or another holder took
        // over the path: this one serves nobody any more.
        if std::fs::metadata(&sock).ok().map(|m| m.ino()) != Some(sock_ino) {
            shared.pools.lock().map(|mut p| p.clear()).ok();
            std::process::exit(0);
        }
        wait_readable(listener.as_raw_fd(), 1000);
    }
}

/// A connection to one machine and the endpoint it was made for.
struct Held {
    target: SshTarget,
    session: Session,
}

struct Shared {
    /// Idle connections per machine (in use ones are out of the pool).
    pools: Mutex<HashMap<String, Vec<Held>>>,
    active: AtomicUsize,
    last_use: Mutex<Instant>,
    lookup: Box<Lookup>,
    sock: PathBuf,
    pid: PathBuf,
    uid: libc::uid_t,
    on_connect: Option<String>,
}

impl Shared {
    fn handle(&self, mut conn: UnixStream) {
        match peer_uid(&conn) {
            Ok(uid) if uid == self.uid => {}
            _ => {
                let reason = "this connection holder serves only its own user".to_string();
                let _ = reply(&mut conn, &FromHolder::Refused { reason });
                return;
            }
        }
        let (request, fds) = match receive(&conn) {
            Ok(r) => r,
            Err(e) => {
                let reason = format!("unreadable request: {e}");
                let _ = reply(&mut conn, &FromHolder::Unavailable { reason });
                return;
            }
        };
        match request {
            ToHolder::Run {
                machine,
                command,
                pty,
                stdin,
            } => {
                self.active.fetch_add(1, Ordering::SeqCst);
                self.run(&mut conn, &machine, command.as_deref(), pty, stdin, fds);
                if let Ok(mut t) = self.last_use.lock() {
                    *t = Instant::now();
                }
                self.active.fetch_sub(1, Ordering::SeqCst);
            }
            ToHolder::Stop { machine } => {
                let empty = match self.pools.lock() {
                    Ok(mut pools) => {
                        match &machine {
                            Some(m) => drop(pools.remove(m)),
                            None => pools.clear(),
                        }
                        pools.is_empty()
                    }
                    Err(_) => true,
                };
                let _ = reply(&mut conn, &FromHolder::Stopped);
                if machine.is_none() || (empty && self.active.load(Ordering::SeqCst) == 0) {
                    // `conn` stays open until the process is gone.
                    self.end();
                }
            }
            ToHolder::Resize { .. } => {}
        }
    }

    fn run(
        &self,
        conn: &mut UnixStream,
        machine: &str,
        command: Option<&str>,
        pty: Option<Pty>,
        stdin: bool,
        fds: Vec<OwnedFd>,
    ) {
        let mut fds = fds.into_iter();
        let input = if stdin { fds.next() } else { None };
        let (Some(out), Some(err)) = (fds.next(), fds.next()) else {
            let reason = "the request carried too few streams".to_string();
            let _ = reply(conn, &FromHolder::Unavailable { reason });
            return;
        };
        let target = match (self.lookup)(machine) {
            Ok(t) => t,
            Err(reason) => {
                let _ = reply(conn, &FromHolder::Unavailable { reason });
                return;
            }
        };
        let pty_spec = pty.as_ref().map(|p| (p.term.as_str(), (p.cols, p.rows)));
        let (held, ch) = match self.open(machine, &target, command, pty_spec) {
            Ok(x) => x,
            Err(e) => {
                let reason = chain(&e);
                let _ = reply(conn, &FromHolder::Unavailable { reason });
                return;
            }
        };
        if reply(conn, &FromHolder::Started).is_err() {
            return;
        }
        let mut out = std::fs::File::from(out);
        let mut err = std::fs::File::from(err);
        let mut sink = std::io::sink();
        let mut from_client = Vec::new();
        let client = conn.as_raw_fd();
        // The client's resizes, and its end: a client gone ends the command.
        let mut watch = |ch: &mut ssh2::Channel| -> Result<(), SshError> {
            while wait_readable(client, 0) {
                let mut buf = [0u8; 512];
                let n = crate::ssh::pump::read_fd(client, &mut buf)
                    .map_err(SshError::io("read from the client"))?;
                if n == 0 {
                    return Err(SshError::io("client")(std::io::Error::new(
                        ErrorKind::ConnectionAborted,
                        "the client went away",
                    )));
                }
                from_client.extend_from_slice(&buf[..n]);
                while let Some(end) = from_client.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = from_client.drain(..=end).collect();
                    if let Ok(ToHolder::Resize { cols, rows }) = serde_json::from_slice(&line) {
                        let _ = ch.request_pty_size(cols, rows, None, None);
                    }
                }
            }
            Ok(())
        };
        let tick = Tick {
            every: Duration::from_millis(100),
            call: &mut watch,
        };
        let stderr: &mut dyn Write = if pty.is_some() { &mut sink } else { &mut err };
        let result = held.session.drive(
            ch,
            input.as_ref().map(AsRawFd::as_raw_fd),
            &mut out,
            stderr,
            Some(tick),
        );
        // The client reads its pipes to their end: close our copies first.
        drop((out, err, input));
        match result {
            Ok(code) => {
                let _ = reply(conn, &FromHolder::Exit { code });
                self.put_back(machine, held);
            }
            Err(e) => {
                let reason = chain(&e);
                let _ = reply(conn, &FromHolder::Failed { reason });
            }
        }
    }

    /// A connection to `machine` with `command` started on it: a held one
    /// if it still works, else a new one (which checks the pinned host key).
    fn open(
        &self,
        machine: &str,
        target: &SshTarget,
        command: Option<&str>,
        pty: Option<(&str, (u32, u32))>,
    ) -> Result<(Held, ssh2::Channel), SshError> {
        loop {
            let pooled = self.pools.lock().ok().and_then(|mut pools| {
                let pool = pools.get_mut(machine)?;
                // A machine recreated or moved: its old connections go.
                pool.retain(|h| h.target == *target);
                pool.pop()
            });
            let Some(held) = pooled else { break };
            held.session.set_wait(Some(CALL_WAIT));
            match held.session.open(command, pty) {
                Ok(ch) => {
                    held.session.set_wait(None);
                    return Ok((held, ch));
                }
                // The machine rebooted or the connection died: drop it.
                Err(_) => continue,
            }
        }
        let session = self.connect(target)?;
        session.set_wait(Some(CALL_WAIT));
        let ch = session.open(command, pty)?;
        session.set_wait(None);
        Ok((
            Held {
                target: target.clone(),
                session,
            },
            ch,
        ))
    }

    fn connect(&self, target: &SshTarget) -> Result<Session, SshError> {
        let session = Session::connect(target, CONNECT_WAIT)?;
        if let Some(cmd) = &self.on_connect {
            session.set_wait(Some(CALL_WAIT));
            let _ = session.capture(cmd);
            session.set_wait(None);
        }
        Ok(session)
    }

    /// Keeps a connection for the next command, if the machine still has
    /// the endpoint it was made for (a halted machine's is dropped).
    fn put_back(&self, machine: &str, held: Held) {
        if (self.lookup)(machine).ok().as_ref() != Some(&held.target) {
            return;
        }
        if let Ok(mut pools) = self.pools.lock() {
            let pool = pools.entry(machine.to_string()).or_default();
            // One spare per machine is enough: commands rarely overlap.
            if pool.len() < 2 {
                pool.push(held);
            }
        }
    }

    /// Closes every connection, removes the socket and exits.
    fn end(&self) -> ! {
        let _ = std::fs::remove_file(&self.sock);
        let _ = std::fs::remove_file(&self.pid);
        if let Ok(mut pools) = self.pools.lock() {
            pools.clear();
        }
        std::process::exit(0)
    }
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn reply(conn: &mut UnixStream, msg: &FromHolder) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    conn.write_all(&line)
}

/// Reads the holder's answers, one JSON line each.
#[derive(Default)]
struct Replies {
    buf: Vec<u8>,
}

impl Replies {
    /// The next answer; `None` when `wait_ms` passed first (-1: no limit).
    fn next(&mut self, conn: &mut UnixStream, wait_ms: i32) -> std::io::Result<Option<FromHolder>> {
        loop {
            if let Some(end) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                return serde_json::from_slice(&line)
                    .map(Some)
                    .map_err(std::io::Error::other);
            }
            if !wait_readable(conn.as_raw_fd(), wait_ms) {
                return Ok(None);
            }
            let mut chunk = [0u8; 1024];
            match conn.read(&mut chunk) {
                Ok(0) => return Err(ErrorKind::UnexpectedEof.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }
}

/// True when `fd` has something to read (or hung up) within `ms`.
fn wait_readable(fd: RawFd, ms: i32) -> bool {
    let mut fds = [libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    }];
    // SAFETY: fds is a valid array of one pollfd.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 1, ms) };
    rc > 0 && fds[0].revents != 0
}

fn peer_uid(conn: &UnixStream) -> std::io::Result<libc::uid_t> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: cred is a ucred and len its size, as SO_PEERCRED expects.
    let rc = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(cred.uid)
}

const MAX_FDS: usize = 3;

/// Sends one message line, with `fds` attached (SCM_RIGHTS).
fn send(conn: &UnixStream, msg: &ToHolder, fds: &[RawFd]) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(msg).map_err(std::io::Error::other)?;
    line.push(b'\n');
    let mut iov = libc::iovec {
        iov_base: line.as_mut_ptr().cast(),
        iov_len: line.len(),
    };
    // u64s keep the control buffer aligned for cmsghdr.
    let mut control = [0u64; 8];
    // SAFETY: msghdr is plain data; the pointers set below outlive sendmsg,
    // and the cmsg macros stay within `control`, sized for MAX_FDS fds.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !fds.is_empty() {
            let bytes = std::mem::size_of_val(fds);
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(bytes as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(bytes as u32) as _;
            std::ptr::copy_nonoverlapping(fds.as_ptr().cast::<u8>(), libc::CMSG_DATA(cmsg), bytes);
        }
        let sent = libc::sendmsg(conn.as_raw_fd(), &msg, libc::MSG_NOSIGNAL);
        if sent < 0 {
            return Err(std::io::Error::last_os_error());
        }
        if (sent as usize) < line.len() {
            let mut c = conn;
            c.write_all(&line[sent as usize..])?;
        }
    }
    Ok(())
}

/// Receives one request line and the descriptors sent with it.
fn receive(conn: &UnixStream) -> std::io::Result<(ToHolder, Vec<OwnedFd>)> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    let mut buf = [0u8; 4096];
    while !line.contains(&b'\n') {
        if line.len() > 1 << 20 {
            return Err(std::io::Error::other("request too long"));
        }
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut control = [0u64; 8];
        // SAFETY: as in `send`; the kernel writes at most msg_controllen
        // bytes of control data, and each fd it delivers is new and ours.
        unsafe {
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = std::mem::size_of_val(&control) as _;
            let n = libc::recvmsg(conn.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC);
            if n < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg);
                    let count = ((*cmsg).cmsg_len as usize - (data as usize - cmsg as usize))
                        / std::mem::size_of::<RawFd>();
                    for i in 0..count {
                        let fd = std::ptr::read_unaligned(data.cast::<RawFd>().add(i));
                        fds.push(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
            if n == 0 {
                return Err(ErrorKind::UnexpectedEof.into());
            }
            line.extend_from_slice(&buf[..n as usize]);
        }
    }
    if fds.len() > MAX_FDS {
        return Err(std::io::Error::other("too many descriptors"));
    }
    let end = line.iter().position(|b| *b == b'\n').unwrap_or(line.len());
    let request = serde_json::from_slice(&line[..end]).map_err(std::io::Error::other)?;
    Ok((request, fds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_descriptors_arrive_together() {
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let req = ToHolder::Run {
            machine: "web".into(),
            command: Some("true".into()),
            pty: None,
            stdin: false,
        };
        send(&a, &req, &[file.as_raw_fd(), file.as_raw_fd()]).unwrap();
        let (got, fds) = receive(&b).unwrap();
        assert!(matches!(got, ToHolder::Run { machine, .. } if machine == "web"));
        assert_eq!(fds.len(), 2);
        let mut f = std::fs::File::from(fds.into_iter().next().unwrap());
        f.write_all(b"through the passed descriptor").unwrap();
    }

    #[test]
    fn the_peer_uid_is_this_process_s() {
        let (a, _b) = UnixStream::pair().unwrap();
        // SAFETY: geteuid cannot fail.
        assert_eq!(peer_uid(&a).unwrap(), unsafe { libc::geteuid() });
    }
}
