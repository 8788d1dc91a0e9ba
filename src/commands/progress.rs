//! Per-machine progress shared by the verbs that act on several machines
//! at once (`up`, `reload`, `destroy`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use indicatif::ProgressBar;

use crate::output::{Level, Printer};

/// Per-machine progress: a spinner per machine on a terminal, plain lines
/// otherwise, or NDJSON events on stdout with `--json`. On a terminal a
/// machine that is done leaves the live block for a line of its own above
/// it, so once all are done the block is gone and the summary comes last.
#[derive(Clone)]
pub(crate) struct Events {
    printer: Printer,
    json: bool,
    spinners: Option<Arc<Mutex<HashMap<String, ProgressBar>>>>,
}

impl Events {
    pub(crate) fn new(printer: &Printer, json: bool) -> Self {
        let live = !json && printer.is_terminal() && printer.level() >= Level::Normal;
        Events {
            printer: printer.clone(),
            json,
            spinners: live.then(Default::default),
        }
    }

    pub(crate) fn emit(&self, machine: &str, event: &str, detail: Option<&str>) {
        if self.json {
            let mut v = serde_json::json!({ "machine": machine, "event": event });
            if let Some(d) = detail {
                v["detail"] = serde_json::Value::String(d.to_string());
            }
            self.printer.data(&v.to_string());
            return;
        }
        // Failures are printed once, with their cause chain, in the summary.
        let text = match (event, detail) {
            ("failed", _) => "failed".to_string(),
            (e, Some(d)) => format!("{e}: {d}"),
            (e, None) => e.to_string(),
        };
        match &self.spinners {
            Some(spinners) => {
                let mut spinners = spinners.lock().unwrap_or_else(|e| e.into_inner());
                if FINAL_EVENTS.contains(&event) {
                    if let Some(bar) = spinners.remove(machine) {
                        self.printer.remove_bar(&bar);
                        let secs = bar.elapsed().as_secs();
                        self.printer.machine(machine, &format!("{text} ({secs}s)"));
                    }
                } else if let Some(bar) = spinners.get(machine) {
                    bar.set_message(text);
                } else {
                    let bar = self.printer.spinner(machine, &text);
                    spinners.insert(machine.to_string(), bar);
                }
            }
            None if event != "failed" => self.printer.machine(machine, &text),
            None => {}
        }
    }

    /// A machine's phase before anything happened to it ("queued",
    /// "waiting for db"): shown on a terminal only, where a spinner would
    /// otherwise appear without one; plain and JSON output stay as they were.
    pub(crate) fn show(&self, machine: &str, phase: &str) {
        if let Some(spinners) = &self.spinners {
            let mut spinners = spinners.lock().unwrap_or_else(|e| e.into_inner());
            if !spinners.contains_key(machine) {
                let bar = self.printer.spinner(machine, phase);
                spinners.insert(machine.to_string(), bar);
            }
        }
    }

    /// Clears what is left of the live block (machines that never started
    /// because a dependency failed, or an interrupted run) before the
    /// summary is printed.
    pub(crate) fn finish(&self) {
        if let Some(spinners) = &self.spinners {
            let mut spinners = spinners.lock().unwrap_or_else(|e| e.into_inner());
            for (_, bar) in spinners.drain() {
                self.printer.remove_bar(&bar);
            }
        }
    }
}

/// Events after which a machine's spinner stops.
const FINAL_EVENTS: &[&str] = &["ready", "failed", "destroyed"];
