//! `box api`: dry runs print the published signing vectors' signatures,
//! and real calls against a local stand-in print JSON, log at -vv, wait
//! for jobs and show hints.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{json, Value};

use crate::harness::Test;
use crate::support;

const URL: &str = "http://127.0.0.1:9/client/api";

/// A test whose `box` runs call `url` with these credentials.
fn endpoint(url: &str, key: &str, secret: &str) -> Test {
    Test::new()
        .env("CLOUDSTACK_API_URL", url)
        .env("CLOUDSTACK_API_KEY", key)
        .env("CLOUDSTACK_SECRET_KEY", secret)
}

fn percent_encoded(signature: &str) -> String {
    signature
        .replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

/// API key, secret, command, parameters, string to sign, signature.
type Vector = (
    &'static str,
    &'static str,
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
);

// ../shared/cloudstack-fixtures/signing-vectors.md, every row.
const VECTORS: &[Vector] = &[
    ("fnord", "abracadabra", "listVirtualMachines", &[],
     "apikey=fnord&command=listvirtualmachines&response=json", "z/a9Y7J52u48VpqIgiwaGUMCso0="),
    ("fnord", "abracadabra", "deployVirtualMachine",
     &["displayname=george", "name=fred", "networkids=42", "serviceofferingid=5", "templateid=17", "zoneid=23"],
     "apikey=fnord&command=deployvirtualmachine&displayname=george&name=fred&networkids=42&response=json&serviceofferingid=5&templateid=17&zoneid=23",
     "gHTo7mYmadZ+zluKHzlEKb1i/QU="),
    ("fnord", "abracadabra", "deployVirtualMachine",
     &["displayname=George+Ringo", "name=fred", "networkids=42", "serviceofferingid=5", "templateid=17", "zoneid=23"],
     "apikey=fnord&command=deployvirtualmachine&displayname=george%2bringo&name=fred&networkids=42&response=json&serviceofferingid=5&templateid=17&zoneid=23",
     "tAgfrreI1ZvWlWLClD3gu4+aKv4="),
    ("foo", "bar", "listVirtualMachines", &["listall=true"],
     "apikey=foo&command=listvirtualmachines&listall=true&response=json", "B0d6hBsZTcFVCiioSxzwKA9Pke8="),
    ("foo", "bar", "listVirtualMachines", &["listall=1", "unicode_param=éèààû"],
     "apikey=foo&command=listvirtualmachines&listall=1&response=json&unicode_param=%c3%a9%c3%a8%c3%a0%c3%a0%c3%bb",
     "gABU/KFJKD3FLAgKDuxQoryu4sA="),
    ("foo", "bar", "listVirtualMachines",
     &["bar[0].baz=blah", "bar[0].foo=1000", "bytes_param=blah", "foo=foo,bar"],
     "apikey=foo&bar[0].baz=blah&bar[0].foo=1000&bytes_param=blah&command=listvirtualmachines&foo=foo%2cbar&response=json",
     "ImJ/5F0P2RDL7yn4LdLnGcEx5WE="),
    ("foo", "bar", "createNetwork", &["display_text=", "name="],
     "apikey=foo&command=createnetwork&display_text=&name=&response=json", "CistTEiPt/4Rv1v4qSyILvPbhmg="),
    ("foo", "bar", "listVirtualMachines",
     &["page=1", "pageSize=10", "temPlateidd=4", "templateId=3", "zoneId=2"],
     "apikey=foo&command=listvirtualmachines&page=1&pagesize=10&response=json&templateidd=4&templateid=3&zoneid=2",
     "mMS7XALuGkCXk7kj5SywySku0Z0="),
];

#[test]
fn dry_run_prints_the_published_vector_signatures() {
    for (key, secret, command, params, to_sign, signature) in VECTORS {
        let args = [&["api", command][..], params, &["--dry-run"]].concat();
        let stdout = endpoint(URL, key, secret)
            .run(args)
            .env("BOX_SIGNATURE_VERSION", "2")
            .success()
            .stdout;
        assert!(
            stdout.contains(&format!("string to sign: {to_sign}\n")),
            "{command}: {stdout}"
        );
        assert!(
            stdout.contains(&format!("&signature={}\n", percent_encoded(signature))),
            "{command}: expected {signature} in {stdout}"
        );
        assert!(!stdout.contains(secret) || secret.len() < 4, "{stdout}");
    }
}

#[test]
fn dry_run_with_explicit_expires_and_version_is_deterministic() {
    endpoint(URL, "fnord", "abracadabra")
        .run([
            "api",
            "listZones",
            "signatureVersion=3",
            "expires=2030-01-01T00:00:00+0000",
            "--dry-run",
        ])
        .success()
        // The signature was computed independently (Python's hmac and base64).
        .stdout_is(
            "string to sign: apikey=fnord&command=listzones&expires=2030-01-01t00%3a00%3a00%2b0000&response=json&signatureversion=3\n\
             GET http://127.0.0.1:9/client/api?apiKey=fnord&command=listZones&response=json&signatureVersion=3&expires=2030-01-01T00%3A00%3A00%2B0000&signature=LTZ9H0bFNTTeaeWRL8H4X06EUXA%3D\n",
        )
        .stderr_lacks("abracadabra");
}

#[test]
fn dry_run_adds_expiry_by_default() {
    endpoint(URL, "k", "s3cr3t-value")
        .run(["api", "listZones", "--dry-run"])
        .success()
        .stdout_has("signatureVersion=3")
        .stdout_has("&expires=20")
        .stdout_lacks("s3cr3t-value");
}

#[test]
fn missing_credentials_are_explained() {
    Test::new()
        .run(["api", "listZones"])
        .failure()
        .stderr_has("no CloudStack credentials for profile `default`")
        .stderr_has("hint: set CLOUDSTACK_API_URL");
}

#[test]
fn parameters_must_be_key_value() {
    endpoint(URL, "k", "s")
        .run(["api", "listZones", "zoneid"])
        .failure()
        .stderr_has("hint: write parameters as key=value");
}

/// A one-thread-per-connection HTTP/1.1 stand-in answering by command.
fn serve(
    handler: impl Fn(&str, &[(String, String)]) -> (u16, Value) + Send + Sync + 'static,
) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/client/api", listener.local_addr().unwrap());
    let handler = Arc::new(handler);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let handler = handler.clone();
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().unwrap();
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut length = 0;
                    loop {
                        let mut h = String::new();
                        reader.read_line(&mut h).unwrap();
                        if h.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let query = target
                        .split_once('?')
                        .map(|(_, q)| q.to_string())
                        .unwrap_or_default();
                    let all = format!("{query}&{}", String::from_utf8(body).unwrap());
                    let params: Vec<(String, String)> = all
                        .split('&')
                        .filter_map(|p| p.split_once('='))
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect();
                    let command = params
                        .iter()
                        .find(|(n, _)| n == "command")
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default();
                    let (status, reply) = handler(&command, &params);
                    let reply = reply.to_string();
                    let _ = write!(
                        writer,
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{reply}",
                        reply.len()
                    );
                }
            });
        }
    });
    url
}

