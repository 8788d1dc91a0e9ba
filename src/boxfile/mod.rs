//! The Boxfile: parsing with spans, `Boxfile.local` overrides, inheritance
//! from `[defaults]`, validation, and diagnostics that point at
//! `FILE:LINE:COL`.
//!
//! The rest of box only sees the resolved [`Project`] model below.

mod checks;
mod diagnostic;
mod docker;
pub mod duration;
mod host_path;
mod json_schema;
mod model;
mod node;
mod reader;
mod resolve;
mod schema;
mod starter;
mod trigger;

pub use diagnostic::Diagnostic;
pub use json_schema::{json_schema, json_schema_text};
pub use model::*;
pub use resolve::{check_host_name, default_project_name, HOST_NAME_HELP};
pub use starter::starter;

use std::collections::HashMap;
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
    /// Problems found past the listing limit; the last diagnostic says so.
    pub unlisted: usize,
}

impl Checked {
    /// Every problem found, listed or not.
    pub fn problem_count(&self) -> usize {
        self.diagnostics.len() - usize::from(self.unlisted > 0) + self.unlisted
    }
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
    let Some(boxfile) = read_limited(&root.join(BOXFILE))? else {
        return Err(LoadError::NotFound(root.display().to_string()));
    };
    let local = read_limited(&root.join(BOXFILE_LOCAL))?;
    Ok(check_bytes(root, boxfile, local))
}

/// A Boxfile larger than this is refused unparsed: real ones are a few KB,
/// and parsing costs memory in proportion.
pub const MAX_BYTES: u64 = 16 << 20;

/// The file's bytes, at most [`MAX_BYTES`] + 1 of them (enough to tell that
/// it is too large); `None` when it does not exist. Only a regular file is
/// read: a cloned repository can make `Boxfile` a link to `/dev/zero`.
fn read_limited(path: &Path) -> Result<Option<Vec<u8>>, LoadError> {
    use std::io::Read as _;
    let read_err = |source| LoadError::Read {
        path: path.display().to_string(),
        source,
    };
    // Looked at before opening: opening a fifo would wait for a writer.
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(read_err(std::io::Error::other("not a regular file"))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(read_err(e)),
    }
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    Ok(Some(bytes))
}

/// Checks Boxfile text (and `Boxfile.local` text) as if it lived in `root`.
pub fn check_text(root: &Path, boxfile: String, local: Option<String>) -> Checked {
    check_bytes(root, boxfile.into_bytes(), local.map(String::into_bytes))
}

/// Checks the Boxfile's bytes (and `Boxfile.local`'s) as if they lived in
/// `root`. Any bytes at all give an answer: text that is not UTF-8 or too
/// large is a problem like any other.
pub fn check_bytes(root: &Path, boxfile: Vec<u8>, local: Option<Vec<u8>>) -> Checked {
    let (boxfile, boxfile_problem) = decode(BOXFILE, boxfile);
    let (local, local_problem) = match local.map(|l| decode(BOXFILE_LOCAL, l)) {
        Some((source, problem)) => (Some(source), problem),
        None => (None, None),
    };
    let sources = Sources { boxfile, local };
    let mut r = Reader::new(&sources);
    let unreadable = [
        (FileId::Boxfile, boxfile_problem),
        (FileId::Local, local_problem),
    ];
    if unreadable.iter().any(|(_, p)| p.is_some()) {
        for (file, problem) in unreadable {
            if let Some(p) = problem {
                r.error(&reader::Loc { file, span: p.span }, p.message, Some(p.help));
            }
        }
        return finish(r, None);
    }
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

/// Why a file's bytes cannot be read as TOML, and where.
struct Unreadable {
    span: std::ops::Range<usize>,
    message: String,
    help: String,
}

/// The file as text, and the problem when it is too large or not UTF-8
/// (then the text is what can be shown of it).
fn decode(name: &str, bytes: Vec<u8>) -> (Source, Option<Unreadable>) {
    if bytes.len() as u64 > MAX_BYTES {
        let problem = Unreadable {
            span: 0..0,
            message: format!("{name} is larger than {} MiB", MAX_BYTES >> 20),
            help: "a Boxfile describes machines; keep data in the files it names".into(),
        };
        return (Source::new(name, String::new()), Some(problem));
    }
    match String::from_utf8(bytes) {
        Ok(text) => (Source::new(name, text), None),
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            let byte = e.as_bytes()[at];
            // Up to the first bad byte the lossy text is the file itself,
            // so `at` points at the right line and column.
            let text = String::from_utf8_lossy(e.as_bytes()).into_owned();
            let problem = Unreadable {
                span: at..at + 1,
                message: format!("{name} is not UTF-8 text: byte 0x{byte:02X} is invalid"),
                help: format!("save {name} as UTF-8"),
            };
            (Source::new(name, text), Some(problem))
        }
    }
}

fn finish(r: Reader, project: Option<Project>) -> Checked {
    let dropped = r.dropped.as_ref().map(|(loc, n)| {
        r.sources.diagnostic(
            loc.file,
            loc.span.clone(),
            format!(
                "{n} more problem(s) not listed: box lists the first {}",
                reader::MAX_PROBLEMS
            ),
            Some("fix the ones above and run `box validate` again".into()),
        )
    });
    let unlisted = r.dropped.as_ref().map_or(0, |(_, n)| *n);
    let mut diagnostics = r.diagnostics;
    diagnostics.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    diagnostics.dedup();
    diagnostics.extend(dropped);
    Checked {
        project: project.filter(|_| diagnostics.is_empty()),
        diagnostics,
        unlisted,
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
    let mut by_name: HashMap<String, usize> = HashMap::new();
    for (i, m) in base_machines.iter().enumerate() {
        if let Some(name) = m.get("name").and_then(|e| e.value.as_str()) {
            by_name.entry(name.to_string()).or_insert(i);
        }
    }
    let known: Vec<String> = base_machines
        .iter()
        .filter_map(|m| {
            m.get("name")
                .and_then(|e| e.value.as_str())
                .map(String::from)
        })
        .collect();
    let known: Vec<&str> = known.iter().map(String::as_str).collect();
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
        match by_name.get(&name) {
            Some(&i) => node::merge_table(&mut base_machines[i], local),
            None => {
                let help = match r.suggest(&name, &known) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("machines in the Boxfile: {}", reader::listing(&known)),
                };
                r.error(
                    &name_entry.value.loc(),
                    format!(
                        "Boxfile.local overrides machine `{}`, which the Boxfile does not declare",
                        diagnostic::shown(&name)
                    ),
                    Some(help),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests;
