//! Pairing: a teammate's public key in a machine's login user's
//! `authorized_keys`, under a name, so `box unshare` can take it out again.
//!
//! Each shared key is one line of `~/.ssh/authorized_keys` whose comment is
//! `box-share:NAME`; box edits only such lines, never the project key's or
//! any other. The names are recorded in the machine's state and, on
//! CloudStack, in the VM's `box:shared` tag (a comma-separated list) for
//! `box ls --all`.

use serde::{Deserialize, Serialize};

use crate::error::Hinted;

/// The comment that marks a line box added.
pub const MARK: &str = "box-share:";

/// A teammate's key shared on a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shared {
    pub name: String,
    /// The public key, `type base64` (no comment).
    pub key: String,
}

/// A name: letters, digits, `.`, `_` and `-`, at most 32 (it goes into a
/// key comment and a comma-separated tag).
pub fn check_name(name: &str) -> Result<(), Hinted> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(Hinted::new(
            format!("`{name}` is not a valid share name"),
            "use letters, digits, `.`, `_` and `-` (at most 32), e.g. `--name alice`",
        ))
    }
}

/// The key of a `.pub` file: its one OpenSSH public key, without comment,
/// and the comment (a default name).
pub fn parse_public_key(text: &str) -> Result<(String, Option<String>), String> {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "it holds {} keys; give a file with exactly one public key",
            lines.len()
        ));
    };
    let key = ssh_key::PublicKey::from_openssh(line)
        .map_err(|e| format!("it is not an OpenSSH public key ({e})"))?;
    let bare = key
        .to_openssh()
        .map(|s| crate::keys::public_key_without_comment(&s))
        .map_err(|e| format!("cannot encode the key ({e})"))?;
    let comment = Some(key.comment().to_string()).filter(|c| !c.is_empty());
    Ok((bare, comment))
}

/// A default name from a key comment such as `alice@laptop`.
pub fn name_from_comment(comment: &str) -> Option<String> {
    let user = comment.split('@').next().unwrap_or_default();
    check_name(user).is_ok().then(|| user.to_string())
}

/// The remote command that makes `authorized_keys` hold exactly `line` for
/// `name` (or no line for it when `line` is `None`), atomically and with
/// the modes sshd insists on. Runs as the login user.
pub fn edit_command(name: &str, line: Option<&str>) -> String {
    // Names hold no regex character but `.`.
    let pattern = format!(" {MARK}{}$", name.replace('.', "\\."));
    let add = match line {
        Some(l) => format!(" printf '%s\\n' {};", quote(&format!("{l} {MARK}{name}"))),
        None => String::new(),
    };
    format!(
        "set -e; umask 077; mkdir -p ~/.ssh; f=~/.ssh/authorized_keys; t=\"$f.box-share\"; touch \"$f\"; \
         {{ grep -v -e {} \"$f\" || true;{add} }} > \"$t\"; chmod 600 \"$t\"; mv \"$t\" \"$f\"",
        quote(&pattern)
    )
}

fn quote(s: &str) -> String {
    crate::ssh::quote::quote(s)
}

/// The `box:shared` tag's value: the names, sorted, comma-separated.
pub fn tag_value(shared: &[Shared]) -> String {
    let mut names: Vec<&str> = shared.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop";

    #[test]
    fn a_public_key_file_gives_the_bare_key_and_a_default_name() {
        let (key, comment) = parse_public_key(&format!("{KEY}\n")).unwrap();
        assert_eq!(key, crate::keys::public_key_without_comment(KEY));
        assert_eq!(comment.as_deref(), Some("alice@laptop"));
        assert_eq!(name_from_comment("alice@laptop").as_deref(), Some("alice"));
        assert!(parse_public_key("").is_err());
        assert!(parse_public_key(&format!("{KEY}\n{KEY}\n")).is_err());
        assert!(parse_public_key("-----BEGIN OPENSSH PRIVATE KEY-----").is_err());
    }

    #[test]
    fn names_fit_a_key_comment_and_a_comma_separated_tag() {
        assert!(check_name("alice.b-c_1").is_ok());
        for bad in ["", "a,b", "a b", "a:b", &"x".repeat(33)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }

    /// Runs the edit on a real file with a real shell, HOME pointing at it.
    fn edit(home: &std::path::Path, name: &str, line: Option<&str>) {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(edit_command(name, line))
            .env("HOME", home)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn sharing_adds_one_marked_line_and_unsharing_removes_only_it() {
        let home = tempfile::tempdir().unwrap();
        let ssh = home.path().join(".ssh");
        std::fs::create_dir_all(&ssh).unwrap();
        let file = ssh.join("authorized_keys");
        std::fs::write(&file, "ssh-ed25519 AAAAproject box:shop\n").unwrap();
        edit(home.path(), "alice", Some("ssh-ed25519 AAAAalice"));
        edit(home.path(), "al", Some("ssh-ed25519 AAAAal"));
        // Sharing again under a name replaces that name's key.
        edit(home.path(), "alice", Some("ssh-ed25519 AAAAalice2"));
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "ssh-ed25519 AAAAproject box:shop\nssh-ed25519 AAAAal box-share:al\nssh-ed25519 AAAAalice2 box-share:alice\n"
        );
        edit(home.path(), "alice", None);
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            "ssh-ed25519 AAAAproject box:shop\nssh-ed25519 AAAAal box-share:al\n"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Unsharing a name that is not there changes nothing.
        edit(home.path(), "bob", None);
        assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
    }

    #[test]
    fn the_tag_lists_the_names_sorted() {
        let s = |n: &str| Shared {
            name: n.into(),
            key: "k".into(),
        };
        assert_eq!(tag_value(&[s("bob"), s("alice")]), "alice,bob");
        assert_eq!(tag_value(&[]), "");
    }
}