#[test]
fn a_list_call_prints_pretty_json_and_logs_at_vv() {
    let url = serve(|command, _| {
        assert_eq!(command, "listZones");
        (
            200,
            json!({"listzonesresponse": {"count": 1, "zone": [{"id": "z-1", "name": "lab"}]}}),
        )
    });
    let out = endpoint(&url, "the-api-key", "the-secret-key")
        .run(["api", "-vv", "listZones", "available=true"])
        .success();
    assert_eq!(
        out.json(),
        json!({"count": 1, "zone": [{"id": "z-1", "name": "lab"}]})
    );
    out.stderr_has("api: GET listZones")
        .stderr_has("available=true")
        .stderr_has("-> 200 in");
    for secret in ["the-api-key", "the-secret-key", "signature="] {
        out.stderr_lacks(secret);
    }
}

#[test]
fn an_async_call_waits_for_its_job_unless_no_wait() {
    let polls = Arc::new(AtomicUsize::new(0));
    let seen = polls.clone();
    let url = serve(move |command, _| match command {
        "queryAsyncJobResult" => {
            if seen.fetch_add(1, Ordering::SeqCst) == 0 {
                (
                    200,
                    json!({"queryasyncjobresultresponse": {"jobid": "j-1", "jobstatus": 0}}),
                )
            } else {
                (
                    200,
                    json!({"queryasyncjobresultresponse": {"jobid": "j-1", "jobstatus": 1,
                    "jobresult": {"virtualmachine": {"id": "vm-1", "state": "Stopped"}}}}),
                )
            }
        }
        _ => (200, json!({"stopvirtualmachineresponse": {"jobid": "j-1"}})),
    });
    let t = endpoint(&url, "k", "s");
    let v = t
        .run(["api", "stopVirtualMachine", "id=vm-1"])
        .success()
        .json();
    assert_eq!(v["virtualmachine"]["state"], "Stopped");
    assert_eq!(polls.load(Ordering::SeqCst), 2);

    let v = t
        .run(["api", "stopVirtualMachine", "id=vm-1", "--no-wait"])
        .success()
        .json();
    assert_eq!(v, json!({"jobid": "j-1"}));
    assert_eq!(polls.load(Ordering::SeqCst), 2);
}

