//! Answers of raw calls (`box api`), kept as the bytes that arrived.
//!
//! A JSON tree of a list takes about five times the list's size (a 200 MB
//! `listVirtualMachines` became 1 GB), so a list's items stay in the page
//! bodies they came in, located by byte range; each item becomes a tree only
//! while it is being written out.

use std::collections::BTreeMap;
use std::ops::Range;

use serde::ser::{Error as _, SerializeMap, SerializeSeq};
use serde::{Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::Error;
use crate::response::{self, as_u64, envelope_key, parse_error};

/// What a raw call answered. Serializes as the JSON the API sent inside its
/// `*response` key, a list's pages merged: `{"count": N, "<key>": [...]}`.
#[derive(Debug)]
pub enum RawAnswer {
    /// A list, across all its pages.
    List { key: String, pages: Vec<RawList> },
    /// Anything else (a job result, an object, a list command that does not page).
    Value(Value),
}

/// One page's body and where each of its items is in it.
#[derive(Debug)]
pub struct RawList {
    body: Vec<u8>,
    items: Vec<Range<usize>>,
}

/// The first page of a raw list call: a list, or some other answer.
pub(crate) enum FirstPage {
    List {
        key: String,
        count: Option<u64>,
        page: RawList,
    },
    Other(Value),
}

impl RawAnswer {
    /// Items in all pages.
    pub fn len(&self) -> usize {
        match self {
            RawAnswer::List { pages, .. } => pages.iter().map(|p| p.items.len()).sum(),
            RawAnswer::Value(_) => 0,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole answer as one JSON tree (for small answers and tests).
    pub fn to_value(&self) -> Result<Value, serde_json::Error> {
        serde_json::to_value(self)
    }
}

impl RawList {
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    /// A page that could only be read as JSON values (an odd shape).
    fn from_values(command: &str, items: Vec<Value>) -> Result<RawList, Error> {
        let body = serde_json::to_vec(&items).map_err(|e| parse_error(command, &e.to_string()))?;
        let ranges = item_ranges(&body, &body).ok_or_else(|| parse_error(command, "bad list"))?;
        Ok(RawList {
            body,
            items: ranges,
        })
    }
}

/// The first page of `command`: its only list, kept raw, or (for an error,
/// or an answer without exactly one list) what [`response::extract`] makes
/// of it.
pub(crate) fn first_page(
    command: &str,
    status: u16,
    body: Vec<u8>,
    expires_used: bool,
) -> Result<FirstPage, Error> {
    let found = inner(status, &body).and_then(|inner| {
        let mut lists = inner.iter().filter(|(_, v)| v.get().starts_with('['));
        let (key, list) = match (lists.next(), lists.next()) {
            (Some(one), None) => one,
            _ => return None,
        };
        let count = inner.get("count").and_then(|c| number(c));
        Some((
            key.clone(),
            count,
            item_ranges(&body, list.get().as_bytes())?,
        ))
    });
    match found {
        Some((key, count, items)) => Ok(FirstPage::List {
            key,
            count,
            page: RawList { body, items },
        }),
        None => response::extract(command, status, &body, expires_used).map(FirstPage::Other),
    }
}

/// A later page of `command`: the items under `key` (matched as
/// [`response::take_list`] does).
pub(crate) fn page(
    command: &str,
    status: u16,
    body: Vec<u8>,
    key: &str,
    expires_used: bool,
) -> Result<RawList, Error> {
    let found = inner(status, &body).map(|inner| {
        let value = inner.get(key).or_else(|| {
            inner
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(key))
                .map(|(_, v)| v)
        });
        match value.map(|v| v.get()) {
            None | Some("null") => Some(Vec::new()),
            Some(text) if text.starts_with('[') => item_ranges(&body, text.as_bytes()),
            Some(text) if text.starts_with('{') => Some(vec![range_in(&body, text.as_bytes())?]),
            Some(_) => None,
        }
    });
    match found {
        Some(Some(items)) => Ok(RawList { body, items }),
        _ => {
            let v = response::extract(command, status, &body, expires_used)?;
            RawList::from_values(command, response::take_list(command, v, key)?)
        }
    }
}

/// The values inside the `*response` object of a plain HTTP 200 answer,
/// each left as raw JSON borrowed from `body`. `None` for anything else
/// (an error body, another shape): [`response::extract`] reports those.
fn inner(status: u16, body: &[u8]) -> Option<BTreeMap<String, &RawValue>> {
    if status != 200 {
        return None;
    }
    let top: BTreeMap<String, &RawValue> = serde_json::from_slice(body).ok()?;
    let key = envelope_key(top.keys().map(String::as_str))?;
    let inner: BTreeMap<String, &RawValue> = serde_json::from_str(top.get(key)?.get()).ok()?;
    (!inner.contains_key("errorcode")).then_some(inner)
}

/// Where each item of the JSON array `list` (a slice of `body`) is in `body`.
fn item_ranges(body: &[u8], list: &[u8]) -> Option<Vec<Range<usize>>> {
    let items: Vec<&RawValue> = serde_json::from_slice(list).ok()?;
    items
        .iter()
        .map(|item| range_in(body, item.get().as_bytes()))
        .collect()
}

/// Where `part`, a slice borrowed from `body`, sits in it. Raw values
/// parsed from a slice borrow from it, so this is the byte offset.
fn range_in(body: &[u8], part: &[u8]) -> Option<Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= body.len()).then_some(start..end)
}

