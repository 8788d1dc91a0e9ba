//! `docker = { load, build, run }` in a provisioner: image tarballs on the
//! host, images built from guest folders, and containers, each checked at
//! its `FILE:LINE:COL` so a typo never reaches the guest's `docker`.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use super::diagnostic::shown;
use super::model::{DockerBuild, DockerRun, DockerStep};
use super::node::{Entry, Kind, Node};
use super::reader::{Loc, Reader};
use super::resolve::{existing_path, guest_path, variable_map};
use super::schema;

/// The restart policy when a run entry sets none.
pub(crate) const DEFAULT_RESTART: &str = "unless-stopped";

pub(crate) fn step(r: &mut Reader, k: &Entry, root: &Path) -> Option<DockerStep> {
    let entries = r.table(&k.value, "`docker`", &schema::DOCKER)?;
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    if entries.is_empty() {
        r.error(
            &k.value.loc(),
            "a `docker` provisioner needs at least one of `load`, `build` or `run`",
            Some("e.g. `docker = { run = [{ name = \"web\", image = \"shop/web:dev\" }] }`".into()),
        );
        return None;
    }
    let mut ok = true;
    let mut load = Vec::new();
    if let Some(e) = get("load") {
        if let (Some(_), Kind::Array(items)) = (r.strings(e), &e.value.kind) {
            for item in items {
                // `existing_path` reads an entry: one per tarball, at its place.
                let one = Entry {
                    key: e.key.clone(),
                    key_file: e.key_file,
                    key_span: e.key_span.clone(),
                    value: item.clone(),
                };
                match existing_path(r, &one, root, true, "this machine's `docker` provisioner") {
                    Some(p) => load.push(p),
                    None => ok = false,
                }
            }
        }
    }
    let mut build = Vec::new();
    if let Some(e) = get("build") {
        for node in r.tables(e) {
            match build_entry(r, node) {
                Some(b) => build.push(b),
                None => ok = false,
            }
        }
    }
    let mut run = Vec::new();
    if let Some(e) = get("run") {
        let mut seen: HashMap<String, Loc> = HashMap::new();
        for node in r.tables(e) {
            match run_entry(r, node, &mut seen) {
                Some(c) => run.push(c),
                None => ok = false,
            }
        }
    }
    ok.then_some(DockerStep { load, build, run })
}

fn build_entry(r: &mut Reader, node: &Node) -> Option<DockerBuild> {
    let entries = r.table(node, "a `docker` build", &schema::DOCKER_BUILD)?;
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    let path =
        required(r, node, get("path"), "path", "\"/srv/app\"").and_then(|e| guest_path(r, e));
    let tag = required(r, node, get("tag"), "tag", "\"shop/web:dev\"").and_then(|e| image(r, e));
    let dockerfile = match get("dockerfile") {
        Some(e) => Some(dockerfile(r, e)?),
        None => None,
    };
    let args = match get("args") {
        Some(e) => Some(variable_map(r, e, "build argument")?),
        None => Some(BTreeMap::new()),
    };
    Some(DockerBuild {
        path: path?,
        tag: tag?,
        dockerfile,
        args: args?,
    })
}

fn run_entry(r: &mut Reader, node: &Node, seen: &mut HashMap<String, Loc>) -> Option<DockerRun> {
    let entries = r.table(node, "a `docker` run", &schema::DOCKER_RUN)?;
    let get = |key: &str| entries.iter().find(|e| e.key == key);
    let name = required(r, node, get("name"), "name", "\"web\"").and_then(|e| {
        let n = container_name(r, e)?;
        let loc = e.value.loc();
        if let Some(first) = seen.get(&n) {
            let line = r.line(first);
            r.error(
                &loc,
                format!("duplicate container name `{}` in this step", shown(&n)),
                Some(format!("the first `{}` is on line {line}", shown(&n))),
            );
            return None;
        }
        seen.insert(n.clone(), loc);
        Some(n)
    });
    let image =
        required(r, node, get("image"), "image", "\"shop/web:dev\"").and_then(|e| image(r, e));
    let ports = match get("ports") {
        Some(e) => each(r, e, check_port, PORT_HELP),
        None => Some(Vec::new()),
    };
    let env = match get("env") {
        Some(e) => variable_map(r, e, "environment variable"),
        None => Some(BTreeMap::new()),
    };
    let volumes = match get("volumes") {
        Some(e) => each(r, e, check_volume, VOLUME_HELP),
        None => Some(Vec::new()),
    };
    let restart = match get("restart") {
        Some(e) => r.choice(e, schema::DOCKER_RESTART).map(str::to_string),
        None => Some(DEFAULT_RESTART.to_string()),
    };
    let args = match get("args") {
        Some(e) => r
            .strings(e)
            .map(|v| v.into_iter().map(|(s, _)| s).collect()),
        None => Some(Vec::new()),
    };
    Some(DockerRun {
        name: name?,
        image: image?,
        ports: ports?,
        env: env?,
        volumes: volumes?,
        restart: restart?,
        args: args?,
    })
}

