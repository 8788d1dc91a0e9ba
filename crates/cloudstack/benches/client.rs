//! How much CPU the client spends per request, so it is never the
//! bottleneck of `box up` on a busy cloud.
//!
//! Run: `cargo bench -p cloudstack --bench client`. Reports:
//! - signing: building the string to sign + HMAC-SHA1 + Base64, ns/request;
//! - request preparation (`dry_run`: params, expiry, signing, URL), ns/request;
//! - a full call against a keep-alive server on 127.0.0.1, as CPU µs of the
//!   client's thread per call, against the anchor: the same HTTP exchange
//!   done by hand over a raw `TcpStream` (no client library, no signing, no
//!   JSON). The target is well under 1 ms of CPU per call.
//!
//! Every figure is CPU time of the measuring thread (wall time is also shown
//! for calls), the median of five rounds; the machine is shared, so compare
//! ratios, not absolute times, between runs.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use cloudstack::{Client, ClientConfig, Params, Secret};

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec we own.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

fn deploy_params() -> Params {
    Params::new()
        .set("zoneid", "1d8d87d4-1425-459c-8d81-c6f57dca2bd2")
        .set("templateid", "50459b99-5fe0-11ea-9a56-1e006800018c")
        .set("serviceofferingid", "498ce071-a077-4237-9492-e55c42553327")
        .set("networkids", "87503ba2-d59d-4a5e-8f7f-b3f486cedbd8")
        .set("name", "web-1")
        .set("displayname", "web 1 (box)")
        .set("keypair", "box-7f3a")
        .set("affinitygroupnames", "box-anti")
        .set(
            "userdata",
            "I2Nsb3VkLWNvbmZpZwpob3N0bmFtZTogd2ViLTEK".repeat(8),
        )
}

/// A blocking keep-alive HTTP/1.1 server answering every request with `body`.
fn serve(body: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let body = body.clone();
            std::thread::spawn(move || {
                stream.set_nodelay(true).unwrap();
                let mut w = stream.try_clone().unwrap();
                let mut r = BufReader::new(stream);
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    body.len()
                );
                let mut reply = head.into_bytes();
                reply.extend_from_slice(body.as_bytes());
                loop {
                    let mut len = 0usize;
                    let mut line = String::new();
                    if r.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        r.read_line(&mut line).unwrap();
                        if line.trim().is_empty() {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                    }
                    let mut b = vec![0; len];
                    r.read_exact(&mut b).unwrap();
                    w.write_all(&reply).unwrap();
                }
            });
        }
    });
    format!("http://{addr}/client/api")
}

/// The anchor: one keep-alive GET and its response, by hand.
fn raw_exchange(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, request: &[u8]) {
    stream.write_all(request).unwrap();
    let mut len = 0usize;
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            len = v.trim().parse().unwrap();
        }
    }
    let mut b = vec![0; len];
    reader.read_exact(&mut b).unwrap();
}

fn vm(i: usize) -> serde_json::Value {
    serde_json::json!({"id": format!("915653c4-298b-4d74-bdee-{i:012}"), "name": format!("vm-{i}"),
        "displayname": format!("vm-{i}"), "state": "Running", "zoneid": "1d8d87d4-1425-459c-8d81-c6f57dca2bd2",
        "zonename": "zone", "templateid": "50459b99-5fe0-11ea-9a56-1e006800018c", "templatename": "debian-12",
        "serviceofferingid": "498ce071", "serviceofferingname": "small", "cpunumber": 2, "memory": 2048,
        "created": "2026-01-01T00:00:00+0000", "hypervisor": "KVM", "passwordenabled": false,
        "nic": [{"id": "n", "networkid": "net", "ipaddress": "10.1.1.62", "isdefault": true, "macaddress": "02:00:34:fb:00:01",
                 "gateway": "10.1.1.1", "netmask": "255.255.255.0", "traffictype": "Guest", "type": "Isolated"}],
        "securitygroup": [], "affinitygroup": [], "tags": [{"key": "box-env", "value": "e1"}, {"key": "box-machine", "value": "web"}]})
}

