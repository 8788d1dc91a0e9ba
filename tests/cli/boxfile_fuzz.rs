//! The Boxfile fuzzer, run as a bounded property test: mutated Boxfiles
//! (byte flips, deleted, duplicated and swapped lines, huge strings, deep
//! nesting, unknown keys, bytes that are not UTF-8, many machines) must each
//! be validated with no panic, in bounded time. Most cases call the
//! library's check in-process; a sample runs the real `box validate --json`,
//! which must exit 0 or 1 and print JSON that agrees with its exit code.
//!
//! `BOX_FUZZ_CASES` (default 2000), `BOX_FUZZ_SEED` (default 20240601) and
//! `BOX_FUZZ_BINARY_CASES` (default 200) size a run. The longer run:
//!
//! ```text
//! BOX_FUZZ_CASES=50000 BOX_FUZZ_SEED=7 cargo test --release --test cli boxfile_fuzz -- --nocapture
//! ```
//!
//! A failing case is written to `target/boxfile-fuzz/` to replay by hand.

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// A Boxfile and, sometimes, a `Boxfile.local`.
#[derive(Clone)]
struct Case {
    boxfile: Vec<u8>,
    local: Option<Vec<u8>>,
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found {v:?}")),
        Err(_) => default,
    }
}

/// `Boxfile.example` and every Boxfile of the diagnostics tests.
fn seeds() -> Vec<Case> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = vec![Case {
        boxfile: fs::read(repo.join("Boxfile.example")).unwrap(),
        local: None,
    }];
    let dir = repo.join("tests/cli/boxfiles");
    let mut names: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| !p.to_string_lossy().ends_with(".local.toml"))
        .collect();
    names.sort();
    for path in names {
        let local = PathBuf::from(path.to_string_lossy().replace(".toml", ".local.toml"));
        out.push(Case {
            boxfile: fs::read(&path).unwrap(),
            local: fs::read(local).ok(),
        });
    }
    assert!(out.len() > 10, "the seed Boxfiles are missing");
    out
}

/// A project folder holding what the seeds name, so that some mutants are
/// valid and reach every check.
fn project_folder() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for folder in ["frontend/dist", "conf", "scripts", "app"] {
        fs::create_dir_all(dir.path().join(folder)).unwrap();
    }
    for file in [
        "scripts/setup.sh",
        "conf/nginx.conf",
        "setup.sh",
        "motd.txt",
    ] {
        fs::write(dir.path().join(file), "#!/bin/sh\ntrue\n").unwrap();
    }
    dir
}

fn lines(text: &[u8]) -> Vec<Vec<u8>> {
    text.split_inclusive(|b| *b == b'\n')
        .map(<[u8]>::to_vec)
        .collect()
}

