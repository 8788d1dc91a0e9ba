//! Serde helpers for the ways real CloudStack servers disagree on types:
//! ids as numbers (2.x/3.x) or UUID strings, ports and booleans as strings,
//! numbers that sometimes arrive quoted.

use serde::de::{Deserializer, Error as _};
use serde::Deserialize;
use serde_json::Value;

/// Any scalar as a string: ids are `2602` on old servers, UUIDs on new ones.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) => Ok(s),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        other => Err(D::Error::custom(format!(
            "expected a string or number, got {other}"
        ))),
    }
}

pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s)),
        Value::Number(n) => Ok(Some(n.to_string())),
        Value::Bool(b) => Ok(Some(b.to_string())),
        other => Err(D::Error::custom(format!(
            "expected a string or number, got {other}"
        ))),
    }
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b)),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Some(true)),
            "false" | "0" | "no" | "" => Ok(Some(false)),
            _ => Err(D::Error::custom(format!("expected a boolean, got {s:?}"))),
        },
        Value::Number(n) => Ok(Some(n.as_i64().unwrap_or(0) != 0)),
        other => Err(D::Error::custom(format!("expected a boolean, got {other}"))),
    }
}

pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    opt_bool(d).map(|b| b.unwrap_or(false))
}

pub fn opt_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_u64()
            .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
            .map(Some)
            .ok_or_else(|| D::Error::custom(format!("expected a non-negative number, got {n}"))),
        Value::String(s) if s.trim().is_empty() => Ok(None),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .map(Some)
            .map_err(|_| D::Error::custom(format!("expected a number, got {s:?}"))),
        other => Err(D::Error::custom(format!("expected a number, got {other}"))),
    }
}

pub fn opt_u16<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u16>, D::Error> {
    match opt_u64(d)? {
        None => Ok(None),
        Some(n) => u16::try_from(n)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{n} is not a port"))),
    }
}

/// A comma-separated string (`cidrlist`) or a JSON array of strings.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    match Value::deserialize(d)? {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect()),
        Value::Array(items) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                other => Err(D::Error::custom(format!("expected a string, got {other}"))),
            })
            .collect(),
        other => Err(D::Error::custom(format!("expected a list, got {other}"))),
    }
}

/// A list that may be missing or `null` (both mean empty).
pub fn vec<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Vec<T>, D::Error> {
    Option::<Vec<T>>::deserialize(d).map(Option::unwrap_or_default)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct T {
        #[serde(deserialize_with = "super::string")]
        id: String,
        #[serde(default, deserialize_with = "super::opt_u16")]
        port: Option<u16>,
        #[serde(default, deserialize_with = "super::opt_bool")]
        flag: Option<bool>,
        #[serde(default, deserialize_with = "super::string_list")]
        cidrs: Vec<String>,
    }

    #[test]
    fn numbers_and_strings_are_both_accepted() {
        let a: T = serde_json::from_str(
            r#"{"id":2602,"port":"22","flag":"true","cidrs":"10.0.0.0/8, 192.168.0.0/16"}"#,
        )
        .unwrap();
        let b: T = serde_json::from_str(
            r#"{"id":"2602","port":22,"flag":true,"cidrs":["10.0.0.0/8","192.168.0.0/16"]}"#,
        )
        .unwrap();
        for t in [a, b] {
            assert_eq!(t.id, "2602");
            assert_eq!(t.port, Some(22));
            assert_eq!(t.flag, Some(true));
            assert_eq!(t.cidrs, ["10.0.0.0/8", "192.168.0.0/16"]);
        }
    }

    #[test]
    fn out_of_range_port_is_an_error() {
        assert!(serde_json::from_str::<T>(r#"{"id":1,"port":"70000"}"#).is_err());
    }
}
