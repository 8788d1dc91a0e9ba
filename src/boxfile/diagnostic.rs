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
    /// The offending source line; a long line is cut around the problem,
    /// with `…` where it was cut.
    pub source_line: String,
    /// 1-based column of the caret within `source_line` (not `column`
    /// when a long line was cut).
    #[serde(skip)]
    pub source_column: usize,
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
            " ".repeat(self.source_column.saturating_sub(1)),
            "^".repeat(self.length.max(1))
        )?;
        if let Some(help) = &self.help {
            write!(f, "\n{pad} = help: {help}")?;
        }
        Ok(())
    }
}

/// One file's name (as shown to the user) and text, with an index to turn
/// byte offsets into lines and columns without rescanning the text: a
/// crafted Boxfile can have hundreds of thousands of problems.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub name: String,
    pub text: String,
    /// Byte offset where each line starts.
    line_starts: Vec<usize>,
    /// Characters before byte `k * BLOCK`, for each `k`.
    chars_before_block: Vec<usize>,
}

const BLOCK: usize = 4096;

/// A line longer than this many bytes is shown cut around the caret, to
/// about this many characters.
const SHOWN_LINE: usize = 240;

impl Source {
    pub fn new(name: impl Into<String>, text: String) -> Source {
        let bytes = text.as_bytes();
        let mut line_starts = vec![0];
        line_starts.extend(newlines(bytes).map(|i| i + 1));
        let mut chars_before_block = Vec::with_capacity(bytes.len() / BLOCK + 1);
        let mut count = 0;
        for block in bytes.chunks(BLOCK) {
            chars_before_block.push(count);
            count += char_starts(block);
        }
        chars_before_block.push(count);
        Source {
            name: name.into(),
            text,
            line_starts,
            chars_before_block,
        }
    }

    /// How many characters come before byte `at` (a char boundary).
    fn chars_before(&self, at: usize) -> usize {
        let block = at / BLOCK;
        self.chars_before_block[block] + char_starts(&self.text.as_bytes()[block * BLOCK..at])
    }

    /// The 1-based line holding byte `at`, and the byte range of that line
    /// (without its newline).
    fn line_of(&self, at: usize) -> (usize, usize, usize) {
        let line = self.line_starts.partition_point(|&s| s <= at).max(1);
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .map_or(self.text.len(), |next| next - 1);
        (line, start, end)
    }
}

fn newlines(bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
}

/// Characters starting in `bytes`: every byte that is not a UTF-8
/// continuation byte.
fn char_starts(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| (**b & 0xC0) != 0x80).count()
}

/// A value from the Boxfile as quoted in a message: a long one is cut, so a
/// huge name repeated in many problems cannot blow up the output.
pub(crate) fn shown(value: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 100;
    match value.char_indices().nth(MAX) {
        None => value.into(),
        Some(_) => {
            let cut = value.char_indices().nth(MAX - 4).map_or(0, |(i, _)| i);
            format!("{}…", &value[..cut]).into()
        }
    }
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

    /// The 1-based line of a byte offset.
    pub fn line(&self, file: FileId, at: usize) -> usize {
        let source = self.get(file);
        source.line_of(at.min(source.text.len())).0
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
        let (line, line_start, line_end) = source.line_of(start);
        let column = source.chars_before(start) - source.chars_before(line_start) + 1;
        // Show the line, or a window of it around the caret when it is long.
        let (from, to) = if line_end - line_start <= SHOWN_LINE {
            (line_start, line_end)
        } else {
            (
                back_chars(text, start, line_start, SHOWN_LINE / 3),
                forward_chars(text, start, line_end, SHOWN_LINE - SHOWN_LINE / 3),
            )
        };
        let cut_before = from > line_start;
        let cut_after = to < line_end;
        let mut source_line = String::new();
        if cut_before {
            source_line.push('…');
        }
        source_line.push_str(text[from..to].trim_end_matches('\r'));
        if cut_after {
            source_line.push('…');
        }
        let source_column = column - (source.chars_before(from) - source.chars_before(line_start))
            + usize::from(cut_before);
        // Underline the span, but never past what is shown of its first line.
        let end = floor_char_boundary(text, span.end.clamp(start, to));
        let length = text[start..end].chars().count().max(1);
        Diagnostic {
            file: source.name.clone(),
            line,
            column,
            length,
            message,
            help,
            source_line,
            source_column,
        }
    }
}

/// The byte offset `n` characters before `at`, but not before `floor`.
fn back_chars(text: &str, at: usize, floor: usize, n: usize) -> usize {
    text[floor..at]
        .char_indices()
        .rev()
        .take(n)
        .last()
        .map_or(at, |(i, _)| floor + i)
}

/// The byte offset `n` characters after `at`, but not past `ceiling`.
fn forward_chars(text: &str, at: usize, ceiling: usize, n: usize) -> usize {
    text[at..ceiling]
        .char_indices()
        .nth(n)
        .map_or(ceiling, |(i, _)| at + i)
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
            boxfile: Source::new("Boxfile", text.into()),
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

    #[test]
    fn a_long_line_is_cut_around_the_caret() {
        let text = format!("k = [{}\"é\", \"x\"]\n", "\"a\", ".repeat(10_000));
        let s = sources(&text);
        let at = text.find("\"x\"").unwrap();
        let d = s.diagnostic(FileId::Boxfile, at..at + 3, "m".into(), None);
        assert_eq!((d.line, d.length), (1, 3));
        assert_eq!(d.column, text[..at].chars().count() + 1);
        assert!(d.source_line.len() < 2 * SHOWN_LINE, "{}", d.source_line);
        assert!(d.source_line.starts_with('…') && d.source_line.ends_with("\"x\"]"));
        let shown: Vec<char> = d.source_line.chars().collect();
        let caret: String = shown[d.source_column - 1..d.source_column + 2]
            .iter()
            .collect();
        assert_eq!(caret, "\"x\"");
        assert!(d
            .to_string()
            .contains(&format!("\n  | {}^^^", " ".repeat(d.source_column - 1))));
    }

    #[test]
    fn lines_and_columns_past_many_blocks_and_multibyte_characters() {
        let mut text = String::new();
        for i in 0..5000 {
            text.push_str(&format!("k{i} = \"ééé\"\n"));
        }
        let s = sources(&text);
        let at = text.find("k4321 ").unwrap();
        let d = s.diagnostic(FileId::Boxfile, at + 9..at + 15, "m".into(), None);
        assert_eq!((d.line, d.column, d.length), (4322, 10, 3));
        assert_eq!(d.source_line, "k4321 = \"ééé\"");
        assert_eq!(s.line(FileId::Boxfile, at), 4322);
    }

    #[test]
    fn long_values_are_cut_in_messages() {
        assert_eq!(shown("web"), "web");
        let cut = shown(&"é".repeat(1000)).into_owned();
        assert_eq!(cut.chars().count(), 97);
        assert!(cut.ends_with('…'));
        assert_eq!(shown(&"a".repeat(100)), "a".repeat(100));
    }
}
