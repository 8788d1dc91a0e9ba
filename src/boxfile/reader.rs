//! Typed reads from the spanned tree. Every read that fails records a
//! diagnostic and returns `None`, so one pass reports every problem.

use std::ops::Range;

use super::diagnostic::{shown, Diagnostic, Sources};
use super::node::{Entry, FileId, Kind, Node};
use super::schema;
use crate::suggest::{did_you_mean, is_transposition, MAX_CANDIDATES};

/// Problems kept at most; past this they are only counted. Nobody reads
/// more, and a crafted Boxfile could otherwise make millions.
pub(crate) const MAX_PROBLEMS: usize = 1000;

/// Did-you-mean comparisons for one whole Boxfile, so suggestions stay cheap
/// however many misspellings and candidates a crafted file holds.
const SUGGESTION_BUDGET: usize = 20_000;

/// At most this many names are listed in a help text.
const MAX_LISTED: usize = 10;

/// `names` joined for a help text, the first few only.
pub(crate) fn listing(names: &[&str]) -> String {
    let mut out: Vec<String> = names
        .iter()
        .take(MAX_LISTED)
        .map(|n| shown(n).into_owned())
        .collect();
    if names.len() > MAX_LISTED {
        out.push(format!("and {} more", names.len() - MAX_LISTED));
    }
    out.join(", ")
}

/// Where something is: a file and a byte span in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loc {
    pub file: FileId,
    pub span: Range<usize>,
}

impl Node {
    pub fn loc(&self) -> Loc {
        Loc {
            file: self.file,
            span: self.span.clone(),
        }
    }
}

impl Entry {
    pub fn key_loc(&self) -> Loc {
        Loc {
            file: self.key_file,
            span: self.key_span.clone(),
        }
    }
}

/// Collects diagnostics while reading.
pub(crate) struct Reader<'a> {
    pub sources: &'a Sources,
    pub diagnostics: Vec<Diagnostic>,
    /// Problems past [`MAX_PROBLEMS`]: where the first was, and how many.
    pub dropped: Option<(Loc, usize)>,
    suggestions_left: usize,
}

impl<'a> Reader<'a> {
    pub fn new(sources: &'a Sources) -> Self {
        Reader {
            sources,
            diagnostics: Vec::new(),
            dropped: None,
            suggestions_left: SUGGESTION_BUDGET,
        }
    }

    pub fn error(&mut self, at: &Loc, message: impl Into<String>, help: Option<String>) {
        if self.diagnostics.len() >= MAX_PROBLEMS {
            match &mut self.dropped {
                Some((_, n)) => *n += 1,
                None => self.dropped = Some((at.clone(), 1)),
            }
            return;
        }
        let d = self
            .sources
            .diagnostic(at.file, at.span.clone(), message.into(), help);
        self.diagnostics.push(d);
    }

    /// The 1-based line of a location, for "the first one is on line N".
    pub fn line(&self, at: &Loc) -> usize {
        self.sources.line(at.file, at.span.start)
    }

