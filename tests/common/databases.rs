//! Real PostgreSQL and MariaDB servers in temporary directories on free loopback ports,
//! stopped when dropped, optionally accepting TLS connections only. PostgreSQL refuses to
//! run as root, so as root it runs as the `postgres` system user.

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for_port(port: u16, what: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited early ({status}):\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{what} did not start:\n{}", std::fs::read_to_string(log).unwrap_or_default());
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

fn postgres_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL must be installed (integration/install-deps installs it)")
        .filter_map(Result::ok)
        .map(|e| e.path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    versions.sort();
    versions.pop().unwrap_or_else(|| panic!("{name} not found under /usr/lib/postgresql"))
}

/// A PostgreSQL server with user `portcullis` (trust auth) and database `portcullis`.
pub struct PostgresServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    data: PathBuf,
    as_postgres: bool,
    /// Server settings beyond the defaults (`-c name=value` pairs).
    settings: Vec<String>,
}

/// What a TLS-only test server presents and trusts.
pub struct ServerTls<'a> {
    /// The server's certificate, PEM.
    pub cert_pem: &'a str,
    /// Its private key, PEM.
    pub key_pem: &'a str,
    /// The CA that client certificates must chain to, PEM.
    pub client_ca_pem: &'a str,
}

impl PostgresServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that accepts TLS connections only: user `portcullis` is trusted over TLS,
    /// and user `certuser` (owner of database `certdb`) must present a client certificate
    /// signed by `tls.client_ca_pem` whose common name is `certuser`.
    pub fn start_tls(tls: &ServerTls) -> Self {
        let server = Self::start_with(Some(tls));
        for (bin, args) in [("createuser", vec!["certuser"]), ("createdb", vec!["-O", "certuser", "certdb"])] {
            let out = Command::new(postgres_bin(bin))
                .args(["-h", "127.0.0.1", "-p", &server.port.to_string(), "-U", "portcullis"])
                .args(args)
                .env("PGSSLMODE", "require")
                .output()
                .unwrap();
            assert!(out.status.success(), "{bin} failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        server
    }

    fn start_with(tls: Option<&ServerTls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = super::free_port();
        let as_postgres = is_root();
        let command = |bin: &str| {
            let mut c = if as_postgres {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(postgres_bin(bin));
                c
            } else {
                Command::new(postgres_bin(bin))
            };
            c.current_dir(dir.path());
            c
        };
        if as_postgres {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(dir.path()).status().unwrap();
            Command::new("chmod").args(["755"]).arg(dir.path()).status().unwrap();
        }
        let init = command("initdb")
            .args(["-D", data.to_str().unwrap(), "-U", "portcullis", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .unwrap();
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        let settings = match tls {
            None => Vec::new(),
            Some(tls) => configure_tls(&data, tls, as_postgres),
        };
        let child = spawn_postgres(dir.path(), &data, port, as_postgres, &settings);
        let mut server = Self { child, port, _dir: dir, data, as_postgres, settings };
        server.create_database();
        server
    }

    /// Creates another database, owned by `portcullis`.
    pub fn create(&self, database: &str) {
        let out = Command::new(postgres_bin("createdb"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "portcullis", database])
            .env("PGSSLMODE", "prefer")
            .output()
            .unwrap();
        assert!(out.status.success(), "createdb {database}: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Runs the SQL script `sql` in `database`, stopping at the first error.
    pub fn script(&self, database: &str, sql: &str) {
        use std::io::Write;
        let mut child = Command::new(postgres_bin("psql"))
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "portcullis", "-d", database])
            .args(["-q", "-v", "ON_ERROR_STOP=1", "-f", "-"])
            .env("PGSSLMODE", "prefer")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "psql: {}", String::from_utf8_lossy(&out.stderr));
    }

    /// Stops the server at once, as a crash would (the data stays).
    pub fn stop(&mut self) {
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(postgres_bin("pg_ctl"));
            c
        } else {
            Command::new(postgres_bin("pg_ctl"))
        };
        let out = c.args(["-D", self.data.to_str().unwrap(), "stop", "-m", "immediate", "-w"]).output().unwrap();
        assert!(out.status.success(), "pg_ctl stop: {}", String::from_utf8_lossy(&out.stderr));
        let _ = self.child.wait();
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.child = spawn_postgres(self._dir.path(), &self.data, self.port, self.as_postgres, &self.settings);
    }

    fn create_database(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new(postgres_bin("createdb"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-U", "portcullis", "portcullis"])
                .env("PGSSLMODE", "prefer")
                .output()
                .unwrap();
            if out.status.success() {
                return;
            }
            assert!(Instant::now() < deadline, "createdb failed: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Writes the certificate, key and client CA into the data directory and a pg_hba.conf that
/// refuses connections without TLS; returns the settings that turn TLS on.
fn configure_tls(data: &Path, tls: &ServerTls, as_postgres: bool) -> Vec<String> {
    let files = [("server.crt", tls.cert_pem), ("server.key", tls.key_pem), ("client-ca.crt", tls.client_ca_pem)];
    for (name, pem) in files {
        let path = data.join(name);
        std::fs::write(&path, pem).unwrap();
        // PostgreSQL refuses a key file others can read.
        Command::new("chmod").arg("600").arg(&path).status().unwrap();
        if as_postgres {
            Command::new("chown").args(["postgres:postgres"]).arg(&path).status().unwrap();
        }
    }
    let hba = "local all all trust\n\
               hostssl all certuser 127.0.0.1/32 cert\n\
               hostssl all all 127.0.0.1/32 trust\n\
               host all all 127.0.0.1/32 reject\n";
    std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
    let file = |name: &str| data.join(name).display().to_string();
    vec![
        "ssl=on".into(),
        format!("ssl_cert_file={}", file("server.crt")),
        format!("ssl_key_file={}", file("server.key")),
        format!("ssl_ca_file={}", file("client-ca.crt")),
    ]
}

fn spawn_postgres(dir: &Path, data: &Path, port: u16, as_postgres: bool, settings: &[String]) -> Child {
    let log = dir.join("postgres.log");
    let log_file = std::fs::OpenOptions::new().create(true).append(true).open(&log).unwrap();
    if as_postgres {
        Command::new("chown").args(["postgres:postgres"]).arg(&log).status().unwrap();
    }
    let mut c = if as_postgres {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(postgres_bin("postgres"));
        c
    } else {
        Command::new(postgres_bin("postgres"))
    };
    let mut child = c
        .current_dir(dir)
        .args(["-D", data.to_str().unwrap(), "-p", &port.to_string(), "-h", "127.0.0.1", "-k", dir.to_str().unwrap()])
        .args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"])
        .args(settings.iter().flat_map(|setting| ["-c", setting.as_str()]))
        .stdout(Stdio::null())
        .stderr(log_file)
        .spawn()
        .unwrap();
    wait_for_port(port, "postgres", &mut child, &log);
    child
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        // pg_ctl reaches the server itself (the child may be the runuser wrapper); an
        // immediate stop is fine, the data directory is thrown away.
        let mut c = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(postgres_bin("pg_ctl"));
            c
        } else {
            Command::new(postgres_bin("pg_ctl"))
        };
        let _ = c.args(["-D", self.data.to_str().unwrap(), "stop", "-m", "immediate"]).output();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A MariaDB server accepting `root` without a password, with database `portcullis`.
pub struct MariaDbServer {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl MariaDbServer {
    pub fn start() -> Self {
        Self::start_with(None)
    }

    /// A server that refuses connections without TLS (`require_secure_transport`).
    pub fn start_tls(tls: &ServerTls) -> Self {
        Self::start_with(Some(tls))
    }

    fn start_with(tls: Option<&ServerTls>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let port = super::free_port();
        let user = if is_root() { "--user=root".to_string() } else { String::new() };
        let mut install = Command::new("mariadb-install-db");
        install.args(["--no-defaults", "--auth-root-authentication-method=normal", "--skip-test-db"]);
        install.arg(format!("--datadir={}", data.display()));
        // A temporary directory of its own: two servers set up at once would otherwise
        // clash over the same temporary table files in /tmp.
        install.arg(format!("--tmpdir={}", dir.path().display()));
        if !user.is_empty() {
            install.arg(&user);
        }
        let out = install.output().expect("mariadb-server must be installed (integration/install-deps installs it)");
        assert!(out.status.success(), "mariadb-install-db failed: {}", String::from_utf8_lossy(&out.stderr));
        let log = dir.path().join("mariadb.log");
        let mut server = Command::new("mariadbd");
        server
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg(format!("--tmpdir={}", dir.path().display()))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", dir.path().join("mysqld.sock").display()))
            .arg(format!("--pid-file={}", dir.path().join("mysqld.pid").display()))
            .arg(format!("--log-error={}", log.display()))
            .args(["--skip-log-bin", "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=32M"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if !user.is_empty() {
            server.arg(&user);
        }
        if let Some(tls) = tls {
            let files =
                [("server.crt", tls.cert_pem), ("server.key", tls.key_pem), ("client-ca.crt", tls.client_ca_pem)];
            for (name, pem) in files {
                std::fs::write(dir.path().join(name), pem).unwrap();
            }
            server
                .arg(format!("--ssl-cert={}", dir.path().join("server.crt").display()))
                .arg(format!("--ssl-key={}", dir.path().join("server.key").display()))
                .arg(format!("--ssl-ca={}", dir.path().join("client-ca.crt").display()))
                .arg("--require-secure-transport=ON");
        }
        let mut child = server.spawn().unwrap();
        wait_for_port(port, "mariadbd", &mut child, &log);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = Command::new("mariadb")
                .args(["--no-defaults", "-h", "127.0.0.1", "-P", &port.to_string(), "-u", "root"])
                .args(tls.map(|_| "--ssl"))
                .args(["-e", "CREATE DATABASE IF NOT EXISTS portcullis CHARACTER SET utf8mb4"])
                .output()
                .unwrap();
            if out.status.success() {
                break;
            }
            assert!(Instant::now() < deadline, "cannot create the database: {}", String::from_utf8_lossy(&out.stderr));
            std::thread::sleep(Duration::from_millis(200));
        }
        Self { child, port, _dir: dir }
    }

    /// Runs `sql` as root (over TLS when the server requires it).
    pub fn execute(&self, sql: &str) {
        let out = Command::new("mariadb")
            .args(["--no-defaults", "--ssl", "-h", "127.0.0.1", "-P", &self.port.to_string(), "-u", "root"])
            .args(["-e", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

impl Drop for MariaDbServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
