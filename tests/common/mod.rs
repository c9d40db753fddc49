//! Shared helpers for tests that run the real `portcullis` binary.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

/// Path of the binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_portcullis")
}

/// Ports handed out by [`free_port`]: below Linux's ephemeral range (32768 and up), so the
/// source port of some test's outgoing connection can never take a port between the moment
/// it is chosen and the moment its server binds it (a port from `bind(0)` could be).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A loopback port that was free a moment ago.
///
/// Test processes run side by side, so each walks the range from its own starting point
/// (spread by process ID) and skips ports it has handed out already.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let span = u32::from(TEST_PORTS.end - TEST_PORTS.start);
    let start = std::process::id().wrapping_mul(2_654_435_761) % span;
    loop {
        let step = NEXT.fetch_add(1, Ordering::Relaxed);
        assert!(step < span, "no free test port left in {TEST_PORTS:?}");
        let offset = u16::try_from((start + step * 7) % span).expect("offset below span");
        let port = TEST_PORTS.start + offset;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A minimal valid configuration listening on `port`, plus `extra` YAML appended.
pub fn config_yaml(port: u16, dir: &Path, extra: &str) -> String {
    format!(
        "
server:
  address: 'tcp://127.0.0.1:{port}/'
authentication_backend:
  file:
    path: '{dir}/users.yml'
session:
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com/'
      default_redirection_url: 'https://www.example.com/'
storage:
  encryption_key: 'a-test-encryption-key-that-is-long-enough'
  local:
    path: '{dir}/db.sqlite3'
notifier:
  filesystem:
    filename: '{dir}/notifications.txt'
identity_validation:
  reset_password:
    jwt_secret: 'a-test-jwt-secret-that-is-long-enough'
{extra}
",
        dir = dir.display()
    )
}

/// Runs the binary to completion.
pub fn run(args: &[&str], cwd: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args).current_dir(cwd).env_remove("PORTCULLIS_CONFIG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run portcullis")
}

/// A running server process, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
    pub stdout: PathBuf,
}

impl Server {
    /// Starts the binary with `config` (YAML written to a temporary directory, which is
    /// also the working directory) and waits until `/api/health` answers.
    pub fn start(config: Option<&str>, port: u16, env: &[(&str, &str)]) -> Server {
        Self::start_with(config, port, env, "/api/health")
    }

    /// Like [`Server::start`], polling `health_path` for readiness.
    pub fn start_with(config: Option<&str>, port: u16, env: &[(&str, &str)], health_path: &str) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let mut args = Vec::new();
        if let Some(yaml) = config {
            let path = dir.path().join("configuration.yml");
            std::fs::write(&path, yaml).unwrap();
            args.push("--config".to_string());
            args.push(path.display().to_string());
        }
        let stdout = dir.path().join("stdout.log");
        let mut cmd = Command::new(binary());
        cmd.args(&args)
            .current_dir(dir.path())
            .env_remove("PORTCULLIS_CONFIG")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&stdout).unwrap())
            .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn portcullis");
        let mut server = Server { child, port, dir, stdout };
        server.wait_ready(health_path);
        server
    }

    fn wait_ready(&mut self, health_path: &str) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("server exited early ({status}); stderr:\n{}", self.stderr());
            }
            if let Ok(r) = try_request(
                self.port,
                &format!("GET {health_path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"),
            ) && r.status == 200
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not become ready; stderr:\n{}", self.stderr());
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn stdout(&self) -> String {
        std::fs::read_to_string(&self.stdout).unwrap_or_default()
    }

    /// Waits until stdout contains `needle` (logs are written by a background thread).
    pub fn wait_for_log(&self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let out = self.stdout();
            if out.contains(needle) || Instant::now() > deadline {
                return out;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit in time");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn get(&self, path: &str) -> Response {
        get(self.port, path, &[])
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// First value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
}

/// Sends a raw request and reads the whole response (the request should ask to close).
pub fn try_request(port: u16, raw: &str) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(raw.as_bytes())?;
    read_response(&mut stream)
}

/// Reads one response from `stream` until the server closes it.
pub fn read_response(stream: &mut TcpStream) -> std::io::Result<Response> {
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers =
        lines.filter_map(|l| l.split_once(':').map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))).collect();
    Ok(Response { status, headers, body: body.to_string() })
}

/// GET `path` with extra headers.
pub fn get(port: u16, path: &str, headers: &[(&str, &str)]) -> Response {
    request(port, "GET", path, headers, "")
}

/// Sends `method path` with headers and body; `Host: auth.example.com` and (for a body)
/// `Content-Type: application/json` unless given.
pub fn request(port: u16, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Response {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        raw.push_str("Host: auth.example.com\r\n");
    }
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    // Bodies are JSON unless the caller says otherwise (the API refuses other types).
    if !body.is_empty() && !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
        raw.push_str("Content-Type: application/json\r\n");
    }
    if !body.is_empty() || method == "POST" {
        raw.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    raw.push_str("\r\n");
    raw.push_str(body);
    try_request(port, &raw).expect("request")
}
pub mod client;
pub mod databases;
pub mod in_process;
pub mod pki;
pub mod redis;
pub mod slapd;
pub mod smtp;

/// An argon2id hash made by an independent implementation (argon2-cffi), cheap parameters.
pub fn argon2_hash(password: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", "import sys; from argon2 import PasswordHasher as H; print(H(time_cost=1, memory_cost=8192, parallelism=1).hash(sys.argv[1]))", password])
        .output()
        .expect("python3");
    assert!(
        out.status.success(),
        "argon2-cffi is missing; run integration/install-deps: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// The one-time code in the newest message the file notifier wrote to `dir`.
pub fn last_code(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("notifications.txt")).expect("a message was written");
    // The newest message carrying a code (a security notice may have come after it).
    let code_in = |block: &str| {
        block
            .lines()
            .map(str::trim)
            .find(|l| l.len() >= 6 && l.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
            .map(str::to_string)
    };
    text.rsplit("----------------------------------------")
        .find_map(code_in)
        .unwrap_or_else(|| panic!("no code in:\n{text}"))
}

/// John's TOTP setup with the base32 `secret` and the default parameters, to compute codes.
pub fn totp_record(secret_b32: &str) -> portcullis::storage::TotpRecord {
    portcullis::storage::TotpRecord {
        username: "john".into(),
        created_at: 0,
        last_used_at: None,
        issuer: "Portcullis".into(),
        algorithm: "SHA1".into(),
        digits: 6,
        period: 30,
        secret: totp_rs::Secret::try_from_base32(secret_b32).unwrap().as_ref().to_vec(),
    }
}
