//! What every list command shares: filters by `id`, `name`, `keyword` and
//! `tags[i]`, then `page`/`pagesize`, with `count` over all pages and `{}`
//! for an empty result.

use serde_json::{json, Value};

use super::Reply;
use crate::error::ApiError;
use crate::params::Params;

/// `pagesize` may not exceed this (`default.page.size`).
pub const MAX_PAGE_SIZE: i64 = 500;

pub fn list(p: &Params, key: &str, items: Vec<Value>) -> Result<Reply, ApiError> {
    list_by(
        p,
        key,
        items,
        &["name", "displayname", "displaytext", "description"],
    )
}

/// Like [`list`], with the fields `keyword` searches.
pub fn list_by(
    p: &Params,
    key: &str,
    items: Vec<Value>,
    keyword_fields: &[&str],
) -> Result<Reply, ApiError> {
    let page_size = p.int("pagesize")?;
    let page = p.int("page")?;
    if let Some(s) = page_size {
        if s < 1 && s != -1 {
            return Err(ApiError::invalid("Page size can't be 0 or negative value"));
        }
        if s > MAX_PAGE_SIZE {
            return Err(ApiError::invalid(format!(
                "Page size can't exceed max allowed page size value: {MAX_PAGE_SIZE}"
            )));
        }
        if s == -1 && page.is_some() {
            return Err(ApiError::invalid(
                "Can't specify page parameter when pagesize is -1 (Unlimited)",
            ));
        }
    }
    let id = p.str("id");
    let name = p.str("name");
    let keyword = p.str("keyword").map(str::to_lowercase);
    let tags = p.tags();
    let matches = |v: &Value| -> bool {
        if let Some(id) = id {
            if v.get("id").and_then(Value::as_str) != Some(id) {
                return false;
            }
        }
        if let Some(name) = name {
            let n = v.get("name").and_then(Value::as_str).unwrap_or_default();
            // MySQL's default collation compares without case.
            if !n.eq_ignore_ascii_case(name) {
                return false;
            }
        }
        if let Some(k) = &keyword {
            let hit = keyword_fields.iter().any(|f| {
                v.get(*f)
                    .and_then(Value::as_str)
                    .is_some_and(|s| s.to_lowercase().contains(k.as_str()))
            });
            if !hit {
                return false;
            }
        }
        tags.iter().all(|(k, val)| {
            v.get("tags").and_then(Value::as_array).is_some_and(|ts| {
                ts.iter().any(|t| {
                    t.get("key").and_then(Value::as_str) == Some(k.as_str())
                        && t.get("value").and_then(Value::as_str) == Some(val.as_str())
                })
            })
        })
    };
    let all: Vec<Value> = items.into_iter().filter(|v| matches(v)).collect();
    let count = all.len();
    let size = match page_size {
        Some(-1) => usize::MAX,
        Some(s) => s as usize,
        None => MAX_PAGE_SIZE as usize,
    };
    let start = match page {
        Some(n) if n > 0 && size != usize::MAX => size.saturating_mul((n - 1) as usize),
        _ => 0,
    };
    let page: Vec<Value> = all.into_iter().skip(start).take(size).collect();
    if count == 0 {
        return Ok(Reply::Value(json!({})));
    }
    Ok(Reply::Value(json!({"count": count, key: page})))
}

/// A filter on a rendered field, applied only when the parameter is given.
pub fn field_eq(p: &Params, param: &str, field: &str) -> impl Fn(&Value) -> bool {
    let want = p.str(param).map(str::to_string);
    let field = field.to_string();
    move |v: &Value| match &want {
        None => true,
        Some(w) => match v.get(&field) {
            Some(Value::String(s)) => s.eq_ignore_ascii_case(w),
            Some(Value::Bool(b)) => w.eq_ignore_ascii_case(&b.to_string()),
            Some(Value::Number(n)) => w.parse::<f64>().ok() == n.as_f64(),
            Some(_) => false,
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(v: &[(&str, &str)]) -> Params {
        let pairs: Vec<(String, String)> = v
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        Params::new("listThings", &pairs)
    }

    fn items(n: usize) -> Vec<Value> {
        (0..n)
            .map(|i| json!({"id": format!("{i}"), "name": format!("vm{i}"), "tags": []}))
            .collect()
    }

    fn body(r: Reply) -> Value {
        match r {
            Reply::Value(v) => v,
            Reply::Async { .. } => panic!("not a list"),
        }
    }

    #[test]
    fn count_is_the_total_over_all_pages() {
        let v = body(
            list(
                &params(&[("page", "2"), ("pagesize", "3")]),
                "thing",
                items(7),
            )
            .unwrap(),
        );
        assert_eq!(v["count"], 7);
        assert_eq!(v["thing"].as_array().unwrap().len(), 3);
        assert_eq!(v["thing"][0]["name"], "vm3");
    }

    #[test]
    fn an_empty_result_is_an_empty_object() {
        let v = body(list(&params(&[("name", "nope")]), "thing", items(3)).unwrap());
        assert_eq!(v, json!({}));
    }

    #[test]
    fn pagesize_over_the_maximum_is_refused() {
        let e = list(
            &params(&[("page", "1"), ("pagesize", "501")]),
            "thing",
            items(1),
        )
        .unwrap_err();
        assert_eq!(e.code, 431);
    }

    #[test]
    fn keyword_matches_part_of_the_name() {
        let v = body(list(&params(&[("keyword", "M1")]), "thing", items(12)).unwrap());
        assert_eq!(v["count"], 3); // vm1, vm10, vm11
    }
}
