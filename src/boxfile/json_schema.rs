//! The Boxfile's JSON Schema, generated from the vocabulary validation uses
//! (`schema`), so editors (taplo, Even Better TOML) complete and check the
//! same keys `box validate` accepts. `box schema` prints it, and the
//! repository ships it as `docs/boxfile.schema.json`.
//!
//! Draft-07: what taplo's validator supports best. `Boxfile.local` uses the
//! same schema, so no key is required at the top (a `Boxfile.local` needs no
//! machine); `box validate` still insists that a Boxfile declares one.

use serde_json::{json, Map, Value};

use super::schema::{Key, Table, Type, TOP};

/// The JSON Schema of a Boxfile (and of a `Boxfile.local`).
pub fn json_schema() -> Value {
    let mut root = Map::new();
    root.insert(
        "$schema".into(),
        json!("http://json-schema.org/draft-07/schema#"),
    );
    root.insert("title".into(), json!("Boxfile"));
    root.insert(
        "description".into(),
        json!("A box project: its machines and where they run. `box validate` checks what a schema cannot (paths exist, names are unique, no dependency cycle). Reference: docs/boxfile.md."),
    );
    root.extend(table(&TOP));
    Value::Object(root)
}

/// [`json_schema`] as the text `box schema` prints and the repository ships.
pub fn json_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&json_schema()).expect("a JSON value always serialises");
    text.push('\n');
    text
}

fn table(t: &Table) -> Map<String, Value> {
    let mut s = Map::new();
    s.insert("type".into(), json!("object"));
    let properties: Map<String, Value> = t
        .keys
        .iter()
        .map(|k| (k.name.to_string(), Value::Object(key(k))))
        .collect();
    s.insert("properties".into(), Value::Object(properties));
    s.insert("additionalProperties".into(), json!(false));
    let required: Vec<&str> = t
        .keys
        .iter()
        .filter(|k| k.required)
        .map(|k| k.name)
        .collect();
    if !required.is_empty() {
        s.insert("required".into(), json!(required));
    }
    if !t.one_of.is_empty() {
        let one_of: Vec<Value> = t
            .one_of
            .iter()
            .map(|k| json!({ "required": [k] }))
            .collect();
        s.insert("oneOf".into(), Value::Array(one_of));
    }
    let needs: Map<String, Value> = t
        .keys
        .iter()
        .filter(|k| !k.needs.is_empty())
        .map(|k| (k.name.to_string(), json!(k.needs)))
        .collect();
    if !needs.is_empty() {
        s.insert("dependencies".into(), Value::Object(needs));
    }
    // Not a JSON Schema keyword (validators ignore it): pairs a schema
    // cannot require, as they may be split between Boxfile and Boxfile.local.
    let together: Map<String, Value> = t
        .keys
        .iter()
        .filter(|k| !k.together.is_empty())
        .map(|k| (k.name.to_string(), json!(k.together)))
        .collect();
    if !together.is_empty() {
        s.insert("x-together".into(), Value::Object(together));
    }
    s
}

/// A table of strings: TOML integers and booleans are taken as their text.
fn map_value() -> Value {
    json!({ "type": ["string", "integer", "boolean"] })
}

fn key(k: &Key) -> Map<String, Value> {
    let mut s = match &k.ty {
        Type::Str => object(json!({ "type": "string" })),
        Type::Pattern(p) => object(json!({ "type": "string", "pattern": p })),
        Type::Bool => object(json!({ "type": "boolean" })),
        Type::Int { min, max } => {
            object(json!({ "type": "integer", "minimum": min, "maximum": max }))
        }
        Type::Choice(values) => object(json!({ "type": "string", "enum": values })),
        Type::Strings => object(json!({ "type": "array", "items": { "type": "string" } })),
        // `patternProperties`, not `propertyNames`: taplo reads draft 4 too.
        Type::Map { names: Some(p) } => {
            let mut names = Map::new();
            names.insert(p.to_string(), map_value());
            object(json!({
                "type": "object",
                "patternProperties": names,
                "additionalProperties": false,
            }))
        }
        Type::Map { names: None } => object(json!({
            "type": "object",
            "additionalProperties": map_value(),
        })),
        Type::Table(t) => table(t),
        Type::Tables(t) => object(json!({ "type": "array", "items": table(t) })),
    };
    s.insert("description".into(), json!(k.doc));
    if let Some(example) = k.example {
        let example: Value = serde_json::from_str(example)
            .unwrap_or_else(|e| panic!("the example of `{}` is not JSON: {e}", k.name));
        s.insert("examples".into(), json!([example]));
    }
    s
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("built from an object literal"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key, with the path of tables that leads to it.
    fn every_key() -> Vec<(String, &'static Key)> {
        fn walk(prefix: &str, t: &'static Table, out: &mut Vec<(String, &'static Key)>) {
            for k in t.keys {
                let path = format!("{prefix}{}", k.name);
                out.push((path.clone(), k));
                if let Type::Table(inner) | Type::Tables(inner) = &k.ty {
                    walk(&format!("{path}."), inner, out);
                }
            }
        }
        let mut out = Vec::new();
        walk("", &TOP, &mut out);
        out
    }

    #[test]
    fn every_example_is_json_of_its_keys_type() {
        for (path, k) in every_key() {
            let Some(example) = k.example else { continue };
            let v: Value = serde_json::from_str(example)
                .unwrap_or_else(|e| panic!("{path}: example {example} is not JSON: {e}"));
            let fits = match &k.ty {
                Type::Str | Type::Pattern(_) => v.is_string(),
                Type::Int { min, max } => v.as_i64().is_some_and(|i| (*min..=*max).contains(&i)),
                Type::Strings => v
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_string)),
                Type::Map { .. } => v.is_object(),
                Type::Choice(values) => v.as_str().is_some_and(|s| values.contains(&s)),
                Type::Table(_) => v.is_object(),
                Type::Tables(_) => v
                    .as_array()
                    .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_object)),
                Type::Bool => false,
            };
            assert!(fits, "{path}: example {example} does not fit its type");
        }
    }

    #[test]
    fn every_key_that_a_key_needs_is_in_its_table() {
        fn walk(t: &'static Table) {
            for k in t.keys {
                for n in k.needs.iter().chain(k.together).chain(t.one_of) {
                    assert!(
                        t.key(n).is_some(),
                        "`{}` needs `{n}`, not in its table",
                        k.name
                    );
                }
                if let Type::Table(inner) | Type::Tables(inner) = &k.ty {
                    walk(inner);
                }
            }
        }
        walk(&TOP);
    }

    #[test]
    fn the_schema_text_ends_with_a_newline_and_reads_back() {
        let text = json_schema_text();
        assert!(text.ends_with("}\n"));
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, json_schema());
        assert_eq!(
            back["properties"]["machine"]["items"]["required"],
            json!(["name"])
        );
    }
}
