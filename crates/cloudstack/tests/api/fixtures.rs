//! Every captured CloudStack response in `../shared/cloudstack-fixtures/`
//! that a typed command covers must parse into its type; error captures
//! must become typed errors.

use std::path::{Path, PathBuf};

use cloudstack::response::{self, Page};
use cloudstack::*;
use serde_json::Value;

/// The fixtures folder: `CLOUDSTACK_FIXTURES`, else `shared/cloudstack-fixtures`
/// found above the workspace. Missing is a failure: this test must never
/// pass by reading nothing.
fn fixtures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CLOUDSTACK_FIXTURES").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors()
        .map(|a| a.join("shared/cloudstack-fixtures"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| {
            panic!(
                "shared/cloudstack-fixtures not found above {}; the fixture tests need it (or set CLOUDSTACK_FIXTURES)",
                here.display()
            )
        })
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Parsed,
    Uncovered,
}

fn list<T: Resource>(command: &str, v: &Value) -> Result<Outcome, Error> {
    let page: Page<T> = response::page(command, v, T::LIST_KEY)?;
    // A list that parsed to nothing while its key holds items would be a silent miss.
    if let Some(Value::Array(raw)) = response::find_key(v, T::LIST_KEY) {
        assert_eq!(raw.len(), page.items.len(), "{command}");
    }
    Ok(Outcome::Parsed)
}

fn object<T: Resource>(command: &str, v: &Value) -> Result<Outcome, Error> {
    response::object::<T>(command, v, T::OBJECT_KEY).map(|_| Outcome::Parsed)
}

fn success(command: &str, v: &Value) -> Result<Outcome, Error> {
    let s: Success = response::typed(command, v)?;
    assert!(s.success, "{command}: {v}");
    Ok(Outcome::Parsed)
}

/// A job result, typed by the object it wraps.
fn job_result(command: &str, result: &Value) -> Result<Outcome, Error> {
    let Value::Object(map) = result else {
        return Ok(Outcome::Uncovered);
    };
    if map.contains_key("success") {
        return success(command, result);
    }
    let key = map.keys().next().cloned().unwrap_or_default();
    match key.as_str() {
        "virtualmachine" => object::<VirtualMachine>(command, result),
        "ipaddress" => object::<PublicIpAddress>(command, result),
        "portforwardingrule" => object::<PortForwardingRule>(command, result),
        "firewallrule" => object::<FirewallRule>(command, result),
        "securitygroup" => object::<SecurityGroup>(command, result),
        "keypair" => object::<SshKeyPair>(command, result),
        "vmsnapshot" => object::<VmSnapshot>(command, result),
        _ => Ok(Outcome::Uncovered),
    }
}

/// The async commands that have a typed method.
const TYPED_ASYNC: &[&str] = &[
    "deployVirtualMachine",
    "startVirtualMachine",
    "stopVirtualMachine",
    "rebootVirtualMachine",
    "destroyVirtualMachine",
    "expungeVirtualMachine",
    "createTags",
    "deleteTags",
    "associateIpAddress",
    "disassociateIpAddress",
    "createPortForwardingRule",
    "deletePortForwardingRule",
    "createFirewallRule",
    "deleteFirewallRule",
    "disableStaticNat",
    "authorizeSecurityGroupIngress",
    "createVMSnapshot",
    "revertToVMSnapshot",
    "deleteVMSnapshot",
];

/// Parses one response body of `command` the way its typed command does.
/// `origin` is the command that started the job, when a job result is known
/// to belong to one.
fn check(command: &str, v: &Value, origin: Option<&str>) -> Result<Outcome, Error> {
    if command == "queryAsyncJobResult" || v.get("jobstatus").is_some() {
        if origin.is_some_and(|o| !TYPED_ASYNC.contains(&o)) {
            return Ok(Outcome::Uncovered);
        }
        let job: AsyncJob = response::typed(command, v)?;
        return match job.state(command)? {
            JobState::Pending => Ok(Outcome::Parsed),
            JobState::Succeeded(result) => job_result(command, &result),
        };
    }
    if v.get("jobid").is_some() {
        let _: JobRef = response::typed(command, v)?;
        return Ok(Outcome::Parsed);
    }
    match command {
        "listZones" => list::<Zone>(command, v),
        "listTemplates" | "registerTemplate" => list::<Template>(command, v),
        "listServiceOfferings" => list::<ServiceOffering>(command, v),
        "listDiskOfferings" => list::<DiskOffering>(command, v),
        "listNetworks" => list::<Network>(command, v),
        "listAffinityGroups" => list::<AffinityGroup>(command, v),
        "listVirtualMachines" => list::<VirtualMachine>(command, v),
        "listSSHKeyPairs" => list::<SshKeyPair>(command, v),
        "listTags" => list::<Tag>(command, v),
        "listPublicIpAddresses" => list::<PublicIpAddress>(command, v),
        "listPortForwardingRules" => list::<PortForwardingRule>(command, v),
        "listFirewallRules" => list::<FirewallRule>(command, v),
        "listSecurityGroups" => list::<SecurityGroup>(command, v),
        "listVMSnapshot" => list::<VmSnapshot>(command, v),
        "listApis" => list::<Api>(command, v),
        "listCapabilities" => object::<Capability>(command, v),
        "createSSHKeyPair" | "registerSSHKeyPair" => object::<SshKeyPair>(command, v),
        "createSecurityGroup" => object::<SecurityGroup>(command, v),
        "deleteSSHKeyPair" | "deleteSecurityGroup" | "enableStaticNat" => success(command, v),
        _ => Ok(Outcome::Uncovered),
    }
}

