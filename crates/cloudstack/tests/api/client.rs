//! The client against the mock server: pagination, retries, errors, jobs,
//! methods and parameters on the wire.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cloudstack::*;
use serde_json::{json, Value};

use crate::mock::{Mock, Request, KEY, SECRET};

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, KEY, Secret::new(SECRET));
    c.retry = RetryPolicy {
        attempts: 3,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    c.jobs = JobPollPolicy {
        initial: Duration::from_millis(2),
        factor: 2.0,
        max: Duration::from_millis(20),
        timeout: Duration::from_secs(20),
    };
    c
}

fn client(mock: &Mock) -> Client {
    Client::new(config(&mock.url)).unwrap()
}

fn ok(name: &str, inner: Value) -> (u16, String) {
    (
        200,
        json!({ format!("{}response", name.to_lowercase()): inner }).to_string(),
    )
}

fn api_error(name: &str, code: u16, text: &str) -> (u16, String) {
    (
        code,
        json!({ format!("{}response", name.to_lowercase()):
            {"uuidList": [], "errorcode": code, "cserrorcode": 4350, "errortext": text} })
        .to_string(),
    )
}

fn vm(id: usize) -> Value {
    json!({"id": format!("vm-{id}"), "name": format!("m{id}"), "state": "Running",
           "nic": [{"id": "n1", "ipaddress": "10.0.0.5", "isdefault": true}]})
}

/// Every request was signed correctly and named no parameter twice, and a
/// POST carried nothing in its URL.
fn assert_well_formed(requests: &[Request]) {
    for r in requests {
        assert!(r.signature_ok, "bad signature on {r:?}");
        let mut names: Vec<&str> = r.params.iter().map(|(n, _)| n.as_str()).collect();
        names.sort();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate parameter in {r:?}");
        if r.method == "POST" {
            assert!(r.query.is_empty(), "POST with a query string: {r:?}");
        } else {
            assert!(r.body.is_empty());
        }
        assert_eq!(r.param("apiKey"), Some(KEY));
        assert_eq!(r.param("signatureVersion"), Some("3"));
        assert!(r.param("expires").is_some());
    }
}

#[tokio::test]
async fn lists_are_fetched_page_by_page_until_count() {
    let mock = Mock::start(|r| {
        let page: usize = r.param("page").unwrap().parse().unwrap();
        let size: usize = r.param("pagesize").unwrap().parse().unwrap();
        let total = 1203;
        let items: Vec<Value> = (((page - 1) * size)..(page * size).min(total))
            .map(vm)
            .collect();
        ok(
            "listVirtualMachines",
            json!({"count": total, "virtualmachine": items}),
        )
    })
    .await;
    let vms = client(&mock)
        .list_virtual_machines(&Params::new())
        .await
        .unwrap();
    assert_eq!(vms.len(), 1203);
    assert_eq!(vms[1202].id, "vm-1202");
    let reqs = mock.requests();
    let pages: Vec<_> = reqs
        .iter()
        .map(|r| r.param("page").unwrap().to_string())
        .collect();
    assert_eq!(pages, ["1", "2", "3"]);
    assert!(reqs
        .iter()
        .all(|r| r.param("pagesize") == Some("500") && r.method == "GET"));
    assert_well_formed(&reqs);
    // One keep-alive connection served every page.
    assert_eq!(mock.connections(), 1);
}

