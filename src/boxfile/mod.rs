//! The Boxfile: parsing with spans, `Boxfile.local` overrides, inheritance
//! from `[defaults]`, validation, and diagnostics that point at
//! `FILE:LINE:COL`.
//!
//! The rest of box only sees the resolved [`Project`] model below.

mod model;

pub use model::*;

use std::path::Path;

/// A problem found in a Boxfile, pointing at the file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// `Boxfile` or `Boxfile.local` (the path as given to the user).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    pub message: String,
    /// e.g. "did you mean `memory`?"
    pub help: Option<String>,
    /// The offending source line.
    pub source_line: String,
}

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

/// Reads and validates the Boxfile in `root` (and `Boxfile.local` beside it).
pub fn load(root: &Path) -> Result<Project, LoadError> {
    let _ = root;
    Err(LoadError::NotFound("<not implemented>".into()))
}

impl std::fmt::Display for Diagnostic {
    /// `Boxfile:3:5: message`, the source line, a caret, and any help.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "{}:{}:{}: {}", self.file, self.line, self.column, self.message)?;
        writeln!(f, "  | {}", self.source_line)?;
        write!(f, "  | {}^", " ".repeat(self.column.saturating_sub(1)))?;
        if let Some(help) = &self.help {
            write!(f, "\n  = help: {help}")?;
        }
        Ok(())
    }
}
