//! A builder for the integration tests, after just's `Test::new()`: a
//! throwaway BOX_HOME, a simulated cloud if the test wants one, project
//! folders with their Boxfiles, and runs of the real `box` that say how they
//! must end. A test then reads as its steps and its checks, not its set-up:
//!
//! ```ignore
//! let t = Test::new().simulator(&[]);
//! let demo = t.project("demo", BOXFILE);
//! demo.run(["up", "--no-connect"]).success();
//! demo.run(["logs", "web"]).code(4).stderr_has("hint: ");
//! assert_eq!(t.census(), Census::empty());
//! ```

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use serde_json::Value;

use crate::cloud::{Census, Sim};
use crate::support;

/// A temporary BOX_HOME, and maybe a simulator; removed when dropped.
pub struct Test {
    // Fields drop in this order: the simulator stops (and with it any real
    // machines) before the folders it may use are removed.
    sim: Option<Sim>,
    env: Vec<(OsString, OsString)>,
    home: tempfile::TempDir,
}

impl Test {
    /// An empty BOX_HOME, no cloud, no project.
    pub fn new() -> Test {
        Test {
            sim: None,
            env: Vec::new(),
            home: tempfile::tempdir().expect("a temporary folder"),
        }
    }

    /// A simulator with these extra arguments (jobs take 50 ms unless they
    /// say `--job-duration`); every `box` run gets its URL and keys.
    pub fn simulator(self, args: &[&str]) -> Test {
        self.replace_simulator(|| Sim::start(args))
    }

    /// As `simulator`, keeping the cloud in `state`. A simulator already
    /// running is stopped first, so the new one reads what the old one kept.
    pub fn simulator_with_state(self, args: &[&str], state: &Path) -> Test {
        self.replace_simulator(|| Sim::start_with_state(args, Some(state)))
    }

    /// A simulator started some other way (for instance with its own
    /// environment).
    pub fn with_simulator(mut self, sim: Sim) -> Test {
        self.sim = Some(sim);
        self
    }

    fn replace_simulator(mut self, start: impl FnOnce() -> Sim) -> Test {
        self.sim = None;
        self.sim = Some(start());
        self
    }

    /// An environment variable for every `box` run of this test.
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Test {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn sim(&self) -> &Sim {
        self.sim
            .as_ref()
            .expect("this test has no simulator: build it with .simulator(..)")
    }

    /// What box may leave on the cloud, as counts.
    pub fn census(&self) -> Census {
        self.sim().census(self.home())
    }

    /// The items of a list command (all of them), read with `box api`.
    pub fn list(&self, command: &str) -> Vec<Value> {
        self.sim().list(self.home(), command, &[])
    }

    /// The folder `folder` under the home (made if missing), holding this
    /// Boxfile.
    pub fn project(&self, folder: impl AsRef<Path>, boxfile: &str) -> Project<'_> {
        let dir = self.home().join(folder);
        std::fs::create_dir_all(&dir).expect("the project folder is made");
        std::fs::write(dir.join("Boxfile"), boxfile).expect("the Boxfile is written");
        Project { test: self, dir }
    }

    /// `box ARGS` in the home folder.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.run_in(self.home(), args)
    }

    fn run_in<I, S>(&self, dir: &Path, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = support::box_command(self.home());
        if let Some(sim) = &self.sim {
            cmd.envs(sim.env());
        }
        cmd.current_dir(dir)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .args(args);
        Run { cmd }
    }
}

/// A project folder of a `Test`.
pub struct Project<'t> {
    test: &'t Test,
    dir: PathBuf,
}

impl Project<'_> {
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `box ARGS` in this project's folder.
    pub fn run<I, S>(&self, args: I) -> Run
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.test.run_in(&self.dir, args)
    }

    /// The state file box keeps for machine `name`.
    pub fn machine(&self, name: &str) -> Value {
        let file = self.dir.join(".box/machines").join(format!("{name}.json"));
        let bytes =
            std::fs::read(&file).unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()))
    }
}

/// One run of `box`, not started yet; the method that starts it says how
/// it must end.
pub struct Run {
    cmd: Command,
}

impl Run {
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Run {
        self.cmd.env(key, value);
        self
    }

    /// Runs to the end; exit status 0.
    pub fn success(self) -> Output {
        let out = self.output();
        assert!(out.status.success(), "box failed ({}):\n{out}", out.status);
        out
    }

    /// Runs to the end; any exit status but 0.
    pub fn failure(self) -> Output {
        let out = self.output();
        assert!(!out.status.success(), "box succeeded:\n{out}");
        out
    }

    /// Runs to the end; exit status `code`.
    pub fn code(self, code: i32) -> Output {
        let out = self.output();
        assert_eq!(out.status.code(), Some(code), "{out}");
        out
    }

    /// Runs to the end, whatever the exit status.
    pub fn output(mut self) -> Output {
        let out = self.cmd.output().expect("box runs");
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Starts box with its output discarded and kills it (SIGKILL) after
    /// `delay`, wherever it is by then.
    pub fn kill_after(mut self, delay: Duration) {
        let mut child = self
            .cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("box starts");
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// What a finished run printed. The checks return the output, so that
/// several chain; a failed check shows both streams.
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn stdout_has(&self, text: &str) -> &Output {
        assert!(self.stdout.contains(text), "no `{text}` on stdout:\n{self}");
        self
    }

    pub fn stdout_lacks(&self, text: &str) -> &Output {
        assert!(!self.stdout.contains(text), "`{text}` on stdout:\n{self}");
        self
    }

    pub fn stderr_has(&self, text: &str) -> &Output {
        assert!(self.stderr.contains(text), "no `{text}` on stderr:\n{self}");
        self
    }

    pub fn stderr_lacks(&self, text: &str) -> &Output {
        assert!(!self.stderr.contains(text), "`{text}` on stderr:\n{self}");
        self
    }

    pub fn stdout_is(&self, expected: &str) -> &Output {
        assert_eq!(self.stdout, expected, "stdout:\n{self}");
        self
    }

    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{self}"))
    }
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        )
    }
}

// The harness's own checks must fail a test when they do not hold.

#[test]
#[should_panic(expected = "box failed")]
fn success_fails_the_test_when_box_fails() {
    Test::new().run(["no-such-verb"]).success();
}

#[test]
#[should_panic(expected = "box succeeded")]
fn failure_fails_the_test_when_box_succeeds() {
    Test::new().run(["--version"]).failure();
}

#[test]
#[should_panic(expected = "no `no such text` on stdout")]
fn a_missing_text_fails_the_test() {
    Test::new()
        .run(["--version"])
        .success()
        .stdout_has("box")
        .stdout_has("no such text");
}

#[test]
#[should_panic(expected = "`no-such-verb` on stderr")]
fn an_unwanted_text_fails_the_test() {
    Test::new()
        .run(["no-such-verb"])
        .code(2)
        .stderr_lacks("no-such-verb");
}