#[test]
fn an_api_error_prints_the_error_text_and_a_hint() {
    let url = serve(|_, _| {
        (
            431,
            json!({"deployvirtualmachineresponse": {"uuidList": [], "errorcode": 431, "cserrorcode": 4350,
            "errortext": "Unable to execute API command deployvirtualmachine due to missing parameter zoneid"}}),
        )
    });
    endpoint(&url, "k", "s")
        .run(["api", "deployVirtualMachine", "templateid=t"])
        .failure()
        .stderr_has("missing parameter zoneid")
        .stderr_has("hint: check the value of parameter `zoneid`");
}

/// `tests/hostile_endpoint.py` serving one misbehaviour on loopback,
/// stopped when dropped.
struct Hostile {
    child: std::process::Child,
    url: String,
}

impl Hostile {
    fn start(mode: &str, extra: &[&str]) -> Hostile {
        let python = support::require("python3");
        let script =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/hostile_endpoint.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .arg(mode)
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("the hostile endpoint starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("the hostile endpoint says where it listens");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line}"))
            .to_string();
        Hostile { child, url }
    }
}

impl Drop for Hostile {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `box ARGS` in `dir` against `url`, in a child shell that caps its
/// address space at 1 GB (a regression must not eat the machine), killed
/// after 5 minutes only as a safety net against hangs.
fn limited_box(
    home: &std::path::Path,
    dir: &std::path::Path,
    url: &str,
    envs: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = assert_cmd::Command::new(support::require("sh"));
    cmd.current_dir(dir)
        .env("BOX_HOME", home)
        .env("NO_COLOR", "1")
        .env_remove("BOX_PROFILE")
        .env("CLOUDSTACK_API_URL", url)
        .env("CLOUDSTACK_API_KEY", "hostile-key")
        .env("CLOUDSTACK_SECRET_KEY", "hostile-secret")
        .envs(envs.iter().copied())
        .arg("-c")
        .arg("ulimit -v 1000000 && exec \"$0\" \"$@\"")
        .arg(assert_cmd::cargo::cargo_bin("box"))
        .args(args)
        .timeout(std::time::Duration::from_secs(300));
    cmd.output().unwrap()
}

/// Exit code 1 and an `error:` that contains `message`; the stderr.
fn fails_with(out: &std::process::Output, message: &str) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(message),
        "expected `{message}` in: {stderr}"
    );
    assert!(!stderr.contains("hostile-secret"), "{stderr}");
    stderr
}

