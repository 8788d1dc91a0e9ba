//! The client against servers that misbehave on purpose: answers that never
//! end, announce a terabyte, or drip a byte a second. Each server sends a
//! bounded amount, so a client that regressed fails the test instead of
//! filling this machine's memory.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use cloudstack::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::mock::{KEY, SECRET};

/// What a hostile server does once it has read a request.
#[derive(Clone, Copy)]
enum Misbehaviour {
    /// 200, chunked, 64 KB chunks; stops after `MAX_SENT` bytes.
    Endless,
    /// Announces a 1 TB Content-Length.
    HugeLength,
    /// 200, chunked, then one byte a second.
    Drip,
    /// The status line, one byte a second, never the end of the headers.
    SlowHeaders,
    /// A valid answer of exactly `len` bytes, chunked.
    Exactly(usize),
}

/// Far above the limits the tests set, far below what hurts the machine.
const MAX_SENT: usize = 32 * 1024 * 1024;

struct Hostile {
    url: String,
    connections: Arc<AtomicUsize>,
}

async fn hostile(mode: Misbehaviour) -> Hostile {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/client/api", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let count = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let _ = misbehave(stream, mode).await;
            });
        }
    });
    Hostile { url, connections }
}

async fn misbehave(mut stream: TcpStream, mode: Misbehaviour) -> std::io::Result<()> {
    // The client's requests here are GETs: the request ends at a blank line.
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await? == 0 {
            return Ok(());
        }
        request.push(byte[0]);
    }
    const CHUNKED: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
    match mode {
        Misbehaviour::Endless => {
            stream.write_all(CHUNKED).await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < MAX_SENT {
                stream
                    .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                    .await?;
                stream.write_all(&chunk).await?;
                stream.write_all(b"\r\n").await?;
                sent += chunk.len();
            }
            stream.write_all(b"0\r\n\r\n").await?;
        }
        Misbehaviour::HugeLength => {
            stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1099511627776\r\n\r\n")
                .await?;
            let chunk = vec![b' '; 64 * 1024];
            let mut sent = 0;
            while sent < MAX_SENT {
                stream.write_all(&chunk).await?;
                sent += chunk.len();
            }
        }
        Misbehaviour::Drip => {
            stream.write_all(CHUNKED).await?;
            for _ in 0..120 {
                stream.write_all(b"1\r\n \r\n").await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Misbehaviour::SlowHeaders => {
            for b in b"HTTP/1.1 200 OK\r\nX-Slow: "
                .iter()
                .chain([b'x'; 120].iter())
            {
                stream.write_all(&[*b]).await?;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        Misbehaviour::Exactly(len) => {
            let head = br#"{"listzonesresponse":{"count":1,"zone":[{"id":"z","name":"lab"}]}}"#;
            let mut body = head.to_vec();
            body.resize(len, b' ');
            stream.write_all(CHUNKED).await?;
            stream
                .write_all(format!("{:x}\r\n", body.len()).as_bytes())
                .await?;
            stream.write_all(&body).await?;
            stream.write_all(b"\r\n0\r\n\r\n").await?;
        }
    }
    stream.shutdown().await
}

fn client(url: &str, limit: u64, timeout: Duration) -> Client {
    let mut c = ClientConfig::new(url, KEY, Secret::new(SECRET));
    c.max_response_bytes = limit;
    c.timeout = timeout;
    c.retry = RetryPolicy {
        attempts: 4,
        base: Duration::from_millis(1),
        max: Duration::from_millis(5),
    };
    Client::new(c).unwrap()
}

const MB: u64 = 1024 * 1024;

#[tokio::test]
async fn an_endless_body_stops_at_the_size_limit_and_is_not_retried() {
    let server = hostile(Misbehaviour::Endless).await;
    let e = client(&server.url, MB, Duration::from_secs(60))
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { limit, announced: None, .. } if limit == MB),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the answer to `listZones` is over the limit of 1 MB"
    );
    let hint = e.hint().unwrap();
    assert!(
        hint.contains("max_response_mb") && hint.contains("BOX_CLOUDSTACK_MAX_RESPONSE_MB"),
        "{hint}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "never retried"
    );
}

#[tokio::test]
async fn an_endless_body_of_a_raw_call_stops_at_the_size_limit_too() {
    let server = hostile(Misbehaviour::Endless).await;
    let e = client(&server.url, MB, Duration::from_secs(60))
        .call_raw("listZones", &Params::new(), true)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "never retried"
    );
}

#[tokio::test]
async fn an_announced_size_over_the_limit_is_refused_before_reading() {
    let server = hostile(Misbehaviour::HugeLength).await;
    let e = client(&server.url, MB, Duration::from_secs(60))
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::TooLarge { announced: Some(n), .. } if n == 1 << 40),
        "{e:?}"
    );
    assert!(
        e.to_string().ends_with("(the server announced 1048576 MB)"),
        "{e}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "never retried"
    );
}

#[tokio::test]
async fn a_body_of_exactly_the_limit_is_read() {
    let limit = 256 * 1024;
    let server = hostile(Misbehaviour::Exactly(limit)).await;
    let zones = client(&server.url, limit as u64, Duration::from_secs(60))
        .list_zones(&Params::new())
        .await
        .unwrap();
    assert_eq!(zones.len(), 1);
    let server = hostile(Misbehaviour::Exactly(limit + 1)).await;
    let e = client(&server.url, limit as u64, Duration::from_secs(60))
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::TooLarge { .. }), "{e:?}");
}

#[tokio::test]
async fn a_body_dripping_a_byte_a_second_is_cut_off_by_the_timeout_and_not_retried() {
    let server = hostile(Misbehaviour::Drip).await;
    let e = client(&server.url, MB, Duration::from_secs(2))
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { source, .. } if source.is_timeout()),
        "{e:?}"
    );
    assert_eq!(
        e.to_string(),
        "the CloudStack API did not answer `listZones` within 2s"
    );
    let hint = e.hint().unwrap();
    assert!(
        hint.contains("timeout_secs") && hint.contains("BOX_CLOUDSTACK_TIMEOUT"),
        "{hint}"
    );
    assert_eq!(
        server.connections.load(Ordering::SeqCst),
        1,
        "a timed-out read is not sent again"
    );
}

#[tokio::test]
async fn headers_sent_a_byte_a_second_are_cut_off_by_the_timeout() {
    let server = hostile(Misbehaviour::SlowHeaders).await;
    let e = client(&server.url, MB, Duration::from_secs(2))
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { source, .. } if source.is_timeout()),
        "{e:?}"
    );
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
}
