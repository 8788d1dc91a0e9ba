//! Unit tests of parsing, inheritance, `Boxfile.local` merging and validation.

use std::path::Path;

use super::*;
use crate::provider::ProviderKind;

fn check(boxfile: &str, local: Option<&str>) -> Checked {
    check_text(
        Path::new("/nonexistent/shop"),
        boxfile.to_string(),
        local.map(str::to_string),
    )
}

fn valid(boxfile: &str, local: Option<&str>) -> Project {
    let c = check(boxfile, local);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    c.project.unwrap()
}

/// Each diagnostic as `FILE:LINE:COL: message`.
fn problems(boxfile: &str, local: Option<&str>) -> Vec<String> {
    let c = check(boxfile, local);
    assert!(c.project.is_none());
    c.diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect()
}

#[test]
fn a_minimal_boxfile_gets_every_default() {
    let p = valid("[[machine]]\nname = \"web\"\n", None);
    assert_eq!(p.name, "shop", "the project is named after its folder");
    assert_eq!(p.root, Path::new("/nonexistent/shop"));
    assert!(!p.local.isolated);
    let m = &p.machines[0];
    assert_eq!(m.name, "web");
    assert_eq!(m.provider, ProviderKind::Local);
    assert_eq!(m.box_name, "debian-12");
    assert_eq!((m.cpus, m.memory), (1, 1024));
    assert_eq!(m.user, "box");
    assert_eq!(m.accel, Accel::Auto);
    assert!(!m.primary);
    assert_eq!(
        p.primary().unwrap().name,
        "web",
        "the first machine is primary by default"
    );
}

#[test]
fn machines_inherit_defaults_unless_they_set_their_own() {
    let p = valid(
        r#"
[project]
provider = "cloudstack"
[defaults]
box = "ubuntu-24.04"
cpus = 2
memory = 2048
user = "dev"
accel = "tcg"
disk_size = 20
[[machine]]
name = "a"
[[machine]]
name = "b"
memory = 512
provider = "local"
box = "debian-12"
"#,
        None,
    );
    let a = p.machine("a").unwrap();
    assert_eq!((a.cpus, a.memory, a.disk_size), (2, 2048, Some(20)));
    assert_eq!(
        (a.box_name.as_str(), a.user.as_str()),
        ("ubuntu-24.04", "dev")
    );
    assert_eq!(a.accel, Accel::Tcg);
    assert_eq!(a.provider, ProviderKind::CloudStack);
    let b = p.machine("b").unwrap();
    assert_eq!((b.cpus, b.memory), (2, 512));
    assert_eq!(b.box_name, "debian-12");
    assert_eq!(b.provider, ProviderKind::Local);
}

#[test]
fn defaults_provider_wins_over_project_provider() {
    let p = valid(
        "[project]\nprovider = \"cloudstack\"\n[defaults]\nprovider = \"local\"\n[[machine]]\nname = \"a\"\n",
        None,
    );
    assert_eq!(p.machines[0].provider, ProviderKind::Local);
}

#[test]
fn provisioners_are_named_by_kind_and_position_and_default_to_once_privileged() {
    let p = valid(
        r#"
[[machine]]
name = "a"
[[machine.provision]]
shell = "true"
[[machine.provision]]
name = "again"
shell = "date"
run = "always"
privileged = false
[[machine.provision]]
shell = "false"
run = "never"
"#,
        None,
    );
    let prov = &p.machines[0].provision;
    let names: Vec<&str> = prov.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["shell-1", "again", "shell-3"]);
    assert_eq!((prov[0].run, prov[0].privileged), (RunPolicy::Once, true));
    assert_eq!(
        (prov[1].run, prov[1].privileged),
        (RunPolicy::Always, false)
    );
    assert_eq!(prov[2].run, RunPolicy::Never);
    assert_eq!(
        prov[0].kind,
        ProvisionerKind::Shell {
            inline: "true".into()
        }
    );
}

