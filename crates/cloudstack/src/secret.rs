//! The API secret key, held so it cannot leak through formatting.
//!
//! The crate has no dependency on box, so it carries its own redacting type;
//! box converts its `Secret` into this one when it builds a client.

use std::fmt;

/// A string whose `Debug` and `Display` never show the value.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretKey(String);

impl SecretKey {
    pub fn new(value: impl Into<String>) -> Self {
        SecretKey(value.into())
    }

    /// The raw value, for signing only.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl fmt::Display for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

// Private keys returned by `createSSHKeyPair` travel as `SecretKey` too.
impl<'de> serde::Deserialize<'de> for SecretKey {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SecretKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_key_never_formats_its_value() {
        let s = SecretKey::new("hunter2");
        assert!(!format!("{s} {s:?}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }
}
