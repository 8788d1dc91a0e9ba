//! Request signing exactly as Apache CloudStack's `ApiServer.verifyRequest`
//! checks it. The server and the simulator share this code, so both sides of
//! every test agree with the published vectors, not merely with each other.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha1::Sha1;

/// Encodes a value like Java's `URLEncoder.encode(v, "UTF-8")` followed by
/// `replace("+", "%20")`: only `A-Z a-z 0-9 . - * _` stay as they are.
pub fn encode_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len() * 3);
    encode_into(&mut out, value);
    out
}

/// [`encode_value`], appending to `out` (no allocation per value).
pub fn encode_into(out: &mut String, value: &str) {
    for &byte in value.as_bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(byte as char)
            }
            _ => {
                out.push('%');
                out.push(HEX[(byte >> 4) as usize] as char);
                out.push(HEX[(byte & 0xf) as usize] as char);
            }
        }
    }
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// The string the server signs: every parameter but `signature`, sorted by
/// name as sent (case-sensitive), values encoded, the whole lowercased.
pub fn string_to_sign<'a, I>(params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    let mut pairs: Vec<(&str, &str)> = params
        .into_iter()
        .filter(|(name, _)| *name != "signature")
        .collect();
    pairs.sort_by(|a, b| a.0.cmp(b.0));
    let capacity = pairs.iter().map(|(n, v)| n.len() + v.len() * 3 + 2).sum();
    let mut out = String::with_capacity(capacity);
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        encode_into(&mut out, value);
    }
    // Encoded values are ASCII; only a parameter name could be otherwise.
    if out.is_ascii() {
        out.make_ascii_lowercase();
        out
    } else {
        out.to_lowercase()
    }
}