#[test]
fn paths_are_made_absolute_relative_to_the_boxfile_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("conf")).unwrap();
    std::fs::write(dir.path().join("conf/setup.sh"), "#!/bin/sh\n").unwrap();
    let c = check_text(
        dir.path(),
        r#"
[[machine]]
name = "a"
sync = [{ from = ".", to = "/srv/app", exclude = ["target/"], owner = "www-data" }, { from = "./conf", to = "/etc/app" }]
ports = [{ guest = 53, host = 5353, protocol = "udp" }]
[[machine.provision]]
script = "conf/setup.sh"
args = ["--fast"]
env = { MODE = "dev", LEVEL = 3 }
[[machine.provision]]
file = "conf"
destination = "/etc/app2"
"#
        .into(),
        None,
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let m = &c.project.unwrap().machines[0];
    assert_eq!(m.sync[0].from, dir.path());
    assert_eq!(m.sync[0].exclude, ["target/"]);
    assert_eq!(m.sync[0].owner.as_deref(), Some("www-data"));
    assert_eq!(m.sync[1].from, dir.path().join("conf"));
    assert_eq!(
        m.ports[0],
        PortMapping {
            guest: 53,
            host: 5353,
            protocol: "udp".into(),
            auto_correct: false,
            host_ip: None,
        }
    );
    match &m.provision[0].kind {
        ProvisionerKind::Script { path, args, env } => {
            assert_eq!(path, &dir.path().join("conf/setup.sh"));
            assert_eq!(args, &["--fast"]);
            assert_eq!(env.get("LEVEL").map(String::as_str), Some("3"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(m.provision[0].name, "script-1");
    assert_eq!(m.provision[1].name, "file-2");
}

#[test]
fn machine_cloudstack_settings_are_merged_over_the_project_ones() {
    let p = valid(
        r#"
[cloudstack]
zone = "z1"
service_offering = "Small"
security_groups = ["default"]
allow_from = ["10.0.0.0/8"]
details = { a = "1", b = "2" }
[[machine]]
name = "a"
provider = "cloudstack"
cloudstack = { service_offering = "Large", details = { b = "3" }, public_ip = "192.0.2.10" }
[[machine]]
name = "b"
"#,
        None,
    );
    let a = &p.machine("a").unwrap().cloudstack;
    assert_eq!(a.zone.as_deref(), Some("z1"));
    assert_eq!(a.service_offering.as_deref(), Some("Large"));
    assert_eq!(a.security_groups, ["default"]);
    assert_eq!(a.allow_from, ["10.0.0.0/8"]);
    assert_eq!(a.public_ip.as_deref(), Some("192.0.2.10"));
    let details: Vec<(&str, &str)> = a
        .details
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(details, [("a", "1"), ("b", "3")]);
    assert_eq!(p.machine("b").unwrap().cloudstack, p.cloudstack);
}

#[test]
fn boxfile_local_overrides_sections_and_machines_by_name() {
    let p = valid(
        r#"
[defaults]
memory = 1024
[cloudstack]
zone = "team-zone"
profile = "team"
[[machine]]
name = "web"
cpus = 2
[[machine]]
name = "db"
"#,
        Some(
            r#"
[defaults]
memory = 4096
[cloudstack]
zone = "my-zone"
allow_from = ["198.51.100.7/32"]
[local]
isolated = true
[[machine]]
name = "db"
cpus = 4
"#,
        ),
    );
    assert_eq!(p.cloudstack.zone.as_deref(), Some("my-zone"));
    assert_eq!(
        p.cloudstack.profile.as_deref(),
        Some("team"),
        "keys not overridden stay"
    );
    assert_eq!(p.cloudstack.allow_from, ["198.51.100.7/32"]);
    assert!(p.local.isolated);
    let names: Vec<&str> = p.machines.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(
        names,
        ["web", "db"],
        "Boxfile.local adds no machine and keeps the order"
    );
    let web = p.machine("web").unwrap();
    assert_eq!((web.cpus, web.memory), (2, 4096));
    let db = p.machine("db").unwrap();
    assert_eq!((db.cpus, db.memory), (4, 4096));
}

#[test]
fn problems_in_boxfile_local_name_that_file() {
    let found = problems(
        "[[machine]]\nname = \"web\"\n",
        Some("[[machine]]\nname = \"wbe\"\nmemroy = 1\n[defaults]\ncpus = 0\n"),
    );
    assert_eq!(
        found,
        [
            "Boxfile.local:2:8: Boxfile.local overrides machine `wbe`, which the Boxfile does not declare",
            "Boxfile.local:5:8: `cpus` must be at least 1, found 0",
        ]
    );
}

#[test]
fn a_syntax_error_in_boxfile_local_is_reported_with_its_file() {
    let found = problems("[[machine]]\nname = \"web\"\n", Some("[defaults\n"));
    assert_eq!(found.len(), 1);
    assert!(
        found[0].starts_with("Boxfile.local:1:10: TOML syntax error"),
        "{found:?}"
    );
}

#[test]
fn every_unknown_key_is_reported_with_a_suggestion() {
    let c = check(
        "[projet]\n[defaults]\nmemroy = 1\n[[machine]]\nname = \"a\"\ncpu = 1\nzzz = 2\n",
        None,
    );
    let found: Vec<(usize, &str, Option<&str>)> = c
        .diagnostics
        .iter()
        .map(|d| (d.line, d.message.as_str(), d.help.as_deref()))
        .collect();
    assert_eq!(
        found[0],
        (
            1,
            "unknown key `projet` in the Boxfile",
            Some("did you mean `project`?")
        )
    );
    assert_eq!(
        found[1],
        (
            3,
            "unknown key `memroy` in [defaults]",
            Some("did you mean `memory`?")
        )
    );
    assert_eq!(
        found[2],
        (
            6,
            "unknown key `cpu` in [[machine]]",
            Some("did you mean `cpus`?")
        )
    );
    assert_eq!(found[3].0, 7);
    assert!(found[3]
        .2
        .unwrap()
        .starts_with("[[machine]] accepts: name, primary"));
    assert_eq!(found.len(), 4);
}

#[test]
fn machine_names_must_be_host_names() {
    for bad in ["Web", "web_1", "-web", "web-", "", "wéb", &"a".repeat(64)] {
        assert!(check_host_name(bad).is_err(), "{bad:?} should be rejected");
    }
    for good in ["web", "web-1", "1", &"a".repeat(63)] {
        assert!(check_host_name(good).is_ok(), "{good:?} should be accepted");
    }
}

#[test]
fn dependency_cycles_are_named() {
    let found = problems(
        r#"
[[machine]]
name = "a"
depends_on = ["b"]
[[machine]]
name = "b"
depends_on = ["c"]
[[machine]]
name = "c"
depends_on = ["a"]
[[machine]]
name = "d"
depends_on = ["d"]
"#,
        None,
    );
    assert_eq!(
        found,
        [
            "Boxfile:10:15: `depends_on` forms a cycle: a -> b -> c -> a",
            "Boxfile:13:15: `depends_on` forms a cycle: d -> d",
        ]
    );
}

#[test]
fn host_ports_clash_locally_but_not_between_cloudstack_machines_with_their_own_ip() {
    let found = problems(
        r#"
[[machine]]
name = "a"
ports = [{ guest = 80, host = 8080 }, { guest = 53, host = 8080, protocol = "udp" }]
[[machine]]
name = "b"
ports = [{ guest = 81, host = 8080 }]
[[machine]]
name = "c"
provider = "cloudstack"
ports = [{ guest = 80, host = 80 }]
[[machine]]
name = "d"
provider = "cloudstack"
ports = [{ guest = 80, host = 80 }]
cloudstack = { public_ip = "auto" }
"#,
        None,
    );
    assert_eq!(
        found,
        ["Boxfile:7:10: host port 8080/tcp is already forwarded by machine `a`"]
    );
}

#[test]
fn a_valid_boxfile_reports_nothing_and_an_invalid_one_no_project() {
    let c = check("[[machine]]\nname = \"a\"\ncpus = 0\n", None);
    assert!(c.project.is_none());
    assert_eq!(c.diagnostics.len(), 1);
}

#[test]
fn the_starter_written_by_init_is_valid() {
    let dir = tempfile::tempdir().unwrap();
    let text = starter("demo");
    let c = check_text(dir.path(), text, None);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    assert_eq!(c.project.unwrap().name, "demo");
}

#[test]
fn the_example_boxfile_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("Boxfile.example")).unwrap();
    let c = check_text(root, text, None);
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let p = c.project.unwrap();
    assert_eq!(p.primary().unwrap().name, "web");
    assert!(p.local.isolated);
    assert!(p.machines.iter().all(|m| m.provider == ProviderKind::Local));
}

#[test]
fn default_project_names_are_host_names() {
    assert_eq!(default_project_name(Path::new("/x/My Shop_2")), "my-shop-2");
    assert_eq!(default_project_name(Path::new("/")), "box");
}

#[test]
fn numbers_out_of_range_say_which_bound() {
    assert_eq!(
        problems(
            "[[machine]]\nname = \"a\"\nmemory = -5\ncpus = 99999999999\n",
            None
        ),
        [
            "Boxfile:3:10: `memory` must be at least 1, found -5",
            "Boxfile:4:8: `cpus` is too large (99999999999)",
        ]
    );
}

#[test]
fn boxfile_local_cannot_add_or_anonymously_override_machines() {
    let found = problems(
        "[[machine]]\nname = \"web\"\n",
        Some("[[machine]]\nname = \"api\"\n[[machine]]\ncpus = 2\n"),
    );
    assert_eq!(
        found,
        [
            "Boxfile.local:2:8: Boxfile.local overrides machine `api`, which the Boxfile does not declare",
            "Boxfile.local:3:1: a [[machine]] in Boxfile.local needs a `name`, to say which machine it overrides",
        ]
    );
}

#[test]
fn env_keys_must_be_shell_variable_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.sh"), "#!/bin/sh\n").unwrap();
    let c = check_text(
        dir.path(),
        r#"[[machine]]
name = "a"
[[machine.provision]]
script = "s.sh"
env = { "--split-string" = "x", "" = "1", "A=B" = "2", "X Y" = "3", OK = "4", _a1 = "5" }
"#
        .into(),
        None,
    );
    let found: Vec<String> = c
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        found,
        [
            "5:9: invalid environment variable name `--split-string` in `env`",
            "5:33: invalid environment variable name `` in `env`",
            "5:43: invalid environment variable name `A=B` in `env`",
            "5:56: invalid environment variable name `X Y` in `env`",
        ]
    );
    assert!(c.project.is_none());
}