/// One random change to `text`.
fn mutate(rng: &mut StdRng, text: &mut Vec<u8>, seeds: &[Case]) {
    let mut ls = lines(text);
    let pick = |rng: &mut StdRng, n: usize| if n == 0 { 0 } else { rng.gen_range(0..n) };
    match rng.gen_range(0..12) {
        0 if !text.is_empty() => {
            let i = rng.gen_range(0..text.len());
            text[i] ^= 1 << rng.gen_range(0..8);
            return;
        }
        1 if !ls.is_empty() => {
            let i = pick(rng, ls.len());
            ls.remove(i);
        }
        2 if !ls.is_empty() => {
            let i = pick(rng, ls.len());
            let times = if rng.gen_bool(0.1) { 2000 } else { 1 };
            let line = ls[i].clone();
            for _ in 0..times {
                ls.insert(i, line.clone());
            }
        }
        3 => {
            // Swap the values of two `key = value` lines.
            let with_value: Vec<usize> = (0..ls.len())
                .filter(|&i| ls[i].windows(3).any(|w| w == b" = "))
                .collect();
            if with_value.len() >= 2 {
                let (a, b) = (
                    with_value[pick(rng, with_value.len())],
                    with_value[pick(rng, with_value.len())],
                );
                let split = |l: &[u8]| {
                    let at = l.windows(3).position(|w| w == b" = ").unwrap() + 3;
                    (l[..at].to_vec(), l[at..].to_vec())
                };
                let ((ka, va), (kb, vb)) = (split(&ls[a]), split(&ls[b]));
                ls[a] = [ka, vb].concat();
                ls[b] = [kb, va].concat();
            }
        }
        4 => {
            let big = "x".repeat(rng.gen_range(1_000..300_000));
            let line = match rng.gen_range(0..4) {
                0 => format!("name = \"{big}\"\n"),
                1 => format!("{big} = 1\n"),
                2 => format!("depends_on = [\"{big}\"]\n"),
                _ => format!("sync = [{{ from = \"{big}\", to = \"/{big}\" }}]\n"),
            };
            ls.insert(pick(rng, ls.len() + 1), line.into_bytes());
        }
        5 => {
            let depth = rng.gen_range(1..400);
            let line = if rng.gen_bool(0.5) {
                format!("deep = {}1{}\n", "[".repeat(depth), "]".repeat(depth))
            } else {
                format!("deep = {}1{}\n", "{ a = ".repeat(depth), " }".repeat(depth))
            };
            ls.insert(pick(rng, ls.len() + 1), line.into_bytes());
        }
        6 => {
            let n = if rng.gen_bool(0.1) {
                5000
            } else {
                rng.gen_range(1..20)
            };
            let at = pick(rng, ls.len() + 1);
            for k in 0..n {
                ls.insert(at, format!("unknown_{k} = {k}\n").into_bytes());
            }
        }
        7 if !text.is_empty() => {
            let i = rng.gen_range(0..=text.len());
            let bad: Vec<u8> = (0..rng.gen_range(1..4))
                .map(|_| rng.gen_range(0x80..=0xFF))
                .collect();
            text.splice(i..i, bad);
            return;
        }
        8 => {
            // A line from another seed.
            let other = lines(&seeds[pick(rng, seeds.len())].boxfile);
            if !other.is_empty() {
                let line = other[pick(rng, other.len())].clone();
                ls.insert(pick(rng, ls.len() + 1), line);
            }
        }
        9 => {
            // Many machines, sometimes in a `depends_on` chain.
            let n = rng.gen_range(1..3000);
            let chain = rng.gen_bool(0.5);
            for k in 0..n {
                let dep = if chain && k + 1 < n {
                    format!("depends_on = [\"f{}\"]\n", k + 1)
                } else {
                    String::new()
                };
                ls.push(format!("[[machine]]\nname = \"f{k}\"\n{dep}").into_bytes());
            }
        }
        10 => {
            let key = ["env", "owner", "script", "file", "from", "provider", "run"][pick(rng, 7)];
            let value = [
                "\"--split-string\"",
                "\"a:b\"",
                "\"../../x\"",
                "\"/etc/passwd\"",
                "\"~/.ssh\"",
                "{ \"A=B\" = \"1\" }",
                "\"\"",
                "-1",
                "1e999",
            ][pick(rng, 9)];
            ls.insert(
                pick(rng, ls.len() + 1),
                format!("{key} = {value}\n").into_bytes(),
            );
        }
        _ => {
            // Truncate.
            let at = pick(rng, text.len() + 1);
            text.truncate(at);
            return;
        }
    }
    *text = ls.concat();
}

fn generate(rng: &mut StdRng, seeds: &[Case]) -> Case {
    // The example is valid, the other seeds are not: start from it often.
    let seed = if rng.gen_bool(0.4) {
        0
    } else {
        rng.gen_range(0..seeds.len())
    };
    let mut case = seeds[seed].clone();
    for _ in 0..rng.gen_range(1..=4) {
        if case.local.is_some() && rng.gen_bool(0.3) {
            let mut local = case.local.take().unwrap();
            mutate(rng, &mut local, seeds);
            case.local = Some(local);
        } else {
            mutate(rng, &mut case.boxfile, seeds);
        }
    }
    case
}

/// Keeps a failing case where a person can replay it, and says where.
fn keep(case: &Case, index: u64, seed: u64) -> String {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/boxfile-fuzz")
        .join(format!("seed{seed}-case{index}"));
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join("Boxfile"), &case.boxfile).unwrap();
    if let Some(local) = &case.local {
        fs::write(dir.join("Boxfile.local"), local).unwrap();
    }
    format!("case {index} of seed {seed}, kept in {}", dir.display())
}

