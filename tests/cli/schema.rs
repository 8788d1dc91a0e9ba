//! The Boxfile's JSON Schema, `docs/boxfile.schema.json`: it is what
//! `box schema` prints, and it agrees with `box validate` key by key. The
//! schema is walked as shipped (not rebuilt from box's vocabulary), so these
//! tests hold the file editors read to the validation box runs:
//!
//! - every table accepts the same keys in both, and an unknown key is
//!   refused by both;
//! - every key's example is accepted by both;
//! - for a pool of values put in every key, the schema never refuses what
//!   validation accepts, and where the schema states a rule (an enum, a
//!   pattern, bounds, a boolean, a table of strings) the verdicts are equal;
//! - required keys, "exactly one of" and "needs" are refused alike;
//! - the example Boxfile, the starter, the docs' examples and the broken
//!   fixtures get the verdicts they should; and taplo, as documented, checks
//!   a Boxfile with the schema.
//!
//! After changing the vocabulary (src/boxfile/schema.rs), regenerate the file:
//! `BOX_UPDATE_SCHEMA=1 cargo test --test cli schema::`.

use std::fs;
use std::path::Path;

use serde_json::{json, Map, Value};

use crate::support::{self, box_cmd};

const SHIPPED: &str = "docs/boxfile.schema.json";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn shipped() -> Value {
    let text = fs::read_to_string(repo().join(SHIPPED)).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{SHIPPED} is not JSON: {e}"))
}

fn validator() -> jsonschema::Validator {
    jsonschema::draft7::new(&shipped())
        .unwrap_or_else(|e| panic!("{SHIPPED} is not a valid draft-07 schema: {e}"))
}

/// What the schema says is wrong with `instance` (empty: valid).
fn schema_errors(v: &jsonschema::Validator, instance: &Value) -> Vec<String> {
    v.iter_errors(instance)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

fn toml_to_json(text: &str) -> Value {
    let value: toml::Value = toml::from_str(text).unwrap();
    serde_json::to_value(value).unwrap()
}

fn json_to_toml(instance: &Value) -> String {
    toml::to_string(instance).unwrap_or_else(|e| panic!("cannot write {instance} as TOML: {e}"))
}

/// A project folder holding the host files the schema's examples name.
fn project_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("setup.sh"), "#!/bin/sh\ntrue\n").unwrap();
    fs::write(dir.path().join("motd.txt"), "hello\n").unwrap();
    // `identity_file`'s example (validation checks that the file exists).
    fs::write(dir.path().join("team_key"), "").unwrap();
    // The `docker` provisioner's `load` example.
    fs::write(dir.path().join("image.tar"), "").unwrap();
    // The `ansible` provisioner's `playbook` example.
    fs::write(dir.path().join("site.yml"), "- hosts: all\n  tasks: []\n").unwrap();
    dir
}

/// What `box validate` says is wrong with `instance`, as a Boxfile in `root`.
fn validation_errors(root: &Path, instance: &Value) -> Vec<String> {
    let checked = boxcli::boxfile::check_text(root, json_to_toml(instance), None);
    checked
        .diagnostics
        .iter()
        .map(|d| format!("{}:{}: {}", d.line, d.column, d.message))
        .collect()
}

// ---- walking the schema ---------------------------------------------------

/// A table of the Boxfile: the keys leading to it (`machine.provision`) and
/// its schema (an object schema with `properties`).
#[derive(Clone)]
struct TableAt {
    path: Vec<String>,
    schema: Value,
}

