//! A real SMTP server for tests: integration/smtp_capture.py (aiosmtpd) on a free loopback
//! port, storing what it receives in a temporary directory. Messages are decoded with
//! Python's `email` package, an implementation independent of the one that wrote them.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How the capture server speaks TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureTls {
    /// Clear text only (no STARTTLS offered).
    None,
    /// STARTTLS with a fresh self-signed certificate for `localhost`.
    Starttls,
    /// TLS from the first byte, same certificate.
    Implicit,
}

/// A running capture server, killed when dropped.
pub struct SmtpCapture {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpCapture {
    /// Clear-text server; with `auth`, AUTH PLAIN/LOGIN with exactly those credentials is
    /// required before mail is accepted.
    pub fn start(auth: Option<(&str, &str)>) -> SmtpCapture {
        Self::start_with(auth, CaptureTls::None, &[])
    }

    /// Server with the given TLS mode, refusing the recipients in `reject` (550).
    pub fn start_with(auth: Option<(&str, &str)>, tls: CaptureTls, reject: &[&str]) -> SmtpCapture {
        let dir = tempfile::tempdir().unwrap();
        let messages = dir.path().join("messages");
        std::fs::create_dir(&messages).unwrap();
        let port = super::free_port();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("integration/smtp_capture.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args(["--port", &port.to_string(), "--dir"]).arg(&messages);
        if let Some((user, password)) = auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        for address in reject {
            cmd.args(["--reject", address]);
        }
        if tls != CaptureTls::None {
            let (cert, key) = self_signed(dir.path());
            cmd.arg("--tls-cert").arg(cert).arg("--tls-key").arg(key);
            if tls == CaptureTls::Implicit {
                cmd.arg("--implicit-tls");
            }
        }
        let stderr = std::fs::File::create(dir.path().join("stderr.log")).unwrap();
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn().expect("spawn python3");
        let mut line = String::new();
        let read = BufReader::new(child.stdout.take().unwrap()).read_line(&mut line);
        if read.is_err() || line.trim() != "ready" {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the SMTP capture server did not start (is aiosmtpd installed? run integration/install-deps): {}",
                std::fs::read_to_string(dir.path().join("stderr.log")).unwrap_or_default()
            );
        }
        SmtpCapture { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    fn messages_dir(&self) -> PathBuf {
        self.dir.path().join("messages")
    }

    /// Numbers of the stored messages, ascending.
    fn numbers(&self) -> Vec<u32> {
        let mut numbers: Vec<u32> = std::fs::read_dir(self.messages_dir())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.strip_suffix(".eml")?.parse().ok())
            .collect();
        numbers.sort_unstable();
        numbers
    }

    /// Every raw message received so far, in arrival order.
    pub fn messages(&self) -> Vec<String> {
        self.numbers()
            .into_iter()
            .map(|n| std::fs::read_to_string(self.messages_dir().join(format!("{n}.eml"))).unwrap())
            .collect()
    }

    /// The envelope and session of each message, in arrival order: `mail_from`,
    /// `rcpt_tos`, `tls` (bool) and `login` (the authenticated user or null).
    pub fn envelopes(&self) -> Vec<serde_json::Value> {
        self.numbers()
            .into_iter()
            .map(|n| {
                let text = std::fs::read_to_string(self.messages_dir().join(format!("{n}.json"))).unwrap();
                serde_json::from_str(&text).unwrap()
            })
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(Instant::now() < deadline, "{} of {n} messages arrived within {timeout:?}", messages.len());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// What the server wrote to stderr.
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("stderr.log")).unwrap_or_default()
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A self-signed certificate and key for `localhost` and 127.0.0.1, made with openssl.
fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (cert, key)
}

/// A message decoded by Python's `email` package.
#[derive(Debug)]
pub struct Mail {
    /// Header fields in order, values decoded (RFC 2047) and unfolded.
    pub headers: Vec<(String, String)>,
    /// The top-level content type, e.g. `multipart/alternative`.
    pub content_type: String,
    /// Leaf parts in order: (content type, charset, decoded body).
    pub parts: Vec<(String, Option<String>, String)>,
}

impl Mail {
    /// Every value of header `name` (case-insensitive).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str()).collect()
    }

    /// The only value of header `name`; panics if it is missing or repeated.
    pub fn header(&self, name: &str) -> &str {
        match self.all(name).as_slice() {
            [one] => one,
            other => panic!("header {name} appears {} times: {:?}", other.len(), self.headers),
        }
    }

    /// The decoded body of the part with `content_type`.
    pub fn part(&self, content_type: &str) -> &str {
        self.parts
            .iter()
            .find(|(t, _, _)| t == content_type)
            .map(|(_, _, body)| body.as_str())
            .unwrap_or_else(|| panic!("no {content_type} part in {:?}", self.parts))
    }
}

const PARSER: &str = r#"
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
parts = [[p.get_content_type(), p.get_content_charset(), p.get_content()] for p in m.walk() if not p.is_multipart()]
defects = [str(d) for p in m.walk() for d in p.defects]
print(json.dumps({"headers": [[k, str(v)] for k, v in m.items()], "content_type": m.get_content_type(),
                  "parts": parts, "defects": defects}))
"#;

/// Decodes a raw message; panics if Python finds it malformed.
pub fn parse_mail(raw: &str) -> Mail {
    use std::io::Write;
    let mut child = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(raw.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "email parser: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let defects = v["defects"].as_array().unwrap();
    assert!(defects.is_empty(), "malformed message ({defects:?}):\n{raw}");
    let strings = |v: &serde_json::Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|s| s.as_str().map(String::from).unwrap_or_default()).collect()
    };
    Mail {
        headers: v["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                let h = strings(h);
                (h[0].clone(), h[1].clone())
            })
            .collect(),
        content_type: v["content_type"].as_str().unwrap().to_string(),
        parts: v["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p[0].as_str().unwrap().into(), p[1].as_str().map(String::from), p[2].as_str().unwrap().into()))
            .collect(),
    }
}
