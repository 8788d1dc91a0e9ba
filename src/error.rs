//! Exit codes and the few error types shared across modules.
//!
//! Library modules define their own `thiserror` enums; commands add context
//! with `anyhow` and the top level prints the chain plus any `hint:`.

/// The documented exit codes of `box` (see README, "Exit codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Everything asked for was done.
    Success = 0,
    /// The command failed, or the Boxfile is invalid.
    Failure = 1,
    /// The command line could not be parsed.
    Usage = 2,
    /// Several machines were targeted and at least one failed; the others went on.
    Partial = 3,
    /// The verb (or the verb on this provider) is not available in this build.
    Unsupported = 4,
    /// Another `box` command held the project lock for too long.
    Locked = 5,
    /// Interrupted by Ctrl-C; what was left is printed.
    Interrupted = 130,
}

/// An error that carries a next step for the user, printed as `hint: ...`.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Hinted {
    pub message: String,
    pub hint: String,
}

impl Hinted {
    pub fn new(message: impl Into<String>, hint: impl Into<String>) -> Self {
        Hinted {
            message: message.into(),
            hint: hint.into(),
        }
    }
}

/// A verb, or a verb on one provider, that this build of box does not
/// offer (exit code 4): scripts can tell "box cannot do this here" from
/// "it tried and failed".
#[derive(Debug, thiserror::Error)]
#[error("`box {verb}` is not available {on} in this build")]
pub struct NotAvailable {
    /// The verb as typed, e.g. `logs`.
    pub verb: String,
    /// Where it is missing, e.g. "for `web` (a cloudstack machine)".
    pub on: String,
    /// What to do instead.
    pub hint: String,
}

/// A remote command's non-zero exit code, which `box ssh` and `box exec`
/// exit with (as `ssh` does); `lib.rs::run` exits with it silently.
#[derive(Debug, thiserror::Error)]
#[error("the remote command exited with code {0}")]
pub struct RemoteExit(pub u8);

/// Maps an error to the exit status it should produce.
pub fn exit_status_of(e: &anyhow::Error) -> ExitStatus {
    for cause in e.chain() {
        if cause.downcast_ref::<NotAvailable>().is_some() {
            return ExitStatus::Unsupported;
        }
        if cause.downcast_ref::<crate::lock::LockError>().is_some() {
            return ExitStatus::Locked;
        }
    }
    ExitStatus::Failure
}

/// Every `hint:` found along an error's cause chain, outermost first.
pub fn hints_of(e: &anyhow::Error) -> Vec<String> {
    e.chain()
        .filter_map(|c| {
            c.downcast_ref::<Hinted>()
                .map(|h| h.hint.clone())
                .or_else(|| c.downcast_ref::<NotAvailable>().map(|n| n.hint.clone()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_available_exits_4_with_its_hint_even_under_context() {
        let e = anyhow::Error::new(NotAvailable {
            verb: "logs".into(),
            on: "for `web` (a cloudstack machine)".into(),
            hint: "use the cloud's console".into(),
        })
        .context("while reading logs");
        assert_eq!(exit_status_of(&e), ExitStatus::Unsupported);
        assert_eq!(hints_of(&e), ["use the cloud's console"]);
        assert_eq!(
            e.chain().nth(1).unwrap().to_string(),
            "`box logs` is not available for `web` (a cloudstack machine) in this build"
        );
    }
}
