//! `box validate` and `box init` on real files: the exact text of every
//! Boxfile diagnostic is pinned by insta snapshots, one per broken Boxfile
//! under `tests/cli/boxfiles/` (`NAME.toml` is the Boxfile, `NAME.local.toml`
//! a `Boxfile.local` beside it).

use std::fs;
use std::path::{Path, PathBuf};

use crate::support::box_cmd;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/cli/boxfiles")
        .join(name)
}

/// A project folder holding the fixture as `Boxfile` (and `Boxfile.local`).
fn project(case: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::copy(fixture(&format!("{case}.toml")), dir.path().join("Boxfile")).unwrap();
    let local = fixture(&format!("{case}.local.toml"));
    if local.exists() {
        fs::copy(local, dir.path().join("Boxfile.local")).unwrap();
    }
    dir
}

/// Runs `box validate` on a broken fixture: it must exit 1, print nothing on
/// stdout, and its stderr (temp paths replaced) is returned.
fn validate_fails(case: &str) -> String {
    let dir = project(case);
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{case} must be invalid");
    assert!(out.stdout.is_empty(), "diagnostics go to stderr");
    let root = dir.path().to_string_lossy().to_string();
    String::from_utf8(out.stderr)
        .unwrap()
        .replace(&root, "[ROOT]")
}

macro_rules! broken_boxfile {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                insta::assert_snapshot!(stringify!($case), validate_fails(stringify!($case)));
            }
        )*
    };
}

mod broken {
    use super::validate_fails;

    broken_boxfile!(
        syntax_error,
        misspelled_keys,
        wrong_types,
        duplicate_machine_names,
        unknown_dependency,
        dependency_cycle,
        host_port_clash,
        missing_sync_source,
        invalid_machine_names,
        invalid_enum_values,
        provisioner_kind,
        ports_out_of_range,
        missing_script_and_file,
        zero_memory_and_cpus,
        two_primaries,
        duplicate_provisioner_names,
        relative_guest_paths,
        cloudstack_settings,
        single_bracket_machine,
        no_machines,
        local_overrides,
        local_syntax_error,
    );
}

#[test]
fn validate_accepts_the_example_boxfile() {
    let dir = tempfile::tempdir().unwrap();
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    fs::copy(repo.join("Boxfile.example"), dir.path().join("Boxfile")).unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .assert()
        .success()
        .stdout("")
        .stderr("Boxfile is valid (2 machines)\n");
}

#[test]
fn validate_finds_the_boxfile_from_a_subfolder() {
    let dir = project("dependency_cycle");
    let sub = dir.path().join("src/deep");
    fs::create_dir_all(&sub).unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .current_dir(&sub)
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "Boxfile:11:15: `depends_on` forms a cycle",
        ));
}

#[test]
fn validate_without_a_boxfile_says_how_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("no Boxfile in"))
        .stderr(predicates::str::contains("hint: run `box init`"));
}

#[test]
fn validate_json_lists_every_diagnostic_on_stdout() {
    let dir = project("local_overrides");
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["validate", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(doc["valid"], false);
    insta::assert_snapshot!("validate_json_invalid", text);
}

#[test]
fn validate_json_on_a_valid_boxfile() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Boxfile"), "[[machine]]\nname = \"web\"\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["validate", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc, serde_json::json!({"valid": true, "diagnostics": []}));
}

#[test]
fn a_broken_boxfile_stops_other_commands_with_a_pointer_to_validate() {
    let dir = project("two_primaries");
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("status")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "Boxfile:7:1: more than one primary machine",
        ))
        .stderr(predicates::str::contains("box validate"));
}

#[test]
fn init_writes_a_starter_boxfile_that_validates() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("My Shop");
    fs::create_dir(&dir).unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(&dir)
        .arg("init")
        .assert()
        .success()
        .stdout("");
    let text = fs::read_to_string(dir.join("Boxfile")).unwrap();
    assert!(text.contains("name = \"my-shop\""), "{text}");
    box_cmd(home.path())
        .arg("-C")
        .arg(&dir)
        .arg("validate")
        .assert()
        .success()
        .stderr("Boxfile is valid (1 machine)\n");
}

#[test]
fn init_uses_the_given_name_and_rejects_an_invalid_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["init", "--name", "Bad_Name"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains("invalid project name `Bad_Name`"));
    assert!(!dir.path().join("Boxfile").exists());
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["init", "--name", "shop"])
        .assert()
        .success();
    let text = fs::read_to_string(dir.path().join("Boxfile")).unwrap();
    assert!(text.contains("name = \"shop\""), "{text}");
}

#[test]
fn init_refuses_to_overwrite_a_boxfile() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Boxfile"), "# mine\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("init")
        .assert()
        .code(1)
        .stderr(predicates::str::contains("a Boxfile already exists"));
    assert_eq!(
        fs::read_to_string(dir.path().join("Boxfile")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn a_relative_project_folder_still_gives_absolute_paths() {
    let parent = tempfile::tempdir().unwrap();
    fs::create_dir(parent.path().join("shop")).unwrap();
    fs::write(
        parent.path().join("shop/Boxfile"),
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"missing\", to = \"/srv\" }]\n",
    )
    .unwrap();
    let home = tempfile::tempdir().unwrap();
    let root = parent.path().join("shop");
    box_cmd(home.path())
        .current_dir(parent.path())
        .args(["-C", "shop", "validate"])
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "paths are relative to the Boxfile's folder ({})",
            root.display()
        )));
}
