//! Issue 16 §1-§3: the `debian-12-docker` box, the `docker` provisioner
//! and `box docker-env`, with the real `box` on a real TCG guest and the
//! host's real `docker` CLI; the provisioner's Boxfile checks without one.

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use crate::local::Project;
use crate::sshd::free_port;
use crate::{guest, support};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// `box validate` in `dir`: its stderr, and whether it passed.
fn validate(dir: &Path) -> (bool, String) {
    let out = support::validate(dir);
    (out.status.success(), stderr(&out))
}

const MACHINE: &str = "[[machine]]\nname = \"web\"\nbox = \"debian-12-docker\"\n\n";

#[test]
fn a_docker_provisioner_validates_in_both_toml_shapes() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("images")).unwrap();
    fs::write(dir.path().join("images/redis.tar"), "").unwrap();
    fs::write(
        dir.path().join("Boxfile"),
        format!(
            "{MACHINE}[[machine.provision]]\nname = \"app\"\nrun = \"always\"\n\n\
             [machine.provision.docker]\nload = [\"images/redis.tar\"]\n\n\
             [[machine.provision.docker.build]]\npath = \"/srv/app\"\ntag = \"shop/web:dev\"\n\
             dockerfile = \"docker/Dockerfile.dev\"\nargs = {{ VERSION = \"1\" }}\n\n\
             [[machine.provision.docker.run]]\nname = \"web\"\nimage = \"shop/web:dev\"\n\
             ports = [\"8080:80\", \"127.0.0.1:5353:53/udp\"]\nenv = {{ APP_ENV = \"dev\" }}\n\
             volumes = [\"/srv/data:/data\", \"cache:/cache:ro\"]\nrestart = \"always\"\n\
             args = [\"httpd\", \"-f\"]\n\n\
             [[machine.provision]]\ndocker = {{ run = [{{ name = \"db\", image = \"box/busybox\" }}] }}\n"
        ),
    )
    .unwrap();
    let (ok, err) = validate(dir.path());
    assert!(ok, "{err}");
}

#[test]
fn docker_provisioner_mistakes_are_reported_at_their_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("Boxfile"),
        format!(
            "{MACHINE}[[machine.provision]]\n\
             docker = {{}}\n\n\
             [[machine.provision]]\n\
             [machine.provision.docker]\n\
             load = [\"missing.tar\", \"../outside.tar\"]\n\
             build = [{{ path = \"srv/app\", tag = \"Shop/Web\" }}, {{ tag = \"x\" }}]\n\
             run = [\n\
             {{ name = \"-web\", image = \"a..b\", ports = [\"80\", \"8080:80/sctp\"], volumes = [\"data:relative\"], env = {{ \"A-B\" = \"1\" }}, restart = \"sometimes\" }},\n\
             {{ name = \"db\", image = \"box/busybox\" }},\n\
             {{ name = \"db\", image = \"box/busybox\" }},\n\
             ]\n"
        ),
    )
    .unwrap();
    let (ok, err) = validate(dir.path());
    assert!(!ok, "{err}");
    for want in [
        "Boxfile:6:10: a `docker` provisioner needs at least one of `load`, `build` or `run`",
        "Boxfile:10:9: `load` path `missing.tar` does not exist",
        "Boxfile:10:24: `load` path `../outside.tar` is outside the project folder",
        "Boxfile:11:19: `path` must be an absolute guest path, found `srv/app`",
        "Boxfile:11:36: invalid image `Shop/Web` in `tag`",
        "Boxfile:11:50: this entry needs `path`",
        "Boxfile:13:10: invalid container name `-web`",
        "Boxfile:13:26: invalid image `a..b` in `image`",
        "Boxfile:13:43: invalid `ports` entry `80`: expected `GUEST:CONTAINER`",
        "Boxfile:13:49: invalid `ports` entry `8080:80/sctp`: `sctp` is not `tcp` or `udp`",
        "Boxfile:13:77: invalid `volumes` entry `data:relative`: the container path `relative` is not absolute",
        "Boxfile:13:103: invalid environment variable name `A-B` in `env`",
        "Boxfile:13:128: invalid `restart` value `sometimes`",
        "Boxfile:15:10: duplicate container name `db` in this step",
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("= help: write `GUEST:CONTAINER`"), "{err}");
}

