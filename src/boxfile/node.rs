//! A spanned TOML tree that remembers which file each value came from.
//!
//! `toml_edit` keeps spans but has three table shapes (tables, inline tables,
//! arrays of tables); folding them into one [`Node`] keeps validation simple,
//! and tagging every node with its [`FileId`] lets `Boxfile.local` be merged
//! over the Boxfile while diagnostics still name the file a value came from.

use std::collections::HashMap;
use std::ops::Range;

use toml_edit::{Item, Table, Value};

/// Which file a value was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum FileId {
    Boxfile,
    Local,
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub file: FileId,
    pub span: Range<usize>,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub(crate) enum Kind {
    Str(String),
    Int(i64),
    Float,
    Bool(bool),
    Datetime,
    Array(Vec<Node>),
    Table(Vec<Entry>),
}

/// A key and its value; the key keeps its own span for "unknown key" reports.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub key: String,
    pub key_file: FileId,
    pub key_span: Range<usize>,
    pub value: Node,
}

impl Node {
    /// The root of a parsed document.
    pub fn from_document(table: &Table, file: FileId) -> Node {
        from_table(table, file, 0..0)
    }

    /// What a value is, for "expected X, found Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Str(_) => "a string",
            Kind::Int(_) => "an integer",
            Kind::Float => "a float",
            Kind::Bool(_) => "a boolean",
            Kind::Datetime => "a date-time",
            Kind::Array(_) => "an array",
            Kind::Table(_) => "a table",
        }
    }

    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Table(e) => Some(e),
            _ => None,
        }
    }

    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn from_table(table: &Table, file: FileId, fallback: Range<usize>) -> Node {
    let span = table.span().unwrap_or(fallback);
    let mut entries = Vec::new();
    for (key, item) in table.iter() {
        let key_span = table
            .key(key)
            .and_then(|k| k.span())
            .unwrap_or_else(|| span.clone());
        let value = match item {
            Item::None => continue,
            Item::Value(v) => from_value(v, file, key_span.clone()),
            Item::Table(t) => from_table(t, file, key_span.clone()),
            Item::ArrayOfTables(a) => Node {
                file,
                span: a.span().unwrap_or_else(|| key_span.clone()),
                kind: Kind::Array(
                    a.iter()
                        .map(|t| from_table(t, file, key_span.clone()))
                        .collect(),
                ),
            },
        };
        entries.push(Entry {
            key: key.to_string(),
            key_file: file,
            key_span,
            value,
        });
    }
    Node {
        file,
        span,
        kind: Kind::Table(entries),
    }
}

fn from_value(value: &Value, file: FileId, fallback: Range<usize>) -> Node {
    let span = value.span().unwrap_or(fallback);
    let kind = match value {
        Value::String(s) => Kind::Str(s.value().clone()),
        Value::Integer(i) => Kind::Int(*i.value()),
        Value::Float(_) => Kind::Float,
        Value::Boolean(b) => Kind::Bool(*b.value()),
        Value::Datetime(_) => Kind::Datetime,
        Value::Array(a) => Kind::Array(
            a.iter()
                .map(|v| from_value(v, file, span.clone()))
                .collect(),
        ),
        Value::InlineTable(t) => {
            let mut entries = Vec::new();
            for (key, v) in t.iter() {
                let key_span = t
                    .key(key)
                    .and_then(|k| k.span())
                    .unwrap_or_else(|| span.clone());
                entries.push(Entry {
                    key: key.to_string(),
                    key_file: file,
                    key_span: key_span.clone(),
                    value: from_value(v, file, key_span),
                });
            }
            Kind::Table(entries)
        }
    };
    Node { file, span, kind }
}

/// Merges `over` (a table from `Boxfile.local`) into `base`: tables merge
/// key by key, anything else is replaced.
pub(crate) fn merge_table(base: &mut Node, over: Node) {
    let Kind::Table(over_entries) = over.kind else {
        *base = over;
        return;
    };
    let Kind::Table(base_entries) = &mut base.kind else {
        *base = Node {
            kind: Kind::Table(over_entries),
            ..over
        };
        return;
    };
    // Indexed by key: both files may hold very many keys.
    let mut index: HashMap<String, usize> = HashMap::new();
    for (i, b) in base_entries.iter().enumerate() {
        index.entry(b.key.clone()).or_insert(i);
    }
    for entry in over_entries {
        match index.get(&entry.key).map(|&i| &mut base_entries[i]) {
            Some(b)
                if matches!(
                    (&b.value.kind, &entry.value.kind),
                    (Kind::Table(_), Kind::Table(_))
                ) =>
            {
                merge_table(&mut b.value, entry.value)
            }
            Some(b) => *b = entry,
            None => {
                index.insert(entry.key.clone(), base_entries.len());
                base_entries.push(entry);
            }
        }
    }
}
