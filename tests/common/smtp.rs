//! A real SMTP server for tests (`integration/smtp_capture.py`, aiosmtpd) on a free
//! loopback port; every message it receives lands in a directory as `<n>.eml`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct SmtpCapture {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpCapture {
    /// Starts the capture, with AUTH for `auth` when given.
    pub fn start(auth: Option<(&str, &str)>) -> Self {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/integration/smtp_capture.py");
        let mut cmd = Command::new("python3");
        cmd.arg(script).args(["--port", &port.to_string(), "--dir"]).arg(dir.path());
        if let Some((user, password)) = auth {
            cmd.args(["--auth", &format!("{user}:{password}")]);
        }
        let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "SMTP capture did not start (is aiosmtpd installed? run integration/install-deps)"
        );
        Self { child, port, dir }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.strip_suffix(".eml").and_then(|n| n.parse().ok()).map(|n| (n, e.path()))
            })
            .collect();
        files.sort();
        files.into_iter().map(|(_, p)| std::fs::read_to_string(p).unwrap()).collect()
    }

    /// Waits until at least `n` messages arrived.
    pub fn wait_for(&self, n: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let messages = self.messages();
            if messages.len() >= n || Instant::now() > deadline {
                assert!(messages.len() >= n, "expected {n} messages, got {}", messages.len());
                return messages;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpCapture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
