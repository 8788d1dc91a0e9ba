//! Diagnostics: a problem pinned to `FILE:LINE:COL`, rendered with the
//! offending line and a caret, and the source texts needed to compute them.

use std::ops::Range;

use super::node::FileId;

/// A problem found in a Boxfile, pointing at the file, line and column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    /// `Boxfile` or `Boxfile.local` (the path as given to the user).
    pub file: String,
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// How many characters the caret underlines (at least 1).
    pub length: usize,
    pub message: String,
    /// e.g. "did you mean `memory`?"
    pub help: Option<String>,
    /// The offending source line.
    pub source_line: String,
}

impl std::fmt::Display for Diagnostic {
    /// `Boxfile:3:5: message`, the source line, carets, and any help.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        let gutter = self.line.to_string();
        let pad = " ".repeat(gutter.len());
        writeln!(f, "{pad} |")?;
        // A tab is one column; shown as one space the caret stays under it.
        writeln!(f, "{gutter} | {}", self.source_line.replace('\t', " "))?;
        write!(
            f,
            "{pad} | {}{}",
            " ".repeat(self.column.saturating_sub(1)),
            "^".repeat(self.length.max(1))
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// One file's name (as shown to the user) and text.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: String,
    pub text: String,
}

/// The Boxfile and, when present, `Boxfile.local`.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    pub boxfile: Source,
    pub local: Option<Source>,
}

impl Sources {
    fn get(&self, file: FileId) -> &Source {
        match (file, &self.local) {
            (FileId::Local, Some(local)) => local,
            _ => &self.boxfile,
        }
    }

    /// A diagnostic at a byte span of one file.
    pub fn diagnostic(
        &self,
        file: FileId,
        span: Range<usize>,
        message: String,
        help: Option<String>,
    ) -> Diagnostic {
        let source = self.get(file);
        let text = source.text.as_str();
        let start = floor_char_boundary(text, span.start.min(text.len()));
        let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
        let line = text[..start].matches('\n').count() + 1;
        let column = text[line_start..start].chars().count() + 1;
        let source_line = text[line_start..line_end].trim_end_matches('\r');
        // Underline the span, but never past the end of its first line.
        let end = floor_char_boundary(text, span.end.clamp(start, line_end));
        let length = text[start..end].chars().count().max(1);
        Diagnostic {
            file: source.name.clone(),
            line,
            column,
            length,
            message,
            help,
            source_line: source_line.to_string(),
        }
    }
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    while i > 0 && !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(text: &str) -> Sources {
        Sources {
            boxfile: Source {
                name: "Boxfile".into(),
                text: text.into(),
            },
            local: None,
        }
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let s = sources("a = 1\nné = \"x\" # é\nzz = 3\n");
        let at = s.get(FileId::Boxfile).text.find("\"x\"").unwrap();
        let d = s.diagnostic(FileId::Boxfile, at..at + 3, "m".into(), None);
        assert_eq!((d.line, d.column, d.length), (2, 6, 3));
        assert_eq!(d.source_line, "né = \"x\" # é");
    }

    #[test]
    fn renders_line_caret_and_help() {
        let s = sources("[defaults]\nmemroy = 512\n");
        let d = s.diagnostic(
            FileId::Boxfile,
            11..17,
            "unknown key `memroy`".into(),
            Some("did you mean `memory`?".into()),
        );
        assert_eq!(
            d.to_string(),
            "Boxfile:2:1: unknown key `memroy`\n  |\n2 | memroy = 512\n  | ^^^^^^\n  = help: did you mean `memory`?"
        );
    }

    #[test]
    fn tabs_are_shown_as_one_column_so_the_caret_lines_up() {
        let s = sources("\tmemroy = 1\n");
        let d = s.diagnostic(FileId::Boxfile, 1..7, "m".into(), None);
        assert_eq!(d.column, 2);
        assert_eq!(d.source_line, "\tmemroy = 1");
        assert!(d.to_string().contains("1 |  memroy = 1\n  |  ^^^^^^"));
    }

    #[test]
    fn a_span_at_the_end_of_the_file_points_past_the_last_line() {
        let s = sources("a = [");
        let d = s.diagnostic(FileId::Boxfile, 5..5, "m".into(), None);
        assert_eq!((d.line, d.column, d.length), (1, 6, 1));
    }
}
