//! The Boxfile: parsing with spans, `Boxfile.local` overrides, inheritance
//! from `[defaults]`, validation, and diagnostics that point at
//! `FILE:LINE:COL`.
//!
//! The rest of box only sees the resolved [`Project`] model below.

mod checks;
mod diagnostic;
mod model;
mod node;
mod reader;
mod resolve;
mod schema;
mod starter;

pub use diagnostic::Diagnostic;
pub use model::*;
pub use resolve::{check_host_name, default_project_name, HOST_NAME_HELP};
pub use starter::starter;

use std::path::Path;

use diagnostic::{Source, Sources};
use node::{FileId, Kind, Node};
use reader::Reader;

use crate::project::{BOXFILE, BOXFILE_LOCAL};

/// Loading failed: the Boxfile could not be read, or it has problems.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("no Boxfile found in {0} or any parent folder")]
    NotFound(String),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{} problem(s) in the Boxfile", .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// The outcome of checking a Boxfile: the project when it is valid, and
/// every problem found (sorted by file and position).
#[derive(Debug)]
pub struct Checked {
    pub project: Option<Project>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Reads and validates the Boxfile in `root` (and `Boxfile.local` beside it).
pub fn load(root: &Path) -> Result<Project, LoadError> {
    let checked = check(root)?;
    match checked.project {
        Some(p) if checked.diagnostics.is_empty() => Ok(p),
        _ => Err(LoadError::Invalid(checked.diagnostics)),
    }
}

/// Reads the Boxfile in `root` (and `Boxfile.local`) and reports every problem.
pub fn check(root: &Path) -> Result<Checked, LoadError> {
    // `box -C rel/dir` gives a relative root; the model promises absolute paths.
    let root = &std::path::absolute(root).map_err(|source| LoadError::Read {
        path: root.display().to_string(),
        source,
    })?;
    let path = root.join(BOXFILE);
    let boxfile = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LoadError::NotFound(root.display().to_string()))
        }
        Err(source) => {
            return Err(LoadError::Read {
                path: path.display().to_string(),
                source,
            })
        }
    };
    let local_path = root.join(BOXFILE_LOCAL);
    let local = match std::fs::read_to_string(&local_path) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(LoadError::Read {
                path: local_path.display().to_string(),
                source,
            })
        }
    };
    Ok(check_text(root, boxfile, local))
}

/// Checks Boxfile text (and `Boxfile.local` text) as if it lived in `root`.
pub fn check_text(root: &Path, boxfile: String, local: Option<String>) -> Checked {
    let sources = Sources {
        boxfile: Source {
            name: BOXFILE.into(),
            text: boxfile,
        },
        local: local.map(|text| Source {
            name: BOXFILE_LOCAL.into(),
            text,
        }),
    };
    let mut r = Reader::new(&sources);
    let base = parse(&mut r, &sources.boxfile.text, FileId::Boxfile);
    let over = sources
        .local
        .as_ref()
        .and_then(|l| parse(&mut r, &l.text, FileId::Local));
    let Some(mut tree) = base else {
        return finish(r, None);
    };
    if let Some(over) = over {
        merge_local(&mut r, &mut tree, over);
    }
    let (project, spans) = resolve::project(&mut r, &tree, root);
    checks::run(&mut r, &project, &spans);
    finish(r, Some(project))
}

fn finish(r: Reader, project: Option<Project>) -> Checked {
    let mut diagnostics = r.diagnostics;
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics.dedup();
    Checked {
        project: project.filter(|_| diagnostics.is_empty()),
        diagnostics,
    }
}

/// Parses one file into a spanned tree; a syntax error becomes a diagnostic.
fn parse(r: &mut Reader, text: &str, file: FileId) -> Option<Node> {
    match toml_edit::ImDocument::parse(text) {
        Ok(doc) => Some(Node::from_document(doc.as_table(), file)),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let mut lines = e.message().trim().lines();
            let message = lines.next().unwrap_or("invalid TOML").to_string();
            let rest: Vec<&str> = lines.map(str::trim).filter(|l| !l.is_empty()).collect();
            let help = (!rest.is_empty()).then(|| rest.join("; "));
            r.error(
                &reader::Loc { file, span },
                format!("TOML syntax error: {message}"),
                help,
            );
            None
        }
    }
}

/// Merges `Boxfile.local` over the Boxfile. Tables merge key by key; a
/// `[[machine]]` in `Boxfile.local` overrides the Boxfile's machine of the
/// same `name`.
fn merge_local(r: &mut Reader, tree: &mut Node, mut over: Node) {
    let mut local_machines = None;
    if let Kind::Table(entries) = &mut over.kind {
        if let Some(i) = entries.iter().position(|e| e.key == "machine") {
            local_machines = Some(entries.remove(i));
        }
    }
    node::merge_table(tree, over);
    let Some(entry) = local_machines else { return };
    let locals = r.tables(&entry);
    let locals: Vec<Node> = locals.into_iter().cloned().collect();
    let base_machines: Option<&mut Vec<Node>> = match &mut tree.kind {
        Kind::Table(entries) => entries
            .iter_mut()
            .find(|e| e.key == "machine")
            .and_then(|e| match &mut e.value.kind {
                Kind::Array(items) => Some(items),
                _ => None,
            }),
        _ => None,
    };
    let mut empty = Vec::new();
    let base_machines = base_machines.unwrap_or(&mut empty);
    let known: Vec<String> = base_machines
        .iter()
        .filter_map(|m| {
            m.get("name")
                .and_then(|e| e.value.as_str())
                .map(String::from)
        })
        .collect();
    for mut local in locals {
        let name_entry = match &mut local.kind {
            Kind::Table(entries) => entries
                .iter()
                .position(|e| e.key == "name")
                .map(|i| entries.remove(i)),
            _ => None,
        };
        let Some(name_entry) = name_entry else {
            r.error(
                &local.loc(),
                "a [[machine]] in Boxfile.local needs a `name`, to say which machine it overrides",
                None,
            );
            continue;
        };
        let Some(name) = r.string(&name_entry) else {
            continue;
        };
        match base_machines
            .iter_mut()
            .find(|m| m.get("name").and_then(|e| e.value.as_str()) == Some(name.as_str()))
        {
            Some(base) => node::merge_table(base, local),
            None => {
                let help = match reader::suggest(
                    &name,
                    &known.iter().map(String::as_str).collect::<Vec<_>>(),
                ) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("machines in the Boxfile: {}", known.join(", ")),
                };
                r.error(
                    &name_entry.value.loc(),
                    format!("Boxfile.local overrides machine `{name}`, which the Boxfile does not declare"),
                    Some(help),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
