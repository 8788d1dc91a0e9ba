//! The `docker` provisioner: image tarballs from the host streamed into
//! `docker load`, images built from folders synced into the guest, and
//! containers run, all in the guest's Docker and with no registry.
//!
//! A container is labelled `box.config` with a hash of its `run` entry and
//! of its image's ID: the same label means nothing changed (left alone),
//! another one means it is replaced, no label means box did not make it
//! (refused). Nothing is ever pulled: `docker run --pull never`, and a
//! build's base images are checked before it starts.

use std::collections::BTreeSet;
use std::os::fd::AsRawFd as _;

use sha2::{Digest, Sha256};

use crate::boxfile::{DockerBuild, DockerRun, DockerStep, Machine, Provisioner};
use crate::error::Hinted;
use crate::output::Printer;
use crate::ssh::lines::Lines;
use crate::ssh::quote::join;
use crate::ssh::{quote, Session};

use super::{elevated, ProvisionError};

/// The label that holds a container's configuration hash.
const LABEL: &str = "box.config";
/// How long box waits for the guest's Docker to answer, in seconds.
const READY_SECS: u32 = 120;
/// Build output lines kept for the error message when a build fails.
const TAIL_LINES: usize = 20;

/// Exit codes of the readiness check.
const NO_DOCKER: i32 = 100;
const NOT_READY: i32 = 101;

struct Docker<'a> {
    session: &'a Session,
    machine: &'a Machine,
    p: &'a Provisioner,
    printer: &'a Printer,
}

pub(super) fn run(
    session: &Session,
    machine: &Machine,
    p: &Provisioner,
    step: &DockerStep,
    printer: &Printer,
) -> Result<(), ProvisionError> {
    let d = Docker {
        session,
        machine,
        p,
        printer,
    };
    d.ready()?;
    for path in &step.load {
        d.load(path)?;
    }
    for b in &step.build {
        d.build(b)?;
    }
    for c in &step.run {
        d.container(c)?;
    }
    Ok(())
}