fn number(raw: &RawValue) -> Option<u64> {
    as_u64(&serde_json::from_str(raw.get()).ok()?)
}

impl Serialize for RawAnswer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let (key, pages) = match self {
            RawAnswer::Value(v) => return v.serialize(s),
            RawAnswer::List { key, pages } => (key, pages),
        };
        let count = self.len();
        if count == 0 {
            // An empty list is `{}`, as CloudStack itself answers it.
            return s.serialize_map(Some(0))?.end();
        }
        let items = Items(pages);
        let mut map = s.serialize_map(Some(2))?;
        // Sorted, as a JSON tree (and so earlier versions) writes the keys.
        if key.as_str() < "count" {
            map.serialize_entry(key, &items)?;
            map.serialize_entry("count", &count)?;
        } else {
            map.serialize_entry("count", &count)?;
            map.serialize_entry(key, &items)?;
        }
        map.end()
    }
}

struct Items<'a>(&'a [RawList]);

impl Serialize for Items<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.0.iter().map(RawList::len).sum()))?;
        for page in self.0 {
            for range in &page.items {
                // One item's tree at a time.
                let item: Value =
                    serde_json::from_slice(&page.body[range.clone()]).map_err(S::Error::custom)?;
                seq.serialize_element(&item)?;
            }
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn first(body: &str) -> FirstPage {
        first_page("listZones", 200, body.as_bytes().to_vec(), true)
            .ok()
            .unwrap()
    }

    #[test]
    fn a_list_page_keeps_its_items_in_the_body_and_writes_them_as_json() {
        let FirstPage::List { key, count, page } =
            first(r#"{"listzonesresponse":{"count":"2","zone":[{"name":"a","id":1},{"id":"b"}]}}"#)
        else {
            panic!("a list")
        };
        assert_eq!((key.as_str(), count), ("zone", Some(2)));
        let answer = RawAnswer::List {
            key,
            pages: vec![page],
        };
        assert_eq!(
            answer.to_value().unwrap(),
            json!({"count": 2, "zone": [{"id": 1, "name": "a"}, {"id": "b"}]})
        );
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"count":2,"zone":[{"id":1,"name":"a"}]}"#.replace("}]", r#"},{"id":"b"}]"#)
        );
    }

    #[test]
    fn answers_without_one_list_and_errors_go_the_checked_way() {
        assert!(matches!(
            first(r#"{"listcapabilitiesresponse":{"capability":{"x":1}}}"#),
            FirstPage::Other(v) if v == json!({"capability": {"x": 1}})
        ));
        assert!(matches!(
            first(r#"{"listzonesresponse":{}}"#),
            FirstPage::Other(v) if v == json!({})
        ));
        let err = first_page(
            "listZones",
            431,
            br#"{"listzonesresponse":{"errorcode":431,"errortext":"bad"}}"#.to_vec(),
            true,
        )
        .err()
        .unwrap();
        assert_eq!(err.errorcode(), Some(431));
        let err = first_page("listZones", 200, b"{\"x\":[".to_vec(), true)
            .err()
            .unwrap();
        assert!(matches!(err, Error::Parse { .. }), "{err:?}");
    }

    #[test]
    fn later_pages_match_the_key_case_insensitively_and_accept_one_object() {
        let p = page(
            "listVMSnapshot",
            200,
            br#"{"listvmsnapshotresponse":{"count":3,"vmSnapshot":[{"id":"c"}]}}"#.to_vec(),
            "vmsnapshot",
            true,
        )
        .unwrap();
        assert_eq!(p.len(), 1);
        let one = page(
            "listZones",
            200,
            br#"{"listzonesresponse":{"zone":{"id":"z"}}}"#.to_vec(),
            "zone",
            true,
        )
        .unwrap();
        assert_eq!(&one.body[one.items[0].clone()], br#"{"id":"z"}"#);
        let empty = page(
            "listZones",
            200,
            br#"{"listzonesresponse":{}}"#.to_vec(),
            "zone",
            true,
        )
        .unwrap();
        assert_eq!(empty.len(), 0);
        assert!(page(
            "listZones",
            200,
            br#"{"listzonesresponse":{"zone":7}}"#.to_vec(),
            "zone",
            true,
        )
        .is_err());
    }

    #[test]
    fn an_empty_list_is_an_empty_object() {
        let answer = RawAnswer::List {
            key: "zone".into(),
            pages: vec![],
        };
        assert_eq!(serde_json::to_string(&answer).unwrap(), "{}");
    }
}
