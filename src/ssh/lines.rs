//! Remote output cut into whole lines, each handed to a callback (which
//! prefixes it with the machine's name), so parallel machines never
//! interleave within a line.

use std::io::Write;

pub struct Lines<'a> {
    sink: Box<dyn FnMut(&str) + 'a>,
    buf: Vec<u8>,
}

impl<'a> Lines<'a> {
    pub fn new(sink: impl FnMut(&str) + 'a) -> Self {
        Lines {
            sink: Box::new(sink),
            buf: Vec::new(),
        }
    }

    fn emit(&mut self, upto: usize) {
        let line: Vec<u8> = self.buf.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        (self.sink)(text.trim_end_matches(['\n', '\r']));
    }
}

impl Write for Lines<'_> {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        while let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            self.emit(i + 1);
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Lines<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let n = self.buf.len();
            self.emit(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hands_over_whole_lines_and_the_unterminated_tail() {
        let mut got = Vec::new();
        {
            let mut l = Lines::new(|s: &str| got.push(s.to_string()));
            l.write_all(b"one\ntw").unwrap();
            l.write_all(b"o\r\nthree").unwrap();
        }
        assert_eq!(got, vec!["one", "two", "three"]);
    }
}
