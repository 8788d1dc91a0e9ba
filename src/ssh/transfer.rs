//! Copies of files and folders over SFTP (`box upload`, `box download`, the
//! `file` and `script` provisioners). Like `scp -r`, a destination that is
//! an existing folder receives the source under its own name. Unlike it,
//! symbolic links inside a copied folder are copied as links and never
//! followed (as sync does): a link loop cannot make a copy endless, and a
//! link cannot pull in files from outside the folder. A link named on the
//! command line is followed, since the user chose it.
//!
//! Downloaded files get what OpenSSH's `sftp` gives them: the permission
//! bits only (never setuid, setgid or sticky), less the process umask.

use std::ffi::OsStr;
use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use ssh2::{FileStat, OpenFlags, OpenType, Sftp};

use super::{Session, SshError};

const BUF: usize = 256 * 1024;

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
}

fn remote_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(ssh2::Error) -> SshError + 'a {
    move |source| SshError::Remote {
        op,
        path: path.display().to_string(),
        source,
    }
}

fn local_err<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> SshError + 'a {
    move |source| SshError::Local {
        op,
        path: path.to_path_buf(),
        source,
    }
}

fn file_name(path: &Path, default: &str) -> PathBuf {
    PathBuf::from(path.file_name().unwrap_or(OsStr::new(default)))
}

/// Uploads a file or folder; returns what was copied.
pub fn upload(session: &Session, local: &Path, remote: &str) -> Result<Copied, SshError> {
    let sftp = session.sftp()?;
    let meta = fs::metadata(local).map_err(local_err("read", local))?;
    let remote = Path::new(remote);
    let dest = match sftp.stat(remote) {
        Ok(st) if st.is_dir() => remote.join(file_name(local, "upload")),
        _ => remote.to_path_buf(),
    };
    let mut copied = Copied::default();
    if meta.is_dir() {
        upload_dir(&sftp, local, &dest, &meta, &mut copied)?;
    } else {
        upload_file(&sftp, local, &dest, &meta, &mut copied)?;
    }
    Ok(copied)
}

fn upload_dir(
    sftp: &Sftp,
    local: &Path,
    remote: &Path,
    meta: &fs::Metadata,
    copied: &mut Copied,
) -> Result<(), SshError> {
    match sftp.stat(remote) {
        Ok(st) if st.is_dir() => {}
        _ => sftp
            .mkdir(remote, mode_of(meta) as i32)
            .map_err(remote_err("create the folder", remote))?,
    }
    let mut entries: Vec<_> = fs::read_dir(local)
        .map_err(local_err("read the folder", local))?
        .collect::<Result<_, _>>()
        .map_err(local_err("read the folder", local))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let dest = remote.join(entry.file_name());
        let meta = fs::symlink_metadata(&path).map_err(local_err("read", &path))?;
        if meta.is_symlink() {
            let target = fs::read_link(&path).map_err(local_err("read the link", &path))?;
            upload_link(sftp, &target, &dest)?;
        } else if meta.is_dir() {
            upload_dir(sftp, &path, &dest, &meta, copied)?;
        } else if meta.is_file() {
            upload_file(sftp, &path, &dest, &meta, copied)?;
        }
    }
    Ok(())
}

fn upload_link(sftp: &Sftp, target: &Path, remote: &Path) -> Result<(), SshError> {
    // A link replaces a file or link of the same name, as `tar -x` does.
    if sftp.lstat(remote).is_ok_and(|st| !st.is_dir()) {
        sftp.unlink(remote).map_err(remote_err("replace", remote))?;
    }
    // OpenSSH's sftp-server takes the two paths of SYMLINK in the reverse
    // of the draft's order: the target first.
    sftp.symlink(target, remote)
        .map_err(remote_err("create the link", remote))
}