#[test]
fn docker_env_of_a_machine_that_is_not_up_says_so_and_unset_needs_no_machine() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("Boxfile"), MACHINE).unwrap();
    let home = tempfile::tempdir().unwrap();
    let out = support::box_cmd(home.path())
        .arg("-C")
        .arg(dir.path())
        .args(["docker-env", "web"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("`web` is not created"), "{err}");
    assert!(err.contains("hint: run `box up web`"), "{err}");

    let bin = dir.path().join(".box/docker-env/bin");
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let unset = |shell: &str| {
        let out = support::box_cmd(home.path())
            .arg("-C")
            .arg(dir.path())
            .env("PATH", &path)
            .args(["docker-env", "--unset", "--shell", shell])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        String::from_utf8(out.stdout).unwrap()
    };
    assert_eq!(
        unset("bash"),
        "unset DOCKER_HOST\nexport PATH=/usr/bin:/bin\n"
    );
    assert_eq!(
        unset("fish"),
        "set -e DOCKER_HOST;\nset -gx PATH /usr/bin /bin;\n"
    );
    assert_eq!(
        unset("powershell"),
        "Remove-Item Env:DOCKER_HOST\n$Env:PATH = '/usr/bin:/bin'\n"
    );
}

/// The body of `GET /` on a forwarded host port; tries a few times, as
/// the container's server may still be starting (not a timing check).
pub(crate) fn http_get(port: u16) -> String {
    let mut last = String::new();
    for _ in 0..60 {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(mut s) => {
                s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
                let _ = s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n");
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                if let Some((_, body)) = text.split_once("\r\n\r\n") {
                    return body.to_string();
                }
                last = text;
            }
            Err(e) => last = e.to_string(),
        }
        std::thread::sleep(Duration::from_secs(1));
    }
    panic!("no HTTP answer on port {port}: {last}");
}

fn docker_project(port: u16) -> String {
    format!(
        r#"[project]
name = "dock"

[defaults]
box = "debian-12-docker"
cpus = 1
memory = 1024

[local]
isolated = true

[[machine]]
name = "web"
ports = [{{ guest = 8080, host = {port} }}]
sync = [{{ from = "app", to = "/srv/app" }}]

[[machine.provision]]
name = "app"
run = "always"

[machine.provision.docker]

[[machine.provision.docker.build]]
path = "/srv/app"
tag = "shop/web:dev"

[[machine.provision.docker.run]]
name = "web"
image = "shop/web:dev"
ports = ["8080:80"]
env = {{ GREETING = "hi there" }}

[[machine.provision]]
name = "images"
run = "never"
docker = {{ load = ["images/base.tar"], run = [{{ name = "loaded", image = "shop/base:1", args = ["sleep", "100000"] }}] }}

[[machine.provision]]
name = "pull"
run = "never"
docker = {{ build = [{{ path = "/srv/app/pulls", tag = "shop/pulls:1" }}] }}

[[machine.provision]]
name = "foreign"
run = "never"
docker = {{ run = [{{ name = "intruder", image = "box/busybox", args = ["sleep", "100000"] }}] }}
"#
    )
}

