//! Where the `file` provisioner puts what it copies. The source is uploaded
//! into a private staging folder, then copied into place with `cp` by one
//! command, run through sudo when the step is privileged: privileged or
//! not, the same command decides where things land, and nothing is ever
//! deleted to make room.
//!
//! - a file onto an existing folder goes inside it; onto an existing file it
//!   replaces the content (the file keeps its owner and mode); missing
//!   parent folders are created (as Vagrant does; `scp` would fail);
//! - a folder is merged into the destination folder, which is created when
//!   missing (as Vagrant does; so a step that runs again lands in the same
//!   place instead of nesting a copy, as `scp -r` would);
//! - a destination ending in `/` is a folder that receives the source under
//!   its own name, like `scp -r src host:dir/`;
//! - a folder onto an existing file fails, and the file stays.

use crate::ssh::quote;

/// The destination as the guest shell sees it: `~` and `~/x` are relative
/// to the login folder, where the command starts.
fn guest_path(destination: &str) -> String {
    match destination.strip_prefix('~') {
        Some("") => ".".to_string(),
        Some(rest) if rest.starts_with('/') => format!(".{rest}"),
        _ => destination.to_string(),
    }
}

/// The folder holding `path` (which does not end in `/`).
fn parent(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => ".",
    }
}

/// The shell command that copies `staged` (an upload of a file, or of a
/// folder when `is_dir`) to `destination`.
pub(super) fn placement(staged: &str, is_dir: bool, destination: &str) -> String {
    let dest = guest_path(destination);
    let into = dest.ends_with('/');
    let d = quote(&dest);
    let s = quote(staged);
    match (is_dir, into) {
        (true, true) => format!("mkdir -p -- {d} && cp -R -- {s} {d}"),
        // `src/.` copies the folder's content: merged into `dest`.
        (true, false) => format!("mkdir -p -- {d} && cp -R -- {s}/. {d}"),
        (false, true) => format!("mkdir -p -- {d} && cp -- {s} {d}"),
        (false, false) => format!("mkdir -p -- {p} && cp -- {s} {d}", p = quote(parent(&dest))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn home_relative_destinations_start_in_the_login_folder() {
        assert_eq!(guest_path("~"), ".");
        assert_eq!(guest_path("~/"), "./");
        assert_eq!(guest_path("~/.gitconfig"), "./.gitconfig");
        assert_eq!(guest_path("/etc/motd"), "/etc/motd");
        assert_eq!(guest_path("~other/x"), "~other/x");
    }

    #[test]
    fn every_placement_creates_what_is_missing_and_never_deletes() {
        let cases = [
            (
                false,
                "/etc/motd",
                "mkdir -p -- /etc && cp -- /tmp/s/m /etc/motd",
            ),
            (false, "/etc/", "mkdir -p -- /etc/ && cp -- /tmp/s/m /etc/"),
            (false, "motd", "mkdir -p -- . && cp -- /tmp/s/m motd"),
            (false, "/motd", "mkdir -p -- / && cp -- /tmp/s/m /motd"),
            (
                true,
                "/srv/app",
                "mkdir -p -- /srv/app && cp -R -- /tmp/s/m/. /srv/app",
            ),
            (
                true,
                "/srv/",
                "mkdir -p -- /srv/ && cp -R -- /tmp/s/m /srv/",
            ),
            (
                true,
                "~/my app",
                "mkdir -p -- './my app' && cp -R -- /tmp/s/m/. './my app'",
            ),
        ];
        for (is_dir, dest, want) in cases {
            let cmd = placement("/tmp/s/m", is_dir, dest);
            assert_eq!(cmd, want);
            assert!(!cmd.contains("rm "), "{cmd}");
        }
    }
}
