//! Request authentication, step for step as `ApiServer.verifyRequest` does it.
//!
//! The string to sign comes from the `cloudstack` crate, the same code the
//! client signs with, which is itself pinned to the published vectors.

use std::fmt;

use cloudstack::signing;

use crate::clock;

/// The one API user of the simulated cloud.
pub struct Credentials {
    pub api_key: String,
    secret_key: String,
}

impl Credentials {
    pub fn new(api_key: String, secret_key: String) -> Self {
        Credentials {
            api_key,
            secret_key,
        }
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("api_key", &self.api_key)
            .field("secret_key", &"<redacted>")
            .finish()
    }
}

/// Why a request was refused; all of them answer the same 401, the reason
/// only goes to the simulator's own log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    MissingSignatureOrKey,
    MissingExpires,
    BadExpires,
    Expired,
    UnknownKey,
    BadSignature,
}

/// Checks the signature over every parameter as sent (query and form alike).
/// `known_command` runs between the key lookup and the signature check, where
/// the server checks that the command exists, so an unknown command with a
/// valid key answers 432 whatever the signature.
pub fn verify(
    creds: &Credentials,
    pairs: &[(String, String)],
    now_secs: i64,
    known_command: impl FnOnce() -> Result<(), crate::error::ApiError>,
) -> Result<Result<(), Refusal>, crate::error::ApiError> {
    // The servlet keeps the first value of a repeated name.
    let mut seen = std::collections::HashSet::new();
    let mut unsigned: Vec<(&str, &str)> = Vec::with_capacity(pairs.len());
    let (mut signature, mut api_key, mut version, mut expires) = (None, None, None, None);
    for (name, value) in pairs {
        if !seen.insert(name.as_str()) {
            continue;
        }
        if name.eq_ignore_ascii_case("signature") {
            signature = Some(value.as_str());
            continue;
        }
        if name.eq_ignore_ascii_case("apikey") {
            api_key = Some(value.as_str());
        } else if name.eq_ignore_ascii_case("signatureversion") {
            version = Some(value.as_str());
        } else if name.eq_ignore_ascii_case("expires") {
            expires = Some(value.as_str());
        }
        unsigned.push((name.as_str(), value.as_str()));
    }
    let (Some(signature), Some(api_key)) = (signature, api_key) else {
        return Ok(Err(Refusal::MissingSignatureOrKey));
    };
    if version == Some("3") {
        let Some(expires) = expires else {
            return Ok(Err(Refusal::MissingExpires));
        };
        match clock::parse_expires(expires) {
            None => return Ok(Err(Refusal::BadExpires)),
            Some(t) if t < now_secs => return Ok(Err(Refusal::Expired)),
            Some(_) => {}
        }
    }
    // The key is looked up in MySQL, whose collation ignores case.
    if !api_key.eq_ignore_ascii_case(&creds.api_key) {
        return Ok(Err(Refusal::UnknownKey));
    }
    known_command()?;
    let expected = signing::sign(&creds.secret_key, unsigned);
    if signing::signatures_match(&expected, signature) {
        Ok(Ok(()))
    } else {
        Ok(Err(Refusal::BadSignature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn creds() -> Credentials {
        Credentials::new("foo".into(), "bar".into())
    }

    #[test]
    fn accepts_the_published_cs_vector_with_any_key_case() {
        let p = pairs(&[
            ("apiKey", "FOO"),
            ("command", "listVirtualMachines"),
            ("listall", "true"),
            ("response", "json"),
            ("signature", "B0d6hBsZTcFVCiioSxzwKA9Pke8="),
        ]);
        // The key lookup ignores case, and the string to sign is lowercased
        // as a whole, so the signature made with `foo` verifies too.
        assert_eq!(verify(&creds(), &p, 0, || Ok(())), Ok(Ok(())));
        let p = pairs(&[
            ("apiKey", "foo"),
            ("command", "listVirtualMachines"),
            ("listall", "false"),
            ("response", "json"),
            ("signature", "B0d6hBsZTcFVCiioSxzwKA9Pke8="),
        ]);
        assert_eq!(
            verify(&creds(), &p, 0, || Ok(())),
            Ok(Err(Refusal::BadSignature))
        );
    }

    #[test]
    fn version_3_needs_a_future_expires() {
        let base = [
            ("apiKey", "foo"),
            ("command", "listZones"),
            ("signatureVersion", "3"),
        ];
        let mut p = pairs(&base);
        p.push(("signature".into(), "x".into()));
        assert_eq!(
            verify(&creds(), &p, 0, || Ok(())),
            Ok(Err(Refusal::MissingExpires))
        );
        let mut p = pairs(&base);
        p.push(("expires".into(), "2020-01-01T00:00:00+0000".into()));
        let sig = signing::sign("bar", p.iter().map(|(a, b)| (a.as_str(), b.as_str())));
        p.push(("signature".into(), sig));
        assert_eq!(verify(&creds(), &p, 1_500_000_000, || Ok(())), Ok(Ok(())));
        assert_eq!(
            verify(&creds(), &p, 1_700_000_000, || Ok(())),
            Ok(Err(Refusal::Expired))
        );
    }

    #[test]
    fn unknown_command_is_reported_before_the_signature() {
        let p = pairs(&[("apiKey", "foo"), ("command", "nope"), ("signature", "x")]);
        let r = verify(&creds(), &p, 0, || {
            Err(crate::error::ApiError::unknown_command("nope"))
        });
        assert_eq!(r.unwrap_err().code, 432);
    }
}
