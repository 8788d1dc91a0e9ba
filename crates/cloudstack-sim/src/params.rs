//! Request parameters after authentication: looked up case-insensitively
//! (the server matches its lowercase annotations), with indexed map
//! parameters such as `tags[0].key` gathered per name.

use std::collections::{BTreeMap, HashMap};

use crate::error::ApiError;

#[derive(Debug, Default, Clone)]
pub struct Params {
    command: String,
    values: HashMap<String, String>,
    maps: HashMap<String, BTreeMap<usize, BTreeMap<String, String>>>,
}

impl Params {
    /// From the raw pairs as sent; the first value of a repeated name wins, as
    /// with the servlet's `getParameterMap()[0]`.
    pub fn new(command: &str, pairs: &[(String, String)]) -> Self {
        let mut p = Params {
            command: command.to_string(),
            ..Default::default()
        };
        for (name, value) in pairs {
            let lower = name.to_lowercase();
            if let Some((map, index, field)) = split_indexed(&lower) {
                p.maps
                    .entry(map.to_string())
                    .or_default()
                    .entry(index)
                    .or_default()
                    .entry(field.to_string())
                    .or_insert_with(|| value.clone());
            } else {
                p.values.entry(lower).or_insert_with(|| value.clone());
            }
        }
        p
    }

    pub fn command(&self) -> &str {
        &self.command
    }

    pub fn has(&self, name: &str) -> bool {
        self.values.contains_key(name) || self.maps.contains_key(name)
    }

    pub fn str(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Without these parameters: for a command that does not take them, so
    /// that shared filters ignore them as the server ignores them.
    pub fn without(&self, names: &[&str]) -> Params {
        let mut p = self.clone();
        for n in names {
            p.values.remove(*n);
        }
        p
    }

    /// A value the command table already declared required.
    pub fn req(&self, name: &str) -> Result<&str, ApiError> {
        self.str(name)
            .ok_or_else(|| ApiError::missing(&self.command, name))
    }

    /// Java's `Boolean.valueOf`: only `true` (any case) is true.
    pub fn bool(&self, name: &str) -> Option<bool> {
        self.str(name).map(|v| v.eq_ignore_ascii_case("true"))
    }

    pub fn int(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| ApiError::bad_number(&self.command, name, v)),
        }
    }

    /// A comma-separated list parameter; empty items are dropped.
    pub fn list(&self, name: &str) -> Vec<String> {
        self.str(name)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(String::from)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Entries of a map parameter (`tags[0].key=..&tags[0].value=..`) in index order.
    pub fn map(&self, name: &str) -> Vec<&BTreeMap<String, String>> {
        self.maps
            .get(name)
            .map(|m| m.values().collect())
            .unwrap_or_default()
    }

    /// The `tags[i].key/value` pairs of a list filter or `createTags`.
    pub fn tags(&self) -> Vec<(String, String)> {
        self.map("tags")
            .into_iter()
            .filter_map(|e| {
                Some((
                    e.get("key")?.clone(),
                    e.get("value").cloned().unwrap_or_default(),
                ))
            })
            .collect()
    }
}

fn split_indexed(name: &str) -> Option<(&str, usize, &str)> {
    let open = name.find('[')?;
    let close = name[open..].find("].")? + open;
    let index = name[open + 1..close].parse().ok()?;
    Some((&name[..open], index, &name[close + 2..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn names_are_case_insensitive_and_first_value_wins() {
        let p = Params::new(
            "listZones",
            &pairs(&[("pageSize", "10"), ("pagesize", "20")]),
        );
        assert_eq!(p.str("pagesize"), Some("10"));
    }

    #[test]
    fn indexed_maps_are_gathered_in_index_order() {
        let p = Params::new(
            "createTags",
            &pairs(&[
                ("tags[1].key", "b"),
                ("tags[1].value", "2"),
                ("tags[0].key", "a"),
                ("tags[0].value", "1"),
            ]),
        );
        assert_eq!(
            p.tags(),
            vec![("a".into(), "1".into()), ("b".into(), "2".into())]
        );
        assert!(p.has("tags"));
    }

    #[test]
    fn bad_numbers_name_the_parameter() {
        let p = Params::new("listZones", &pairs(&[("page", "x")]));
        let e = p.int("page").unwrap_err();
        assert_eq!(e.code, 431);
        assert!(e.text.contains("parameter page"));
    }
}
