//! `cloudstack-sim` itself: its process contract (the listening line,
//! clean stop, state across restarts, secrets), the third-party `cs` client
//! driving it unchanged, box's own client and `box api` against it, and
//! every kind of injected fault.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use cloudstack::{Client, ClientConfig, Error, JobPollPolicy, Params, RetryPolicy, Secret};
use serde_json::Value;

use crate::cloud::{Sim, KEY, SECRET};
use crate::harness::Test;
use crate::support;

impl Sim {
    pub(crate) fn client(&self) -> Client {
        client_for(&self.url, SECRET)
    }
}

/// Box's own client, polling jobs quickly and never retrying, so each test
/// sees exactly what the simulator answered.
fn client_for(url: &str, secret: &str) -> Client {
    let mut config = ClientConfig::new(url, KEY, Secret::new(secret));
    config.jobs = JobPollPolicy {
        initial: Duration::from_millis(20),
        factor: 1.5,
        max: Duration::from_millis(200),
        timeout: Duration::from_secs(60),
    };
    config.retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    Client::new(config).expect("a client")
}

pub(crate) fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

pub(crate) fn p(pairs: &[(&str, &str)]) -> Params {
    pairs
        .iter()
        .fold(Params::new(), |acc, (k, v)| acc.set(*k, *v))
}

fn api_code(result: Result<Value, Error>) -> (u16, String) {
    match result {
        Err(Error::Api(e)) => (e.errorcode, e.errortext),
        other => panic!("an API error expected, got {other:?}"),
    }
}

/// The ids the tests need: the Advanced zone, Debian 12 there, the smallest offering.
async fn catalogue(c: &Client) -> (String, String, String) {
    let zones = c
        .call("listZones", &p(&[("networktype", "Advanced")]))
        .await
        .unwrap();
    let zone = zones["zone"][0]["id"].as_str().unwrap().to_string();
    let t = c
        .call(
            "listTemplates",
            &p(&[
                ("templatefilter", "executable"),
                ("zoneid", &zone),
                ("name", "Debian 12"),
            ]),
        )
        .await
        .unwrap();
    let template = t["template"][0]["id"].as_str().unwrap().to_string();
    let o = c
        .call("listServiceOfferings", &p(&[("name", "Small Instance")]))
        .await
        .unwrap();
    let offering = o["serviceoffering"][0]["id"].as_str().unwrap().to_string();
    (zone, template, offering)
}

#[test]
fn sim_announces_its_address_and_stops_cleanly_on_sigterm() {
    let sim = Sim::start(&[]);
    assert!(sim.url.starts_with("http://127.0.0.1:"), "{}", sim.url);
    assert!(sim.url.ends_with("/client/api"), "{}", sim.url);
    assert!(
        !sim.url.ends_with(":0/client/api"),
        "port 0 is replaced by the real port"
    );
    let status = sim.terminate();
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn sim_refuses_to_start_without_a_secret_and_never_prints_it() {
    let out = Command::new(support::sim_binary())
        .args(["--listen", "127.0.0.1:0", "--api-key", KEY])
        .env_remove("CLOUDSTACK_SIM_SECRET_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--secret-key-file"), "{stderr}");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("secret");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut child = Command::new(support::sim_binary())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--api-key",
            KEY,
            "-v",
            "--secret-key-file",
        ])
        .arg(&file)
        .env_remove("CLOUDSTACK_SIM_SECRET_KEY")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim_end()
        .strip_prefix("listening on ")
        .unwrap()
        .to_string();
    let zones = block_on(client_for(&url, SECRET).call("listZones", &Params::new())).unwrap();
    assert_eq!(zones["count"], 2);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains("listZones"),
        "verbose logs name the command: {log}"
    );
    assert!(!log.contains(SECRET), "the secret never appears in the log");
}

