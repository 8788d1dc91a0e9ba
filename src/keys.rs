//! SSH keys box generates: the project's login key and each machine's host key.
//!
//! Host keys are generated here, before the machine exists, and handed to
//! the guest through cloud-init; so box knows the key before the first
//! connection and pins it, and never has to trust on first use.

use std::path::{Path, PathBuf};

use ssh_key::{Algorithm, LineEnding, PrivateKey};

use crate::fsutil::write_atomic;
use secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot generate an ed25519 key")]
    Generate(#[source] ssh_key::Error),
    #[error("cannot write the key {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read the key {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the key {path} is not a valid OpenSSH private key")]
    Parse {
        path: PathBuf,
        #[source]
        source: ssh_key::Error,
    },
}

/// A key pair on disk: the private half in a 0600 file, the public half in memory.
#[derive(Debug, Clone)]
pub struct KeyPair {
    pub private_path: PathBuf,
    /// OpenSSH public key line, e.g. `ssh-ed25519 AAAA... box`.
    pub public: String,
}

/// A freshly generated key whose private half must go to the guest.
#[derive(Debug, Clone)]
pub struct GeneratedKey {
    pub private_openssh: Secret,
    pub public: String,
}

pub fn generate(comment: &str) -> Result<GeneratedKey, KeyError> {
    let mut key = PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519)
        .map_err(KeyError::Generate)?;
    key.set_comment(comment);
    let private = key.to_openssh(LineEnding::LF).map_err(KeyError::Generate)?;
    let public = key.public_key().to_openssh().map_err(KeyError::Generate)?;
    Ok(GeneratedKey {
        private_openssh: Secret::new(private.as_str()),
        public,
    })
}

/// Loads the key pair at `path`, creating it (mode 0600) if missing.
pub fn ensure(path: &Path, comment: &str) -> Result<KeyPair, KeyError> {
    if path.exists() {
        return load(path);
    }
    let key = generate(comment)?;
    write_atomic(path, key.private_openssh.expose().as_bytes(), 0o600).map_err(|source| {
        KeyError::Write {
            path: path.to_path_buf(),
            source,
        }
    })?;
    let pub_path = path.with_extension("pub");
    write_atomic(&pub_path, format!("{}\n", key.public).as_bytes(), 0o644).map_err(|source| {
        KeyError::Write {
            path: pub_path,
            source,
        }
    })?;
    Ok(KeyPair {
        private_path: path.to_path_buf(),
        public: key.public,
    })
}

pub fn load(path: &Path) -> Result<KeyPair, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let key = PrivateKey::from_openssh(&text).map_err(|source| KeyError::Parse {
        path: path.to_path_buf(),
        source,
    })?;
    let public = key
        .public_key()
        .to_openssh()
        .map_err(|source| KeyError::Parse {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(KeyPair {
        private_path: path.to_path_buf(),
        public,
    })
}

/// The project's login key, `.box/keys/id_ed25519`.
pub fn project_key(state_dir: &Path, project: &str) -> Result<KeyPair, KeyError> {
    ensure(
        &state_dir.join("keys").join("id_ed25519"),
        &format!("box:{project}"),
    )
}

/// `ssh-ed25519 AAAA... comment` without the comment, for comparisons.
pub fn public_key_without_comment(line: &str) -> String {
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ensure_creates_a_private_key_readable_only_by_its_owner() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("keys/id_ed25519");
        let a = ensure(&path, "t").unwrap();
        assert!(a.public.starts_with("ssh-ed25519 "));
        assert!(!crate::fsutil::readable_by_others(&path));
        let b = ensure(&path, "t").unwrap();
        assert_eq!(a.public, b.public);
    }
}