#[test]
fn sync_owner_may_name_a_group() {
    let dir = tempfile::tempdir().unwrap();
    let check = |text: String| check_text(dir.path(), text, None);
    let c = check(
        "[[machine]]\nname = \"a\"\nsync = [{ from = \".\", to = \"/srv\", owner = \"www-data:www-data\" }]\n".into(),
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let p = c.project.unwrap();
    assert_eq!(
        p.machines[0].sync[0].owner.as_deref(),
        Some("www-data:www-data")
    );
    for bad in ["www-data:", ":www-data", "a:B", "a:b:c", "a b"] {
        let found: Vec<String> = check(format!(
            "[[machine]]\nname = \"a\"\nsync = [{{ from = \".\", to = \"/srv\", owner = \"{bad}\" }}]\n"
        ))
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect();
        assert_eq!(
            found,
            [format!("Boxfile:3:44: invalid owner `{bad}` in `owner`")],
            "{bad}"
        );
    }
}

#[test]
fn a_long_depends_on_chain_is_checked_without_recursion() {
    // Test threads have a small stack: a recursive search overflowed it
    // (the binary is run on a 50,000-machine chain in tests/cli).
    let n = 20_000;
    let mut text = String::new();
    for i in 0..n {
        text.push_str(&format!("[[machine]]\nname = \"m{i}\"\n"));
        if i + 1 < n {
            text.push_str(&format!("depends_on = [\"m{}\"]\n", i + 1));
        }
    }
    text.push_str("[[machine]]\nname = \"last\"\ndepends_on = [\"m0\"]\n");
    let c = check(&text, None);
    assert!(c.diagnostics.is_empty(), "{:#?}", &c.diagnostics[..1]);
    // Closing it makes one cycle, named by its ends.
    text = text.replace(
        &format!("name = \"m{}\"\n", n - 1),
        &format!("name = \"m{}\"\ndepends_on = [\"m0\"]\n", n - 1),
    );
    let found = problems(&text, None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].ends_with("`depends_on` forms a cycle: m0 -> m1 -> m2 -> m3 -> m4 -> (19991 more) -> m19996 -> m19997 -> m19998 -> m19999 -> m0"),
        "{found:?}"
    );
}