#[test]
fn api_on_an_endless_body_stops_at_the_size_limit_and_names_the_setting() {
    let home = tempfile::tempdir().unwrap();
    let h = Hostile::start("endless", &[]);
    // The default limit, within the 1 GB the shell allows.
    let out = limited_box(home.path(), home.path(), &h.url, &[], &["api", "listZones"]);
    let err = fails_with(
        &out,
        "error: the answer to `listZones` is over the limit of 128 MB",
    );
    assert!(
        err.contains("hint: if the answer is meant to be this large, raise `max_response_mb` in the profile or BOX_CLOUDSTACK_MAX_RESPONSE_MB"),
        "{err}"
    );
    let out = limited_box(
        home.path(),
        home.path(),
        &h.url,
        &[("BOX_CLOUDSTACK_MAX_RESPONSE_MB", "1")],
        &["api", "listZones"],
    );
    fails_with(&out, "is over the limit of 1 MB");
}

#[test]
fn api_refuses_an_announced_huge_body_before_reading_it() {
    let home = tempfile::tempdir().unwrap();
    let h = Hostile::start("huge-length", &[]);
    let out = limited_box(home.path(), home.path(), &h.url, &[], &["api", "listZones"]);
    fails_with(
        &out,
        "over the limit of 128 MB (the server announced 1048576 MB)",
    );
}

#[test]
fn api_on_slow_headers_or_a_dripping_body_stops_at_the_configured_timeout() {
    let home = tempfile::tempdir().unwrap();
    for mode in ["slow-headers", "drip"] {
        let h = Hostile::start(mode, &[]);
        let out = limited_box(
            home.path(),
            home.path(),
            &h.url,
            &[("BOX_CLOUDSTACK_TIMEOUT", "2")],
            &["api", "listZones"],
        );
        let err = fails_with(
            &out,
            "the CloudStack API did not answer `listZones` within 2s",
        );
        assert!(
            err.contains("raise `timeout_secs` in the profile or BOX_CLOUDSTACK_TIMEOUT"),
            "{mode}: {err}"
        );
    }
    // The same from the profile.
    std::fs::write(
        home.path().join("config.toml"),
        "[profiles.default]\ntimeout_secs = 3\n",
    )
    .unwrap();
    let h = Hostile::start("drip", &[]);
    let out = limited_box(home.path(), home.path(), &h.url, &[], &["api", "listZones"]);
    fails_with(&out, "did not answer `listZones` within 3s");
}

#[test]
fn api_on_invalid_json_says_the_body_is_not_json() {
    let home = tempfile::tempdir().unwrap();
    let h = Hostile::start("invalid-json", &[]);
    let out = limited_box(home.path(), home.path(), &h.url, &[], &["api", "listZones"]);
    fails_with(
        &out,
        "error: unexpected CloudStack response to `listZones`: the body is not JSON",
    );
}

#[test]
fn api_on_http_500_forever_gives_up_with_the_status_and_a_hint() {
    let home = tempfile::tempdir().unwrap();
    let h = Hostile::start("http-500", &[]);
    let out = limited_box(home.path(), home.path(), &h.url, &[], &["api", "listZones"]);
    let err = fails_with(&out, "answered `listZones` with HTTP 500");
    assert!(
        err.contains("hint: the cloud's API server is failing"),
        "{err}"
    );
}