/// Whether the case is a valid Boxfile, or what the in-process check did wrong.
fn check_in_process(root: &Path, case: &Case) -> Result<bool, String> {
    let checked = catch_unwind(AssertUnwindSafe(|| {
        let c = boxcli::boxfile::check_bytes(root, case.boxfile.clone(), case.local.clone());
        // What `box validate` prints must not panic either.
        let rendered: Vec<String> = c.diagnostics.iter().map(|d| d.to_string()).collect();
        let json = serde_json::to_string(&c.diagnostics).unwrap();
        (c, rendered, json)
    }))
    .map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic".into())
    })?;
    let (c, _, _) = checked;
    if c.project.is_some() != c.diagnostics.is_empty() {
        return Err("a project must be given exactly when there is no problem".into());
    }
    for d in &c.diagnostics {
        if d.line == 0 || d.column == 0 || d.length == 0 {
            return Err(format!("a diagnostic without a place: {d:?}"));
        }
    }
    Ok(c.diagnostics.is_empty())
}

/// What `box validate --json` did wrong on the case, if anything.
fn check_binary(home: &Path, dir: &Path, case: &Case) -> Result<(), String> {
    fs::write(dir.join("Boxfile"), &case.boxfile).unwrap();
    let local = dir.join("Boxfile.local");
    match &case.local {
        Some(l) => fs::write(&local, l).unwrap(),
        None => {
            let _ = fs::remove_file(&local);
        }
    }
    let out = assert_cmd::Command::new("sh")
        .arg("-c")
        .arg("ulimit -v 2000000; exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("box"))
        .arg("-C")
        .arg(dir)
        .args(["validate", "--json"])
        .env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .timeout(Duration::from_secs(120))
        .output()
        .unwrap();
    let code = out.status.code();
    if code != Some(0) && code != Some(1) {
        return Err(format!(
            "exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|e| format!("stdout is not JSON ({e}), exit {code:?}"))?;
    let valid = doc["valid"].as_bool().ok_or("no `valid` in the JSON")?;
    let diagnostics = doc["diagnostics"]
        .as_array()
        .ok_or("no `diagnostics` in the JSON")?;
    if valid != (code == Some(0)) || valid != diagnostics.is_empty() {
        return Err(format!("`valid` is {valid} with exit {code:?}"));
    }
    Ok(())
}

#[test]
fn mutated_boxfiles_never_panic_and_always_get_an_answer() {
    let cases = env_number("BOX_FUZZ_CASES", 2000);
    let seed = env_number("BOX_FUZZ_SEED", 20240601);
    let binary_cases = env_number("BOX_FUZZ_BINARY_CASES", 200).min(cases);
    let seeds = seeds();
    let project = project_folder();
    let home = tempfile::tempdir().unwrap();
    let mut rng = StdRng::seed_from_u64(seed);

    // The checks run on a worker thread, so that a case that hangs fails
    // the test (after a generous wait) instead of hanging it.
    let (to_worker, cases_in) = mpsc::channel::<Case>();
    let (results_out, results) = mpsc::channel::<Result<bool, String>>();
    let root = project.path().to_path_buf();
    let worker = std::thread::Builder::new()
        .stack_size(8 << 20)
        .spawn(move || {
            for case in cases_in {
                if results_out.send(check_in_process(&root, &case)).is_err() {
                    break;
                }
            }
        })
        .unwrap();
    let binary_dir = tempfile::tempdir().unwrap();
    let every = cases.checked_div(binary_cases).unwrap_or(u64::MAX);
    let (mut valid, mut ran_binary) = (0, 0);
    for index in 0..cases {
        let case = generate(&mut rng, &seeds);
        to_worker.send(case.clone()).unwrap();
        match results.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(is_valid)) => valid += usize::from(is_valid),
            Ok(Err(why)) => panic!("{why}: {}", keep(&case, index, seed)),
            Err(_) => panic!("no answer after 120 s: {}", keep(&case, index, seed)),
        }
        if index % every == 0 && ran_binary < binary_cases {
            ran_binary += 1;
            if let Err(why) = check_binary(home.path(), binary_dir.path(), &case) {
                panic!("box validate --json: {why}: {}", keep(&case, index, seed));
            }
        }
    }
    drop(to_worker);
    worker.join().unwrap();
    eprintln!(
        "{cases} mutated Boxfiles (seed {seed}): {valid} valid, {} invalid; {ran_binary} through the binary",
        cases - valid as u64
    );
    assert_eq!(ran_binary, binary_cases);
    // Mutants that are all syntax errors would test little.
    assert!(
        valid > 0,
        "no mutant was valid: the mutations are too coarse"
    );
}
