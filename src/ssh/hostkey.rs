//! Pinned host keys: parsing the OpenSSH line box stored and comparing it
//! with what the server presents, so box never trusts on first use.

use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::SshError;

/// A host public key: its algorithm name and its wire-format blob.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    pub algorithm: String,
    pub blob: Vec<u8>,
}

impl HostKey {
    /// Parses `ssh-ed25519 AAAA... [comment]`.
    pub fn parse(line: &str) -> Result<HostKey, SshError> {
        let mut parts = line.split_whitespace();
        let (Some(algorithm), Some(b64)) = (parts.next(), parts.next()) else {
            return Err(SshError::BadPinnedKey(line.to_string()));
        };
        let blob = base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|_| SshError::BadPinnedKey(line.to_string()))?;
        // The blob starts with its own algorithm name; a mismatch means a corrupt line.
        if blob_algorithm(&blob).as_deref() != Some(algorithm) {
            return Err(SshError::BadPinnedKey(line.to_string()));
        }
        Ok(HostKey {
            algorithm: algorithm.to_string(),
            blob,
        })
    }

    /// A key as presented by a server (the blob alone).
    pub fn from_blob(blob: &[u8]) -> HostKey {
        HostKey {
            algorithm: blob_algorithm(blob).unwrap_or_else(|| "unknown".to_string()),
            blob: blob.to_vec(),
        }
    }

    pub fn fingerprint(&self) -> String {
        fingerprint(&self.blob)
    }

    /// The OpenSSH line, without a comment.
    pub fn to_openssh(&self) -> String {
        format!(
            "{} {}",
            self.algorithm,
            base64::engine::general_purpose::STANDARD.encode(&self.blob)
        )
    }

    /// Host key algorithms to offer so the server presents this key and
    /// not another of its keys.
    pub(crate) fn method_pref(&self) -> String {
        match self.algorithm.as_str() {
            "ssh-rsa" => "rsa-sha2-512,rsa-sha2-256,ssh-rsa".to_string(),
            other => other.to_string(),
        }
    }
}

/// `SHA256:...` as printed by `ssh-keygen -lf`.
pub fn fingerprint(blob: &[u8]) -> String {
    let digest = Sha256::digest(blob);
    format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
    )
}

fn blob_algorithm(blob: &[u8]) -> Option<String> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?) as usize;
    let name = blob.get(4..4 + len)?;
    String::from_utf8(name.to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_key_line_and_prints_the_openssh_fingerprint() {
        let key = crate::keys::generate("t").unwrap();
        let parsed = HostKey::parse(&key.public).unwrap();
        assert_eq!(parsed.algorithm, "ssh-ed25519");
        assert_eq!(
            parsed.to_openssh(),
            crate::keys::public_key_without_comment(&key.public)
        );
        assert!(parsed.fingerprint().starts_with("SHA256:"));
        assert_eq!(parsed.fingerprint().len(), 7 + 43);
    }

    #[test]
    fn refuses_a_line_whose_blob_disagrees_with_its_type() {
        let key = crate::keys::generate("t").unwrap();
        let b64 = key.public.split_whitespace().nth(1).unwrap();
        assert!(HostKey::parse(&format!("ssh-rsa {b64}")).is_err());
        assert!(HostKey::parse("garbage").is_err());
    }
}
