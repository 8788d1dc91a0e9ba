//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The real `box` binary, with its user folders kept inside `home` so
/// tests never read or write the developer's own configuration.
pub fn box_cmd(home: &Path) -> Command {
    let mut cmd = Command::cargo_bin("box").expect("the box binary is built");
    cmd.env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("CLOUDSTACK_API_URL")
        .env_remove("CLOUDSTACK_API_KEY")
        .env_remove("CLOUDSTACK_SECRET_KEY")
        .env_remove("BOX_PROFILE");
    cmd
}

/// A system program the test needs. Missing means the test fails: it must
/// never pass by skipping (scripts/test installs everything).
pub fn require(program: &str) -> std::path::PathBuf {
    which(program).unwrap_or_else(|| {
        panic!("`{program}` is required by this test but not installed; run scripts/test, which installs it")
    })
}

pub fn which(program: &str) -> Option<std::path::PathBuf> {
    if program.contains('/') {
        let p = std::path::PathBuf::from(program);
        return p.exists().then_some(p);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .chain(["/usr/sbin".into(), "/sbin".into()])
            .map(|d| d.join(program))
            .find(|p| p.is_file())
    })
}
