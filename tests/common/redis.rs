//! A real `redis-server` on a free loopback port, killed when dropped.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    pub port: u16,
    dir: tempfile::TempDir,
    extra: Vec<String>,
}

impl RedisServer {
    /// Starts redis-server on a free port (fails the test if it is not installed).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts redis-server with extra arguments (e.g. `--requirepass`).
    pub fn start_with(extra: &[&str]) -> Self {
        let port = super::free_port();
        let extra = extra.iter().map(|s| s.to_string()).collect();
        let mut server = Self { child: None, port, dir: tempfile::tempdir().unwrap(), extra };
        server.restart();
        server
    }

    /// A sentinel (redis-server in sentinel mode) watching `master` as `name`.
    pub fn sentinel(master: &RedisServer, name: &str, password: Option<&str>) -> Self {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {} 1\nsentinel down-after-milliseconds {name} 5000\n",
            master.port
        );
        if let Some(p) = password {
            conf.push_str(&format!("sentinel auth-pass {name} {p}\n"));
        }
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let extra = vec![path.display().to_string(), "--sentinel".to_string()];
        let mut server = Self { child: None, port, dir, extra };
        server.restart();
        server
    }

    /// A replica of `master` (`--replicaof`), waiting until its first sync has finished.
    pub fn replica_of(master: &RedisServer) -> Self {
        let port = master.port.to_string();
        let replica = Self::start_with(&["--replicaof", "127.0.0.1", &port]);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !replica.cli(&["INFO", "replication"]).contains("master_link_status:up") {
            assert!(Instant::now() < deadline, "replica on port {} did not sync", replica.port);
            std::thread::sleep(Duration::from_millis(50));
        }
        replica
    }

    /// A sentinel for fast failover tests: watches `master` as `name` with `quorum`,
    /// considers it down after `down_after_ms` without an answer, and retries a failed
    /// failover after `failover_timeout_ms`.
    pub fn fast_sentinel(
        master: &RedisServer,
        name: &str,
        quorum: u8,
        down_after_ms: u32,
        failover_timeout_ms: u32,
    ) -> Self {
        let port = super::free_port();
        let dir = tempfile::tempdir().unwrap();
        let conf = format!(
            "port {port}\nbind 127.0.0.1\nsentinel monitor {name} 127.0.0.1 {} {quorum}\n\
             sentinel down-after-milliseconds {name} {down_after_ms}\n\
             sentinel failover-timeout {name} {failover_timeout_ms}\nsentinel parallel-syncs {name} 1\n",
            master.port
        );
        let path = dir.path().join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let extra = vec![path.display().to_string(), "--sentinel".to_string()];
        let mut server = Self { child: None, port, dir, extra };
        server.restart();
        server
    }

    /// (Re)starts the server on the same port.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let mut command = Command::new("redis-server");
        if self.extra.iter().any(|a| a == "--sentinel") {
            command.args(&self.extra);
        } else {
            command.args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]);
            command.args(&self.extra);
        }
        let child = command
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed (integration/install-deps installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("redis-server did not start on port {}", self.port);
    }

    /// Kills the server.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn ping(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else { return false };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 64];
        // A server with a password answers NOAUTH, which still proves it is up.
        s.write_all(b"PING\r\n").is_ok()
            && s.read(&mut buf)
                .map(|n| buf[..n].starts_with(b"+PONG") || buf[..n].starts_with(b"-NOAUTH"))
                .unwrap_or(false)
    }

    /// Runs `script` (one command a line) through redis-cli on a single connection and
    /// returns its output: for commands that depend on the connection, such as `WAIT`.
    pub fn cli_script(&self, script: &str) -> String {
        let mut child = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("redis-cli");
        child.stdin.take().expect("stdin").write_all(script.as_bytes()).expect("write to redis-cli");
        let out = child.wait_with_output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    /// Runs a command with redis-cli and returns its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        command.args(["-p", &self.port.to_string()]);
        if let Some(i) = self.extra.iter().position(|a| a == "--requirepass") {
            command.args(["--no-auth-warning", "-a", &self.extra[i + 1]]);
        }
        let out = command.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).to_string()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