#[test]
fn api_on_a_job_that_never_finishes_stops_at_the_job_timeout() {
    let url = serve(|command, params| match command {
        "queryAsyncJobResult" => {
            let jobid = params
                .iter()
                .find(|(n, _)| n == "jobid")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            (
                200,
                json!({"queryasyncjobresultresponse": {"jobid": jobid, "jobstatus": 0}}),
            )
        }
        _ => (
            200,
            json!({"stopvirtualmachineresponse": {"jobid": "j-forever"}}),
        ),
    });
    let home = tempfile::tempdir().unwrap();
    let out = limited_box(
        home.path(),
        home.path(),
        &url,
        &[("BOX_CLOUDSTACK_JOB_TIMEOUT", "2")],
        &["api", "stopVirtualMachine", "id=vm-1"],
    );
    let err = fails_with(
        &out,
        "CloudStack job j-forever of `stopVirtualMachine` did not finish within 2s",
    );
    assert!(
        err.contains("`box api queryAsyncJobResult jobid=j-forever`")
            && err.contains("BOX_CLOUDSTACK_JOB_TIMEOUT"),
        "{err}"
    );
}

#[test]
fn a_large_list_answer_is_printed_whole_and_unchanged() {
    let home = tempfile::tempdir().unwrap();
    let h = Hostile::start("big-json", &["--size-mb", "3"]);
    let out = limited_box(
        home.path(),
        home.path(),
        &h.url,
        &[],
        &["api", "listVirtualMachines"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let vms = v["virtualmachine"].as_array().unwrap();
    assert!(vms.len() > 900, "{}", vms.len());
    assert_eq!(v["count"], vms.len());
    assert_eq!(vms[7]["name"], "project-machine-00000007");
    assert_eq!(vms[7]["nic"][0]["ipaddress"], "10.1.0.9");
    // Pretty, with the keys of each item sorted, as before.
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("{\n  \"count\": "), "{}", &text[..40]);
    assert!(text.contains("\n      \"account\": \"admin\",\n      \"affinitygroup\": [],"));
}

#[test]
fn invalid_limit_settings_are_named_with_where_they_come_from() {
    let t = endpoint(URL, "k", "s");
    t.run(["api", "listZones"])
        .env("BOX_CLOUDSTACK_TIMEOUT", "soon")
        .code(1)
        .stderr_has("error: BOX_CLOUDSTACK_TIMEOUT is `soon`, but must be a whole number above 0");
    let config = t.home().join("config.toml");
    std::fs::write(&config, "[profiles.default]\nmax_response_mb = 0\n").unwrap();
    t.run(["api", "listZones"]).code(1).stderr_has(&format!(
        "error: `max_response_mb` of profile `default` in {} is `0`",
        config.display()
    ));
}

const CLOUD_PROJECT: &str = r#"
[project]
name = "demo"
provider = "cloudstack"

[cloudstack]
zone = "Sim-Advanced"
allow_from = ["127.0.0.0/8"]

[[machine]]
name = "web"
depends_on = ["db"]

[[machine]]
name = "db"
"#;

#[test]
fn up_on_a_hostile_endpoint_ends_with_a_clear_error_for_each_misbehaviour() {
    let t = Test::new();
    let demo = t.project("demo", CLOUD_PROJECT);
    for (mode, message) in [
        (
            "endless",
            "cannot list zones: the answer to `listZones` is over the limit of 128 MB",
        ),
        ("huge-length", "the server announced 1048576 MB"),
        (
            "slow-headers",
            "the CloudStack API did not answer `listZones` within 2s",
        ),
        (
            "drip",
            "the CloudStack API did not answer `listZones` within 2s",
        ),
        ("invalid-json", "the body is not JSON"),
        ("http-500", "answered `listZones` with HTTP 500"),
    ] {
        let h = Hostile::start(mode, &[]);
        let out = limited_box(
            t.home(),
            demo.dir(),
            &h.url,
            &[("BOX_CLOUDSTACK_TIMEOUT", "2")],
            &["up", "--no-connect"],
        );
        let err = fails_with(&out, message);
        assert!(
            err.contains("hint: ") || mode == "invalid-json",
            "{mode}: {err}"
        );
    }
}

#[test]
fn up_whose_deploy_job_never_finishes_says_what_it_left_and_destroy_removes_it() {
    let t = Test::new().simulator(&[]);
    let demo = t.project("demo", CLOUD_PROJECT);
    // The simulator's jobs finish; through this proxy they never do.
    let h = Hostile::start("job-never-finishes", &["--upstream", &t.sim().url]);
    let out = limited_box(
        t.home(),
        demo.dir(),
        &h.url,
        &[
            ("CLOUDSTACK_API_KEY", crate::cloud::KEY),
            ("CLOUDSTACK_SECRET_KEY", crate::cloud::SECRET),
            ("BOX_CLOUDSTACK_JOB_TIMEOUT", "2"),
        ],
        &["up", "--no-connect"],
    );
    let err = fails_with(&out, "of `deployVirtualMachine` did not finish within 2s");
    assert!(err.contains("waiting for VM `demo-db-"), "{err}");
    assert!(
        err.contains("what box started is recorded in .box/, so the same command run again picks it up, and `box destroy` removes it"),
        "{err}"
    );
    // Every machine's VM starts at once (depends_on orders provisioning),
    // so both deploys went through before their jobs hung.
    let vms = t.list("listVirtualMachines");
    assert_eq!(vms.len(), 2, "the deploys went through: {vms:?}");

    demo.run(["destroy", "--force"]).success();
    let left: Vec<Value> = t
        .list("listVirtualMachines")
        .into_iter()
        .filter(|v| !matches!(v["state"].as_str(), Some("Destroyed" | "Expunging")))
        .collect();
    assert!(left.is_empty(), "no orphan VM: {left:?}");
    assert!(t.list("listSSHKeyPairs").is_empty());
    assert!(t.list("listPortForwardingRules").is_empty());
}

#[test]
fn up_keeps_one_job_deadline_when_polls_fail_in_between() {
    let t = Test::new().simulator(&[]);
    let demo = t.project("demo", CLOUD_PROJECT);
    // Four polls in five fail: each failure used to start the wait anew.
    let h = Hostile::start("job-flaky", &["--upstream", &t.sim().url]);
    let out = limited_box(
        t.home(),
        demo.dir(),
        &h.url,
        &[
            ("CLOUDSTACK_API_KEY", crate::cloud::KEY),
            ("CLOUDSTACK_SECRET_KEY", crate::cloud::SECRET),
            ("BOX_CLOUDSTACK_JOB_TIMEOUT", "2"),
        ],
        &["up", "--no-connect", "db"],
    );
    let err = fails_with(&out, "of `deployVirtualMachine` did not finish within 2s");
    assert!(!err.contains("HTTP 500"), "{err}");
    demo.run(["destroy", "--force"]).success();
}

/// `box api` and the CloudStack provider make their client the same way
/// (src/cloud_client.rs), so they say the same about credentials and TLS.
#[test]
fn api_and_up_explain_missing_credentials_and_insecure_tls_alike() {
    const PROJECT: &str = "[project]\nname = \"alike\"\nprovider = \"cloudstack\"\n\n[cloudstack]\nzone = \"zone1\"\n\n[[machine]]\nname = \"web\"\n";
    let t = Test::new();
    let project = t.project("alike", PROJECT);
    for out in [
        t.run(["api", "listZones"]).failure(),
        project.run(["up", "--no-connect"]).failure(),
    ] {
        out.stderr_has("no CloudStack credentials for profile `default`")
            .stderr_has("hint: set CLOUDSTACK_API_URL, CLOUDSTACK_API_KEY and CLOUDSTACK_SECRET_KEY, or add [profiles.default] with endpoint, api_key and secret_key to");
    }

    std::fs::write(
        t.home().join("config.toml"),
        format!("[profiles.default]\nendpoint = \"{URL}\"\napi_key = \"k\"\nsecret_key = \"s3cr3t-alike\"\ninsecure = true\n"),
    )
    .expect("the config file is written");
    for out in [
        t.run(["api", "listZones"]).failure(),
        project.run(["up", "--no-connect"]).failure(),
    ] {
        out.stderr_has(
            "TLS certificate verification is off for profile `default` (insecure = true)",
        )
        .stderr_lacks("s3cr3t-alike");
    }
}
