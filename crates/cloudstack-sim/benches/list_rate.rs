//! How many list calls per second the simulator sustains on loopback, so it
//! never limits box's own benchmarks. Anchor: 1,000 calls/s (issue 4).
//!
//! `cargo bench -p cloudstack-sim --bench list_rate` prints calls/s and the
//! ratio to the anchor for a signed `listVirtualMachines` over 20 VMs:
//! - `raw`: a wrk-style generator on 8 keep-alive connections sending
//!   pre-signed requests (signature version 3, expiring in 10 minutes) and
//!   reading answers without parsing them: the simulator's own capacity,
//!   for repeated polls (`same query`) and for all-different queries that
//!   each render afresh (`distinct queries`);
//! - `client`: box's own client (signing, HTTP, JSON parsing) with 1 and 16
//!   concurrent callers, which includes the client's cost.
//!
//! The client and the simulator share this process and the machine's cores.

use std::time::{Duration, Instant};

use cloudstack::{signing, Client, ClientConfig, JobPollPolicy, Params, RetryPolicy, Secret};
use cloudstack_sim::auth::Credentials;
use cloudstack_sim::faults::Faults;
use cloudstack_sim::{Bound, Config};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ANCHOR: f64 = 1000.0;
const CMD: &str = "listVirtualMachines";
const KEY: &str = "bench-key";
const SECRET: &str = "bench-secret";

fn main() {
    // The simulator gets its own runtime, as it would in its own process.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let bound = Bound::new(Config {
                listen: "127.0.0.1:0".parse().unwrap(),
                credentials: Credentials::new(KEY.into(), SECRET.into()),
                state_dir: None,
                job_duration: Duration::from_millis(1),
                faults: Faults::none(),
                verbose: false,
                backing: None,
                layout: Default::default(),
                vpcs: vec![],
                upload_ttl: Duration::from_secs(3600),
            })
            .await
            .unwrap();
            tx.send(bound.local_addr().unwrap()).unwrap();
            bound.serve(std::future::pending()).await.unwrap();
        });
    });
    let addr = rx.recv().unwrap();
    let url = format!("http://{addr}/client/api");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = client(&url);
        seed(&client).await;
        let params = Params::new().set("listall", "true");
        // Warm up connections and caches.
        for _ in 0..200 {
            client.call("listVirtualMachines", &params).await.unwrap();
        }
        report(
            "raw, same query, 8 connections",
            raw(addr, 8, 2500, false).await,
        );
        report(
            "raw, distinct queries, 8 connections",
            raw(addr, 8, 500, true).await,
        );
        report("client, 1 caller", run(&client, 1, 1000).await);
        report("client, 16 concurrent callers", run(&client, 16, 250).await);
    });
}

fn client(url: &str) -> Client {
    let mut config = ClientConfig::new(url, KEY, Secret::new(SECRET));
    config.retry = RetryPolicy {
        attempts: 1,
        ..RetryPolicy::default()
    };
    config.jobs = JobPollPolicy {
        initial: Duration::from_millis(5),
        factor: 1.0,
        max: Duration::from_millis(5),
        timeout: Duration::from_secs(60),
    };
    Client::new(config).unwrap()
}

async fn seed(client: &Client) {
    let zones = client
        .call("listZones", &Params::new().set("networktype", "Advanced"))
        .await
        .unwrap();
    let zone = zones["zone"][0]["id"].as_str().unwrap().to_string();
    let t = client
        .call(
            "listTemplates",
            &Params::new()
                .set("templatefilter", "executable")
                .set("name", "Debian 12"),
        )
        .await
        .unwrap();
    let template = t["template"][0]["id"].as_str().unwrap().to_string();
    let o = client
        .call("listServiceOfferings", &Params::new())
        .await
        .unwrap();
    let offering = o["serviceoffering"][0]["id"].as_str().unwrap().to_string();
    for i in 0..20 {
        let p = Params::new()
            .set("zoneid", &zone)
            .set("templateid", &template)
            .set("serviceofferingid", &offering)
            .set("name", format!("bench-{i}"));
        client
            .call_and_wait("deployVirtualMachine", &p)
            .await
            .unwrap();
    }
}

/// `callers` tasks each make `per_caller` calls; the rate over all of them.
async fn run(client: &Client, callers: usize, per_caller: usize) -> (usize, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let params = Params::new().set("listall", "true");
            for _ in 0..per_caller {
                let v = c.call(CMD, &params).await.unwrap();
                assert_eq!(v["count"], 20);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (callers * per_caller, start.elapsed())
}

/// A signed request line for `listVirtualMachines`; `nonce` adds a
/// parameter the command ignores, so the answer cannot be reused.
fn request(nonce: Option<usize>) -> String {
    let expires = "2099-01-01T00:00:00+0000";
    let mut params: Vec<(String, String)> = vec![
        ("apiKey".into(), KEY.into()),
        ("command".into(), CMD.into()),
        ("expires".into(), expires.into()),
        ("listall".into(), "true".into()),
        ("response".into(), "json".into()),
        ("signatureVersion".into(), "3".into()),
    ];
    if let Some(n) = nonce {
        params.push(("nonce".into(), n.to_string()));
    }
    let sig = signing::sign(SECRET, params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    params.push(("signature".into(), sig));
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{k}={}", signing::encode_value(v)))
        .collect();
    format!(
        "GET /client/api?{} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        query.join("&")
    )
}

/// `connections` keep-alive connections, each sending `per_connection`
/// requests one after the other and reading each answer by its length.
async fn raw(
    addr: std::net::SocketAddr,
    connections: usize,
    per_connection: usize,
    distinct: bool,
) -> (usize, Duration) {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            stream.set_nodelay(true).unwrap();
            let same = request(None);
            let mut buf = Vec::with_capacity(64 * 1024);
            for i in 0..per_connection {
                let req = if distinct {
                    request(Some(c * per_connection + i))
                } else {
                    same.clone()
                };
                stream.write_all(req.as_bytes()).await.unwrap();
                read_answer(&mut stream, &mut buf).await;
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    (connections * per_connection, start.elapsed())
}

async fn read_answer(stream: &mut TcpStream, buf: &mut Vec<u8>) {
    buf.clear();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            assert!(head.starts_with("http/1.1 200"), "{head}");
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .expect("a content-length");
            while buf.len() < end + 4 + len {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "connection closed");
                buf.extend_from_slice(&chunk[..n]);
            }
            return;
        }
        let n = stream.read(&mut chunk).await.unwrap();
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn report(what: &str, (calls, took): (usize, Duration)) {
    let rate = calls as f64 / took.as_secs_f64();
    println!(
        "list_rate/{what}: {calls} calls in {:.2}s = {rate:.0} calls/s, {:.2}x the 1,000 calls/s anchor",
        took.as_secs_f64(),
        rate / ANCHOR
    );
}
