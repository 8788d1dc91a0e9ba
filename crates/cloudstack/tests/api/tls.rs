//! HTTPS: verification is on by default, a custom CA file makes a private
//! certificate trusted, and `insecure` skips verification. The server is
//! `openssl s_server` with a throwaway self-signed certificate.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cloudstack::*;

use crate::mock::{KEY, SECRET};

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn openssl() -> &'static str {
    let found = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join("openssl").is_file()))
        .unwrap_or(false);
    assert!(
        found,
        "`openssl` is required by the TLS tests but not installed"
    );
    "openssl"
}

fn make_cert(dir: &Path) {
    let status = Command::new(openssl())
        .current_dir(dir)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "key.pem",
            "-out",
            "cert.pem",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-addext",
            "basicConstraints=critical,CA:FALSE",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

fn start(dir: &Path) -> Server {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new(openssl())
        .current_dir(dir)
        .args([
            "s_server", "-quiet", "-www", "-cert", "cert.pem", "-key", "key.pem",
        ])
        .arg("-accept")
        .arg(format!("127.0.0.1:{port}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Readiness, not timing: wait until the port accepts connections.
    let mut ready = false;
    for _ in 0..500 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ready, "openssl s_server did not start");
    Server {
        child,
        url: format!("https://127.0.0.1:{port}/client/api"),
    }
}

fn config(url: &str) -> ClientConfig {
    let mut c = ClientConfig::new(url, KEY, Secret::new(SECRET));
    c.retry.attempts = 1;
    c
}

#[tokio::test]
async fn https_verification_is_on_by_default_and_a_ca_file_or_insecure_passes_it() {
    let dir = tempfile_dir();
    make_cert(&dir);
    let server = start(&dir);

    // Default: the private certificate is not trusted.
    let e = Client::new(config(&server.url))
        .unwrap()
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");

    // With the CA file, TLS succeeds: s_server's HTML page is then the error.
    let mut with_ca = config(&server.url);
    with_ca.ca_file = Some(dir.join("cert.pem"));
    let e = Client::new(with_ca)
        .unwrap()
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Http { .. } | Error::Parse { .. }),
        "TLS should pass: {e:?}"
    );

    let mut insecure = config(&server.url);
    insecure.insecure = true;
    let e = Client::new(insecure)
        .unwrap()
        .list_zones(&Params::new())
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::Http { .. } | Error::Parse { .. }),
        "TLS should pass: {e:?}"
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_empty_ca_file_is_a_config_error() {
    let dir = tempfile_dir();
    let mut c = config("https://127.0.0.1:1/client/api");
    c.ca_file = Some(dir.join("missing.pem"));
    assert!(matches!(Client::new(c.clone()), Err(Error::Config(_))));
    std::fs::write(dir.join("empty.pem"), "").unwrap();
    c.ca_file = Some(dir.join("empty.pem"));
    assert!(matches!(Client::new(c), Err(Error::Config(_))));
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh folder under the system temp dir (the crate has no tempfile dependency).
fn tempfile_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "cloudstack-tls-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