fn main() {
    let config = |url: &str| {
        ClientConfig::new(
            url,
            "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
            Secret::new("s".repeat(86)),
        )
    };

    // 1. Signing alone.
    let params = deploy_params();
    let mut all: Vec<(&str, &str)> = params.iter().collect();
    all.extend([
        ("apiKey", "AbCdEf"),
        ("command", "deployVirtualMachine"),
        ("response", "json"),
        ("signatureVersion", "3"),
        ("expires", "2030-01-01T00:00:00+0000"),
    ]);
    let secret = "s".repeat(86);
    let n = 50_000;
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = thread_cpu();
        for _ in 0..n {
            std::hint::black_box(cloudstack::signing::sign(&secret, all.iter().copied()));
        }
        rounds.push((thread_cpu() - t).as_nanos() as f64 / n as f64);
    }
    let sign_ns = median(rounds);
    println!(
        "signing (deployVirtualMachine, 14 params, 320 B userdata): {sign_ns:.0} ns/request (CPU)"
    );

    // 2. Preparing a request: expiry, validation, signing, URL.
    let client = Client::new(config("http://127.0.0.1:9/client/api")).unwrap();
    let mut rounds = Vec::new();
    for _ in 0..5 {
        let t = thread_cpu();
        for _ in 0..n {
            std::hint::black_box(client.dry_run("deployVirtualMachine", &params).unwrap());
        }
        rounds.push((thread_cpu() - t).as_nanos() as f64 / n as f64);
    }
    let prep_ns = median(rounds);
    println!("request preparation (dry_run): {prep_ns:.0} ns/request");

    // 3. Parsing alone: a 50-VM page, envelope to typed structs.
    let page = serde_json::json!({"listvirtualmachinesresponse": {"count": 50,
        "virtualmachine": (0..50).map(vm).collect::<Vec<_>>()}})
    .to_string();
    let (mut tree, mut direct) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let t = thread_cpu();
        for _ in 0..200 {
            let v =
                cloudstack::response::extract("listVirtualMachines", 200, page.as_bytes(), true)
                    .unwrap();
            let items = cloudstack::response::take_list("listVirtualMachines", v, "virtualmachine")
                .unwrap();
            let vms: Vec<cloudstack::VirtualMachine> = items
                .into_iter()
                .map(|v| cloudstack::response::typed_owned("listVirtualMachines", v).unwrap())
                .collect();
            std::hint::black_box(vms);
        }
        tree.push((thread_cpu() - t).as_secs_f64() * 1e6 / 200.0);
        let t = thread_cpu();
        for _ in 0..200 {
            let vms: cloudstack::response::Page<cloudstack::VirtualMachine> =
                cloudstack::response::parse_page(
                    "listVirtualMachines",
                    200,
                    page.as_bytes(),
                    "virtualmachine",
                    true,
                )
                .unwrap();
            std::hint::black_box(vms);
        }
        direct.push((thread_cpu() - t).as_secs_f64() * 1e6 / 200.0);
    }
    let (tree, direct) = (median(tree), median(direct));
    println!(
        "parsing a 50-VM page ({} KB) into typed VMs: {direct:.0} µs direct (Client::list), {tree:.0} µs via a JSON tree; ratio {:.2}",
        page.len() / 1024,
        direct / tree
    );

    // 4. Full calls against a loopback server.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cases = [
        (
            "listZones, 1 zone",
            serde_json::json!({"listzonesresponse": {"count": 1, "zone": [{"id": "z", "name": "lab"}]}}),
        ),
        (
            "listVirtualMachines, 50 VMs typed",
            serde_json::json!({"listvirtualmachinesresponse": {"count": 50,
            "virtualmachine": (0..50).map(vm).collect::<Vec<_>>()}}),
        ),
    ];
    let calls = 2000;
    let mut results = Vec::new();
    for (name, body) in cases {
        let body = body.to_string();
        let url = serve(body.clone());
        let client = Client::new(config(&url)).unwrap();
        let typed = name.contains("typed");
        let (mut cpu_rounds, mut wall_rounds) = (Vec::new(), Vec::new());
        rt.block_on(async {
            // Warm up: connection, TLS-free pool, allocator.
            for _ in 0..200 {
                client.call("listZones", &Params::new()).await.unwrap();
            }
            for _ in 0..5 {
                let (c0, w0) = (thread_cpu(), Instant::now());
                for _ in 0..calls / 5 {
                    if typed {
                        std::hint::black_box(
                            client
                                .list_virtual_machines(&Params::new().set("page", "1"))
                                .await
                                .unwrap(),
                        );
                    } else {
                        std::hint::black_box(
                            client
                                .list_zones(&Params::new().set("page", "1"))
                                .await
                                .unwrap(),
                        );
                    }
                }
                cpu_rounds.push((thread_cpu() - c0).as_secs_f64() * 1e6 / (calls / 5) as f64);
                wall_rounds.push(w0.elapsed().as_secs_f64() * 1e6 / (calls / 5) as f64);
            }
        });
        let (cpu, wall) = (median(cpu_rounds), median(wall_rounds));

        // The anchor: the same exchange by hand, same server.
        let addr = url
            .trim_start_matches("http://")
            .trim_end_matches("/client/api")
            .to_string();
        let mut stream = TcpStream::connect(&addr).unwrap();
        stream.set_nodelay(true).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let dry = client.dry_run("listZones", &Params::new()).unwrap();
        let path = dry
            .url
            .trim_start_matches(&format!("http://{addr}"))
            .to_string();
        let request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n\r\n").into_bytes();
        for _ in 0..200 {
            raw_exchange(&mut stream, &mut reader, &request);
        }
        let mut raw_rounds = Vec::new();
        for _ in 0..5 {
            let c0 = thread_cpu();
            for _ in 0..calls / 5 {
                raw_exchange(&mut stream, &mut reader, &request);
            }
            raw_rounds.push((thread_cpu() - c0).as_secs_f64() * 1e6 / (calls / 5) as f64);
        }
        let raw = median(raw_rounds);
        println!(
            "call ({name}): {cpu:.1} µs CPU/call ({wall:.1} µs wall); anchor raw TcpStream exchange {raw:.1} µs CPU; ratio {:.1}x; {:.3} of the 1 ms budget",
            cpu / raw,
            cpu / 1000.0
        );
        results.push(cpu);
    }
    let worst = results.iter().cloned().fold(0.0, f64::max);
    assert!(
        worst < 1000.0,
        "the client used {worst:.0} µs of CPU per call, over the 1 ms budget"
    );
}
