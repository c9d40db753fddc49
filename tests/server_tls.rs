//! TLS on the listener (`server.tls`): a rustls client speaks HTTP/1.1 and HTTP/2 (chosen
//! by ALPN) to the real binary; with `client_certificates`, a client without a certificate
//! is refused and one with a certificate the configured authority signed is served.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::pki::{Issued, TestCa};
use common::*;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

struct TlsServer {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the binary with TLS from `server` (and `client_ca` as the only client authority
/// when given), and waits until it is listening.
fn start(server: &Issued, client_ca: Option<&TestCa>) -> TlsServer {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let certificate = write("server.crt", &server.cert_pem);
    let key = write("server.key", &server.key_pem);
    let clients = match client_ca {
        Some(ca) => format!("    client_certificates: ['{}']\n", write("clients.crt", &ca.cert_pem())),
        None => String::new(),
    };
    let port = free_port();
    let yaml = config_yaml(port, dir.path(), "").replacen(
        "server:\n",
        &format!("server:\n  tls:\n    certificate: '{certificate}'\n    key: '{key}'\n{clients}"),
        1,
    );
    let config = write("configuration.yml", &yaml);
    let child = Command::new(binary())
        .args(["--config", &config])
        .current_dir(dir.path())
        .env_remove("PORTCULLIS_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .unwrap();
    let mut server = TlsServer { child, port, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Some(status) = server.child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(server._dir.path().join("stderr.log")).unwrap_or_default();
            panic!("server exited early ({status}): {stderr}");
        }
        assert!(Instant::now() < deadline, "server did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

fn client_config(ca: &TestCa, alpn: &[&[u8]], identity: Option<&Issued>) -> rustls::ClientConfig {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from_pem_slice(ca.cert_pem().as_bytes()).unwrap()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let mut config = match identity {
        Some(issued) => builder
            .with_client_auth_cert(
                vec![CertificateDer::from_pem_slice(issued.cert_pem.as_bytes()).unwrap()],
                PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    config
}

/// Sends GET /api/health over TLS; returns the negotiated ALPN protocol and the status and
/// body, or the first error met.
async fn health(port: u16, config: rustls::ClientConfig) -> Result<(Option<Vec<u8>>, u16, String), String> {
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("auth.example.com").unwrap();
    let tls = connector.connect(name, tcp).await.map_err(|e| format!("handshake: {e}"))?;
    let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
    let io = hyper_util::rt::TokioIo::new(tls);
    let request = http::Request::get("https://auth.example.com/api/health")
        .header("host", "auth.example.com")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let response = if alpn.as_deref() == Some(b"h2") {
        let (mut sender, conn) = hyper::client::conn::http2::handshake(hyper_util::rt::TokioExecutor::new(), io)
            .await
            .map_err(|e| format!("h2 handshake: {e}"))?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| format!("request: {e}"))?
    } else {
        let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        sender.send_request(request).await.map_err(|e| format!("request: {e}"))?
    };
    let status = response.status().as_u16();
    let body = http_body_util::BodyExt::collect(response.into_body()).await.map_err(|e| e.to_string())?.to_bytes();
    Ok((alpn, status, String::from_utf8_lossy(&body).into_owned()))
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn http1_and_http2_over_tls() {
    let ca = TestCa::new("listener test CA");
    let server = start(&ca.server(&["auth.example.com"]), None);
    let rt = runtime();

    let (alpn, status, body) =
        rt.block_on(health(server.port, client_config(&ca, &[b"h2", b"http/1.1"], None))).unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"h2"[..]), "the server prefers HTTP/2");
    assert_eq!((status, body.as_str()), (200, r#"{"status":"OK"}"#));

    let (alpn, status, _) = rt.block_on(health(server.port, client_config(&ca, &[b"http/1.1"], None))).unwrap();
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(status, 200);

    // No ALPN at all: HTTP/1.1.
    let (alpn, status, _) = rt.block_on(health(server.port, client_config(&ca, &[], None))).unwrap();
    assert_eq!((alpn, status), (None, 200));

    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = try_request(server.port, "GET /api/health HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(!matches!(plain, Ok(r) if r.status == 200));

    // A client that trusts another authority refuses the server's certificate.
    let other = TestCa::new("someone else");
    let refused = rt.block_on(health(server.port, client_config(&other, &[b"h2"], None)));
    assert!(refused.is_err_and(|e| e.starts_with("handshake")), "an untrusted server certificate must fail");
}

#[test]
fn client_certificates_are_required_when_configured() {
    let ca = TestCa::new("listener test CA");
    let clients = TestCa::new("client CA");
    let server = start(&ca.server(&["auth.example.com"]), Some(&clients));
    let rt = runtime();

    let anonymous = rt.block_on(health(server.port, client_config(&ca, &[b"h2"], None)));
    assert!(anonymous.is_err(), "a client without a certificate must be refused: {anonymous:?}");

    let stranger = TestCa::new("unknown client CA").client("mallory");
    let untrusted = rt.block_on(health(server.port, client_config(&ca, &[b"http/1.1"], Some(&stranger))));
    assert!(untrusted.is_err(), "a certificate from another authority must be refused: {untrusted:?}");

    for alpn in [&b"h2"[..], &b"http/1.1"[..]] {
        let (_, status, _) =
            rt.block_on(health(server.port, client_config(&ca, &[alpn], Some(&clients.client("alice"))))).unwrap();
        assert_eq!(status, 200);
    }
}

#[test]
fn unreadable_tls_files_fail_validation_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.crt");
    let yaml = config_yaml(free_port(), dir.path(), "").replacen(
        "server:\n",
        &format!("server:\n  tls:\n    certificate: '{}'\n    key: '{}'\n", missing.display(), missing.display()),
        1,
    );
    let config = dir.path().join("c.yml");
    std::fs::write(&config, yaml).unwrap();
    let out = run(&["validate-config", "--config", &config.display().to_string()], Path::new("."), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("server.tls.certificate"), "{stdout}");

    let yaml = config_yaml(free_port(), dir.path(), "").replacen(
        "server:\n",
        "server:\n  tls:\n    client_certificates: ['/some/ca.crt']\n",
        1,
    );
    std::fs::write(&config, yaml).unwrap();
    let out = run(&["validate-config", "--config", &config.display().to_string()], Path::new("."), &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    assert!(stdout.contains("server.tls.client_certificates"), "{stdout}");
}
