//! OpenSSH client configuration for box machines, so `ssh`, `scp` and
//! editors' remote plugins reach them with the pinned host key checked.

use std::fmt::Write as _;
use std::path::Path;

use crate::state::SshTarget;

/// `Host` alias of a machine: `<project>-<machine>`.
pub fn alias(project: &str, machine: &str) -> String {
    format!("{project}-{machine}")
}

/// The known_hosts line for a target, in the form OpenSSH looks up.
pub fn known_hosts_line(target: &SshTarget) -> String {
    let key = crate::keys::public_key_without_comment(&target.host_key);
    if target.port == 22 {
        format!("{} {key}", target.host)
    } else {
        format!("[{}]:{} {key}", target.host, target.port)
    }
}

/// The known_hosts file box writes under a project's `.box/` folder.
pub const KNOWN_HOSTS: &str = "ssh_known_hosts";

/// Writes (atomically) a known_hosts file with the pinned key of every
/// target: the one file `ssh-config`'s blocks, the Ansible inventory and
/// other OpenSSH clients box hands a machine to check host keys against.
pub fn write_known_hosts<'a>(
    path: &Path,
    targets: impl IntoIterator<Item = &'a SshTarget>,
) -> std::io::Result<()> {
    let mut lines: Vec<String> = targets.into_iter().map(known_hosts_line).collect();
    lines.sort();
    lines.dedup();
    let mut text = lines.join("\n");
    text.push('\n');
    crate::fsutil::write_atomic(path, text.as_bytes(), 0o644)
}

/// One `Host` block.
pub fn host_block(alias: &str, target: &SshTarget, known_hosts: &Path) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "Host {alias}");
    let _ = writeln!(s, "  HostName {}", target.host);
    let _ = writeln!(s, "  Port {}", target.port);
    let _ = writeln!(s, "  User {}", target.user);
    let _ = writeln!(s, "  IdentityFile {}", arg(&target.identity_file));
    let _ = writeln!(s, "  IdentitiesOnly yes");
    let _ = writeln!(s, "  UserKnownHostsFile {}", arg(known_hosts));
    let _ = writeln!(s, "  StrictHostKeyChecking yes");
    let _ = writeln!(s, "  HostKeyAlias {}", host_key_alias(target));
    let _ = writeln!(s, "  PasswordAuthentication no");
    let _ = writeln!(s, "  ControlMaster auto");
    // %C hashes host, port and user: short enough for a socket path anywhere.
    let _ = writeln!(s, "  ControlPath /tmp/box-%C");
    let _ = writeln!(s, "  ControlPersist 10m");
    let _ = writeln!(s, "  LogLevel ERROR");
    s
}

/// The name known_hosts entries are looked up under (same as OpenSSH's
/// default for the address), kept explicit so an alias never changes it.
fn host_key_alias(target: &SshTarget) -> String {
    if target.port == 22 {
        target.host.clone()
    } else {
        format!("[{}]:{}", target.host, target.port)
    }
}

/// A path as one config argument (quoted when it has spaces).
fn arg(path: &Path) -> String {
    let s = path.display().to_string();
    if s.contains(char::is_whitespace) {
        format!("\"{s}\"")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(port: u16) -> SshTarget {
        SshTarget {
            host: "127.0.0.1".into(),
            port,
            user: "box".into(),
            identity_file: "/p/my project/.box/keys/id_ed25519".into(),
            host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB box-host".into(),
        }
    }

    #[test]
    fn known_hosts_uses_brackets_for_a_non_default_port() {
        assert_eq!(
            known_hosts_line(&target(2222)),
            "[127.0.0.1]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB"
        );
        assert!(known_hosts_line(&target(22)).starts_with("127.0.0.1 ssh-ed25519"));
    }

    #[test]
    fn host_block_quotes_paths_with_spaces_and_checks_host_keys() {
        let b = host_block("shop-web", &target(2222), Path::new("/p/.box/known_hosts"));
        assert!(b.starts_with("Host shop-web\n"));
        assert!(b.contains("  IdentityFile \"/p/my project/.box/keys/id_ed25519\"\n"));
        assert!(b.contains("  StrictHostKeyChecking yes\n"));
        assert!(b.contains("  HostKeyAlias [127.0.0.1]:2222\n"));
    }
}