#[test]
fn twenty_thousand_duplicate_names_are_each_reported_up_to_the_cap() {
    let text = "[[machine]]\nname = \"web\"\n".repeat(20_000);
    let c = check(&text, None);
    assert_eq!(c.diagnostics.len(), reader::MAX_PROBLEMS + 1);
    assert_eq!(c.problem_count(), 19_999);
    assert_eq!(
        c.diagnostics[0].help.as_deref(),
        Some("the first `web` is on line 2")
    );
    let last = c.diagnostics.last().unwrap();
    assert_eq!(
        (last.line, last.message.as_str()),
        (
            2 * 1001 + 2,
            "18999 more problem(s) not listed: box lists the first 1000"
        )
    );
}

#[test]
fn long_names_are_cut_in_messages_and_get_no_suggestion() {
    let long = "a".repeat(100_000);
    let found = problems(
        &format!("[[machine]]\nname = \"web\"\ndepends_on = [\"{long}\"]\n"),
        None,
    );
    assert_eq!(
        found,
        [format!(
            "Boxfile:3:15: `web` depends on `{}…`, which is not a machine in the Boxfile",
            "a".repeat(96)
        )]
    );
}

#[test]
fn a_boxfile_that_is_not_utf8_is_a_problem_at_its_first_invalid_byte() {
    let c = check_bytes(
        Path::new("/nonexistent/shop"),
        b"[[machine]]\nname = \"a\"\n# caf\xe9 \xff\n".to_vec(),
        None,
    );
    assert!(c.project.is_none());
    let d: Vec<(&str, usize, usize, &str)> = c
        .diagnostics
        .iter()
        .map(|d| (d.file.as_str(), d.line, d.column, d.message.as_str()))
        .collect();
    assert_eq!(
        d,
        [(
            "Boxfile",
            3,
            6,
            "Boxfile is not UTF-8 text: byte 0xE9 is invalid"
        )]
    );
    let c = check_bytes(
        Path::new("/nonexistent/shop"),
        b"[[machine]]\nname = \"a\"\n".to_vec(),
        Some(b"\xc3(".to_vec()),
    );
    assert_eq!(
        c.diagnostics[0].to_string(),
        "Boxfile.local:1:1: Boxfile.local is not UTF-8 text: byte 0xC3 is invalid\n  |\n1 | \u{fffd}(\n  | ^\n  = help: save Boxfile.local as UTF-8"
    );
}