/// HMAC-SHA1 of an already built string to sign, standard Base64 with padding.
pub fn sign_string(secret_key: &str, string_to_sign: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = Hmac::<Sha1>::new_from_slice(secret_key.as_bytes())
        .expect("HMAC-SHA1 accepts any key length");
    mac.update(string_to_sign.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Signs a full parameter set (which must include `apiKey`).
pub fn sign<'a, I>(secret_key: &str, params: I) -> String
where
    I: IntoIterator<Item = (&'a str, &'a str)>,
{
    sign_string(secret_key, &string_to_sign(params))
}

/// Constant-time comparison for the server side, so a probe cannot learn a
/// signature byte by byte from response timing.
pub fn signatures_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `expires` value of a signature-version-3 request, in the one format
/// the server parses: `YYYY-MM-DDTHH:MM:SS+0000` (UTC). The server writes its
/// own timestamps (`created`) the same way.
pub fn format_expires(at: std::time::SystemTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]+0000");
    let secs = at
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // A time past year 9999 (or before 1970) never expires a real request: the epoch stands in.
    let at = i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    // A complete UTC date-time always formats with a static description.
    at.format(FORMAT).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from ../shared/cloudstack-fixtures/signing-vectors.md.
    #[test]
    fn libcloud_list_vector() {
        assert_eq!(
            sign_string(
                "abracadabra",
                "apikey=fnord&command=listvirtualmachines&response=json"
            ),
            "z/a9Y7J52u48VpqIgiwaGUMCso0="
        );
    }

    #[test]
    fn libcloud_deploy_vector_from_params() {
        let params = [
            ("apiKey", "fnord"),
            ("command", "deployVirtualMachine"),
            ("displayname", "george"),
            ("name", "fred"),
            ("networkids", "42"),
            ("response", "json"),
            ("serviceofferingid", "5"),
            ("templateid", "17"),
            ("zoneid", "23"),
        ];
        assert_eq!(sign("abracadabra", params), "gHTo7mYmadZ+zluKHzlEKb1i/QU=");
    }

    #[test]
    fn plus_in_value_is_percent_encoded_not_space() {
        let params = [
            ("apiKey", "fnord"),
            ("command", "deployVirtualMachine"),
            ("displayname", "George+Ringo"),
            ("name", "fred"),
            ("networkids", "42"),
            ("response", "json"),
            ("serviceofferingid", "5"),
            ("templateid", "17"),
            ("zoneid", "23"),
        ];
        assert!(string_to_sign(params).contains("displayname=george%2bringo"));
        assert_eq!(sign("abracadabra", params), "tAgfrreI1ZvWlWLClD3gu4+aKv4=");
    }

    #[test]
    fn cs_request_params_vector() {
        let params = [
            ("apiKey", "foo"),
            ("command", "listVirtualMachines"),
            ("listall", "true"),
            ("response", "json"),
        ];
        assert_eq!(sign("bar", params), "B0d6hBsZTcFVCiioSxzwKA9Pke8=");
    }

    #[test]
    fn utf8_values_are_encoded_per_byte() {
        let params = [
            ("apiKey", "foo"),
            ("command", "listVirtualMachines"),
            ("listall", "1"),
            ("response", "json"),
            ("unicode_param", "éèààû"),
        ];
        assert_eq!(
            string_to_sign(params),
            "apikey=foo&command=listvirtualmachines&listall=1&response=json&unicode_param=%c3%a9%c3%a8%c3%a0%c3%a0%c3%bb"
        );
        assert_eq!(sign("bar", params), "gABU/KFJKD3FLAgKDuxQoryu4sA=");
    }

    #[test]
    fn indexed_names_stay_raw_and_commas_are_encoded() {
        let params = [
            ("apiKey", "foo"),
            ("bar[0].baz", "blah"),
            ("bar[0].foo", "1000"),
            ("bytes_param", "blah"),
            ("command", "listVirtualMachines"),
            ("foo", "foo,bar"),
            ("response", "json"),
        ];
        assert_eq!(sign("bar", params), "ImJ/5F0P2RDL7yn4LdLnGcEx5WE=");
    }

    #[test]
    fn empty_values_are_signed() {
        let params = [
            ("apiKey", "foo"),
            ("command", "createNetwork"),
            ("display_text", ""),
            ("name", ""),
            ("response", "json"),
        ];
        assert_eq!(sign("bar", params), "CistTEiPt/4Rv1v4qSyILvPbhmg=");
    }

    #[test]
    fn sort_uses_names_as_sent_not_lowercased() {
        let params = [
            ("apiKey", "foo"),
            ("command", "listVirtualMachines"),
            ("page", "1"),
            ("pageSize", "10"),
            ("response", "json"),
            ("temPlateidd", "4"),
            ("templateId", "3"),
            ("zoneId", "2"),
        ];
        assert_eq!(
            string_to_sign(params),
            "apikey=foo&command=listvirtualmachines&page=1&pagesize=10&response=json&templateidd=4&templateid=3&zoneid=2"
        );
        assert_eq!(sign("bar", params), "mMS7XALuGkCXk7kj5SywySku0Z0=");
    }

    #[test]
    fn java_urlencoder_rules() {
        assert_eq!(encode_value("a b~*+,/:"), "a%20b%7E*%2B%2C%2F%3A");
    }

    #[test]
    fn signature_parameter_is_not_signed() {
        let with = [
            ("apiKey", "foo"),
            ("signature", "x"),
            ("command", "listZones"),
        ];
        let without = [("apiKey", "foo"), ("command", "listZones")];
        assert_eq!(string_to_sign(with), string_to_sign(without));
    }

    #[test]
    fn expires_uses_the_server_format_in_utc() {
        use std::time::{Duration, UNIX_EPOCH};
        assert_eq!(format_expires(UNIX_EPOCH), "1970-01-01T00:00:00+0000");
        // 2030-01-01T00:00:00Z and a leap day.
        assert_eq!(
            format_expires(UNIX_EPOCH + Duration::from_secs(1_893_456_000)),
            "2030-01-01T00:00:00+0000"
        );
        assert_eq!(
            format_expires(UNIX_EPOCH + Duration::from_secs(1_709_210_096)),
            "2024-02-29T12:34:56+0000"
        );
    }
}
