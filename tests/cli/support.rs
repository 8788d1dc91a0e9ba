//! Helpers shared by the integration tests.

#![allow(dead_code)]

use std::path::Path;

use assert_cmd::Command;

/// The real `box` binary, with its user folders kept inside `home` so
/// tests never read or write the developer's own configuration.
pub fn box_cmd(home: &Path) -> Command {
    Command::from_std(box_command(home))
}

/// `box_cmd` as a plain `std::process::Command`, for a run that is spawned
/// rather than waited for.
pub fn box_command(home: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("box"));
    cmd.env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("CLOUDSTACK_API_URL")
        .env_remove("CLOUDSTACK_API_KEY")
        .env_remove("CLOUDSTACK_SECRET_KEY")
        .env_remove("BOX_PROFILE");
    cmd
}

/// `box validate` of the project in `dir`, with a throwaway `BOX_HOME`.
pub fn validate(dir: &Path) -> std::process::Output {
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir)
        .arg("validate")
        .output()
        .unwrap()
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

/// The `cloudstack-sim` binary, built on demand: `cargo test --test cli`
/// builds only this package's binaries, not the other workspace members'.
/// It lives next to the `box` binary in the target folder.
pub fn sim_binary() -> std::path::PathBuf {
    static BUILD: std::sync::Once = std::sync::Once::new();
    let box_bin = assert_cmd::cargo::cargo_bin("box");
    let path = box_bin
        .parent()
        .expect("the box binary is in a folder")
        .join("cloudstack-sim");
    BUILD.call_once(|| {
        if !path.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args([
                    "build",
                    "-q",
                    "-p",
                    "cloudstack-sim",
                    "--bin",
                    "cloudstack-sim",
                ])
                .status()
                .expect("cargo runs");
            assert!(status.success(), "cannot build cloudstack-sim");
        }
    });
    assert!(path.exists(), "{} was not built", path.display());
    path
}