/// The typed list path (`Client::list`) reads bodies without a JSON tree;
/// it must agree with the tree path on every captured list.
fn direct_page(command: &str, status: u16, body: &[u8]) -> Option<Result<usize, Error>> {
    fn n<T: Resource>(command: &str, status: u16, body: &[u8]) -> Option<Result<usize, Error>> {
        Some(
            response::parse_page::<T>(command, status, body, T::LIST_KEY, true)
                .map(|p| p.items.len()),
        )
    }
    match command {
        "listZones" => n::<Zone>(command, status, body),
        "listTemplates" => n::<Template>(command, status, body),
        "listServiceOfferings" => n::<ServiceOffering>(command, status, body),
        "listDiskOfferings" => n::<DiskOffering>(command, status, body),
        "listNetworks" => n::<Network>(command, status, body),
        "listAffinityGroups" => n::<AffinityGroup>(command, status, body),
        "listVirtualMachines" => n::<VirtualMachine>(command, status, body),
        "listSSHKeyPairs" => n::<SshKeyPair>(command, status, body),
        "listPublicIpAddresses" => n::<PublicIpAddress>(command, status, body),
        "listPortForwardingRules" => n::<PortForwardingRule>(command, status, body),
        "listFirewallRules" => n::<FirewallRule>(command, status, body),
        "listSecurityGroups" => n::<SecurityGroup>(command, status, body),
        _ => None,
    }
}

/// The HTTP status a server sends with a body: its `errorcode`, else 200.
fn status_of(body: &[u8]) -> u16 {
    let v: Value = serde_json::from_slice(body).unwrap();
    v.as_object()
        .and_then(|m| m.values().next())
        .and_then(|inner| inner.get("errorcode"))
        .and_then(Value::as_u64)
        .map(|c| c as u16)
        .unwrap_or(200)
}

#[test]
fn every_covered_libcloud_fixture_parses_into_its_type() {
    let dir = fixtures_dir().join("libcloud");
    let mut parsed = Vec::new();
    let mut errors = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    let mut direct_checked = 0;
    // Which command started each job, from the first answers (`{"jobid": N}`).
    let mut origins = std::collections::HashMap::new();
    for path in &entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let command = name.split('_').next().unwrap().to_string();
        if command == "queryAsyncJobResult" || !name.ends_with(".json") {
            continue;
        }
        let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        if let Some(id) = v
            .as_object()
            .and_then(|m| m.values().next())
            .and_then(|i| i.get("jobid"))
        {
            let id = id
                .as_str()
                .map(String::from)
                .unwrap_or_else(|| id.to_string());
            origins.insert(id, command);
        }
    }
    for path in entries {
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let Some(stem) = name.strip_suffix(".json") else {
            continue;
        };
        let command = stem.split('_').next().unwrap();
        let body = std::fs::read(&path).unwrap();
        let origin = stem
            .strip_prefix("queryAsyncJobResult_")
            .and_then(|id| origins.get(id))
            .map(String::as_str);
        let outcome = response::extract(command, status_of(&body), &body, true)
            .and_then(|v| check(command, &v, origin));
        if let Some(direct) = direct_page(command, status_of(&body), &body) {
            let v: Value = serde_json::from_slice(&body).unwrap();
            let inner = v.as_object().unwrap().values().next().unwrap().clone();
            let key = inner
                .as_object()
                .and_then(|m| {
                    m.iter()
                        .find(|(_, v)| v.is_array())
                        .map(|(_, v)| v.as_array().unwrap().len())
                })
                .unwrap_or(0);
            assert_eq!(
                direct.unwrap_or_else(|e| panic!("{name}: {e}")),
                key,
                "{name}"
            );
            direct_checked += 1;
        }
        match outcome {
            Ok(Outcome::Parsed) => parsed.push(name),
            Ok(Outcome::Uncovered) => {}
            Err(e) => errors.push((name, e)),
        }
    }
    // The captures that must fail, and how.
    let expected_errors = [
        ("deployVirtualMachine_deployfail.json", Some(431)),
        ("registerSSHKeyPair_error.json", Some(431)),
        // Failed job without a jobresult: a job error without a code.
        ("queryAsyncJobResult_17177.json", None),
    ];
    for (name, code) in expected_errors {
        let (_, e) = errors.iter().find(|(n, _)| n == name).unwrap_or_else(|| {
            panic!(
                "{name} should be an error; parsed: {}",
                parsed.contains(&name.to_string())
            )
        });
        assert_eq!(e.errorcode(), code, "{name}: {e}");
        match (name, e) {
            ("queryAsyncJobResult_17177.json", Error::Job(j)) => assert_eq!(j.jobid, "17177"),
            (_, Error::Api(a)) => {
                assert_eq!(a.status, 431);
                assert!(e.hint().is_some());
            }
            other => panic!("unexpected error kind: {other:?}"),
        }
    }
    let unexpected: Vec<_> = errors
        .iter()
        .filter(|(n, _)| !expected_errors.iter().any(|(e, _)| e == n))
        .map(|(n, e)| format!("{n}: {e}"))
        .collect();
    assert!(
        unexpected.is_empty(),
        "fixtures that failed to parse:\n{}",
        unexpected.join("\n")
    );
    eprintln!(
        "libcloud fixtures parsed: {}, lists also read directly: {direct_checked}",
        parsed.len()
    );
    assert!(direct_checked >= 40, "{direct_checked}");
    // Guards against a walk that silently reads nothing.
    assert!(
        parsed.len() >= 80,
        "only {} fixtures parsed: {parsed:?}",
        parsed.len()
    );
    for must in [
        "listSSHKeyPairs_no_keys.json",
        "queryAsyncJobResult_1149341.json",
        "listVirtualMachines_default.json",
        "queryAsyncJobResult_17164.json",
    ] {
        assert!(parsed.contains(&must.to_string()), "{must} was not parsed");
    }
}