fn upload_file(
    sftp: &Sftp,
    local: &Path,
    remote: &Path,
    meta: &fs::Metadata,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mut src = fs::File::open(local).map_err(local_err("open", local))?;
    let mode = mode_of(meta);
    let mut dst = sftp
        .open_mode(
            remote,
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
            mode as i32,
            OpenType::File,
        )
        .map_err(remote_err("create", remote))?;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = src.read(&mut buf).map_err(local_err("read", local))?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n]).map_err(|e| SshError::Io {
            what: "SFTP write",
            source: e,
        })?;
        copied.bytes += n as u64;
    }
    // The mode of an existing file is not changed by open; set it explicitly.
    let mtime = mtime_of(meta);
    dst.setstat(FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode),
        atime: Some(mtime),
        mtime: Some(mtime),
    })
    .map_err(remote_err("set the mode of", remote))?;
    copied.files += 1;
    Ok(())
}

/// Downloads a file or folder; returns what was copied.
pub fn download(session: &Session, remote: &str, local: &Path) -> Result<Copied, SshError> {
    let sftp = session.sftp()?;
    let remote = Path::new(remote);
    let st = sftp.stat(remote).map_err(remote_err("read", remote))?;
    let dest: PathBuf = if local.is_dir() {
        local.join(file_name(remote, "download"))
    } else {
        local.to_path_buf()
    };
    let mut copied = Copied::default();
    if st.is_dir() {
        if !dest.is_dir() {
            fs::create_dir_all(&dest).map_err(local_err("create the folder", &dest))?;
        }
        download_dir(&sftp, remote, &dest, &mut copied)?;
    } else {
        download_file(&sftp, remote, &dest, &st, true, &mut copied)?;
    }
    Ok(copied)
}

/// Copies the content of the remote folder into the existing local one.
/// Everything below `local` is created by this copy: a local link found in
/// the way is replaced, never written through (the machine chooses names
/// and kinds, and could otherwise aim a write outside the folder).
fn download_dir(
    sftp: &Sftp,
    remote: &Path,
    local: &Path,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mut entries = list(sftp, remote)?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, st) in entries {
        let child = remote.join(&name);
        let dest = local.join(&name);
        // The listing's attributes are the entry's own (lstat): a link is
        // seen as a link, and copied as one.
        if st.file_type().is_symlink() {
            let target = sftp
                .readlink(&child)
                .map_err(remote_err("read the link", &child))?;
            clear_for(&dest, false)?;
            std::os::unix::fs::symlink(&target, &dest)
                .map_err(local_err("create the link", &dest))?;
        } else if st.is_dir() {
            clear_for(&dest, true)?;
            if !dest.is_dir() {
                fs::create_dir(&dest).map_err(local_err("create the folder", &dest))?;
            }
            download_dir(sftp, &child, &dest, copied)?;
        } else if st.is_file() {
            clear_for(&dest, false)?;
            download_file(sftp, &child, &dest, &st, false, copied)?;
        }
    }
    Ok(())
}

/// The entries of a remote folder with their attributes. A name that is
/// not a single plain component (`..`, `a/b`) is an error: a real server
/// never sends one.
fn list(sftp: &Sftp, remote: &Path) -> Result<Vec<(PathBuf, FileStat)>, SshError> {
    let mut dir = sftp.opendir(remote).map_err(remote_err("list", remote))?;
    let mut entries = Vec::new();
    loop {
        match dir.readdir() {
            Ok((name, st)) => {
                if name == Path::new(".") || name == Path::new("..") {
                    continue;
                }
                let mut parts = name.components();
                let plain = matches!(parts.next(), Some(Component::Normal(n)) if n == name.as_os_str())
                    && parts.next().is_none();
                if !plain {
                    return Err(SshError::Remote {
                        op: "list",
                        path: remote.display().to_string(),
                        source: ssh2::Error::new(
                            ssh2::ErrorCode::Session(LIBSSH2_ERROR_SFTP_PROTOCOL),
                            "the machine sent an invalid file name",
                        ),
                    });
                }
                entries.push((name, st));
            }
            Err(e) if e.code() == ssh2::ErrorCode::Session(LIBSSH2_ERROR_FILE) => break,
            Err(e) => return Err(remote_err("list", remote)(e)),
        }
    }
    Ok(entries)
}