#[tokio::test]
async fn an_empty_list_is_an_empty_object() {
    let mock = Mock::start(|_| ok("listSSHKeyPairs", json!({}))).await;
    let keys = client(&mock)
        .list_ssh_key_pairs(&Params::new())
        .await
        .unwrap();
    assert!(keys.is_empty());
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn explicit_page_fetches_only_that_page() {
    let mock = Mock::start(|_| {
        ok(
            "listZones",
            json!({"count": 900, "zone": [{"id": 1, "name": "z"}]}),
        )
    })
    .await;
    let zones = client(&mock)
        .list_zones(&Params::from([("page", "2"), ("pagesize", "1")]))
        .await
        .unwrap();
    assert_eq!(zones.len(), 1);
    assert_eq!(mock.requests().len(), 1);
    assert_well_formed(&mock.requests());
}

#[tokio::test]
async fn reads_are_retried_on_5xx_and_429() {
    for status in [503u16, 429, 530] {
        let n = Arc::new(AtomicUsize::new(0));
        let seen = n.clone();
        let mock = Mock::start(move |_| {
            if seen.fetch_add(1, Ordering::SeqCst) < 2 {
                api_error("listZones", status, "busy")
            } else {
                ok(
                    "listZones",
                    json!({"count": 1, "zone": [{"id": "z1", "name": "one"}]}),
                )
            }
        })
        .await;
        let zones = client(&mock).list_zones(&Params::new()).await.unwrap();
        assert_eq!(zones[0].id, "z1", "status {status}");
        assert_eq!(n.load(Ordering::SeqCst), 3, "status {status}");
    }
}

#[tokio::test]
async fn reads_give_up_after_the_retry_budget() {
    let mock = Mock::start(|_| (502, "<html>bad gateway</html>".to_string())).await;
    let e = client(&mock).list_zones(&Params::new()).await.unwrap_err();
    assert!(matches!(e, Error::Http { status: 502, .. }), "{e:?}");
    assert_eq!(mock.requests().len(), 3);
}

#[tokio::test]
async fn writes_are_never_retried() {
    let mock = Mock::start(|_| api_error("deployVirtualMachine", 503, "busy")).await;
    let e = client(&mock)
        .deploy_virtual_machine(&Params::from([("zoneid", "z")]))
        .await
        .unwrap_err();
    assert_eq!(e.errorcode(), Some(503));
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.requests()[0].method, "POST");
}