#[test]
fn a_boxfile_over_the_size_limit_is_refused_unparsed() {
    let c = check_bytes(
        Path::new("/nonexistent/shop"),
        vec![b'#'; MAX_BYTES as usize + 1],
        None,
    );
    assert_eq!(c.diagnostics.len(), 1);
    assert_eq!(c.diagnostics[0].message, "Boxfile is larger than 16 MiB");
}

/// A project folder `shop` with a script, and a `secrets` folder beside it.
fn project_beside_secrets() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("shop");
    std::fs::create_dir_all(root.join("conf")).unwrap();
    std::fs::write(root.join("conf/setup.sh"), "#!/bin/sh\n").unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/key"), "secret\n").unwrap();
    (dir, root)
}

#[test]
fn boxfile_host_paths_outside_the_project_are_refused() {
    let (dir, root) = project_beside_secrets();
    std::os::unix::fs::symlink(dir.path().join("secrets"), root.join("link")).unwrap();
    let c = check_text(
        &root,
        r#"[[machine]]
name = "a"
sync = [{ from = "../secrets", to = "/a" }, { from = "/etc", to = "/b" }, { from = "link", to = "/c" }, { from = "conf/../../secrets", to = "/d" }, { from = "conf", to = "/e" }]
[[machine.provision]]
script = "../secrets/key"
[[machine.provision]]
file = "link/key"
destination = "/tmp/key"
[[machine.provision]]
file = "nothing/../../secrets"
destination = "/tmp/s"
"#
        .into(),
        None,
    );
    let found: Vec<String> = c
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect();
    let secrets = std::fs::canonicalize(dir.path().join("secrets")).unwrap();
    let s = secrets.display();
    assert_eq!(
        found,
        [
            format!("3:18: `from` path `../secrets` is outside the project folder (it leads to {s})"),
            "3:54: `from` path `/etc` is outside the project folder (it leads to /etc)".to_string(),
            format!("3:84: `from` path `link` is outside the project folder (it leads to {s})"),
            format!("3:114: `from` path `conf/../../secrets` is outside the project folder (it leads to {s})"),
            format!("5:10: `script` path `../secrets/key` is outside the project folder (it leads to {s}/key)"),
            format!("7:8: `file` path `link/key` is outside the project folder (it leads to {s}/key)"),
            "10:8: `file` path `nothing/../../secrets` may lead outside the project folder (through `..` or a link to something missing)".to_string(),
        ]
    );
    let help = c.diagnostics[0].help.as_deref().unwrap();
    assert!(
        help.contains("set this machine's `sync` in Boxfile.local"),
        "{help}"
    );
    assert!(c.diagnostics[4]
        .help
        .as_deref()
        .unwrap()
        .contains("set this machine's `provision` in Boxfile.local"));
}

