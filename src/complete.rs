//! Shell completion at run time.
//!
//! The script `box completions SHELL` prints makes the shell call `box` back
//! with `COMPLETE=SHELL` set each time the user presses Tab (clap_complete's
//! dynamic engine). [`respond`] answers that call before any normal parsing,
//! so machine names come from the Boxfile of the folder the user is in (or of
//! `-C DIR`) at that moment, not from when the script was written.
//!
//! A completion never fails loudly: whatever goes wrong, it offers nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::OnceLock;

use clap::CommandFactory;
use clap_complete::engine::CompletionCandidate;
use clap_complete::env::{CompleteEnv, EnvCompleter, Shells};

/// The variable that turns a run of `box` into a completion request.
pub const VAR: &str = "COMPLETE";

/// The callback's arguments, for candidates that depend on other words
/// (`-C DIR`): clap_complete hands a candidate function nothing.
static WORDS: OnceLock<Vec<OsString>> = OnceLock::new();

/// Answers a completion request, if this run is one, and says how to exit.
pub fn respond(args: &[OsString]) -> Option<ExitCode> {
    // Only a shell's name (or path) makes a request: a COMPLETE=1 left in
    // someone's environment must not turn every run into a silent no-op.
    let shell = std::env::var_os(VAR)?;
    let shell = Path::new(&shell).file_stem()?.to_str()?;
    Shells::builtins().completer(shell)?;
    let _ = WORDS.set(args.to_vec());
    let cwd = std::env::current_dir().ok();
    // clap_complete writes the answer (or the registration script) itself.
    match CompleteEnv::with_factory(crate::cli::Cli::command)
        .var(VAR)
        .try_complete(args.iter().cloned(), cwd.as_deref())
    {
        Ok(true) => Some(ExitCode::SUCCESS),
        Ok(false) => None,
        Err(_) => Some(ExitCode::FAILURE),
    }
}

/// The registration script for `shell`: exactly what `COMPLETE=SHELL box`
/// prints, so both ways of enabling completion give the same result.
pub fn registration(shell: &dyn EnvCompleter) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    shell.write_registration(VAR, "box", "box", &completer(), &mut buf)?;
    Ok(buf)
}

/// The program the shell calls back: `box` as it was started, a relative
/// path made absolute (as clap_complete's own registration does).
fn completer() -> String {
    let mut program = PathBuf::from(std::env::args_os().next().unwrap_or_else(|| "box".into()));
    if program.components().count() > 1 {
        if let Ok(cwd) = std::env::current_dir() {
            program = cwd.join(program);
        }
    }
    program.to_string_lossy().into_owned()
}

/// Candidates for an argument that takes machine names.
pub fn machines() -> Vec<CompletionCandidate> {
    let words = WORDS.get().map(Vec::as_slice).unwrap_or_default();
    let Some(dir) = folder_of(words).or_else(|| std::env::current_dir().ok()) else {
        return Vec::new();
    };
    machine_names(&dir)
        .into_iter()
        .map(CompletionCandidate::new)
        .collect()
}

/// The folder named by `-C DIR`, `-CDIR`, `--dir DIR` or `--dir=DIR` among
/// the words being completed (those after the first `--` of the callback).
fn folder_of(args: &[OsString]) -> Option<PathBuf> {
    let start = args.iter().position(|a| a == "--")? + 1;
    let words: Vec<&str> = args[start..].iter().filter_map(|a| a.to_str()).collect();
    let mut dir = None;
    let mut i = 0;
    while i < words.len() {
        let word = words[i];
        if word == "--" {
            break;
        }
        if word == "-C" || word == "--dir" {
            dir = words.get(i + 1).copied();
            i += 1;
        } else if let Some(d) = word.strip_prefix("--dir=") {
            dir = Some(d);
        } else if let Some(d) = word.strip_prefix("-C").filter(|d| !d.is_empty()) {
            dir = Some(d);
        }
        i += 1;
    }
    // The shell has not expanded `~` in a word still being edited.
    dir.map(|d| match d.strip_prefix("~/") {
        Some(rest) => dirs::home_dir().unwrap_or_default().join(rest),
        None => PathBuf::from(d),
    })
}

/// The machine names of the Boxfile at or above `dir`, read cheaply: the
/// file is parsed as TOML and only `[[machine]] name` is looked at, so a
/// Boxfile with other mistakes still completes. Nothing on any error.
pub fn machine_names(dir: &Path) -> Vec<String> {
    let Some(root) = crate::project::find_root(dir) else {
        return Vec::new();
    };
    let Ok(text) = std::fs::read_to_string(root.join(crate::project::BOXFILE)) else {
        return Vec::new();
    };
    let Ok(doc) = text.parse::<toml::Table>() else {
        return Vec::new();
    };
    let Some(machines) = doc.get("machine").and_then(toml::Value::as_array) else {
        return Vec::new();
    };
    machines
        .iter()
        .filter_map(|m| m.get("name")?.as_str())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_folder_comes_from_every_spelling_of_dir() {
        for (args, want) in [
            (&["box", "--", "box", "-C", "/p", "up", ""][..], Some("/p")),
            (&["box", "--", "box", "-C/p", "up", ""][..], Some("/p")),
            (
                &["box", "--", "box", "--dir", "/p", "up", ""][..],
                Some("/p"),
            ),
            (&["box", "--", "box", "up", "--dir=/p", ""][..], Some("/p")),
            (&["box", "--", "box", "up", ""][..], None),
            // After `--` the words are a remote command's, not box's flags.
            (
                &["box", "--", "box", "ssh", "web", "--", "-C", "/p"][..],
                None,
            ),
        ] {
            assert_eq!(folder_of(&words(args)), want.map(PathBuf::from), "{args:?}");
        }
    }

    #[test]
    fn machine_names_skip_a_boxfile_that_is_not_toml() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("Boxfile"), "[[machine]\nname = \"web\"\n").unwrap();
        assert!(machine_names(dir.path()).is_empty());
    }

    #[test]
    fn machine_names_are_found_from_a_subfolder_despite_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("Boxfile"),
            "[project]\nbogus = 1\n[[machine]]\nname = \"web\"\n[[machine]]\nname = \"db\"\nmemory = \"lots\"\n",
        )
        .unwrap();
        let sub = dir.path().join("src");
        std::fs::create_dir(&sub).unwrap();
        assert_eq!(machine_names(&sub), ["web", "db"]);
    }
}
