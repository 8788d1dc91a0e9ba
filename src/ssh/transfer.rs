//! Copies of files and folders over SFTP (`box upload`, `box download`, the
//! `file` and `script` provisioners). Like `scp -r`: a destination that is
//! an existing folder receives the source under its own name; symbolic
//! links are followed.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use ssh2::{FileStat, OpenFlags, OpenType, Sftp};

use super::{Session, SshError};

const BUF: usize = 256 * 1024;

/// What a copy moved.
#[derive(Debug, Default, Clone, Copy)]
pub struct Copied {
    pub files: u64,
    pub bytes: u64,
}

fn remote_err<'a>(op: &'static str, path: &'a str) -> impl FnOnce(ssh2::Error) -> SshError + 'a {
    move |source| SshError::Remote {
        op,
        path: path.to_string(),
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

fn join_remote(dir: &str, name: &str) -> String {
    if dir.ends_with('/') {
        format!("{dir}{name}")
    } else {
        format!("{dir}/{name}")
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "upload".to_string())
}

/// Uploads a file or folder; returns what was copied.
pub fn upload(session: &Session, local: &Path, remote: &str) -> Result<Copied, SshError> {
    let sftp = session.sftp()?;
    let meta = fs::metadata(local).map_err(local_err("read", local))?;
    let dest = match sftp.stat(Path::new(remote)) {
        Ok(st) if st.is_dir() => join_remote(remote, &file_name(local)),
        _ => remote.to_string(),
    };
    let mut copied = Copied::default();
    if meta.is_dir() {
        upload_dir(&sftp, local, &dest, &mut copied)?;
    } else {
        upload_file(&sftp, local, &dest, &meta, &mut copied)?;
    }
    Ok(copied)
}

fn upload_dir(
    sftp: &Sftp,
    local: &Path,
    remote: &str,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mode = mode_of(&fs::metadata(local).map_err(local_err("read", local))?);
    match sftp.stat(Path::new(remote)) {
        Ok(st) if st.is_dir() => {}
        _ => sftp
            .mkdir(Path::new(remote), mode as i32)
            .map_err(remote_err("create the folder", remote))?,
    }
    let mut entries: Vec<_> = fs::read_dir(local)
        .map_err(local_err("read the folder", local))?
        .collect::<Result<_, _>>()
        .map_err(local_err("read the folder", local))?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let dest = join_remote(remote, &entry.file_name().to_string_lossy());
        let meta = fs::metadata(&path).map_err(local_err("read", &path))?;
        if meta.is_dir() {
            upload_dir(sftp, &path, &dest, copied)?;
        } else if meta.is_file() {
            upload_file(sftp, &path, &dest, &meta, copied)?;
        }
    }
    Ok(())
}

fn upload_file(
    sftp: &Sftp,
    local: &Path,
    remote: &str,
    meta: &fs::Metadata,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mut src = fs::File::open(local).map_err(local_err("open", local))?;
    let mode = mode_of(meta);
    let mut dst = sftp
        .open_mode(
            Path::new(remote),
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
    let st = sftp
        .stat(Path::new(remote))
        .map_err(remote_err("read", remote))?;
    let name = Path::new(remote)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "download".to_string());
    let dest: PathBuf = if local.is_dir() {
        local.join(name)
    } else {
        local.to_path_buf()
    };
    let mut copied = Copied::default();
    if st.is_dir() {
        download_dir(&sftp, remote, &dest, &mut copied)?;
    } else {
        download_file(&sftp, remote, &dest, &st, &mut copied)?;
    }
    Ok(copied)
}

fn download_dir(
    sftp: &Sftp,
    remote: &str,
    local: &Path,
    copied: &mut Copied,
) -> Result<(), SshError> {
    if !local.is_dir() {
        fs::create_dir_all(local).map_err(local_err("create the folder", local))?;
    }
    let mut entries = sftp
        .readdir(Path::new(remote))
        .map_err(remote_err("list", remote))?;
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    for (path, _) in entries {
        let Some(name) = path.file_name() else {
            continue;
        };
        let child = join_remote(remote, &name.to_string_lossy());
        let dest = local.join(name);
        // readdir reports links unresolved; stat follows them, like scp.
        let Ok(st) = sftp.stat(Path::new(&child)) else {
            continue;
        };
        if st.is_dir() {
            download_dir(sftp, &child, &dest, copied)?;
        } else if st.is_file() {
            download_file(sftp, &child, &dest, &st, copied)?;
        }
    }
    Ok(())
}

fn download_file(
    sftp: &Sftp,
    remote: &str,
    local: &Path,
    st: &FileStat,
    copied: &mut Copied,
) -> Result<(), SshError> {
    let mut src = sftp
        .open(Path::new(remote))
        .map_err(remote_err("open", remote))?;
    let mode = st.perm.unwrap_or(0o644) & 0o7777;
    let mut dst = {
        use std::os::unix::fs::OpenOptionsExt;
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(local)
            .map_err(local_err("create", local))?
    };
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
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = fs::set_permissions(local, fs::Permissions::from_mode(mode));
    }
    if let Some(mtime) = st.mtime {
        let t = filetime::FileTime::from_unix_time(mtime as i64, 0);
        let _ = filetime::set_file_mtime(local, t);
    }
    copied.files += 1;
    Ok(())
}

fn mode_of(meta: &fs::Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
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
        .map_err(remote_err("create", remote))?;
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
    .map_err(remote_err("set the mode of", remote))?;
    Ok(())
}