#[test]
fn sim_state_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let sim = Sim::start_with_state(&[], Some(dir.path()));
    let vm_id = block_on(async {
        let c = sim.client();
        c.call("createSSHKeyPair", &p(&[("name", "kept")]))
            .await
            .unwrap();
        let (zone, template, offering) = catalogue(&c).await;
        let vm = c
            .call_and_wait(
                "deployVirtualMachine",
                &p(&[
                    ("zoneid", &zone),
                    ("templateid", &template),
                    ("serviceofferingid", &offering),
                    ("name", "keeper"),
                ]),
            )
            .await
            .unwrap();
        vm["virtualmachine"]["id"].as_str().unwrap().to_string()
    });
    assert!(sim.terminate().success());
    assert!(dir.path().join("cloud.json").is_file());

    let sim = Sim::start_with_state(&[], Some(dir.path()));
    block_on(async {
        let c = sim.client();
        let keys = c
            .call("listSSHKeyPairs", &p(&[("name", "kept")]))
            .await
            .unwrap();
        assert_eq!(keys["count"], 1);
        let vms = c
            .call("listVirtualMachines", &p(&[("id", &vm_id)]))
            .await
            .unwrap();
        assert_eq!(vms["virtualmachine"][0]["state"], "Running");
        assert_eq!(vms["virtualmachine"][0]["name"], "keeper");
    });
}

/// Runs a third-party client's conformance script against a fresh
/// simulator, the endpoint and keys in the environment (never in argv), and
/// checks it ends with `ok (...)`. A missing Python package fails the test:
/// scripts/install-deps installs it.
fn python_conformance(module: &str, package: &str, script: &str, sim_args: &[&str]) -> String {
    let python = std::env::var("BOX_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    support::require(&python);
    let has_module = Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .status()
        .map(|s| s.success());
    assert!(
        matches!(has_module, Ok(true)),
        "the Python package `{package}` is required (pip install {package}); scripts/install-deps test installs it"
    );
    let sim = Sim::start(sim_args);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join(script);
    let out = Command::new(&python)
        .arg(script)
        .env("CLOUDSTACK_ENDPOINT", &sim.url)
        .env("CLOUDSTACK_KEY", KEY)
        .env("CLOUDSTACK_SECRET", SECRET)
        .env_remove("CLOUDSTACK_CONFIG")
        .env_remove("CLOUDSTACK_OVERRIDES")
        .env_remove("CLOUDSTACK_REGION")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "conformance failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.lines().last().is_some_and(|l| l.starts_with("ok (")),
        "{stdout}"
    );
    stdout
}

#[test]
fn cs_python_client_conformance_script_passes() {
    python_conformance("cs", "cs", "tests/cs_conformance.py", &[]);
}

#[test]
fn libcloud_driver_runs_a_machine_life_against_the_sim() {
    let stdout = python_conformance(
        "libcloud",
        "apache-libcloud",
        "tests/libcloud_conformance.py",
        &["--project", "team"],
    );
    for group in [
        "catalogue:",
        "key pairs:",
        "node:",
        "addresses and rules:",
        "destroy:",
        "basic zone:",
        "project:",
        "wrong secret:",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(group)),
            "the script ran every group; `{group}` missing:\n{stdout}"
        );
    }
    assert!(
        !stdout.contains(SECRET),
        "the secret never appears in the output"
    );
}