#[test]
fn boxfile_local_may_name_host_paths_outside_the_project() {
    let (dir, root) = project_beside_secrets();
    let c = check_text(
        &root,
        "[[machine]]\nname = \"a\"\nsync = [{ from = \"conf\", to = \"/conf\" }]\n".into(),
        Some(
            r#"[[machine]]
name = "a"
sync = [{ from = "../secrets", to = "/secrets" }]
[[machine.provision]]
script = "../secrets/key"
"#
            .into(),
        ),
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let m = &c.project.unwrap().machines[0];
    assert_eq!(m.sync[0].from, root.join("../secrets"));
    assert!(m.sync[0].from.starts_with(&root), "kept as written");
    assert_eq!(m.sync.len(), 1);
    let _ = dir;
}

#[test]
fn a_link_inside_the_project_to_a_folder_inside_is_fine() {
    let (_dir, root) = project_beside_secrets();
    std::os::unix::fs::symlink("conf", root.join("config")).unwrap();
    let c = check_text(
        &root,
        "[[machine]]\nname = \"a\"\nsync = [{ from = \"config\", to = \"/c\" }, { from = \".\", to = \"/all\" }]\n".into(),
        None,
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
}

#[test]
fn a_huge_cloudstack_table_is_not_copied_into_thousands_of_machines() {
    // 480 KB of Boxfile once took more than 4 GB: each machine got a copy.
    let cidrs: Vec<String> = (0..20_000)
        .map(|i| format!("\"10.0.{}.{}/32\"", i / 250, i % 250))
        .collect();
    let mut text = format!("[cloudstack]\nallow_from = [{}]\n", cidrs.join(", "));
    for i in 0..5000 {
        text.push_str(&format!("[[machine]]\nname = \"m{i}\"\n"));
    }
    let found = problems(&text, None);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains(": too many machines for the size of [defaults] and [cloudstack]"),
        "{found:?}"
    );
    // The same table with a few machines is fine.
    let few = text
        .split("[[machine]]")
        .take(11)
        .collect::<Vec<_>>()
        .join("[[machine]]");
    assert_eq!(valid(&few, None).machines.len(), 10);
}

#[test]
fn a_script_provisioner_without_env_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.sh"), "#!/bin/sh\n").unwrap();
    let c = check_text(
        dir.path(),
        "[[machine]]\nname = \"a\"\n[[machine.provision]]\nscript = \"s.sh\"\n".into(),
        None,
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let prov = &c.project.unwrap().machines[0].provision;
    assert_eq!(prov.len(), 1, "the step must not be dropped");
    match &prov[0].kind {
        ProvisionerKind::Script { env, .. } => assert!(env.is_empty()),
        other => panic!("{other:?}"),
    }
}

/// `FILE:LINE:COL: message` of a Boxfile in a real folder (sync `from` must exist).
fn problems_in(dir: &Path, text: &str) -> Vec<String> {
    check_text(dir, text.to_string(), None)
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}:{}: {}", d.file, d.line, d.column, d.message))
        .collect()
}

#[test]
fn a_sync_entry_may_mount_the_folder_and_copies_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let c = check_text(
        dir.path(),
        "[[machine]]\nname = \"a\"\nsync = [{ from = \".\", to = \"/srv\", type = \"mount\" }, { from = \".\", to = \"/copy\" }]\n".into(),
        None,
    );
    assert!(c.diagnostics.is_empty(), "{:#?}", c.diagnostics);
    let p = c.project.unwrap();
    assert_eq!(p.machines[0].sync[0].kind, SyncKind::Mount);
    assert_eq!(p.machines[0].sync[1].kind, SyncKind::Copy);
    assert_eq!(
        problems_in(
            dir.path(),
            "[[machine]]\nname = \"a\"\nsync = [{ from = \".\", to = \"/srv\", type = \"live\" }]\n"
        )
        .len(),
        1
    );
}

