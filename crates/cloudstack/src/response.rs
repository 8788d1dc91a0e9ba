//! Reading CloudStack's response envelope: the single `*response` key, API
//! errors in the body, and list pages.

use serde::de::{DeserializeOwned, DeserializeSeed};
use serde_json::{Map, Value};

use crate::error::{ApiError, Error};

/// The object inside `{"<name>response": {...}}`, or the API error it holds.
///
/// The key is taken as found rather than built from the command name,
/// because some commands answer under irregular names (`restorevmresponse`,
/// `errorresponse` for unknown commands).
pub fn extract(
    command: &str,
    status: u16,
    body: &[u8],
    expires_used: bool,
) -> Result<Value, Error> {
    let parsed: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return Err(if status >= 300 || body.first() == Some(&b'<') {
                Error::Http {
                    command: command.to_string(),
                    status,
                    excerpt: excerpt(body),
                }
            } else {
                Error::Parse {
                    command: command.to_string(),
                    message: format!("the body is not JSON ({e})"),
                }
            })
        }
    };
    let Value::Object(top) = parsed else {
        return Err(parse_error(command, "the body is not a JSON object"));
    };
    let mut top = top;
    let key = envelope_key(top.keys().map(String::as_str)).map(str::to_string);
    let inner = match key {
        Some(key) => top.remove(&key).unwrap_or(Value::Null),
        None => {
            return Err(if status >= 300 {
                Error::Http {
                    command: command.to_string(),
                    status,
                    excerpt: excerpt(body),
                }
            } else {
                parse_error(command, "no `*response` key in the body")
            })
        }
    };
    if let Some(code) = inner.get("errorcode") {
        let errorcode = as_u64(code).unwrap_or(u64::from(status)) as u16;
        return Err(Error::Api(ApiError {
            command: command.to_string(),
            status,
            errorcode,
            cserrorcode: inner.get("cserrorcode").and_then(as_u64).map(|c| c as u32),
            errortext: inner
                .get("errortext")
                .and_then(Value::as_str)
                .unwrap_or("(no error text)")
                .to_string(),
            expires_used,
        }));
    }
    if status >= 300 {
        return Err(Error::Http {
            command: command.to_string(),
            status,
            excerpt: excerpt(body),
        });
    }
    match inner {
        // Some servers answer an empty result as `[]` or null; `{}` is canonical.
        Value::Null => Ok(Value::Object(Map::new())),
        Value::Array(a) if a.is_empty() => Ok(Value::Object(Map::new())),
        other => Ok(other),
    }
}

/// The key of the `*response` object among the body's top-level keys.
pub(crate) fn envelope_key<'k>(keys: impl Iterator<Item = &'k str> + Clone) -> Option<&'k str> {
    let mut all = keys.clone();
    if let (Some(only), None) = (all.next(), all.next()) {
        return Some(only);
    }
    let mut candidates = keys.filter(|k| k.to_ascii_lowercase().ends_with("response"));
    match (candidates.next(), candidates.next()) {
        (Some(k), None) => Some(k),
        _ => None,
    }
}

/// A page of a list response.
#[derive(Debug, Clone)]
pub struct Page<T> {
    /// The total over all pages (CloudStack's `count`), when given.
    pub count: Option<u64>,
    pub items: Vec<T>,
}

/// The items under `key` (matched case-insensitively: `listVMSnapshot` uses
/// `vmSnapshot`). An empty list is `{}`.
pub fn page<T: DeserializeOwned>(command: &str, obj: &Value, key: &str) -> Result<Page<T>, Error> {
    let count = obj.get("count").and_then(as_u64);
    let items = match find_key(obj, key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| typed(command, item))
            .collect::<Result<_, _>>()?,
        // A single object where a list was expected (seen on old servers).
        Some(one @ Value::Object(_)) => vec![typed(command, one)?],
        Some(other) => {
            return Err(parse_error(
                command,
                &format!("`{key}` is not a list but {}", kind(other)),
            ))
        }
    };
    Ok(Page { count, items })
}

/// A typed list page straight from the body. The common case (HTTP 200, a
/// well-formed list) is read without building a JSON tree, which is most of
/// the CPU of a large list; anything else goes through [`extract`] so
/// errors are reported exactly as for untyped calls.
pub fn parse_page<T: DeserializeOwned>(
    command: &str,
    status: u16,
    body: &[u8],
    key: &str,
    expires_used: bool,
) -> Result<Page<T>, Error> {
    if status == 200 {
        let mut de = serde_json::Deserializer::from_slice(body);
        if let Ok(Some(page)) = fast::Envelope::<T>::new(key).deserialize(&mut de) {
            if de.end().is_ok() {
                return Ok(page);
            }
        }
    }
    let v = extract(command, status, body, expires_used)?;
    let count = v.get("count").and_then(as_u64);
    let items = take_list(command, v, key)?
        .into_iter()
        .map(|item| typed_owned(command, item))
        .collect::<Result<_, _>>()?;
    Ok(Page { count, items })
}

