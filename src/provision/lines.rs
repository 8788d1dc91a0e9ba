//! Remote output cut into lines, each printed under the machine's name, so
//! parallel machines never interleave within a line.

use std::io::Write;

use crate::output::Printer;

pub struct Lines<'a> {
    printer: &'a Printer,
    machine: &'a str,
    buf: Vec<u8>,
}

impl<'a> Lines<'a> {
    pub fn new(printer: &'a Printer, machine: &'a str) -> Self {
        Lines {
            printer,
            machine,
            buf: Vec::new(),
        }
    }

    fn emit(&mut self, upto: usize) {
        let line: Vec<u8> = self.buf.drain(..upto).collect();
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        self.printer.machine(self.machine, text);
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