/// `e`, or an error at the table when the key is missing.
fn required<'e>(
    r: &mut Reader,
    node: &Node,
    e: Option<&'e Entry>,
    key: &str,
    example: &str,
) -> Option<&'e Entry> {
    if e.is_none() {
        r.error(
            &node.loc(),
            format!("this entry needs `{key}`"),
            Some(format!("e.g. `{key} = {example}`")),
        );
    }
    e
}

fn image(r: &mut Reader, e: &Entry) -> Option<String> {
    let s = r.string(e)?;
    if let Err(why) = check_image(&s) {
        r.error(
            &e.value.loc(),
            format!("invalid image `{}` in `{}`: {why}", shown(&s), e.key),
            Some("write `name` or `name:tag`, e.g. `shop/web:dev`: lowercase letters, digits and `.`, `_`, `-` between them, parts separated by `/`".into()),
        );
        return None;
    }
    Some(s)
}

fn container_name(r: &mut Reader, e: &Entry) -> Option<String> {
    let s = r.string(e)?;
    let mut chars = s.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !ok {
        r.error(
            &e.value.loc(),
            format!("invalid container name `{}`", shown(&s)),
            Some("use letters, digits, `_`, `.` and `-`, starting with a letter or digit".into()),
        );
        return None;
    }
    Some(s)
}

fn dockerfile(r: &mut Reader, e: &Entry) -> Option<String> {
    let s = r.string(e)?;
    if s.is_empty() || s.starts_with('/') || s.split('/').any(|part| part == "..") {
        r.error(
            &e.value.loc(),
            format!(
                "`dockerfile` must be a path inside `path`, found `{}`",
                shown(&s)
            ),
            Some("write it relative to the build's `path`, e.g. `Dockerfile.dev`".into()),
        );
        return None;
    }
    Some(s)
}

/// Every string of `e`, each checked by `check` and reported at its place.
fn each(
    r: &mut Reader,
    e: &Entry,
    check: fn(&str) -> Result<(), String>,
    help: &str,
) -> Option<Vec<String>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (s, loc) in r.strings(e)? {
        match check(&s) {
            Ok(()) => out.push(s),
            Err(why) => {
                ok = false;
                r.error(
                    &loc,
                    format!("invalid `{}` entry `{}`: {why}", e.key, shown(&s)),
                    Some(help.into()),
                );
            }
        }
    }
    ok.then_some(out)
}

const PORT_HELP: &str = "write `GUEST:CONTAINER` (e.g. `8080:80`) or `IP:GUEST:CONTAINER`, optionally with `/tcp` or `/udp`";
const VOLUME_HELP: &str = "write `/guest/path:/container/path` or `volume-name:/container/path`, optionally with `:ro` or `:rw`";