#[test]
fn rust_client_deploys_tags_forwards_and_destroys() {
    let sim = Sim::start(&[]);
    block_on(async {
        let c = sim.client();
        let (zone, template, offering) = catalogue(&c).await;
        let vm = c
            .deploy_virtual_machine(&p(&[
                ("zoneid", &zone),
                ("templateid", &template),
                ("serviceofferingid", &offering),
                ("name", "app-1"),
            ]))
            .await
            .unwrap();
        assert_eq!(vm.state.as_deref(), Some("Running"));
        assert!(vm.default_ip().is_some_and(|ip| ip.starts_with("10.1.1.")));

        c.create_tags(
            &p(&[("resourceids", &vm.id), ("resourcetype", "UserVm")])
                .tags([("box-project", "demo")]),
        )
        .await
        .unwrap();
        let tagged = c
            .list_virtual_machines(&Params::new().tags([("box-project", "demo")]))
            .await
            .unwrap();
        assert_eq!(tagged.len(), 1);
        assert_eq!(tagged[0].tag("box-project"), Some("demo"));
        assert!(c
            .list_virtual_machines(&Params::new().tags([("box-project", "other")]))
            .await
            .unwrap()
            .is_empty());

        let ips = c
            .list_public_ip_addresses(&p(&[("issourcenat", "true")]))
            .await
            .unwrap();
        let rule = p(&[
            ("ipaddressid", &ips[0].id),
            ("privateport", "22"),
            ("publicport", "2200"),
            ("protocol", "tcp"),
            ("virtualmachineid", &vm.id),
        ]);
        c.create_port_forwarding_rule(&rule).await.unwrap();
        let (code, text) = api_code(c.call("createPortForwardingRule", &rule).await);
        assert_eq!(code, 537, "{text}");
        assert_eq!(
            c.list_port_forwarding_rules(&Params::new())
                .await
                .unwrap()
                .len(),
            1
        );

        let stopped = c.stop_virtual_machine(&p(&[("id", &vm.id)])).await.unwrap();
        assert_eq!(stopped.state.as_deref(), Some("Stopped"));
        c.destroy_virtual_machine(&p(&[("id", &vm.id), ("expunge", "true")]))
            .await
            .unwrap();
        assert!(c
            .list_virtual_machines(&p(&[("id", &vm.id)]))
            .await
            .unwrap()
            .is_empty());
        assert!(c
            .list_port_forwarding_rules(&Params::new())
            .await
            .unwrap()
            .is_empty());
    });
}

#[test]
fn rust_client_sees_the_servers_error_codes() {
    let sim = Sim::start(&[]);
    block_on(async {
        let c = sim.client();
        let (code, text) = api_code(c.call("listTemplates", &Params::new()).await);
        assert_eq!(
            (code, text.contains("templatefilter")),
            (431, true),
            "{text}"
        );
        let (code, text) = api_code(
            c.call("listVirtualMachines", &p(&[("id", "not-a-uuid")]))
                .await,
        );
        assert_eq!((code, text.contains("parameter id")), (431, true), "{text}");
        let (code, _) = api_code(c.call("noSuchCommand", &Params::new()).await);
        assert_eq!(code, 432);
        let (code, _) = api_code(
            c.call("listZones", &p(&[("page", "1"), ("pagesize", "501")]))
                .await,
        );
        assert_eq!(code, 431);

        let wrong = client_for(&sim.url, "wrong");
        let (code, text) = api_code(wrong.call("listZones", &Params::new()).await);
        assert_eq!(code, 401, "{text}");

        // Destroyed without expunge: the name stays taken until expunged.
        let (zone, template, offering) = catalogue(&c).await;
        let deploy = p(&[
            ("zoneid", &zone),
            ("templateid", &template),
            ("serviceofferingid", &offering),
            ("name", "dup"),
        ]);
        let vm = c.deploy_virtual_machine(&deploy).await.unwrap();
        let gone = c
            .destroy_virtual_machine(&p(&[("id", &vm.id)]))
            .await
            .unwrap();
        assert_eq!(gone.and_then(|v| v.state).as_deref(), Some("Destroyed"));
        let (code, text) = api_code(c.call("deployVirtualMachine", &deploy).await);
        assert_eq!(code, 431, "{text}");
        c.expunge_virtual_machine(&p(&[("id", &vm.id)]))
            .await
            .unwrap();
        c.deploy_virtual_machine(&deploy).await.unwrap();
    });
}

#[test]
fn box_api_lists_zones_from_the_sim() {
    let t = Test::new().simulator(&[]);
    let out = t.run(["api", "listZones"]).success();
    let v = out.json();
    let mut names: Vec<&str> = v["zone"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["Sim-Advanced", "Sim-Basic"]);
    assert!(!format!("{}{}", out.stdout, out.stderr).contains(SECRET));
}

#[test]
fn injected_call_failures_answer_with_the_given_code() {
    let sim = Sim::start(&["--fail", "listZones:1:533", "--seed", "7"]);
    block_on(async {
        let c = sim.client();
        let (code, text) = api_code(c.call("listZones", &Params::new()).await);
        assert_eq!(code, 533, "{text}");
        // Other commands are untouched.
        c.call("listServiceOfferings", &Params::new())
            .await
            .unwrap();
    });
}

#[test]
fn throttling_answers_429() {
    let sim = Sim::start(&["--throttle", "100%"]);
    let (code, text) = api_code(block_on(sim.client().call("listZones", &Params::new())));
    assert_eq!(code, 429, "{text}");
}