/// Every table the schema describes, the root first.
fn tables(schema: &Value) -> Vec<TableAt> {
    fn walk(path: Vec<String>, schema: &Value, out: &mut Vec<TableAt>) {
        out.push(TableAt {
            path: path.clone(),
            schema: schema.clone(),
        });
        for (key, prop) in properties(schema) {
            let inner = if prop["type"] == "array" {
                &prop["items"]
            } else {
                prop
            };
            if inner.get("properties").is_some() {
                let mut p = path.clone();
                p.push(key.clone());
                walk(p, inner, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(Vec::new(), schema, &mut out);
    out
}

fn properties(table: &Value) -> &Map<String, Value> {
    table["properties"]
        .as_object()
        .expect("a table schema has properties")
}

/// A value the schema offers for a key: its example, its first choice, or a
/// minimal table.
fn sample(prop: &Value) -> Value {
    if let Some(e) = prop["examples"].get(0) {
        return e.clone();
    }
    if let Some(e) = prop["enum"].get(0) {
        return e.clone();
    }
    match prop["type"].as_str() {
        Some("boolean") => json!(true),
        Some("object") if prop.get("properties").is_some() => {
            Value::Object(complete(prop, Map::new()))
        }
        Some("array") if prop["items"].get("properties").is_some() => {
            json!([complete(&prop["items"], Map::new())])
        }
        _ => panic!("no example for {prop}: add one in src/boxfile/schema.rs"),
    }
}

/// `table` with what its schema demands added: required keys, the keys the
/// present ones need (`dependencies`, and `x-together`: pairs validation
/// checks across files), and one of a `oneOf` when none is
/// there yet (and what that one needs).
fn complete(schema: &Value, mut table: Map<String, Value>) -> Map<String, Value> {
    let props = properties(schema);
    let add = |table: &mut Map<String, Value>, key: &str| {
        if !table.contains_key(key) {
            table.insert(key.to_string(), sample(&props[key]));
        }
    };
    let add_needs = |table: &mut Map<String, Value>| loop {
        let missing: Vec<String> = table
            .keys()
            .flat_map(|key| {
                let needs = schema["dependencies"][key].as_array().into_iter().flatten();
                needs.chain(schema["x-together"][key].as_array().into_iter().flatten())
            })
            .map(|need| need.as_str().unwrap().to_string())
            .filter(|need| !table.contains_key(need))
            .collect();
        if missing.is_empty() {
            return;
        }
        for key in missing {
            add(table, &key);
        }
    };
    for key in schema["required"].as_array().into_iter().flatten() {
        add(&mut table, key.as_str().unwrap());
    }
    add_needs(&mut table);
    if let Some(one_of) = schema["oneOf"].as_array() {
        let kinds: Vec<&str> = one_of
            .iter()
            .map(|alt| alt["required"][0].as_str().unwrap())
            .collect();
        if !kinds.iter().any(|k| table.contains_key(*k)) {
            add(&mut table, kinds[0]);
            add_needs(&mut table);
        }
    }
    table
}

/// The machine every built Boxfile has besides the one under test, so that
/// `depends_on = ["db"]` names a machine.
const OTHER_MACHINE: &str = "db";

/// A whole Boxfile in which the table at `path` is `table` (completed), the
/// tables around it are minimal, and a machine named [`OTHER_MACHINE`]
/// comes first.
fn boxfile_with(schema: &Value, path: &[String], table: Map<String, Value>) -> Value {
    fn build(schema: &Value, path: &[String], table: Map<String, Value>) -> Map<String, Value> {
        let Some((key, rest)) = path.split_first() else {
            return table;
        };
        let prop = &schema["properties"][key];
        let (inner_schema, array) = if prop["type"] == "array" {
            (&prop["items"], true)
        } else {
            (prop, false)
        };
        let inner = build(inner_schema, rest, table);
        let inner = Value::Object(complete(inner_schema, inner));
        let mut out = Map::new();
        out.insert(key.clone(), if array { json!([inner]) } else { inner });
        out
    }
    let mut root = complete(schema, build(schema, path, table));
    let other = json!({ "name": OTHER_MACHINE });
    match root.get_mut("machine") {
        Some(Value::Array(machines)) => machines.insert(0, other),
        _ => {
            root.insert("machine".into(), json!([other]));
        }
    }
    Value::Object(root)
}

/// Every key of every table: the table and the key's name.
fn every_key(schema: &Value) -> Vec<(TableAt, String)> {
    tables(schema)
        .into_iter()
        .flat_map(|t| {
            let keys: Vec<String> = properties(&t.schema).keys().cloned().collect();
            keys.into_iter().map(move |k| (t.clone(), k))
        })
        .collect()
}

fn dotted(path: &[String], key: &str) -> String {
    path.iter()
        .map(String::as_str)
        .chain([key])
        .collect::<Vec<_>>()
        .join(".")
}

// ---- the shipped file ---------------------------------------------------

#[test]
fn the_shipped_schema_is_what_box_schema_prints() {
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path()).arg("schema").output().unwrap();
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8(out.stdout).unwrap();
    let path = repo().join(SHIPPED);
    if std::env::var_os("BOX_UPDATE_SCHEMA").is_some() {
        fs::write(&path, &printed).unwrap();
        return;
    }
    let committed = fs::read_to_string(&path).unwrap_or_default();
    if committed != printed {
        let first = committed
            .lines()
            .zip(printed.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(committed.lines().count().min(printed.lines().count()));
        panic!(
            "{SHIPPED} is not what `box schema` prints (first difference on line {}): the Boxfile vocabulary changed.\n\
             Regenerate it with `BOX_UPDATE_SCHEMA=1 cargo test --test cli schema::` and commit it.",
            first + 1
        );
    }
}

#[test]
fn the_shipped_schema_is_draft_07_and_names_every_table_of_the_reference() {
    let schema = shipped();
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    validator();
    let paths: Vec<String> = tables(&schema).iter().map(|t| t.path.join(".")).collect();
    assert_eq!(
        paths,
        [
            "",
            "cloudstack",
            "defaults",
            "local",
            "machine",
            "machine.cloudstack",
            "machine.ports",
            "machine.provision",
            "machine.provision.ansible",
            "machine.provision.docker",
            "machine.provision.docker.build",
            "machine.provision.docker.run",
            "machine.sync",
            "project",
            "trigger",
        ]
    );
    // Every key has a description for an editor's hover, and the reference
    // documents every key (in code: `name`, `[project]`, `{ guest, host }`).
    let reference = fs::read_to_string(repo().join("docs/boxfile.md")).unwrap();
    let in_code: std::collections::HashSet<&str> = reference
        .split('`')
        .skip(1)
        .step_by(2)
        .flat_map(|code| code.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')))
        .collect();
    for (table, key) in every_key(&schema) {
        let prop = &properties(&table.schema)[&key];
        assert!(
            prop["description"].as_str().is_some_and(|d| !d.is_empty()),
            "{} has no description",
            dotted(&table.path, &key)
        );
        assert!(
            in_code.contains(key.as_str()),
            "docs/boxfile.md does not document `{}`",
            dotted(&table.path, &key)
        );
    }
}

// ---- the schema and validation agree --------------------------------------

/// The keys a validation help lists: "[[machine]] accepts: name, primary, ...".
fn accepted_keys(help: &str) -> Vec<String> {
    let (_, list) = help
        .split_once(" accepts: ")
        .unwrap_or_else(|| panic!("not a list of keys: {help}"));
    let mut keys: Vec<String> = list.split(", ").map(String::from).collect();
    keys.sort();
    keys
}

#[test]
fn every_table_accepts_the_same_keys_in_the_schema_and_in_validation() {
    let schema = shipped();
    let v = validator();
    let root = project_folder();
    let unknown = "zzzz_unknown";
    for t in tables(&schema) {
        let mut table = Map::new();
        table.insert(unknown.into(), json!(1));
        let boxfile = boxfile_with(&schema, &t.path, table);
        let at = if t.path.is_empty() {
            "the Boxfile".to_string()
        } else {
            t.path.join(".")
        };

        assert!(
            !schema_errors(&v, &boxfile).is_empty(),
            "the schema accepts an unknown key in {at}"
        );
        let checked = boxcli::boxfile::check_text(root.path(), json_to_toml(&boxfile), None);
        let [d] = checked.diagnostics.as_slice() else {
            panic!(
                "validation should report exactly the unknown key in {at}: {:#?}",
                checked.diagnostics
            );
        };
        assert!(
            d.message
                .starts_with(&format!("unknown key `{unknown}` in ")),
            "{at}: {}",
            d.message
        );
        let help = d.help.as_deref().unwrap_or_default();
        let mut in_schema: Vec<String> = properties(&t.schema).keys().cloned().collect();
        in_schema.sort();
        assert_eq!(
            accepted_keys(help),
            in_schema,
            "{at}: validation and the schema accept different keys"
        );
    }
}

#[test]
fn every_key_with_its_example_is_accepted_by_the_schema_and_by_validation() {
    let schema = shipped();
    let v = validator();
    let root = project_folder();
    let mut checked = 0;
    for (table, key) in every_key(&schema) {
        let mut t = Map::new();
        t.insert(key.clone(), sample(&properties(&table.schema)[&key]));
        let boxfile = boxfile_with(&schema, &table.path, t);
        let at = dotted(&table.path, &key);
        let errors = schema_errors(&v, &boxfile);
        assert!(
            errors.is_empty(),
            "{at}: the schema refuses {boxfile}: {errors:?}"
        );
        let errors = validation_errors(root.path(), &boxfile);
        assert!(
            errors.is_empty(),
            "{at}: validation refuses\n{}\n{errors:#?}",
            json_to_toml(&boxfile)
        );
        checked += 1;
    }
    assert!(checked > 60, "only {checked} keys were checked");
}

/// Values of every kind, put in every key.
fn value_pool() -> Vec<Value> {
    let mut pool = vec![
        json!(true),
        json!(false),
        json!(-1),
        json!(0),
        json!(1),
        json!(65535),
        json!(65536),
        json!(4294967295_i64),
        json!(4294967296_i64),
        json!(1.5),
        json!([]),
        json!(["x"]),
        json!([1]),
        json!([{}]),
        json!({}),
        json!({ "A": "1" }),
        json!({ "A_1": 2, "_b": true }),
        json!({ "A=B": "1" }),
        json!({ "9a": "x" }),
        json!({ "a": [1] }),
        json!({ "a": { "b": "c" } }),
    ];
    let strings = [
        "",
        " ",
        "web",
        "Web",
        "-web",
        "web-",
        "a-b",
        "9",
        "_x",
        "a b",
        "a.b_c-1",
        "box",
        "root",
        "box:box",
        "box:Box",
        "a:b:c",
        ":box",
        "/srv",
        "srv",
        "./srv",
        "#cloud-config",
        "  #cloud-config\nusers: []\n",
        "{machine}",
        "{project}-{machine}-{env}",
        "{nope}-{machine}",
        "{project}",
        "x{machine",
        "}{machine}",
        "{{machine}",
        "local",
        "cloudstack",
        "tcp",
        "udp",
        "once",
        "always",
        "never",
        "auto",
        "kvm",
        "tcg",
        "nope",
    ];
    pool.extend(strings.iter().map(|s| json!(s)));
    pool.push(json!("a".repeat(63)));
    pool.push(json!("a".repeat(64)));
    pool.push(json!(format!("_{}", "a".repeat(31))));
    pool.push(json!(format!("_{}", "a".repeat(32))));
    pool
}

/// Whether the schema of a key decides its values as validation does: it
/// states a rule. A plain string or list may still be refused by validation
/// for reasons no schema can see (a path that does not exist, an unknown
/// machine, a CIDR).
fn states_a_rule(prop: &Value) -> bool {
    prop.get("enum").is_some()
        || prop.get("pattern").is_some()
        || prop.get("minimum").is_some()
        || prop["type"] == "boolean"
        || prop.get("patternProperties").is_some()
        || prop["additionalProperties"].is_object()
}

#[test]
fn the_schema_never_refuses_what_validation_accepts_and_agrees_where_it_states_a_rule() {
    let schema = shipped();
    let v = validator();
    let root = project_folder();
    let pool = value_pool();
    let mut compared = 0;
    for (table, key) in every_key(&schema) {
        // The machines are where every other key lives.
        if table.path.is_empty() && key == "machine" {
            continue;
        }
        let prop = &properties(&table.schema)[&key];
        let decisive = states_a_rule(prop);
        for value in &pool {
            let mut t = Map::new();
            t.insert(key.clone(), value.clone());
            let boxfile = boxfile_with(&schema, &table.path, t);
            let by_schema = schema_errors(&v, &boxfile);
            let by_validation = validation_errors(root.path(), &boxfile);
            let at = dotted(&table.path, &key);
            assert!(
                !by_validation.is_empty() || by_schema.is_empty(),
                "{at} = {value}: validation accepts it, the schema refuses it: {by_schema:?}"
            );
            if decisive {
                assert!(
                    !by_schema.is_empty() || by_validation.is_empty(),
                    "{at} = {value}: the schema accepts it, validation refuses it: {by_validation:?}"
                );
            }
            compared += 1;
        }
    }
    assert!(compared > 3000, "only {compared} cases were compared");
}

#[test]
fn missing_required_keys_two_kinds_and_unmet_needs_are_refused_by_both() {
    let schema = shipped();
    let v = validator();
    let root = project_folder();
    let mut cases = Vec::new();
    for t in tables(&schema) {
        let props = properties(&t.schema);
        let full = complete(&t.schema, Map::new());
        for key in t.schema["required"].as_array().into_iter().flatten() {
            let mut table = full.clone();
            table.remove(key.as_str().unwrap());
            cases.push((
                format!("{} without `{key}`", t.path.join(".")),
                t.path.clone(),
                table,
            ));
        }
        if let Some(one_of) = t.schema["oneOf"].as_array() {
            let kinds: Vec<&str> = one_of
                .iter()
                .map(|alt| alt["required"][0].as_str().unwrap())
                .collect();
            let mut two = Map::new();
            for k in &kinds[..2] {
                two.insert(k.to_string(), sample(&props[*k]));
            }
            cases.push((
                format!("{} with two of {kinds:?}", t.path.join(".")),
                t.path.clone(),
                two,
            ));
            cases.push((
                format!("{} with none of {kinds:?}", t.path.join(".")),
                t.path.clone(),
                Map::new(),
            ));
        }
        for (key, needs) in t.schema["dependencies"].as_object().into_iter().flatten() {
            let needs: Vec<&str> = needs
                .as_array()
                .unwrap()
                .iter()
                .map(|n| n.as_str().unwrap())
                .collect();
            let mut table = Map::new();
            table.insert(key.clone(), sample(&props[key]));
            // Satisfy a `oneOf` with a key that is not needed, so that only
            // the need is unmet (`args` beside `shell`).
            if let Some(one_of) = t.schema["oneOf"].as_array() {
                let kinds: Vec<&str> = one_of
                    .iter()
                    .map(|alt| alt["required"][0].as_str().unwrap())
                    .collect();
                if !kinds.iter().any(|k| table.contains_key(*k)) {
                    let other = kinds.iter().find(|k| !needs.contains(k)).unwrap();
                    table.insert(other.to_string(), sample(&props[*other]));
                }
            }
            cases.push((
                format!("{} `{key}` without {needs:?}", t.path.join(".")),
                t.path.clone(),
                table,
            ));
        }
    }
    assert!(cases.len() >= 10, "{} cases", cases.len());
    for (what, path, table) in cases {
        let mut around = boxfile_with(&schema, &path, Map::new());
        // Put the table in place as built, not completed.
        let mut slot = &mut around;
        for key in &path {
            slot = &mut slot[key];
            if slot.is_array() {
                let last = slot.as_array().unwrap().len() - 1;
                slot = &mut slot[last];
            }
        }
        *slot = Value::Object(table);
        assert!(
            !schema_errors(&v, &around).is_empty(),
            "{what}: the schema accepts {around}"
        );
        assert!(
            !validation_errors(root.path(), &around).is_empty(),
            "{what}: validation accepts\n{}",
            json_to_toml(&around)
        );
    }
}

// ---- real Boxfiles --------------------------------------------------------

#[test]
fn the_schema_accepts_the_example_the_starter_and_every_example_in_the_reference() {
    let v = validator();
    let mut texts = vec![
        (
            "Boxfile.example".to_string(),
            fs::read_to_string(repo().join("Boxfile.example")).unwrap(),
        ),
        (
            "box init's starter".to_string(),
            boxcli::boxfile::starter("shop"),
        ),
    ];
    let reference = fs::read_to_string(repo().join("docs/boxfile.md")).unwrap();
    for (i, block) in reference.split("```toml\n").skip(1).enumerate() {
        let block = block.split("```").next().unwrap();
        // The editor setup's .taplo.toml is TOML, but no Boxfile.
        if block.contains("[[rule]]") {
            continue;
        }
        texts.push((
            format!("docs/boxfile.md's TOML block {}", i + 1),
            block.to_string(),
        ));
    }
    assert!(texts.len() >= 5, "{} Boxfiles", texts.len());
    for (what, text) in texts {
        let errors = schema_errors(&v, &toml_to_json(&text));
        assert!(errors.is_empty(), "the schema refuses {what}: {errors:#?}");
    }
}

/// The broken fixtures whose every problem is a key, a type, a value or a
/// shape a schema states; the others (cycles, duplicates, missing files)
/// are for `box validate` alone.
const REFUSED_BY_THE_SCHEMA: &[&str] = &[
    "misspelled_keys",
    "wrong_types",
    "invalid_enum_values",
    "invalid_machine_names",
    "ports_out_of_range",
    "zero_memory_and_cpus",
    "provisioner_kind",
    "single_bracket_machine",
    "relative_guest_paths",
];

#[test]
fn the_schema_refuses_the_fixtures_whose_problems_it_can_state() {
    let v = validator();
    let dir = repo().join("tests/cli/boxfiles");
    for case in REFUSED_BY_THE_SCHEMA {
        let text = fs::read_to_string(dir.join(format!("{case}.toml"))).unwrap();
        assert!(
            !schema_errors(&v, &toml_to_json(&text)).is_empty(),
            "the schema accepts tests/cli/boxfiles/{case}.toml"
        );
    }
}

#[test]
fn an_unknown_key_is_refused_by_the_schema_and_by_validation() {
    let v = validator();
    let text = "[[machine]]\nname = \"web\"\ncpu = 2\n";
    let errors = schema_errors(&v, &toml_to_json(text));
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("'cpu' was unexpected"), "{errors:?}");
    let root = project_folder();
    let checked = boxcli::boxfile::check_text(root.path(), text.to_string(), None);
    assert_eq!(checked.diagnostics.len(), 1);
    assert_eq!(
        checked.diagnostics[0].message,
        "unknown key `cpu` in [[machine]]"
    );
}

// ---- taplo, as docs/boxfile.md says -------------------------------------

/// The `.taplo.toml` docs/boxfile.md tells users to write.
fn documented_taplo_config() -> String {
    let reference = fs::read_to_string(repo().join("docs/boxfile.md")).unwrap();
    reference
        .split("```toml\n")
        .skip(1)
        .map(|b| b.split("```").next().unwrap())
        .find(|b| b.contains("[[rule]]"))
        .expect("docs/boxfile.md shows a .taplo.toml")
        .to_string()
}

/// `taplo check` in `dir` (it reads `.taplo.toml` there).
fn taplo_check(dir: &Path, args: &[&str]) -> (bool, String) {
    let taplo = support::require("taplo");
    let out = std::process::Command::new(taplo)
        .current_dir(dir)
        .arg("check")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// A project as docs/boxfile.md sets it up: `box schema` written beside the
/// Boxfile, and the documented `.taplo.toml`.
fn taplo_project(boxfile: &str) -> tempfile::TempDir {
    let dir = project_folder();
    let home = tempfile::tempdir().unwrap();
    let out = box_cmd(home.path()).arg("schema").output().unwrap();
    assert!(out.status.success());
    fs::write(dir.path().join("boxfile.schema.json"), out.stdout).unwrap();
    fs::write(dir.path().join(".taplo.toml"), documented_taplo_config()).unwrap();
    fs::write(dir.path().join("Boxfile"), boxfile).unwrap();
    dir
}

#[test]
fn taplo_with_the_documented_config_accepts_the_example_and_refuses_an_unknown_key() {
    let example = fs::read_to_string(repo().join("Boxfile.example")).unwrap();
    let dir = taplo_project(&example);
    fs::write(
        dir.path().join("Boxfile.local"),
        "[defaults]\nmemory = 4096\n\n[[machine]]\nname = \"db\"\ncpus = 2\n",
    )
    .unwrap();
    let (ok, text) = taplo_check(dir.path(), &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("total=2 excluded=0"),
        "taplo did not check both files: {text}"
    );

    fs::write(
        dir.path().join("Boxfile.local"),
        "[[machine]]\nname = \"db\"\ncpu = 2\naccel = \"fast\"\n",
    )
    .unwrap();
    let (ok, text) = taplo_check(dir.path(), &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("'cpu' was unexpected"), "{text}");
    assert!(text.contains("\"fast\" is not one of"), "{text}");
    assert!(text.contains("Boxfile.local:4:9"), "{text}");
}

#[test]
fn taplo_reads_the_schema_directive_and_box_validate_still_accepts_the_boxfile() {
    let dir =
        taplo_project("#:schema ./boxfile.schema.json\n[[machine]]\nname = \"web\"\nmemory = 0\n");
    // A .taplo.toml that only says which files are TOML: the schema comes
    // from the directive.
    fs::write(dir.path().join(".taplo.toml"), "include = [\"Boxfile\"]\n").unwrap();
    let (ok, text) = taplo_check(dir.path(), &[]);
    assert!(!ok, "{text}");
    assert!(text.contains("0 is less than the minimum of 1"), "{text}");

    fs::write(
        dir.path().join("Boxfile"),
        "#:schema ./boxfile.schema.json\n[[machine]]\nname = \"web\"\n",
    )
    .unwrap();
    let (ok, text) = taplo_check(dir.path(), &[]);
    assert!(ok, "{text}");
    let home = tempfile::tempdir().unwrap();
    box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .arg("validate")
        .assert()
        .success();
}

#[test]
fn taplo_checks_with_the_shipped_schema_given_on_the_command_line() {
    let dir = taplo_project("[[machine]]\nname = \"Web\"\n");
    fs::write(dir.path().join(".taplo.toml"), "include = [\"Boxfile\"]\n").unwrap();
    let url = format!("file://{}", repo().join(SHIPPED).display());
    let (ok, text) = taplo_check(dir.path(), &["--schema", &url, "Boxfile"]);
    assert!(!ok, "{text}");
    assert!(text.contains("\"Web\" does not match"), "{text}");
}

#[test]
fn the_documented_vs_code_settings_associate_both_files_and_no_other() {
    let reference = fs::read_to_string(repo().join("docs/boxfile.md")).unwrap();
    let block = reference
        .split("```json\n")
        .nth(1)
        .and_then(|b| b.split("```").next())
        .expect("docs/boxfile.md shows VS Code settings");
    let settings: Value = serde_json::from_str(block).unwrap();
    assert_eq!(
        settings["files.associations"],
        json!({ "Boxfile": "toml", "Boxfile.local": "toml" })
    );
    let associations = settings["evenBetterToml.schema.associations"]
        .as_object()
        .unwrap();
    assert_eq!(associations.len(), 1);
    let (pattern, schema) = associations.iter().next().unwrap();
    assert_eq!(schema, "./boxfile.schema.json");
    // The pattern, through a schema's own `pattern`.
    let matcher =
        jsonschema::draft7::new(&json!({ "type": "string", "pattern": pattern })).unwrap();
    for uri in [
        "file:///home/me/shop/Boxfile",
        "file:///home/me/shop/Boxfile.local",
    ] {
        assert!(matcher.is_valid(&json!(uri)), "{pattern} misses {uri}");
    }
    for uri in [
        "file:///home/me/shop/Boxfile.example",
        "file:///home/me/shop/MyBoxfile",
        "file:///home/me/Boxfile/Cargo.toml",
    ] {
        assert!(!matcher.is_valid(&json!(uri)), "{pattern} matches {uri}");
    }
}