/// A Docker image reference as box accepts it: a lowercase repository
/// path and an optional tag (no registry host: box never pulls).
pub(crate) fn check_image(s: &str) -> Result<(), String> {
    let (repo, tag) = match s.rsplit_once(':') {
        Some((repo, tag)) => (repo, Some(tag)),
        None => (s, None),
    };
    if repo.is_empty() {
        return Err("the name is empty".into());
    }
    if let Some(part) = repo.split('/').find(|part| !path_component(part)) {
        return Err(format!("`{}` is not a valid name part", shown(part)));
    }
    if let Some(tag) = tag {
        let mut chars = tag.chars();
        let ok = tag.len() <= 128
            && chars
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
        if !ok {
            return Err(format!("`{}` is not a valid tag", shown(tag)));
        }
    }
    Ok(())
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or dashes, as Docker reads a
/// repository path component.
fn path_component(part: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let mut rest = part;
    loop {
        let run = rest.find(|c| !alnum(c)).unwrap_or(rest.len());
        if run == 0 {
            return false;
        }
        rest = &rest[run..];
        if rest.is_empty() {
            return true;
        }
        let sep = rest.find(alnum).unwrap_or(rest.len());
        let separator = &rest[..sep];
        if !(matches!(separator, "." | "_" | "__") || separator.chars().all(|c| c == '-')) {
            return false;
        }
        rest = &rest[sep..];
    }
}

fn port_number(s: &str) -> Result<u16, String> {
    match s.parse::<u16>() {
        Ok(n) if n >= 1 && s.chars().all(|c| c.is_ascii_digit()) => Ok(n),
        _ => Err(format!("`{}` is not a port (1-65535)", shown(s))),
    }
}

/// `[IP:]GUEST:CONTAINER[/tcp|/udp]`.
pub(crate) fn check_port(s: &str) -> Result<(), String> {
    let (spec, protocol) = match s.rsplit_once('/') {
        Some((spec, p)) => (spec, Some(p)),
        None => (s, None),
    };
    if let Some(p) = protocol {
        if p != "tcp" && p != "udp" {
            return Err(format!("`{}` is not `tcp` or `udp`", shown(p)));
        }
    }
    let parts: Vec<&str> = spec.split(':').collect();
    match parts.as_slice() {
        [guest, container] => {
            port_number(guest)?;
            port_number(container)?;
        }
        [ip, guest, container] => {
            ip.parse::<std::net::Ipv4Addr>()
                .map_err(|_| format!("`{}` is not an IPv4 address", shown(ip)))?;
            port_number(guest)?;
            port_number(container)?;
        }
        _ => return Err("expected `GUEST:CONTAINER`".into()),
    }
    Ok(())
}

/// `SOURCE:/container/path[:ro|:rw]`, the source an absolute guest path
/// or a volume name.
pub(crate) fn check_volume(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, target) = match parts.as_slice() {
        [source, target] => (*source, *target),
        [source, target, mode] => {
            if *mode != "ro" && *mode != "rw" {
                return Err(format!("`{}` is not `ro` or `rw`", shown(mode)));
            }
            (*source, *target)
        }
        _ => return Err("expected `SOURCE:/container/path`".into()),
    };
    if !target.starts_with('/') {
        return Err(format!(
            "the container path `{}` is not absolute",
            shown(target)
        ));
    }
    let mut chars = source.chars();
    let volume_name = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    if !source.starts_with('/') && !volume_name {
        return Err(format!(
            "`{}` is neither an absolute guest path nor a volume name",
            shown(source)
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_are_lowercase_paths_with_an_optional_tag() {
        for good in [
            "busybox",
            "box/busybox:latest",
            "shop/web:dev",
            "a.b_c-d/e:V1.2_x",
            "a__b",
        ] {
            assert_eq!(check_image(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "Shop/web",
            "web:",
            "-web",
            "web-",
            "shop//web",
            "web:-x",
            "a..b",
            "registry:5000/x",
        ] {
            assert!(check_image(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ports_are_guest_then_container_like_docker_run_p() {
        for good in ["8080:80", "127.0.0.1:8080:80", "53:53/udp", "1:65535/tcp"] {
            assert_eq!(check_port(good), Ok(()), "{good}");
        }
        for bad in [
            "80",
            "0:80",
            "8080:80/sctp",
            "a:80",
            "8080:65536",
            "::1:80:80",
            "8080:+80",
        ] {
            assert!(check_port(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volumes_name_a_guest_path_or_a_volume_and_an_absolute_container_path() {
        for good in [
            "/srv/data:/data",
            "pgdata:/var/lib/postgresql",
            "/etc/x:/x:ro",
        ] {
            assert_eq!(check_volume(good), Ok(()), "{good}");
        }
        for bad in ["/srv/data", "data:relative", "/a:/b:rx", "../x:/x", "-v:/x"] {
            assert!(check_volume(bad).is_err(), "{bad}");
        }
    }
}
