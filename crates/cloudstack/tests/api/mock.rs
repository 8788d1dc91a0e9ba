//! A tiny CloudStack stand-in on 127.0.0.1: HTTP/1.1 with keep-alive, a
//! handler per test, every request recorded and its signature checked.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub const KEY: &str = "test-api-key";
pub const SECRET: &str = "test-secret-key";

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The raw query string (empty for a POST from the client).
    pub query: String,
    pub body: String,
    /// Query and body parameters, decoded, in order.
    pub params: Vec<(String, String)>,
    pub signature_ok: bool,
}

impl Request {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn command(&self) -> &str {
        self.param("command").unwrap_or("")
    }
}

pub type Handler = Arc<dyn Fn(&Request) -> (u16, String) + Send + Sync>;

pub struct Mock {
    pub url: String,
    requests: Arc<Mutex<Vec<Request>>>,
    connections: Arc<AtomicUsize>,
}

impl Mock {
    pub async fn start(
        handler: impl Fn(&Request) -> (u16, String) + Send + Sync + 'static,
    ) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let connections = Arc::new(AtomicUsize::new(0));
        let handler: Handler = Arc::new(handler);
        let (reqs, conns) = (requests.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                conns.fetch_add(1, Ordering::SeqCst);
                let (handler, reqs) = (handler.clone(), reqs.clone());
                tokio::spawn(async move {
                    let _ = serve(stream, handler, reqs).await;
                });
            }
        });
        Mock {
            url: format!("http://{addr}/client/api"),
            requests,
            connections,
        }
    }

    pub fn requests(&self) -> Vec<Request> {
        self.requests.lock().unwrap().clone()
    }

    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

async fn serve(
    stream: tokio::net::TcpStream,
    handler: Handler,
    requests: Arc<Mutex<Vec<Request>>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let target = parts.next().unwrap_or("").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).await?;
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        reader.read_exact(&mut body).await?;
        let body = String::from_utf8(body).unwrap();
        let query = target
            .split_once('?')
            .map(|(_, q)| q.to_string())
            .unwrap_or_default();
        let mut params = decode_form(&query);
        params.extend(decode_form(&body));
        let signature_ok = verify(&params);
        let request = Request {
            method,
            query,
            body,
            params,
            signature_ok,
        };
        let (status, reply) = handler(&request);
        requests.lock().unwrap().push(request);
        let head = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            reply.len()
        );
        write.write_all(head.as_bytes()).await?;
        write.write_all(reply.as_bytes()).await?;
    }
}

fn verify(params: &[(String, String)]) -> bool {
    let Some(given) = params
        .iter()
        .find(|(n, _)| n == "signature")
        .map(|(_, v)| v.clone())
    else {
        return false;
    };
    let expected =
        cloudstack::signing::sign(SECRET, params.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    cloudstack::signing::signatures_match(&expected, &given)
}

pub fn decode_form(s: &str) -> Vec<(String, String)> {
    s.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (n, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(n), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}