impl Docker<'_> {
    fn fail(&self, message: String, hint: impl Into<String>) -> ProvisionError {
        ProvisionError::Docker {
            step: self.p.name.clone(),
            source: Hinted::new(message, hint),
        }
    }

    fn ssh(&self, source: crate::ssh::SshError) -> ProvisionError {
        ProvisionError::Ssh {
            step: self.p.name.clone(),
            source: Box::new(source),
        }
    }

    /// `cmd` run as the step says (root unless `privileged = false`),
    /// its output captured.
    fn capture(&self, cmd: &str) -> Result<crate::ssh::Output, ProvisionError> {
        self.session
            .capture(&elevated(self.session, self.p, cmd))
            .map_err(|e| self.ssh(e))
    }

    fn say(&self, line: &str) {
        self.printer.machine(&self.machine.name, line);
    }

    /// Docker is installed and its daemon answers. Always as root: starting
    /// the base-image unit of `debian-12-docker` needs it, whatever the
    /// step's `privileged` says (box's login user has sudo).
    fn ready(&self) -> Result<(), ProvisionError> {
        let script = format!(
            "command -v docker >/dev/null 2>&1 || exit {NO_DOCKER}
if systemctl cat box-docker-images.service >/dev/null 2>&1; then
  systemctl start box-docker-images.service || true
fi
i=0
until docker info >/dev/null 2>&1; do
  i=$((i + 1)); [ \"$i\" -ge {READY_SECS} ] && exit {NOT_READY}; sleep 1
done"
        );
        let cmd = if self.session.user() == "root" {
            format!("sh -c {}", quote(&script))
        } else {
            format!("sudo -n sh -c {}", quote(&script))
        };
        let out = self.session.capture(&cmd).map_err(|e| self.ssh(e))?;
        match out.status {
            0 => Ok(()),
            NO_DOCKER => Err(self.fail(
                format!(
                    "`{}` has no Docker (its box is `{}`)",
                    self.machine.name, self.machine.box_name
                ),
                format!(
                    "use a box with Docker: `box = \"debian-12-docker\"` in `{}`'s [[machine]] (Docker from Debian's packages; box never installs Docker), then `box destroy {} && box up {}`",
                    self.machine.name, self.machine.name, self.machine.name
                ),
            )),
            NOT_READY => Err(self.fail(
                format!(
                    "Docker in `{}` did not answer within {READY_SECS} s",
                    self.machine.name
                ),
                format!(
                    "look at the daemon: `box ssh {} -- sudo systemctl status docker`",
                    self.machine.name
                ),
            )),
            code => Err(self.fail(
                format!(
                    "checking Docker in `{}` failed with code {code}: {}",
                    self.machine.name,
                    out.stderr_text().trim()
                ),
                "`sudo -n` must work for the login user, as it does on box's own boxes",
            )),
        }
    }

    /// Streams a tarball into `docker load`; nothing lands on the guest's
    /// disk but the image.
    fn load(&self, path: &std::path::Path) -> Result<(), ProvisionError> {
        let file = std::fs::File::open(path).map_err(|source| ProvisionError::Read {
            step: self.p.name.clone(),
            path: path.to_path_buf(),
            source,
        })?;
        self.say(&format!("loading {}", path.display()));
        let mut out = Lines::new(|l: &str| self.say(l));
        let mut err = Vec::new();
        let code = self
            .session
            .exec_with_input(
                &elevated(self.session, self.p, "docker load"),
                Some(file.as_raw_fd()),
                &mut out,
                &mut err,
            )
            .map_err(|e| self.ssh(e))?;
        drop(out);
        if code != 0 {
            return Err(self.fail(
                format!(
                    "`docker load` refused {}: {}",
                    path.display(),
                    String::from_utf8_lossy(&err).trim()
                ),
                "`load` takes a tarball written by `docker save` (plain or gzip)",
            ));
        }
        Ok(())
    }

    /// The ID of `image` in the guest's Docker, if it is there.
    fn image_id(&self, image: &str) -> Result<Option<String>, ProvisionError> {
        let out = self.capture(&join(&[
            "docker", "image", "inspect", "--format", "{{.Id}}", image,
        ]))?;
        let id = out.stdout_text().trim().to_string();
        Ok((out.status == 0 && !id.is_empty()).then_some(id))
    }

    fn build(&self, b: &DockerBuild) -> Result<(), ProvisionError> {
        let dockerfile = format!(
            "{}/{}",
            b.path.trim_end_matches('/'),
            b.dockerfile.as_deref().unwrap_or("Dockerfile")
        );
        let text = self.capture(&join(&["cat", "--", &dockerfile]))?;
        if text.status != 0 {
            return Err(self.fail(
                format!(
                    "cannot read the Dockerfile {dockerfile} in `{}`: {}",
                    self.machine.name,
                    text.stderr_text().trim()
                ),
                "a build's `path` is a folder in the guest: sync it there with a `sync` entry (its `to`), which runs before provisioning",
            ));
        }
        let bases = base_images(&text.stdout_text());
        if !bases.is_empty() {
            let mut words = vec!["for i in".to_string()];
            words.extend(bases.iter().map(|b| quote(b)));
            let check = format!(
                "{}; do docker image inspect \"$i\" >/dev/null 2>&1 || echo \"$i\"; done",
                words.join(" ")
            );
            let out = self.capture(&check)?;
            let missing: Vec<String> = out
                .stdout_text()
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(first) = missing.first() {
                return Err(self.fail(
                    format!(
                        "{dockerfile} builds FROM `{}`, which is not in `{}`'s Docker, and box never downloads images",
                        missing.join("`, `"),
                        self.machine.name
                    ),
                    format!(
                        "`docker save {first} -o image.tar` where the image exists, and add the file to this step's `load`; or build it in an earlier `build` entry. `FROM scratch` and (on debian-12-docker) `FROM box/busybox` need nothing"
                    ),
                ));
            }
        }
        let before = self.image_id(&b.tag)?;
        let mut words: Vec<String> = [
            "env",
            "DOCKER_BUILDKIT=0",
            "docker",
            "build",
            "--tag",
            &b.tag,
            "--file",
            &dockerfile,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for (k, v) in &b.args {
            words.push("--build-arg".into());
            words.push(format!("{k}={v}"));
        }
        words.push(b.path.clone());
        self.say(&format!("building {} from {}", b.tag, b.path));
        let tail = std::cell::RefCell::new(std::collections::VecDeque::new());
        let keep = |l: &str| {
            self.printer.verbose(&format!("{}: {l}", self.machine.name));
            let mut t = tail.borrow_mut();
            if t.len() == TAIL_LINES {
                t.pop_front();
            }
            t.push_back(l.to_string());
        };
        let mut out = Lines::new(keep);
        let mut err = Lines::new(keep);
        let code = self
            .session
            .exec(
                &elevated(self.session, self.p, &join(&words)),
                &mut out,
                &mut err,
            )
            .map_err(|e| self.ssh(e))?;
        drop(out);
        drop(err);
        if code != 0 {
            let tail: Vec<String> = tail.into_inner().into_iter().collect();
            return Err(self.fail(
                format!(
                    "`docker build` of {} exited with code {code}:\n{}",
                    b.tag,
                    tail.join("\n")
                ),
                "`box provision -v` shows the whole build",
            ));
        }
        let after = self.image_id(&b.tag)?;
        match (&before, &after) {
            (Some(a), Some(b2)) if a == b2 => self.say(&format!("image {} unchanged", b.tag)),
            _ => self.say(&format!(
                "built {} ({})",
                b.tag,
                after.as_deref().map_or("?", short_id)
            )),
        }
        Ok(())
    }

    fn container(&self, c: &DockerRun) -> Result<(), ProvisionError> {
        let Some(image_id) = self.image_id(&c.image)? else {
            return Err(self.fail(
                format!(
                    "container `{}`: image `{}` is not in `{}`'s Docker, and box never pulls images",
                    c.name, c.image, self.machine.name
                ),
                format!(
                    "build it with a `build` entry tagged `{}`, or `docker save` it where it exists and add the file to `load`",
                    c.image
                ),
            ));
        };
        let hash = config_hash(c, &image_id);
        let format = format!("{{{{index .Config.Labels \"{LABEL}\"}}}} {{{{.State.Running}}}}");
        let current = self.capture(&join(&[
            "docker",
            "container",
            "inspect",
            "--format",
            &format,
            &c.name,
        ]))?;
        let found = (current.status == 0).then(|| current.stdout_text());
        let replaced = match found.as_deref().map(str::trim).map(|s| s.rsplit_once(' ')) {
            None => false,
            Some(Some((label, running))) if label == hash => {
                if running == "true" {
                    self.say(&format!("container `{}` unchanged", c.name));
                } else {
                    self.checked(&join(&["docker", "start", &c.name]), &c.name, "start")?;
                    self.say(&format!("container `{}` started (unchanged)", c.name));
                }
                return Ok(());
            }
            Some(Some((label, _))) if label.len() == 64 => {
                self.checked(&join(&["docker", "rm", "--force", &c.name]), &c.name, "remove")?;
                true
            }
            Some(_) => {
                return Err(self.fail(
                    format!(
                        "a container named `{}` exists in `{}` and box did not make it (it has no `{LABEL}` label)",
                        c.name, self.machine.name
                    ),
                    format!(
                        "box never removes what it did not make: remove it yourself (`box ssh {} -- sudo docker rm -f {}`) or rename this `run` entry",
                        self.machine.name, c.name
                    ),
                ))
            }
        };
        self.checked(&join(&run_words(c, &hash)), &c.name, "run")?;
        let what = if replaced { "replaced" } else { "created" };
        self.say(&format!("container `{}` {what} ({})", c.name, c.image));
        Ok(())
    }

    /// Runs a docker command on container `name`; its failure is an error.
    fn checked(&self, cmd: &str, name: &str, verb: &str) -> Result<(), ProvisionError> {
        let out = self.capture(cmd)?;
        if out.status != 0 {
            return Err(self.fail(
                format!(
                    "cannot {verb} container `{name}`: {}",
                    out.stderr_text().trim()
                ),
                format!(
                    "`box ssh {} -- sudo docker ps -a` shows the guest's containers",
                    self.machine.name
                ),
            ));
        }
        Ok(())
    }
}

/// The `box.config` label: a hash of the entry as written and of the ID of
/// the image it runs, so a rebuilt image replaces its containers too.
fn config_hash(c: &DockerRun, image_id: &str) -> String {
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(c).unwrap_or_default());
    h.update(b"\n");
    h.update(image_id.as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The `docker run` command line of a container.
fn run_words(c: &DockerRun, hash: &str) -> Vec<String> {
    let mut w: Vec<String> = ["docker", "run", "--detach", "--pull", "never", "--name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    w.push(c.name.clone());
    w.push("--label".into());
    w.push(format!("{LABEL}={hash}"));
    w.push("--restart".into());
    w.push(c.restart.clone());
    for p in &c.ports {
        w.push("--publish".into());
        w.push(p.clone());
    }
    for (k, v) in &c.env {
        w.push("--env".into());
        w.push(format!("{k}={v}"));
    }
    for v in &c.volumes {
        w.push("--volume".into());
        w.push(v.clone());
    }
    w.push(c.image.clone());
    w.extend(c.args.iter().cloned());
    w
}

/// `sha256:0123456789ab…` as `0123456789ab`.
fn short_id(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// The images a Dockerfile's `FROM` lines start from, other than `scratch`,
/// its own stages and names built from `ARG`s (which box cannot know).
fn base_images(dockerfile: &str) -> Vec<String> {
    let joined = dockerfile.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut stages: BTreeSet<String> = BTreeSet::new();
    let mut out: Vec<String> = Vec::new();
    for line in joined.lines() {
        let mut words = line.split_whitespace();
        if !words.next().is_some_and(|w| w.eq_ignore_ascii_case("FROM")) {
            continue;
        }
        let mut words = words.skip_while(|w| w.starts_with("--"));
        let Some(image) = words.next() else { continue };
        let lower = image.to_ascii_lowercase();
        if lower != "scratch"
            && !stages.contains(&lower)
            && !image.contains('$')
            && !out.iter().any(|o| o == image)
        {
            out.push(image.to_string());
        }
        if words.next().is_some_and(|w| w.eq_ignore_ascii_case("AS")) {
            if let Some(stage) = words.next() {
                stages.insert(stage.to_ascii_lowercase());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn web() -> DockerRun {
        DockerRun {
            name: "web".into(),
            image: "shop/web:dev".into(),
            ports: vec!["8080:80".into()],
            env: BTreeMap::from([("APP_ENV".to_string(), "dev x".to_string())]),
            volumes: vec!["/srv/data:/data".into()],
            restart: "unless-stopped".into(),
            args: vec!["httpd".into(), "-f".into()],
        }
    }

    #[test]
    fn base_images_skip_scratch_stages_and_arg_names() {
        let df = "# syntax comment\nARG BASE=x\nFROM --platform=linux/amd64 box/busybox AS build\n\
                  RUN echo \\\n  FROM not-an-image\nfrom scratch\nFROM build\nFROM $BASE\n\
                  FROM shop/base:1 as two\nFROM box/busybox\n";
        assert_eq!(base_images(df), ["box/busybox", "shop/base:1"]);
    }

    #[test]
    fn the_config_hash_changes_with_any_setting_and_with_the_image() {
        let a = config_hash(&web(), "sha256:1");
        assert_eq!(a.len(), 64);
        assert_eq!(a, config_hash(&web(), "sha256:1"));
        assert_ne!(a, config_hash(&web(), "sha256:2"));
        let mut moved = web();
        moved.ports = vec!["8081:80".into()];
        assert_ne!(a, config_hash(&moved, "sha256:1"));
    }

    #[test]
    fn run_never_pulls_and_labels_the_container() {
        let cmd = join(&run_words(&web(), "abc"));
        assert_eq!(
            cmd,
            "docker run --detach --pull never --name web --label box.config=abc \
             --restart unless-stopped --publish 8080:80 --env 'APP_ENV=dev x' \
             --volume /srv/data:/data shop/web:dev httpd -f"
        );
    }
}