/// Serde visitors for [`parse_page`]'s fast path. They answer `None` for
/// any shape but a plain list (an error body, several top-level keys), and
/// the caller then takes the slow, fully checked path.
mod fast {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
    use serde_json::Value;

    use super::{as_u64, Page};

    pub struct Envelope<'k, T> {
        key: &'k str,
        _t: PhantomData<T>,
    }

    impl<'k, T> Envelope<'k, T> {
        pub fn new(key: &'k str) -> Self {
            Envelope {
                key,
                _t: PhantomData,
            }
        }
    }

    impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Envelope<'_, T> {
        type Value = Option<Page<T>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de, T: DeserializeOwned> Visitor<'de> for Envelope<'_, T> {
        type Value = Option<Page<T>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a CloudStack response object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut result = None;
            let mut keys = 0;
            while let Some(name) = map.next_key::<String>()? {
                keys += 1;
                if keys == 1 && name.to_ascii_lowercase().ends_with("response") {
                    result = map.next_value_seed(Body::<T> {
                        key: self.key,
                        _t: PhantomData,
                    })?;
                } else {
                    map.next_value::<IgnoredAny>()?;
                    result = None;
                }
            }
            Ok(if keys == 1 { result } else { None })
        }
    }

    struct Body<'k, T> {
        key: &'k str,
        _t: PhantomData<T>,
    }

    impl<'de, T: DeserializeOwned> DeserializeSeed<'de> for Body<'_, T> {
        type Value = Option<Page<T>>;
        fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
    }

    impl<'de, T: DeserializeOwned> Visitor<'de> for Body<'_, T> {
        type Value = Option<Page<T>>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a CloudStack list")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut page = Page {
                count: None,
                items: Vec::new(),
            };
            let mut plain = true;
            while let Some(name) = map.next_key::<String>()? {
                if name == "count" {
                    page.count = as_u64(&map.next_value::<Value>()?);
                } else if name.eq_ignore_ascii_case(self.key) {
                    match map.next_value::<Option<Vec<T>>>() {
                        Ok(items) => page.items = items.unwrap_or_default(),
                        // A single object, or an item that does not fit:
                        // the slow path reports it precisely.
                        Err(_) => return Ok(None),
                    }
                } else {
                    // `errorcode` means an error body; other keys are ignored.
                    plain &= name != "errorcode";
                    map.next_value::<IgnoredAny>()?;
                }
            }
            Ok(plain.then_some(page))
        }
    }
}

/// The items under `key` as JSON values, moved out of the response.
pub fn take_list(command: &str, obj: Value, key: &str) -> Result<Vec<Value>, Error> {
    let Value::Object(mut map) = obj else {
        return Ok(Vec::new());
    };
    let found = match map.remove(key) {
        Some(v) => Some(v),
        None => {
            let k = map.keys().find(|k| k.eq_ignore_ascii_case(key)).cloned();
            k.and_then(|k| map.remove(&k))
        }
    };
    match found {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => Ok(items),
        Some(one @ Value::Object(_)) => Ok(vec![one]),
        Some(other) => Err(parse_error(
            command,
            &format!("`{key}` is not a list but {}", kind(&other)),
        )),
    }
}

/// Like [`typed`], consuming the value (no copy of its strings).
pub fn typed_owned<T: DeserializeOwned>(command: &str, value: Value) -> Result<T, Error> {
    serde_json::from_value(value).map_err(|e| parse_error(command, &e.to_string()))
}

/// The single array key of a list response, for raw calls whose item key is
/// not known in advance.
pub fn list_key(obj: &Value) -> Option<String> {
    let Value::Object(map) = obj else { return None };
    let mut arrays = map.iter().filter(|(_, v)| v.is_array()).map(|(k, _)| k);
    match (arrays.next(), arrays.next()) {
        (Some(k), None) => Some(k.clone()),
        _ => None,
    }
}