/// libssh2's codes for "end of the listing" and "bad SFTP data".
const LIBSSH2_ERROR_FILE: i32 = -16;
const LIBSSH2_ERROR_SFTP_PROTOCOL: i32 = -31;

/// Makes way for a downloaded entry: a link or file in its place goes (a
/// folder stays, and receives a folder or refuses a file).
fn clear_for(dest: &Path, want_dir: bool) -> Result<(), SshError> {
    match fs::symlink_metadata(dest) {
        Ok(m) if m.is_symlink() || (want_dir && !m.is_dir()) || (!want_dir && m.is_file()) => {
            fs::remove_file(dest).map_err(local_err("replace", dest))
        }
        _ => Ok(()),
    }
}

fn download_file(
    sftp: &Sftp,
    remote: &Path,
    local: &Path,
    st: &FileStat,
    follow_local_link: bool,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mut src = sftp.open(remote).map_err(remote_err("open", remote))?;
    // As OpenSSH's sftp: the permission bits, never setuid, setgid or
    // sticky, less the umask.
    let mode = st.perm.unwrap_or(0o644) & 0o777 & !umask();
    let mut open = fs::OpenOptions::new();
    open.write(true).create(true).truncate(true).mode(mode);
    if !follow_local_link {
        open.custom_flags(libc::O_NOFOLLOW);
    }
    let mut dst = open.open(local).map_err(local_err("create", local))?;
    let mut buf = vec![0u8; BUF];
    loop {
        let n = src.read(&mut buf).map_err(|e| SshError::Io {
            what: "SFTP read",
            source: e,
        })?;
        if n == 0 {
            break;
        }
        dst.write_all(&buf[..n])
            .map_err(local_err("write", local))?;
        copied.bytes += n as u64;
    }
    // An existing file keeps its old mode through open; set it on the open
    // file, not by path (the path could be swapped meanwhile).
    dst.set_permissions(fs::Permissions::from_mode(mode))
        .map_err(local_err("set the mode of", local))?;
    if let Some(mtime) = st.mtime {
        let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
        let _ = filetime::set_file_handle_times(&dst, None, Some(t));
    }
    copied.files += 1;
    Ok(())
}

/// The process umask, read once. Linux reports it in /proc without
/// changing it; elsewhere it is set and put back at once.
fn umask() -> u32 {
    static UMASK: OnceLock<u32> = OnceLock::new();
    *UMASK.get_or_init(|| {
        let from_proc = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Umask:"))
                .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        });
        from_proc.unwrap_or_else(|| {
            // SAFETY: umask only swaps the process's mask; it cannot fail.
            let old = unsafe { libc::umask(0o077) };
            unsafe { libc::umask(old) };
            old as u32
        })
    })
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    meta.permissions().mode() & 0o7777
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().max(0) as u64
}

/// Writes `bytes` to a new remote file with `mode` (scripts the
/// provisioners upload).
pub fn write_file(
    session: &Session,
    remote: &str,
    bytes: &[u8],
    mode: u32,
) -> Result<(), SshError> {
    let sftp = session.sftp()?;
    let mut f = sftp
        .open_mode(
            Path::new(remote),
            OpenFlags::WRITE | OpenFlags::CREATE | OpenFlags::TRUNCATE,
            mode as i32,
            OpenType::File,
        )
        .map_err(remote_err("create", Path::new(remote)))?;
    f.write_all(bytes).map_err(|e| SshError::Io {
        what: "SFTP write",
        source: e,
    })?;
    f.setstat(FileStat {
        size: None,
        uid: None,
        gid: None,
        perm: Some(mode),
        atime: None,
        mtime: None,
    })
    .map_err(remote_err("set the mode of", Path::new(remote)))?;
    Ok(())
}
