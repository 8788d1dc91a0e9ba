//! SSH keys box generates: the project's login key and each machine's host key.
//! Both are ed25519; the login key is RSA only where a cloud refuses to
//! register ed25519 keys (older CloudStack versions).
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
    #[error("cannot generate an SSH key")]
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

/// The kind of a login key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    #[default]
    Ed25519,
    Rsa,
}

impl KeyKind {
    /// The private key's file name, as OpenSSH names it.
    fn file_name(self) -> &'static str {
        match self {
            KeyKind::Ed25519 => "id_ed25519",
            KeyKind::Rsa => "id_rsa",
        }
    }
}

/// RSA keys box makes: 3072 bits, as `ssh-keygen` makes by default.
const RSA_BITS: usize = 3072;

pub fn generate(comment: &str) -> Result<GeneratedKey, KeyError> {
    generate_kind(KeyKind::Ed25519, comment)
}

pub fn generate_kind(kind: KeyKind, comment: &str) -> Result<GeneratedKey, KeyError> {
    let mut key = match kind {
        KeyKind::Ed25519 => PrivateKey::random(&mut rand::rngs::OsRng, Algorithm::Ed25519),
        KeyKind::Rsa => ssh_key::private::RsaKeypair::random(&mut rand::rngs::OsRng, RSA_BITS)
            .map(PrivateKey::from),
    }
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
    ensure_kind(path, KeyKind::Ed25519, comment)
}

fn ensure_kind(path: &Path, kind: KeyKind, comment: &str) -> Result<KeyPair, KeyError> {
    if path.exists() {
        return load(path);
    }
    let key = generate_kind(kind, comment)?;
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
    project_key_of(state_dir, project, KeyKind::Ed25519)
}

/// The project's login key of `kind`: `.box/keys/id_ed25519` or `id_rsa`.
pub fn project_key_of(state_dir: &Path, project: &str, kind: KeyKind) -> Result<KeyPair, KeyError> {
    ensure_kind(
        &state_dir.join("keys").join(kind.file_name()),
        kind,
        &format!("box:{project}"),
    )
}

/// The OpenSSH public key of a private key file the user gives
/// (`identity_file`): `<path>.pub` when it is there, else the public half
/// an OpenSSH private key carries unencrypted, even when a passphrase
/// protects the private half.
pub fn public_of(path: &Path) -> Result<String, KeyError> {
    let pub_path = PathBuf::from(format!("{}.pub", path.display()));
    if let Ok(text) = std::fs::read_to_string(&pub_path) {
        if let Ok(key) = ssh_key::PublicKey::from_openssh(text.trim()) {
            return key.to_openssh().map_err(|source| KeyError::Parse {
                path: pub_path,
                source,
            });
        }
    }
    load(path).map(|k| k.public)
}

/// CloudStack's fingerprint of an OpenSSH public key line: MD5 of the key
/// blob, colon-separated hex (`ssh-keygen -l -E md5` without `MD5:`).
pub fn md5_fingerprint(public: &str) -> Option<String> {
    use md5::{Digest, Md5};
    let blob = ssh_key::PublicKey::from_openssh(public.trim())
        .ok()?
        .to_bytes()
        .ok()?;
    Some(
        Md5::digest(blob)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(":"),
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
    fn an_rsa_project_key_lives_beside_the_ed25519_one_and_is_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let ed = project_key(tmp.path(), "p").unwrap();
        let rsa = project_key_of(tmp.path(), "p", KeyKind::Rsa).unwrap();
        assert!(rsa.public.starts_with("ssh-rsa "), "{}", rsa.public);
        assert!(rsa.private_path.ends_with("keys/id_rsa"));
        assert!(!crate::fsutil::readable_by_others(&rsa.private_path));
        let again = project_key_of(tmp.path(), "p", KeyKind::Rsa).unwrap();
        assert_eq!(rsa.public, again.public);
        assert_eq!(project_key(tmp.path(), "p").unwrap().public, ed.public);
    }

    #[test]
    fn the_public_key_of_an_identity_file_comes_from_its_pub_file_or_itself() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("team");
        let made = ensure(&path, "team").unwrap();
        assert_eq!(public_of(&path).unwrap(), made.public);
        std::fs::remove_file(tmp.path().join("team.pub")).unwrap();
        assert_eq!(
            public_key_without_comment(&public_of(&path).unwrap()),
            public_key_without_comment(&made.public)
        );
    }

    #[test]
    fn md5_fingerprints_are_cloudstacks() {
        // `ssh-keygen -l -E md5` prints MD5:d5:70:1e:55:c4:8f:bf:9a:03:73:f4:a7:83:7b:12:c6.
        let key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJO1EenNbQ84XdXET9BMbAjMAc/lNQ2dZlSHUVTOuEa/ conformance";
        assert_eq!(
            md5_fingerprint(key).as_deref(),
            Some("d5:70:1e:55:c4:8f:bf:9a:03:73:f4:a7:83:7b:12:c6")
        );
        assert_eq!(md5_fingerprint("not a key"), None);
    }

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
