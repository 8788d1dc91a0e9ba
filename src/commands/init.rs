//! `box init`: write a commented starter Boxfile, or a ready-made stack
//! (`--template`), never over an existing file.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use crate::boxfile;
use crate::error::{ExitStatus, Hinted};
use crate::project::BOXFILE;
use crate::templates::{self, Template, TEMPLATES};

use super::Settings;

pub(crate) fn run(g: &Settings, args: crate::cli::InitArgs) -> anyhow::Result<ExitStatus> {
    if args.list {
        let width = TEMPLATES.iter().map(|t| t.name.len()).max().unwrap_or(0);
        for t in TEMPLATES {
            g.printer
                .data(&format!("{:width$}  {}", t.name, t.summary, width = width));
        }
        return Ok(ExitStatus::Success);
    }
    let template = match &args.template {
        Some(name) => Some(template(name)?),
        None => None,
    };
    let name = match args.name {
        Some(n) => {
            boxfile::check_host_name(&n).map_err(|why| {
                Hinted::new(
                    format!("invalid project name `{n}`: {why}"),
                    boxfile::HOST_NAME_HELP,
                )
            })?;
            n
        }
        None => boxfile::default_project_name(&g.cwd),
    };
    let files = match template {
        Some(t) => t.render(&name),
        None => vec![(BOXFILE, boxfile::starter(&name))],
    };
    write_all(&g.cwd, &files)?;
    for (path, _) in &files {
        g.printer
            .info(&format!("wrote {}", g.cwd.join(path).display()));
    }
    g.printer
        .info("next: `box validate` to check it, then `box up` to start the machines");
    Ok(ExitStatus::Success)
}

fn template(name: &str) -> anyhow::Result<&'static Template> {
    templates::find(name).ok_or_else(|| {
        let known: Vec<&str> = TEMPLATES.iter().map(|t| t.name).collect();
        let close = crate::suggest::did_you_mean(name, known.iter().copied()).or_else(|| {
            known
                .iter()
                .copied()
                .find(|k| crate::suggest::is_transposition(name, k))
        });
        let hint = match close {
            Some(s) => format!("did you mean `{s}`? (`box init --list` shows them all)"),
            None => format!("the templates are: {}", known.join(", ")),
        };
        Hinted::new(format!("no template named `{name}`"), hint).into()
    })
}

/// Writes every file, or none: a file that exists already stops the whole
/// init before anything is written, and a failure part way removes what
/// this init wrote.
fn write_all(dir: &Path, files: &[(&str, String)]) -> anyhow::Result<()> {
    let existing: Vec<&str> = files
        .iter()
        .map(|(p, _)| *p)
        .filter(|p| dir.join(p).symlink_metadata().is_ok())
        .collect();
    if let Some(first) = existing.first() {
        let what = if *first == BOXFILE {
            format!("a Boxfile already exists in {}", dir.display())
        } else {
            format!(
                "{} already exists in {}",
                existing.join(", "),
                dir.display()
            )
        };
        return Err(Hinted::new(what, "edit it, or move it away to start over").into());
    }
    let mut written: Vec<PathBuf> = Vec::new();
    let mut made_dirs: Vec<PathBuf> = Vec::new();
    let result = files.iter().try_for_each(|(rel, text)| {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            let mut missing = Vec::new();
            let mut d = parent;
            while !d.exists() {
                missing.push(d.to_path_buf());
                match d.parent() {
                    Some(p) => d = p,
                    None => break,
                }
            }
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
            made_dirs.extend(missing.into_iter().rev());
        }
        write_new(&path, text)?;
        written.push(path);
        Ok(())
    });
    if result.is_err() {
        for p in &written {
            let _ = std::fs::remove_file(p);
        }
        for d in made_dirs.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
    result
}

/// `path` created (never replaced: refusing to overwrite must hold even if
/// two inits race) with `text`.
fn write_new(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(Hinted::new(
                format!("{} already exists", path.display()),
                "edit it, or move it away to start over",
            )
            .into())
        }
        Err(e) => {
            return Err(anyhow::Error::new(e).context(format!("cannot create {}", path.display())))
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}