#[test]
fn dropped_connections_reach_the_client_as_transport_errors() {
    let sim = Sim::start(&["--drop", "1"]);
    match block_on(sim.client().call("listZones", &Params::new())) {
        Err(Error::Transport { .. }) => {}
        other => panic!("a transport error expected, got {other:?}"),
    }
}

#[test]
fn failed_jobs_report_jobstatus_2_and_undo_the_command() {
    let sim = Sim::start(&["--fail-jobs", "1"]);
    block_on(async {
        let c = sim.client();
        let (zone, template, offering) = catalogue(&c).await;
        let err = c
            .call_and_wait(
                "deployVirtualMachine",
                &p(&[
                    ("zoneid", &zone),
                    ("templateid", &template),
                    ("serviceofferingid", &offering),
                    ("name", "doomed"),
                ]),
            )
            .await
            .unwrap_err();
        match err {
            Error::Job(j) => assert_eq!(j.errorcode, Some(530), "{}", j.errortext),
            other => panic!("a job error expected, got {other:?}"),
        }
        let vms = c
            .call("listVirtualMachines", &p(&[("name", "doomed")]))
            .await
            .unwrap();
        assert_eq!(vms["virtualmachine"][0]["state"], "Error");
    });
}

#[test]
fn latency_and_job_duration_are_accepted_and_transitions_are_visible() {
    // No timing assertion: only that a slow cloud still answers, and that a
    // long job is seen in its transitional state.
    let sim = Sim::start(&["--latency", "20ms", "--job-duration", "60s"]);
    block_on(async {
        let c = sim.client();
        let (zone, template, offering) = catalogue(&c).await;
        let first = c
            .call(
                "deployVirtualMachine",
                &p(&[
                    ("zoneid", &zone),
                    ("templateid", &template),
                    ("serviceofferingid", &offering),
                ]),
            )
            .await
            .unwrap();
        let id = first["id"].as_str().unwrap();
        let job = c
            .query_async_job_result(first["jobid"].as_str().unwrap())
            .await
            .unwrap();
        assert_eq!(job.jobstatus, Some(0));
        let vms = c
            .call("listVirtualMachines", &p(&[("id", id)]))
            .await
            .unwrap();
        assert_eq!(vms["virtualmachine"][0]["state"], "Starting");
    });
}

/// Whether anything accepts TCP connections at `addr`.
fn port_open(addr: &str) -> bool {
    std::net::TcpStream::connect_timeout(&addr.parse().unwrap(), Duration::from_secs(2)).is_ok()
}