    /// The closest of `candidates` to a misspelled `given`. Swapped adjacent
    /// letters (`zoen`, `wbe`) are the commonest typo and cost two edits,
    /// more than `did_you_mean` allows for short words, so they are tried as
    /// well. The work is bounded per call and per Boxfile.
    pub fn suggest<'c>(&mut self, given: &str, candidates: &[&'c str]) -> Option<&'c str> {
        if self.diagnostics.len() >= MAX_PROBLEMS {
            return None;
        }
        let n = candidates
            .len()
            .min(MAX_CANDIDATES)
            .min(self.suggestions_left);
        self.suggestions_left -= n;
        let candidates = &candidates[..n];
        did_you_mean(given, candidates.iter().copied()).or_else(|| {
            candidates
                .iter()
                .copied()
                .find(|c| is_transposition(given, c))
        })
    }

    /// `node` as a table whose keys are all in `known`; unknown keys are
    /// reported (all of them) with a suggestion. `what` names the table in
    /// messages, e.g. `[defaults]`.
    pub fn table<'n>(
        &mut self,
        node: &'n Node,
        what: &str,
        known: &schema::Table,
    ) -> Option<&'n [Entry]> {
        let Some(entries) = node.entries() else {
            self.error(
                &node.loc(),
                format!("{what} must be a table, found {}", node.type_name()),
                None,
            );
            return None;
        };
        for e in entries {
            if known.key(&e.key).is_none() {
                let names = known.names();
                let help = match self.suggest(&e.key, &names) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("{what} accepts: {}", names.join(", ")),
                };
                self.error(
                    &e.key_loc(),
                    format!("unknown key `{}` in {what}", shown(&e.key)),
                    Some(help),
                );
            }
        }
        Some(entries)
    }

    /// An array of tables: `[[x]]` or `x = [{ ... }]`.
    pub fn tables<'n>(&mut self, e: &'n Entry) -> Vec<&'n Node> {
        match &e.value.kind {
            Kind::Array(items) => {
                let mut out = Vec::new();
                for item in items {
                    if item.entries().is_some() {
                        out.push(item);
                    } else {
                        self.error(
                            &item.loc(),
                            format!(
                                "each entry of `{}` must be a table, found {}",
                                shown(&e.key),
                                item.type_name()
                            ),
                            None,
                        );
                    }
                }
                out
            }
            _ => {
                self.type_error(e, "an array of tables");
                Vec::new()
            }
        }
    }

    pub fn type_error(&mut self, e: &Entry, expected: &str) {
        let mut help = None;
        if expected == "an array of tables" && e.value.entries().is_some() {
            help = Some(format!(
                "write `[[{}]]` (double brackets) for each entry",
                shown(&e.key)
            ));
        }
        self.error(
            &e.value.loc(),
            format!(
                "`{}` must be {expected}, found {}",
                shown(&e.key),
                e.value.type_name()
            ),
            help,
        );
    }

    pub fn string(&mut self, e: &Entry) -> Option<String> {
        match &e.value.kind {
            Kind::Str(s) => Some(s.clone()),
            _ => {
                self.type_error(e, "a string");
                None
            }
        }
    }

    pub fn bool(&mut self, e: &Entry) -> Option<bool> {
        match &e.value.kind {
            Kind::Bool(b) => Some(*b),
            _ => {
                self.type_error(e, "a boolean (true or false)");
                None
            }
        }
    }

    /// An integer in `min..=max`.
    pub fn int(&mut self, e: &Entry, min: i64, max: i64) -> Option<i64> {
        let Kind::Int(v) = e.value.kind else {
            self.type_error(e, "an integer");
            return None;
        };
        if v < min || v > max {
            let message = if max == i64::from(u32::MAX) && v < min {
                format!("`{}` must be at least {min}, found {v}", e.key)
            } else if max == i64::from(u32::MAX) {
                format!("`{}` is too large ({v})", e.key)
            } else {
                format!("`{}` must be between {min} and {max}, found {v}", e.key)
            };
            self.error(&e.value.loc(), message, None);
            return None;
        }
        Some(v)
    }

    pub fn u32(&mut self, e: &Entry, min: u32) -> Option<u32> {
        self.int(e, i64::from(min), i64::from(u32::MAX))
            .and_then(|v| u32::try_from(v).ok())
    }

    /// One of `choices`, with a suggestion when it is a likely typo.
    pub fn choice(&mut self, e: &Entry, choices: &[&'static str]) -> Option<&'static str> {
        let s = self.string(e)?;
        if let Some(c) = choices.iter().find(|c| **c == s) {
            return Some(c);
        }
        let expected = choices
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let help = match self.suggest(&s, choices) {
            Some(m) => format!("did you mean `{m}`? expected one of {expected}"),
            None => format!("expected one of {expected}"),
        };
        self.error(
            &e.value.loc(),
            format!("invalid `{}` value `{}`", e.key, shown(&s)),
            Some(help),
        );
        None
    }

    /// An array of strings, each with its location.
    pub fn strings(&mut self, e: &Entry) -> Option<Vec<(String, Loc)>> {
        let Kind::Array(items) = &e.value.kind else {
            self.type_error(e, "an array of strings");
            return None;
        };
        let mut out = Vec::new();
        let mut ok = true;
        for item in items {
            match &item.kind {
                Kind::Str(s) => out.push((s.clone(), item.loc())),
                _ => {
                    ok = false;
                    self.error(
                        &item.loc(),
                        format!(
                            "each entry of `{}` must be a string, found {}",
                            shown(&e.key),
                            item.type_name()
                        ),
                        None,
                    );
                }
            }
        }
        ok.then_some(out)
    }

    /// A table of string values (integers and booleans are written out).
    pub fn string_map(&mut self, e: &Entry) -> Option<Vec<(String, String)>> {
        let Some(entries) = e.value.entries() else {
            self.type_error(e, "a table");
            return None;
        };
        let mut out = Vec::new();
        for entry in entries {
            let v = match &entry.value.kind {
                Kind::Str(s) => s.clone(),
                Kind::Int(i) => i.to_string(),
                Kind::Bool(b) => b.to_string(),
                _ => {
                    self.type_error(entry, "a string");
                    continue;
                }
            };
            out.push((entry.key.clone(), v));
        }
        Some(out)
    }
}