/// A value under a key, matched exactly first, then case-insensitively.
pub fn find_key<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    let Value::Object(map) = obj else { return None };
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// An object that arrives wrapped in its name (`{"virtualmachine": {...}}`)
/// in job results and some synchronous answers.
pub fn object<T: DeserializeOwned>(command: &str, obj: &Value, key: &str) -> Result<T, Error> {
    match find_key(obj, key) {
        Some(inner) => typed(command, inner),
        None => Err(parse_error(
            command,
            &format!("no `{key}` object in the result (keys: {})", keys_of(obj)),
        )),
    }
}

pub fn typed<T: DeserializeOwned>(command: &str, value: &Value) -> Result<T, Error> {
    T::deserialize(value).map_err(|e| parse_error(command, &e.to_string()))
}

pub(crate) fn parse_error(command: &str, message: &str) -> Error {
    Error::Parse {
        command: command.to_string(),
        message: message.to_string(),
    }
}

pub(crate) fn as_u64(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn keys_of(v: &Value) -> String {
    match v {
        Value::Object(m) if !m.is_empty() => m.keys().cloned().collect::<Vec<_>>().join(", "),
        Value::Object(_) => "none".into(),
        other => kind(other).into(),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}...", one_line.chars().take(200).collect::<String>())
    } else if one_line.is_empty() {
        "(empty body)".into()
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irregular_envelope_names_are_taken_as_found() {
        let v = extract(
            "restoreVirtualMachine",
            200,
            br#"{"restorevmresponse":{"jobid":"j1"}}"#,
            true,
        )
        .unwrap();
        assert_eq!(v["jobid"], "j1");
    }

    #[test]
    fn error_body_becomes_api_error_with_codes() {
        let body = br#"{"deployvirtualmachineresponse":{"uuidList":[],"errorcode":431,"cserrorcode":4350,"errortext":"Unable to find service offering: 104"}}"#;
        match extract("deployVirtualMachine", 431, body, true) {
            Err(Error::Api(e)) => {
                assert_eq!(
                    (e.status, e.errorcode, e.cserrorcode),
                    (431, 431, Some(4350))
                );
                assert_eq!(e.errortext, "Unable to find service offering: 104");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn html_error_page_is_an_http_error() {
        let e = extract(
            "listZones",
            502,
            b"<html><body>Bad gateway</body></html>",
            true,
        )
        .unwrap_err();
        assert!(matches!(e, Error::Http { status: 502, .. }), "{e:?}");
    }

    #[test]
    fn empty_list_is_empty_object() {
        let v = extract(
            "listSSHKeyPairs",
            200,
            br#"{"listsshkeypairsresponse":{}}"#,
            true,
        )
        .unwrap();
        let p: Page<Value> = page("listSSHKeyPairs", &v, "sshkeypair").unwrap();
        assert!(p.items.is_empty());
        assert_eq!(p.count, None);
    }

    #[test]
    fn list_key_is_matched_case_insensitively() {
        let v = serde_json::json!({"count": 1, "vmSnapshot": [{"id": "s"}]});
        let p: Page<Value> = page("listVMSnapshot", &v, "vmsnapshot").unwrap();
        assert_eq!(p.items.len(), 1);
        assert_eq!(list_key(&v).as_deref(), Some("vmSnapshot"));
    }

    #[test]
    fn typed_page_fast_and_slow_paths_agree() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Z {
            #[serde(deserialize_with = "crate::lenient::string")]
            id: String,
        }
        let ok = br#"{"listzonesresponse":{"count":"2","zone":[{"id":1},{"id":"b"}]}}"#;
        let p: Page<Z> = parse_page("listZones", 200, ok, "zone", true).unwrap();
        assert_eq!(p.count, Some(2));
        assert_eq!(p.items, [Z { id: "1".into() }, Z { id: "b".into() }]);
        let empty: Page<Z> = parse_page(
            "listZones",
            200,
            br#"{"listzonesresponse":{}}"#,
            "zone",
            true,
        )
        .unwrap();
        assert!(empty.items.is_empty());
        let single: Page<Z> = parse_page(
            "listZones",
            200,
            br#"{"listzonesresponse":{"zone":{"id":3}}}"#,
            "zone",
            true,
        )
        .unwrap();
        assert_eq!(single.items.len(), 1);
        let err = parse_page::<Z>(
            "listZones",
            200,
            br#"{"listzonesresponse":{"errorcode":431,"errortext":"bad"}}"#,
            "zone",
            true,
        )
        .unwrap_err();
        assert_eq!(err.errorcode(), Some(431));
        let bad = parse_page::<Z>(
            "listZones",
            200,
            br#"{"listzonesresponse":{"zone":[{"x":1}]}}"#,
            "zone",
            true,
        );
        assert!(matches!(bad, Err(Error::Parse { .. })), "{bad:?}");
    }
}
