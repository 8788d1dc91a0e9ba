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

/// `box validate` run on the project in `dir`, with a throwaway home.
fn validate(dir: &Path) -> assert_cmd::assert::Assert {
    assert_cmd::assert::Assert::new(crate::support::validate(dir))
}

/// Runs `box validate` on a broken fixture: it must exit 1, print nothing on
/// stdout, and its stderr (temp paths replaced) is returned.
fn validate_fails(case: &str) -> String {
    let dir = project(case);
    let out = crate::support::validate(dir.path());
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
    validate(dir.path())
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
    validate(dir.path())
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

/// `box -C DIR ARGS` under a 2 GB address-space limit (hostile input), with a
/// generous timeout that only guards against a hang: it measures nothing.
fn box_limited(home: &Path, dir: &Path, args: &[&str]) -> std::process::Output {
    let bin = assert_cmd::cargo::cargo_bin("box");
    assert_cmd::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000; exec \"$0\" \"$@\"")
        .arg(bin)
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(300))
        .output()
        .unwrap()
}

/// A project folder holding `text` as its Boxfile.
fn project_with(text: impl AsRef<[u8]>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Boxfile"), text).unwrap();
    dir
}

#[test]
fn validate_survives_a_50000_machine_depends_on_chain() {
    let n = 50_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("[[machine]]\nname = \"m{i}\"\n"));
        if i + 1 < n {
            text.push_str(&format!("depends_on = [\"m{}\"]\n", i + 1));
        }
    }
    let dir = project_with(&text);
    let home = tempfile::tempdir().unwrap();
    let out = box_limited(home.path(), dir.path(), &["validate"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "Boxfile is valid (50000 machines)\n"
    );
}

#[test]
fn validate_survives_100000_unknown_keys_20000_duplicate_names_and_huge_names() {
    let home = tempfile::tempdir().unwrap();
    let mut unknown = String::from("[[machine]]\nname = \"a\"\n");
    for i in 0..100_000 {
        unknown.push_str(&format!("k{i} = 1\n"));
    }
    let duplicates = "[[machine]]\nname = \"web\"\n".repeat(20_000);
    // Two 50,000-character names, each misspelled by the other's
    // `depends_on`: an unbounded did-you-mean compares them cell by cell.
    let (a, b) = ("a".repeat(50_000), "b".repeat(50_000));
    let huge = format!(
        "[[machine]]\nname = \"{a}\"\ndepends_on = [\"{b}\"]\n[[machine]]\nname = \"{b}c\"\ndepends_on = [\"{a}d\"]\n"
    );
    for (text, problems) in [(unknown, 100_000), (duplicates, 19_999), (huge, 4)] {
        let dir = project_with(&text);
        let out = box_limited(home.path(), dir.path(), &["validate"]);
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.ends_with(&format!("error: found {problems} problems in Boxfile\n")),
            "{}",
            &stderr[stderr.len().saturating_sub(500)..]
        );
        let out = box_limited(home.path(), dir.path(), &["validate", "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["valid"], false);
    }
}

#[test]
fn validate_json_reports_a_boxfile_that_is_not_utf8() {
    let dir = project_with(b"[[machine]]\nname = \"web\"\n# caf\xe9\n");
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["validate", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["valid"], false);
    let d = &doc["diagnostics"][0];
    assert_eq!(
        (&d["file"], &d["line"], &d["column"], &d["message"]),
        (
            &serde_json::json!("Boxfile"),
            &serde_json::json!(3),
            &serde_json::json!(6),
            &serde_json::json!("Boxfile is not UTF-8 text: byte 0xE9 is invalid")
        )
    );
    // Without --json the same problem goes to stderr, at its place.
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .assert()
        .code(1)
        .stdout("")
        .stderr(predicates::str::starts_with(
            "Boxfile:3:6: Boxfile is not UTF-8 text: byte 0xE9 is invalid\n",
        ));
}

#[test]
fn validate_points_at_env_keys_that_are_not_variable_names() {
    let dir = project_with(
        "[[machine]]\nname = \"web\"\n[[machine.provision]]\nscript = \"setup.sh\"\nenv = { \"--split-string\" = \"sh -c id\", \"A=B\" = \"1\", GOOD_1 = \"2\" }\n",
    );
    fs::write(dir.path().join("setup.sh"), "#!/bin/sh\n").unwrap();
    validate(dir.path())
        .code(1)
        .stderr(predicates::str::contains(
            "Boxfile:5:9: invalid environment variable name `--split-string` in `env`",
        ))
        .stderr(predicates::str::contains(
            "Boxfile:5:40: invalid environment variable name `A=B` in `env`",
        ))
        .stderr(predicates::str::contains("found 2 problems"));
}

#[test]
fn validate_accepts_a_sync_owner_with_a_group() {
    let dir = project_with(
        "[[machine]]\nname = \"web\"\nsync = [{ from = \".\", to = \"/srv/app\", owner = \"www-data:www-data\" }]\n",
    );
    validate(dir.path())
        .success()
        .stderr("Boxfile is valid (1 machine)\n");
}

/// A project folder `shop` beside a `secrets` folder (the user's files).
fn project_beside_secrets(boxfile: &str) -> (tempfile::TempDir, PathBuf) {
    let parent = tempfile::tempdir().unwrap();
    let root = parent.path().join("shop");
    fs::create_dir_all(root.join("app")).unwrap();
    fs::create_dir(parent.path().join("secrets")).unwrap();
    fs::write(parent.path().join("secrets/id_ed25519"), "PRIVATE KEY\n").unwrap();
    fs::write(root.join("Boxfile"), boxfile).unwrap();
    (parent, root)
}

#[test]
fn validate_refuses_boxfile_host_paths_outside_the_project() {
    let (parent, root) = project_beside_secrets(
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"../secrets\", to = \"/a\" }]\n[[machine.provision]]\nfile = \"/etc/hostname\"\ndestination = \"/tmp/h\"\n[[machine.provision]]\nscript = \"../secrets/id_ed25519\"\n",
    );
    let home = tempfile::tempdir().unwrap();
    let secrets = fs::canonicalize(parent.path().join("secrets")).unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(&root)
        .arg("validate")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "Boxfile:3:18: `from` path `../secrets` is outside the project folder (it leads to {})",
            secrets.display()
        )))
        .stderr(predicates::str::contains(
            "Boxfile:5:8: `file` path `/etc/hostname` is outside the project folder",
        ))
        .stderr(predicates::str::contains(
            "Boxfile:8:10: `script` path `../secrets/id_ed25519` is outside the project folder",
        ))
        .stderr(predicates::str::contains(
            "help: a Boxfile reads host files only inside its folder",
        ))
        .stderr(predicates::str::contains("found 3 problems"));
}