#[test]
fn qemu_backing_reaches_ssh_only_through_a_port_forwarding_rule() {
    support::require(if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    });
    support::require("qemu-img");
    support::require("ssh");
    support::require("ssh-keygen");
    let boxes = crate::guest::boxes_dir();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sim", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();

    let boxes_arg = boxes.to_string_lossy().into_owned();
    let sim = Sim::start(&["--backing", "qemu", "--boxes-dir", &boxes_arg]);
    let c = sim.client();
    let (vm, ip, address) = block_on(async {
        c.call(
            "registerSSHKeyPair",
            &p(&[("name", "login"), ("publickey", public.trim())]),
        )
        .await
        .unwrap();
        let (zone, template, offering) = catalogue(&c).await;
        let user_data =
            "I2Nsb3VkLWNvbmZpZwpydW5jbWQ6CiAgLSB0b3VjaCAvdmFyL3RtcC9mcm9tLXVzZXItZGF0YQo=";
        let vm = c
            .deploy_virtual_machine(&p(&[
                ("zoneid", &zone),
                ("templateid", &template),
                ("serviceofferingid", &offering),
                ("name", "real-1"),
                ("keypair", "login"),
                ("userdata", user_data),
            ]))
            .await
            .unwrap();
        let ips = c
            .list_public_ip_addresses(&p(&[("issourcenat", "true")]))
            .await
            .unwrap();
        let address = ips[0].ipaddress.clone();
        (vm.id, ips[0].id.clone(), address)
    });
    // A free port on the public address, for the rule.
    let port = std::net::TcpListener::bind((address.as_str(), 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let target = format!("{address}:{port}");
    assert!(!port_open(&target), "without a rule the port is closed");

    let rule = block_on(c.create_port_forwarding_rule(&p(&[
        ("ipaddressid", &ip),
        ("privateport", "22"),
        ("publicport", &port.to_string()),
        ("protocol", "tcp"),
        ("virtualmachineid", &vm),
    ])))
    .unwrap();
    let ssh = |command: &str| {
        Command::new("ssh")
            .args(["-i"])
            .arg(&key)
            .args([
                "-p",
                &port.to_string(),
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                &format!("debian@{address}"),
                command,
            ])
            .output()
            .unwrap()
    };
    // The guest boots under emulation: poll until it lets us in, giving up
    // only after a generous wait (a boot, not a performance check).
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    let out = loop {
        let out = ssh("whoami && test -e /var/tmp/from-user-data && echo user-data-ran");
        if out.status.success() || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ssh never got in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("debian"), "{stdout}");
    assert!(
        stdout.contains("user-data-ran"),
        "the deployment's user data ran: {stdout}"
    );

    block_on(c.call_and_wait("deletePortForwardingRule", &p(&[("id", &rule.id)]))).unwrap();
    assert!(!port_open(&target), "the port closes with the rule");

    block_on(c.call_and_wait(
        "destroyVirtualMachine",
        &p(&[("id", &vm), ("expunge", "true")]),
    ))
    .unwrap();
    assert!(sim.terminate().success());
}

#[test]
fn qemu_backing_in_the_basic_zone_opens_port_22_by_security_group() {
    support::require(if cfg!(target_arch = "aarch64") {
        "qemu-system-aarch64"
    } else {
        "qemu-system-x86_64"
    });
    support::require("ssh");
    support::require("ssh-keygen");
    let boxes = crate::guest::boxes_dir();
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("id");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "sim", "-f"])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let boxes_arg = boxes.to_string_lossy().into_owned();
    let sim = Sim::start(&["--backing", "qemu", "--boxes-dir", &boxes_arg]);
    let c = sim.client();
    let (address, group) = block_on(async {
        c.call(
            "registerSSHKeyPair",
            &p(&[("name", "login"), ("publickey", public.trim())]),
        )
        .await
        .unwrap();
        let zones = c
            .call("listZones", &p(&[("networktype", "Basic")]))
            .await
            .unwrap();
        let zone = zones["zone"][0]["id"].as_str().unwrap().to_string();
        let (_, template, offering) = catalogue(&c).await;
        let group = c
            .call("createSecurityGroup", &p(&[("name", "ssh")]))
            .await
            .unwrap();
        let group = group["securitygroup"]["id"].as_str().unwrap().to_string();
        let vm = c
            .deploy_virtual_machine(&p(&[
                ("zoneid", &zone),
                ("templateid", &template),
                ("serviceofferingid", &offering),
                ("name", "basic-real"),
                ("keypair", "login"),
                ("securitygroupids", &group),
            ]))
            .await
            .unwrap();
        (vm.default_ip().unwrap().to_string(), group)
    });
    assert!(
        address.starts_with("127."),
        "a loopback NIC address: {address}"
    );
    let target = format!("{address}:22");
    assert!(!port_open(&target), "no ingress rule, port 22 closed");
    block_on(c.call_and_wait(
        "authorizeSecurityGroupIngress",
        &p(&[
            ("securitygroupid", &group),
            ("protocol", "tcp"),
            ("startport", "22"),
            ("endport", "22"),
            ("cidrlist", "127.0.0.0/8"),
        ]),
    ))
    .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(900);
    let out = loop {
        let out = Command::new("ssh")
            .arg("-i")
            .arg(&key)
            .args([
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "BatchMode=yes",
                "-o",
                "IdentitiesOnly=yes",
                "-o",
                "ConnectTimeout=10",
                "-o",
                "LogLevel=ERROR",
                &format!("debian@{address}"),
                "hostname",
            ])
            .output()
            .unwrap();
        if out.status.success() || std::time::Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_secs(3));
    };
    assert!(
        out.status.success(),
        "ssh never got in: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "basic-real");
    assert!(sim.terminate().success());
}
