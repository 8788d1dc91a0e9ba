//! What a command runs with: the global flags, the environment and the
//! user's files, resolved once before any verb starts, so no verb or
//! provider reads `BOX_*` variables of its own for these.

use std::path::PathBuf;

use crate::config::Paths;
use crate::output::Printer;

/// Everything a verb may need from the global flags and the environment.
pub struct Settings {
    /// Where the Boxfile is looked up (`-C`, else the current folder).
    pub cwd: PathBuf,
    pub printer: Printer,
    /// `--isolated` or `BOX_ISOLATED` (the Boxfile may also ask for it).
    pub isolated: bool,
    /// The user's files (`BOX_HOME`, else the platform's folders).
    pub paths: Paths,
    /// The CloudStack profile asked for by `BOX_PROFILE`; `box api
    /// --profile` overrides it, the Boxfile's is the fallback.
    pub profile: Option<String>,
    /// `--trust`: host triggers may run without being trusted, this once.
    pub trust: bool,
}

impl Settings {
    pub fn resolve(dir: Option<PathBuf>, isolated: bool, printer: Printer) -> anyhow::Result<Self> {
        let cwd = match dir {
            Some(d) => d,
            None => std::env::current_dir()?,
        };
        Ok(Settings {
            cwd,
            printer,
            isolated,
            paths: Paths::from_env(),
            // An empty value counts as unset, as it did for clap's `env`.
            profile: std::env::var("BOX_PROFILE").ok().filter(|p| !p.is_empty()),
            trust: false,
        })
    }
}