#[test]
fn a_sync_from_that_links_outside_the_project_is_refused() {
    let (parent, root) = project_beside_secrets(
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"app\", to = \"/app\" }, { from = \"keys\", to = \"/keys\" }]\n",
    );
    std::os::unix::fs::symlink(parent.path().join("secrets"), root.join("keys")).unwrap();
    validate(&root)
        .code(1)
        .stderr(predicates::str::contains(
            "Boxfile:3:49: `from` path `keys` is outside the project folder",
        ))
        .stderr(predicates::str::contains("found 1 problem in Boxfile"));
}

#[test]
fn boxfile_local_may_sync_a_folder_outside_the_project() {
    let (_parent, root) = project_beside_secrets(
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"app\", to = \"/app\" }]\n",
    );
    fs::write(
        root.join("Boxfile.local"),
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"app\", to = \"/app\" }, { from = \"../secrets\", to = \"/secrets\" }]\n",
    )
    .unwrap();
    validate(&root)
        .success()
        .stderr("Boxfile is valid (1 machine)\n");
}

#[test]
fn up_refuses_a_boxfile_that_reads_outside_the_project_before_creating_anything() {
    let (_parent, root) = project_beside_secrets(
        "[[machine]]\nname = \"web\"\nsync = [{ from = \"../secrets\", to = \"/home/box/.ssh\" }]\n",
    );
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(&root)
        .arg("up")
        .assert()
        .code(1)
        .stderr(predicates::str::contains(
            "Boxfile:3:18: `from` path `../secrets` is outside the project folder",
        ));
    let mut left: Vec<String> = fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["Boxfile", "app"], "no .box/ state was created");
    let home_entries: Vec<_> = walk(home.path());
    assert!(home_entries.is_empty(), "box wrote {home_entries:?}");
}

/// Every file and folder under `dir`.
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        }
        out.push(path);
    }
    out
}
