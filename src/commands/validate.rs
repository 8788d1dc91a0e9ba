//! `box validate`: check the Boxfile and `Boxfile.local` and report every
//! problem at once, as text on stderr or as JSON on stdout.

use anyhow::Context as _;

use crate::boxfile;
use crate::error::{ExitStatus, Hinted};
use crate::project;

use super::Settings;

pub(crate) fn run(g: &Settings, args: crate::cli::ValidateArgs) -> anyhow::Result<ExitStatus> {
    let root = project::find_root(&g.cwd).ok_or_else(|| {
        Hinted::new(
            format!("no Boxfile in {} or any parent folder", g.cwd.display()),
            "run `box init` to write a starter Boxfile",
        )
    })?;
    let checked = boxfile::check(&root).context("cannot check the Boxfile")?;
    let valid = checked.diagnostics.is_empty();
    if args.json {
        let doc = serde_json::json!({
            "valid": valid,
            "diagnostics": checked.diagnostics,
        });
        g.printer.data(&serde_json::to_string_pretty(&doc)?);
    } else {
        for d in &checked.diagnostics {
            g.printer.err_bytes(format!("{d}\n\n").as_bytes());
        }
        if valid {
            let n = checked.project.as_ref().map_or(0, |p| p.machines.len());
            let noun = if n == 1 { "machine" } else { "machines" };
            g.printer.info(&format!("Boxfile is valid ({n} {noun})"));
        } else {
            let n = checked.problem_count();
            let noun = if n == 1 { "problem" } else { "problems" };
            let mut files: Vec<&str> = checked
                .diagnostics
                .iter()
                .map(|d| d.file.as_str())
                .collect();
            files.dedup();
            g.printer.error(&anyhow::anyhow!(
                "found {n} {noun} in {}",
                files.join(" and ")
            ));
        }
    }
    Ok(if valid {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
