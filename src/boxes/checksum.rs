//! Checksums of box files: parsed from `sha256:HEX` / `sha512:HEX` and
//! computed while streaming, so a multi-GB image is read once.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256, Sha512};

use super::BoxError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

/// An expected checksum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    pub algorithm: Algorithm,
    /// Lower-case hex.
    pub hex: String,
}

impl Checksum {
    pub fn parse(text: &str) -> Result<Checksum, BoxError> {
        let bad = || BoxError::BadChecksum {
            text: text.to_string(),
        };
        let (alg, hex) = text.split_once(':').ok_or_else(bad)?;
        let (algorithm, len) = match alg.to_ascii_lowercase().as_str() {
            "sha256" => (Algorithm::Sha256, 64),
            "sha512" => (Algorithm::Sha512, 128),
            _ => return Err(bad()),
        };
        let hex = hex.trim().to_ascii_lowercase();
        if hex.len() != len || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Checksum { algorithm, hex })
    }

    /// Checks a file; `what` names it in the error.
    pub fn verify_file(&self, path: &Path, what: &str) -> Result<(), BoxError> {
        let actual = hash_file(path, self.algorithm)?;
        if actual == self.hex {
            Ok(())
        } else {
            Err(BoxError::ChecksumMismatch {
                what: what.to_string(),
                expected: self.to_string(),
                actual: format!("{}:{actual}", self.algorithm),
            })
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        })
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm, self.hex)
    }
}

/// The lower-case hex digest of a file.
pub fn hash_file(path: &Path, algorithm: Algorithm) -> Result<String, BoxError> {
    let read_err = |source| BoxError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let mut buf = vec![0u8; 1 << 20];
    match algorithm {
        Algorithm::Sha256 => {
            let mut h = Sha256::new();
            loop {
                let n = file.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(hex(&h.finalize()))
        }
        Algorithm::Sha512 => {
            let mut h = Sha512::new();
            loop {
                let n = file.read(&mut buf).map_err(read_err)?;
                if n == 0 {
                    break;
                }
                h.update(&buf[..n]);
            }
            Ok(hex(&h.finalize()))
        }
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_checksums() {
        let c = Checksum::parse(&format!("SHA256:{}", "AB".repeat(32))).unwrap();
        assert_eq!(c.hex, "ab".repeat(32));
        assert!(Checksum::parse("md5:abc").is_err());
        assert!(Checksum::parse("sha256:abc").is_err());
        assert!(Checksum::parse(&"a".repeat(64)).is_err());
    }

    #[test]
    fn hashes_a_file() {
        let tmp = tempfile::tempdir().unwrap();
        let p = tmp.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(
            hash_file(&p, Algorithm::Sha256).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