#[test]
fn every_covered_cloudstack_go_fixture_parses_into_its_type() {
    let dir = fixtures_dir().join("cloudstack-go");
    let mut parsed = 0;
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for path in files {
        let file: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        for (command, envelope) in file.as_object().unwrap() {
            let body = serde_json::to_vec(envelope).unwrap();
            match response::extract(command, 200, &body, true)
                .and_then(|v| check(command, &v, Some(command)))
            {
                Ok(Outcome::Parsed) => parsed += 1,
                Ok(Outcome::Uncovered) => {}
                Err(e) => failures.push(format!("{}:{command}: {e}", path.display())),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    eprintln!("cloudstack-go fixtures parsed: {parsed}");
    assert!(parsed >= 15, "only {parsed} cloudstack-go fixtures parsed");
}

#[test]
fn firewall_rule_with_string_ports_and_cidr_list() {
    let path = fixtures_dir().join("libcloud/queryAsyncJobResult_1149341.json");
    let body = std::fs::read(path).unwrap();
    let v = response::extract("queryAsyncJobResult", 200, &body, true).unwrap();
    let job: AsyncJob = response::typed("createFirewallRule", &v).unwrap();
    let JobState::Succeeded(result) = job.state("createFirewallRule").unwrap() else {
        panic!("job should have succeeded")
    };
    let rule: FirewallRule =
        response::object("createFirewallRule", &result, "firewallrule").unwrap();
    assert_eq!((rule.startport, rule.endport), (Some(33), Some(34)));
    assert_eq!(rule.id, "172465");
    assert_eq!(rule.cidrlist, ["192.168.0.0/16"]);
}

#[test]
fn created_key_pair_keeps_its_private_key_redacted() {
    let file: Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("cloudstack-go/SSHService.json")).unwrap(),
    )
    .unwrap();
    let body = serde_json::to_vec(&file["createSSHKeyPair"]).unwrap();
    let v = response::extract("createSSHKeyPair", 200, &body, true).unwrap();
    let kp: SshKeyPair = response::object("createSSHKeyPair", &v, "keypair").unwrap();
    let key = kp.privatekey.as_ref().unwrap();
    assert!(key.expose().starts_with("-----BEGIN"));
    assert!(!format!("{kp:?}").contains("BEGIN RSA"));
}

#[test]
fn virtual_machine_fields_from_a_modern_capture() {
    let file: Value = serde_json::from_slice(
        &std::fs::read(fixtures_dir().join("cloudstack-go/VirtualMachineService.json")).unwrap(),
    )
    .unwrap();
    let body = serde_json::to_vec(&file["listVirtualMachines"]).unwrap();
    let v = response::extract("listVirtualMachines", 200, &body, true).unwrap();
    let page: Page<VirtualMachine> =
        response::page("listVirtualMachines", &v, "virtualmachine").unwrap();
    assert_eq!(page.count, Some(1));
    let vm = &page.items[0];
    assert_eq!(vm.state.as_deref(), Some("Running"));
    assert_eq!(vm.default_ip(), Some("10.1.1.62"));
}
