//! The `script` provisioner's command line: a host script uploaded into a
//! private staging folder and run there with its `env` and `args`.
//!
//! `env` entries become `NAME=value` words after `env --`, each quoted, and
//! names are checked first: a name such as `--split-string=cmd` must never
//! reach `env` as an option (it would run `cmd`, as root when privileged).
//! The Boxfile's validation refuses such names too; this is the mechanism
//! that stays safe whatever reaches it.

use std::collections::BTreeMap;

use crate::ssh::quote::join;

use super::ProvisionError;

/// A POSIX shell variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub(super) fn is_variable_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Refuses the first `env` name that is not a shell variable name.
pub(super) fn check_env(step: &str, env: &BTreeMap<String, String>) -> Result<(), ProvisionError> {
    match env.keys().find(|k| !is_variable_name(k)) {
        Some(key) => Err(ProvisionError::EnvName {
            step: step.to_string(),
            key: key.clone(),
        }),
        None => Ok(()),
    }
}

/// The command that runs the uploaded script at `remote` (names already
/// checked with [`check_env`]).
pub(super) fn command(
    remote: &str,
    starts_with_shebang: bool,
    args: &[String],
    env: &BTreeMap<String, String>,
) -> String {
    let mut words: Vec<String> = Vec::new();
    if !env.is_empty() {
        words.push("env".into());
        words.push("--".into());
        words.extend(env.iter().map(|(k, v)| format!("{k}={v}")));
    }
    // A script without `#!` runs under sh, as it would from a shell.
    if !starts_with_shebang {
        words.push("sh".into());
    }
    words.push(remote.to_string());
    words.extend(args.iter().cloned());
    join(&words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_names_are_letters_digits_and_underscores_not_starting_with_a_digit() {
        for good in ["A", "_", "GREETING", "a_b1", "_9"] {
            assert!(is_variable_name(good), "{good}");
        }
        for bad in ["", "1A", "A=B", "X Y", "--split-string", "-i", "A-B", "É"] {
            assert!(!is_variable_name(bad), "{bad}");
        }
    }

    #[test]
    fn env_words_follow_a_double_dash_and_are_quoted() {
        let env = BTreeMap::from([("GREETING".to_string(), "hi $(x)".to_string())]);
        assert_eq!(
            command("/tmp/s/x.sh", true, &["a b".to_string()], &env),
            "env -- 'GREETING=hi $(x)' /tmp/s/x.sh 'a b'"
        );
        assert_eq!(
            command("/tmp/s/x.sh", false, &[], &BTreeMap::new()),
            "sh /tmp/s/x.sh"
        );
    }

    #[test]
    fn a_name_that_looks_like_an_option_is_refused() {
        let env = BTreeMap::from([("--split-string".to_string(), "touch x".to_string())]);
        let err = check_env("tool", &env).unwrap_err().to_string();
        assert!(err.contains("provisioner `tool`"), "{err}");
        assert!(err.contains("\"--split-string\""), "{err}");
    }
}