#[tokio::test]
async fn capacity_errors_are_not_retried_even_for_reads() {
    let mock = Mock::start(|_| api_error("listZones", 533, "no capacity")).await;
    let e = client(&mock).list_zones(&Params::new()).await.unwrap_err();
    assert_eq!(e.errorcode(), Some(533));
    assert!(e.hint().unwrap().contains("capacity"));
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn connection_errors_are_retried_then_reported_without_secrets() {
    // A port nothing listens on: bind, learn the port, close.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/client/api");
    let e = Client::new(config(&url))
        .unwrap()
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    let shown = format!("{e} {e:?} {:?}", std::error::Error::source(&e));
    assert!(
        !shown.contains(SECRET) && !shown.contains("signature=") && !shown.contains(KEY),
        "{shown}"
    );
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn unauthorized_is_a_typed_error_with_a_clock_hint() {
    let mock = Mock::start(|_| {
        api_error(
            "listZones",
            401,
            "unable to verify user credentials and/or request signature",
        )
    })
    .await;
    let e = client(&mock).list_zones(&Params::new()).await.unwrap_err();
    match &e {
        Error::Api(a) => {
            assert_eq!(
                (a.status, a.errorcode, a.cserrorcode),
                (401, 401, Some(4350))
            );
            assert!(a.expires_used);
        }
        other => panic!("{other:?}"),
    }
    let hint = e.hint().unwrap();
    assert!(
        hint.contains("secret key") && hint.contains("clock"),
        "{hint}"
    );
    assert_eq!(mock.requests().len(), 1, "a 401 is not retried");
    let shown = format!("{e} {e:?}");
    assert!(
        !shown.contains(SECRET) && !shown.contains("signature="),
        "{shown}"
    );
}

#[tokio::test]
async fn parameter_error_names_the_parameter() {
    let mock = Mock::start(|_| {
        api_error(
            "deployVirtualMachine",
            431,
            "Unable to execute API command deployvirtualmachine due to missing parameter zoneid",
        )
    })
    .await;
    let e = client(&mock)
        .deploy_virtual_machine(&Params::new())
        .await
        .unwrap_err();
    assert_eq!(e.errorcode(), Some(431));
    assert!(e.hint().unwrap().contains("`zoneid`"));
}

#[tokio::test]
async fn internal_error_on_a_write_is_reported_once() {
    let mock =
        Mock::start(|_| api_error("createTags", 530, "Internal error executing command")).await;
    let e = client(&mock).create_tags(&Params::new()).await.unwrap_err();
    match &e {
        Error::Api(a) => assert_eq!(
            (a.status, a.errortext.as_str()),
            (530, "Internal error executing command")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test]
async fn unknown_command_answers_under_errorresponse() {
    let mock = Mock::start(|_| {
        (432, json!({"errorresponse": {"errorcode": 432, "errortext": "The given command does not exist"}}).to_string())
    })
    .await;
    let e = client(&mock)
        .call("fooBar", &Params::new())
        .await
        .unwrap_err();
    assert_eq!(e.errorcode(), Some(432));
    assert!(e.hint().unwrap().contains("does not offer `fooBar`"));
}

/// A job that stays pending `pending` polls, then ends with `end`.
fn job_server(pending: usize, end: Value) -> impl Fn(&Request) -> (u16, String) + Send + Sync {
    let polls = AtomicUsize::new(0);
    move |r| match r.command() {
        "queryAsyncJobResult" => {
            assert_eq!(r.param("jobid"), Some("job-1"));
            assert_eq!(r.method, "GET");
            if polls.fetch_add(1, Ordering::SeqCst) < pending {
                ok(
                    "queryAsyncJobResult",
                    json!({"jobid": "job-1", "jobstatus": 0}),
                )
            } else {
                let mut body = json!({"jobid": "job-1", "jobresulttype": "object"});
                body.as_object_mut()
                    .unwrap()
                    .extend(end.as_object().unwrap().clone());
                ok("queryAsyncJobResult", body)
            }
        }
        cmd => ok(cmd, json!({"jobid": "job-1", "id": "vm-7"})),
    }
}

#[tokio::test]
async fn job_success_returns_the_typed_result() {
    let mock = Mock::start(job_server(
        3,
        json!({"jobstatus": 1, "jobresult": {"virtualmachine": vm(7)}}),
    ))
    .await;
    let vm = client(&mock)
        .deploy_virtual_machine(&Params::from([("zoneid", "z1"), ("templateid", "t1")]))
        .await
        .unwrap();
    assert_eq!(vm.id, "vm-7");
    assert_eq!(vm.default_ip(), Some("10.0.0.5"));
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 1 + 4);
    assert_eq!(reqs[0].method, "POST");
    assert_well_formed(&reqs);
}

#[tokio::test]
async fn job_failure_becomes_a_job_error() {
    let mock = Mock::start(job_server(
        1,
        json!({"jobstatus": 2, "jobresultcode": 530,
               "jobresult": {"errorcode": 533, "errortext": "Insufficient capacity to deploy"}}),
    ))
    .await;
    let e = client(&mock)
        .deploy_virtual_machine(&Params::new())
        .await
        .unwrap_err();
    match &e {
        Error::Job(j) => {
            assert_eq!(j.jobid, "job-1");
            assert_eq!(j.errorcode, Some(533));
            assert_eq!(j.errortext, "Insufficient capacity to deploy");
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("job-1"));
    assert!(e.hint().unwrap().contains("capacity"));
}

#[tokio::test]
async fn legacy_text_job_failure_becomes_a_job_error() {
    let mock = Mock::start(job_server(
        0,
        json!({"jobstatus": 2, "jobresulttype": "text", "jobresult": "Unable to start VM"}),
    ))
    .await;
    let e = client(&mock)
        .start_virtual_machine(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Job(j) if j.errortext == "Unable to start VM"),
        "{e:?}"
    );
}

#[tokio::test]
async fn job_timeout_names_the_job_and_the_wait() {
    let mock = Mock::start(job_server(usize::MAX, json!({}))).await;
    let mut c = config(&mock.url);
    c.jobs.timeout = Duration::from_millis(100);
    let e = Client::new(c)
        .unwrap()
        .stop_virtual_machine(&Params::new())
        .await
        .unwrap_err();
    match &e {
        Error::JobTimeout {
            jobid,
            command,
            limit,
        } => {
            assert_eq!(jobid, "job-1");
            assert_eq!(command, "stopVirtualMachine");
            assert_eq!(*limit, Duration::from_millis(100));
        }
        other => panic!("{other:?}"),
    }
    assert!(e.to_string().contains("job-1"));
    assert!(e
        .hint()
        .unwrap()
        .contains("queryAsyncJobResult jobid=job-1"));
}

#[tokio::test]
async fn large_user_data_goes_in_a_post_body_only() {
    let mock = Mock::start(job_server(
        0,
        json!({"jobstatus": 1, "jobresult": {"virtualmachine": vm(1)}}),
    ))
    .await;
    let userdata = "QUJD".repeat(8 * 1024); // 32 KiB of base64
    client(&mock)
        .deploy_virtual_machine(
            &Params::new()
                .set("zoneid", "z1")
                .set("userdata", userdata.clone()),
        )
        .await
        .unwrap();
    let reqs = mock.requests();
    let deploy = &reqs[0];
    assert_eq!(deploy.method, "POST");
    assert!(deploy.query.is_empty());
    assert_eq!(deploy.param("userdata"), Some(userdata.as_str()));
    assert_well_formed(&reqs);

    // A read with a large parameter goes as POST too.
    let mock = Mock::start(|_| ok("listZones", json!({}))).await;
    client(&mock)
        .list_zones(&Params::new().set("keyword", "k".repeat(5000)))
        .await
        .unwrap();
    assert_eq!(mock.requests()[0].method, "POST");
    assert_well_formed(&mock.requests());
}

#[tokio::test]
async fn observer_sees_each_call_with_secrets_redacted() {
    let mock = Mock::start(job_server(
        1,
        json!({"jobstatus": 1, "jobresult": {"virtualmachine": vm(1)}}),
    ))
    .await;
    let records = Arc::new(Mutex::new(Vec::new()));
    let sink = records.clone();
    let c = client(&mock).with_observer(move |r: &CallRecord| sink.lock().unwrap().push(r.clone()));
    c.deploy_virtual_machine(
        &Params::new()
            .set("userdata", "c2VjcmV0LXVzZXJkYXRh")
            .set("zoneid", "z1"),
    )
    .await
    .unwrap();
    let records = records.lock().unwrap();
    assert_eq!(records.len(), 3);
    assert_eq!(records[0].command, "deployVirtualMachine");
    assert_eq!(records[0].method, "POST");
    assert_eq!(records[0].status, Some(200));
    assert_eq!(records[1].command, "queryAsyncJobResult");
    let shown = format!("{records:?}");
    assert!(!shown.contains(KEY) && !shown.contains(SECRET), "{shown}");
    assert!(!shown.contains("c2VjcmV0LXVzZXJkYXRh"), "{shown}");
    assert!(records[0]
        .params
        .iter()
        .any(|(n, v)| n == "zoneid" && v == "z1"));
}

#[tokio::test]
async fn sync_and_async_answers_both_reach_the_typed_result() {
    let mock = Mock::start(|r| match r.command() {
        "createSSHKeyPair" => ok(
            "createSSHKeyPair",
            json!({"keypair": {"name": "k", "fingerprint": "aa", "privatekey": "-----BEGIN KEY-----"}}),
        ),
        "deleteSSHKeyPair" => ok("deleteSSHKeyPair", json!({"success": "true"})),
        "listCapabilities" => ok("listCapabilities", json!({"capability": {"cloudstackversion": "4.19.0.0", "apilimitmax": "25"}})),
        other => panic!("unexpected {other}"),
    })
    .await;
    let c = client(&mock);
    let kp = c
        .create_ssh_key_pair(&Params::from([("name", "k")]))
        .await
        .unwrap();
    assert!(kp.privatekey.is_some());
    assert!(
        c.delete_ssh_key_pair(&Params::from([("name", "k")]))
            .await
            .unwrap()
            .success
    );
    let caps = c.list_capabilities(&Params::new()).await.unwrap();
    assert_eq!(caps.cloudstackversion.as_deref(), Some("4.19.0.0"));
    assert_eq!(caps.apilimitmax, Some(25));
}

#[tokio::test]
async fn raw_list_calls_merge_pages_of_the_server_default_size() {
    let mock = Mock::start(|r| {
        // This server's default page size is 2.
        let page: usize = r.param("page").map_or(1, |p| p.parse().unwrap());
        let size: usize = r.param("pagesize").map_or(2, |p| p.parse().unwrap());
        let all = ["a", "b", "c"];
        let items: Vec<Value> = all
            .iter()
            .skip((page - 1) * size)
            .take(size)
            .map(|id| json!({ "id": id }))
            .collect();
        ok("listVMSnapshot", json!({"count": 3, "vmSnapshot": items}))
    })
    .await;
    let v = client(&mock)
        .call_raw("listVMSnapshot", &Params::new(), true)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(v["count"], 3);
    let ids: Vec<&str> = v["vmSnapshot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["a", "b", "c"]);
    let reqs = mock.requests();
    assert_eq!(
        reqs[0].param("page"),
        None,
        "the first request goes as typed"
    );
    assert_eq!(
        (reqs[1].param("page"), reqs[1].param("pagesize")),
        (Some("2"), Some("2"))
    );
    assert_well_formed(&reqs);
}

#[tokio::test]
async fn raw_list_command_without_a_list_is_returned_unchanged() {
    let mock = Mock::start(|_| {
        ok(
            "listCapabilities",
            json!({"capability": {"cloudstackversion": "4.19.0.0"}}),
        )
    })
    .await;
    let v = client(&mock)
        .call_raw("listCapabilities", &Params::new(), true)
        .await
        .unwrap()
        .to_value()
        .unwrap();
    assert_eq!(v, json!({"capability": {"cloudstackversion": "4.19.0.0"}}));
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.requests()[0].param("page"), None);
}