#[test]
fn a_mount_on_cloudstack_is_rejected_at_its_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let found = problems_in(
        dir.path(),
        "[[machine]]\nname = \"web\"\nprovider = \"cloudstack\"\nsync = [{ from = \".\", to = \"/srv\", type = \"mount\" }]\n",
    );
    assert!(
        found.contains(&"Boxfile:4:43: `type = \"mount\"` is for local machines; `web` is a CloudStack machine, and no mount can cross the cloud".to_string()),
        "{found:#?}"
    );
    let c = check_text(
        dir.path(),
        "[[machine]]\nname = \"web\"\nprovider = \"cloudstack\"\nsync = [{ from = \".\", to = \"/srv\", type = \"mount\" }]\n".into(),
        None,
    );
    let d = c
        .diagnostics
        .iter()
        .find(|d| d.message.contains("mount"))
        .unwrap();
    assert!(
        d.help.as_deref().unwrap_or("").contains("copied over SSH"),
        "{d:#?}"
    );
}

#[test]
fn a_mount_takes_no_exclude_or_owner() {
    let dir = tempfile::tempdir().unwrap();
    let found = problems_in(
        dir.path(),
        "[[machine]]\nname = \"a\"\nsync = [{ from = \".\", to = \"/srv\", type = \"mount\", exclude = [\"x\"], owner = \"root\" }]\n",
    );
    assert_eq!(
        found,
        [
            "Boxfile:3:62: `exclude` does not apply to `type = \"mount\"`: a mount shows the whole folder",
            "Boxfile:3:77: `owner` does not apply to `type = \"mount\"`: a mounted folder belongs to the login user in the guest",
        ]
    );
}

#[test]
fn triggers_are_read_with_their_events_machines_and_command() {
    let p = valid(
        r#"
[[machine]]
name = "web"
[[machine]]
name = "db"
autostart = false
[[trigger]]
on = ["before-up", "after-destroy", "before-up"]
run = "make assets"
[[trigger]]
on = ["after-provision"]
machines = ["db"]
run_remote = "sudo systemctl restart app"
"#,
        None,
    );
    assert!(p.machine("web").unwrap().autostart);
    assert!(!p.machine("db").unwrap().autostart);
    assert_eq!(p.triggers.len(), 2);
    let host = &p.triggers[0];
    assert_eq!(
        host.on,
        [TriggerEvent::BeforeUp, TriggerEvent::AfterDestroy],
        "an event named twice runs once"
    );
    assert!(host.machines.is_empty());
    assert_eq!(host.action, TriggerAction::Host("make assets".into()));
    assert!(host.applies(TriggerEvent::BeforeUp, "db"));
    let remote = &p.triggers[1];
    assert!(remote.applies(TriggerEvent::AfterProvision, "db"));
    assert!(!remote.applies(TriggerEvent::AfterProvision, "web"));
    assert!(!remote.applies(TriggerEvent::AfterUp, "db"));
}

#[test]
fn bad_triggers_are_reported_at_their_line_and_column() {
    let found = problems(
        r#"[[machine]]
name = "web"
[[trigger]]
on = ["after-upp"]
run = "true"
[[trigger]]
on = ["before-up", "after-halt"]
run_remote = "true"
[[trigger]]
on = ["after-up"]
machines = ["wbe"]
run = "true"
[[trigger]]
on = ["after-up"]
run = "true"
run_remote = "true"
[[trigger]]
run = "true"
[[trigger]]
on = []
run = " "
autostart = true
"#,
        None,
    );
    assert_eq!(
        found,
        [
            "Boxfile:4:7: unknown event `after-upp`",
            "Boxfile:7:7: `run_remote` cannot run on `before-up`: the guest is not up then",
            "Boxfile:7:20: `run_remote` cannot run on `after-halt`: the guest is not up then",
            "Boxfile:11:13: the trigger names `wbe`, which is not a machine in the Boxfile",
            "Boxfile:16:1: a trigger takes only one of `run` or `run_remote`",
            "Boxfile:17:1: this [[trigger]] has no `on`",
            "Boxfile:20:6: `on` names no event",
            "Boxfile:21:7: `run` is empty",
            "Boxfile:22:1: unknown key `autostart` in [[trigger]]",
        ]
    );
}