#[test]
fn the_docker_box_builds_loads_and_runs_leaves_unchanged_containers_alone_replaces_changed_ones_and_serves_the_host_docker_cli(
) {
    let docker_cli = support::require("docker");
    let port = free_port();
    let p = Project::new(&docker_project(port), guest::docker_boxes_dir());
    let app = p.root.join("app");
    fs::create_dir_all(app.join("pulls")).unwrap();
    fs::write(
        app.join("Dockerfile"),
        "FROM box/busybox\nCOPY index.html /www/index.html\n\
         CMD [\"sh\", \"-c\", \"echo \\\"$GREETING\\\" >> /www/index.html; exec httpd -f -p 80 -h /www\"]\n",
    )
    .unwrap();
    fs::write(app.join("index.html"), "hello from a container\n").unwrap();
    // A base image that only a registry has.
    fs::write(app.join("pulls/Dockerfile"), "FROM nginx:1.25\n").unwrap();
    fs::create_dir_all(p.root.join("images")).unwrap();
    // Replaced by a real `docker save` below; validation wants it to exist.
    fs::write(p.root.join("images/base.tar"), "").unwrap();

    let up = p.run(&["up"]);
    let err = stderr(&up);
    assert!(
        up.status.success(),
        "box up failed:\n{err}\nconsole:\n{}",
        fs::read_to_string(p.root.join(".box/machines/web/console.log")).unwrap_or_default()
    );
    assert!(err.contains("web: built shop/web:dev ("), "{err}");
    assert!(
        err.contains("web: container `web` created (shop/web:dev)"),
        "{err}"
    );
    // Built from a synced folder, run with its env, reached from the host
    // through the machine's forwarded port.
    assert_eq!(http_get(port), "hello from a container\nhi there\n");
    // The login user is in the docker group (the image's unit did it).
    let groups = p.sh("web", "id -nG");
    assert!(groups.split_whitespace().any(|g| g == "docker"), "{groups}");
    let id = |p: &Project| p.sh("web", "sudo docker inspect --format '{{.Id}}' web");
    let first = id(&p);

    // A second provision changes nothing.
    let again = p.run(&["provision"]);
    let err = stderr(&again);
    assert!(again.status.success(), "{err}");
    assert!(err.contains("web: image shop/web:dev unchanged"), "{err}");
    assert!(err.contains("web: container `web` unchanged"), "{err}");
    assert_eq!(id(&p), first, "an unchanged container was replaced");

    // The host's real docker CLI, with box docker-env's environment, lists
    // the guest's containers over SSH with the pinned host key.
    let env = p.ok(&["docker-env", "web"]);
    assert!(
        env.contains("export DOCKER_HOST=ssh://box@dock-web\n"),
        "{env}"
    );
    fs::write(p.root.join("docker.env"), &env).unwrap();
    let docker_dir = docker_cli.parent().unwrap().display().to_string();
    // A shell with the docker CLI and box docker-env's environment.
    let with_env = |script: &str| {
        std::process::Command::new("sh")
            .current_dir(&p.root)
            .env("PATH", format!("{docker_dir}:/usr/bin:/bin"))
            .arg("-c")
            .arg(format!(". ./docker.env && {script}"))
            .output()
            .unwrap()
    };
    let out = with_env("docker ps --format '{{.Names}} {{.Image}} {{.Ports}}'");
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        listed.contains("web shop/web:dev 0.0.0.0:8080->80/tcp"),
        "{listed}"
    );
    // A changed host key is refused, never trusted on first use.
    let known = p.root.join(".box/ssh_known_hosts");
    let pinned = fs::read_to_string(&known).unwrap();
    fs::write(
        &known,
        pinned.replace(
            pinned.split_whitespace().nth(2).unwrap(),
            "AAAAC3NzaC1lZDI1NTE5AAAAIBoxBoxBoxBoxBoxBoxBoxBoxBoxBoxBoxBoxBoxBoxBox",
        ),
    )
    .unwrap();
    // (ControlPath=none: a master connection made with the right key would
    // otherwise carry this one without a new check.)
    let out = with_env("ssh -o ControlPath=none -o BatchMode=yes dock-web true");
    assert!(!out.status.success(), "a wrong host key was accepted");
    assert!(
        stderr(&out).contains("Host key verification failed"),
        "{}",
        stderr(&out)
    );
    fs::write(&known, pinned).unwrap();

    // A changed port replaces the container.
    let changed = docker_project(port).replace("ports = [\"8080:80\"]", "ports = [\"8081:80\"]");
    fs::write(p.root.join("Boxfile"), changed).unwrap();
    let out = p.run(&["provision"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("web: container `web` replaced (shop/web:dev)"),
        "{err}"
    );
    assert_ne!(id(&p), first);
    assert_eq!(
        p.sh("web", "busybox wget -q -O - http://127.0.0.1:8081/"),
        "hello from a container\nhi there\n"
    );

    // `load`: a real `docker save` tarball on the host, streamed in.
    let tar = p.run(&[
        "ssh",
        "web",
        "-c",
        "sudo docker tag box/busybox:latest shop/base:1 && sudo docker save shop/base:1",
    ]);
    assert!(tar.status.success(), "{}", stderr(&tar));
    assert!(tar.stdout.len() > 1_000_000, "{} bytes", tar.stdout.len());
    fs::write(p.root.join("images/base.tar"), &tar.stdout).unwrap();
    p.sh("web", "sudo docker rmi shop/base:1");
    let out = p.run(&["provision", "--with", "images"]);
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Loaded image: shop/base:1"), "{err}");
    assert!(
        err.contains("web: container `loaded` created (shop/base:1)"),
        "{err}"
    );

    // Never downloads: a base image only a registry has is an error.
    let out = p.run(&["provision", "--with", "pull"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("builds FROM `nginx:1.25`, which is not in `web`'s Docker, and box never downloads images"),
        "{err}"
    );
    assert!(
        err.contains("hint: `docker save nginx:1.25 -o image.tar`"),
        "{err}"
    );

    // A container box did not make is never removed.
    p.sh("web", "sudo docker create --name intruder box/busybox true");
    let out = p.run(&["provision", "--with", "foreign"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("a container named `intruder` exists in `web` and box did not make it"),
        "{err}"
    );
    p.sh("web", "sudo docker container inspect intruder >/dev/null");

    // A box without Docker: a clear error, a hint, nothing installed.
    p.sh("web", "sudo mv /usr/bin/docker /usr/bin/docker.off");
    let out = p.run(&["provision", "--with", "app"]);
    let err = stderr(&out);
    p.sh("web", "sudo mv /usr/bin/docker.off /usr/bin/docker");
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("`web` has no Docker (its box is `debian-12-docker`)"),
        "{err}"
    );
    assert!(
        err.contains("hint: use a box with Docker: `box = \"debian-12-docker\"`"),
        "{err}"
    );

    p.ok(&["destroy", "--force"]);
    assert!(p.qemu_pids().is_empty(), "QEMU left after destroy");
}
