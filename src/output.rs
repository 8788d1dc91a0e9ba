//! The one place that writes to stdout and stderr.
//!
//! Data (status tables, JSON, ssh-config) goes to stdout; progress, warnings
//! and errors go to stderr. On a terminal, per-machine progress uses
//! indicatif; otherwise plain lines. `NO_COLOR` is respected.

use std::io::{BufRead, IsTerminal, Write};
use std::sync::{Arc, Mutex};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::Cli;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Quiet,
    Normal,
    Verbose,
    Debug,
}

#[derive(Clone)]
pub struct Printer {
    inner: Arc<Inner>,
}

struct Inner {
    level: Level,
    color: bool,
    terminal: bool,
    multi: MultiProgress,
    // Serialises lines from parallel machines so they never interleave mid-line.
    lock: Mutex<()>,
}

impl Printer {
    pub fn from_cli(cli: &Cli) -> Self {
        let level = if cli.quiet {
            Level::Quiet
        } else {
            match cli.verbose {
                0 => Level::Normal,
                1 => Level::Verbose,
                _ => Level::Debug,
            }
        };
        Self::new(level)
    }

    pub fn new(level: Level) -> Self {
        let terminal = std::io::stderr().is_terminal();
        let color = terminal && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
        let multi = if terminal && level > Level::Quiet {
            MultiProgress::with_draw_target(ProgressDrawTarget::stderr())
        } else {
            MultiProgress::with_draw_target(ProgressDrawTarget::hidden())
        };
        Printer {
            inner: Arc::new(Inner {
                level,
                color,
                terminal,
                multi,
                lock: Mutex::new(()),
            }),
        }
    }

    pub fn level(&self) -> Level {
        self.inner.level
    }

    pub fn is_terminal(&self) -> bool {
        self.inner.terminal
    }

    /// A line of data on stdout.
    pub fn data(&self, line: &str) {
        let _guard = self.inner.lock.lock();
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    }

    /// Raw bytes on stdout (remote command output).
    pub fn data_bytes(&self, bytes: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// Raw bytes on stderr (remote command output).
    pub fn err_bytes(&self, bytes: &[u8]) {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(bytes);
        let _ = err.flush();
    }

    /// Progress and results a user wants to see by default.
    pub fn info(&self, line: &str) {
        if self.inner.level >= Level::Normal {
            self.stderr_line(line);
        }
    }

    /// Steps shown with `-v`.
    pub fn verbose(&self, line: &str) {
        if self.inner.level >= Level::Verbose {
            self.stderr_line(line);
        }
    }

    /// Detail shown with `-vv` (API calls, SSH commands).
    pub fn debug(&self, line: &str) {
        if self.inner.level >= Level::Debug {
            self.stderr_line(line);
        }
    }

    /// A line about one machine, prefixed with its name.
    pub fn machine(&self, machine: &str, line: &str) {
        if self.inner.level >= Level::Normal {
            let prefix = self.paint(&format!("{machine}:"), "1;36");
            self.stderr_line(&format!("{prefix} {line}"));
        }
    }

    pub fn warn(&self, line: &str) {
        let label = self.paint("warning:", "1;33");
        self.stderr_line(&format!("{label} {line}"));
    }

    /// An error with its cause chain and any hints.
    pub fn error(&self, e: &anyhow::Error) {
        let label = self.paint("error:", "1;31");
        let mut text = format!("{label} {e}");
        for cause in e.chain().skip(1) {
            let s = cause.to_string();
            // thiserror variants often repeat their source; print each text once.
            if !text.contains(&s) {
                text.push_str(&format!("\n  caused by: {s}"));
            }
        }
        for hint in crate::error::hints_of(e) {
            let label = self.paint("hint:", "1;32");
            text.push_str(&format!("\n{label} {hint}"));
        }
        self.stderr_line(&text);
    }

    /// A spinner for one machine's progress, showing `phase` from its first
    /// frame; hidden when not on a terminal.
    pub fn spinner(&self, machine: &str, phase: &str) -> ProgressBar {
        // Styled and labelled before it is added: the ticker draws at once.
        let bar = ProgressBar::new_spinner()
            .with_style(
                ProgressStyle::with_template("{spinner} {prefix:.cyan.bold} {wide_msg} {elapsed}")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            )
            .with_prefix(machine.to_string())
            .with_message(phase.to_string());
        let bar = self.inner.multi.add(bar);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        bar
    }

    /// Takes a bar out of the live block for good. A finished bar left in
    /// the block is drawn again below every later line, so a summary
    /// printed after it would not be the last thing on the screen.
    pub fn remove_bar(&self, bar: &ProgressBar) {
        bar.finish_and_clear();
        self.inner.multi.remove(bar);
    }

    /// Asks `question` on stderr (even with `--quiet`) and reads one line
    /// of answer from stdin. Live progress is hidden while it waits.
    pub fn prompt(&self, question: &str) -> std::io::Result<String> {
        let _guard = self.inner.lock.lock();
        self.inner.multi.suspend(|| {
            let mut err = std::io::stderr().lock();
            write!(err, "{question} ")?;
            err.flush()?;
            let mut answer = String::new();
            std::io::stdin().lock().read_line(&mut answer)?;
            Ok(answer)
        })
    }

    /// A byte progress bar (downloads, image builds); hidden when not on a terminal.
    pub fn bytes_bar(&self, len: u64, message: &str) -> ProgressBar {
        let bar = self.inner.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template(
                "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar.set_message(message.to_string());
        bar
    }

    fn stderr_line(&self, line: &str) {
        let _guard = self.inner.lock.lock();
        // Live bars are taken down, the line printed, the bars drawn again
        // below it. (`MultiProgress::println` would pad the line to the
        // terminal's width instead of ending it, once no bar is left.)
        self.inner.multi.suspend(|| {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        });
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.inner.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}
