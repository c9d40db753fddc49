//! Fault injection against the real binary: Redis killed while authorization requests
//! flow, the database stopped or made read-only, and SIGTERM under load. In every case
//! the server fails closed, does not panic, and recovers by itself.

mod common;

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::databases::PostgresServer;
use common::redis::RedisServer;
use common::*;

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John\n    password: '{}'\n    email: john@example.com\n",
        argon2_hash("correct horse")
    )
}

const RULES: &str =
    "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.com\n      policy: one_factor\n";

fn login(port: u16) -> Response {
    request(port, "POST", "/api/firstfactor", &[], r#"{"username":"john","password":"correct horse"}"#)
}

fn cookie_of(r: &Response) -> String {
    r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string()
}

/// A ForwardAuth check of `https://app.example.com/` with `cookie`; status 0 when the
/// connection failed.
fn check(port: u16, cookie: &str) -> u16 {
    let raw = format!(
        "GET /api/authz/forward-auth HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\nAccept: text/html\r\n\
         X-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example.com\r\n\
         X-Forwarded-Uri: /\r\nCookie: {cookie}\r\n\r\n"
    );
    try_request(port, &raw).map(|r| r.status).unwrap_or(0)
}

fn start(dir: &std::path::Path, port: u16, replace: &[(&str, String)]) -> Server {
    std::fs::write(dir.join("users.yml"), users_yaml()).unwrap();
    let mut yaml = config_yaml(port, dir, RULES);
    for (from, to) in replace {
        assert!(yaml.contains(from), "{from}");
        yaml = yaml.replace(from, to);
    }
    Server::start(Some(&yaml), port, &[])
}

#[test]
fn redis_killed_while_requests_flow() {
    let mut redis = RedisServer::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let session = format!(
        "session:\n  secret: 'a-session-secret-for-redis'\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s\n",
        redis.port
    );
    let server = start(dir.path(), port, &[("session:\n", session)]);
    let cookie = cookie_of(&login(port));
    assert_eq!(check(port, &cookie), 200);

    // (sent, finished, status) of every check made by four clients.
    let seen: Arc<Mutex<Vec<(Instant, Instant, u16)>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (seen, stop, cookie) = (seen.clone(), stop.clone(), cookie.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let status = check(port, &cookie);
                    seen.lock().unwrap().push((sent, Instant::now(), status));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    redis.kill();
    let killed = Instant::now();
    std::thread::sleep(Duration::from_secs(3));
    let restarting = Instant::now();
    redis.restart();
    let restarted = Instant::now();

    // Recovery: a new login and its session work within 5 s of Redis returning.
    let recovered = loop {
        let r = login(port);
        if r.status == 200 && check(port, &cookie_of(&r)) == 200 {
            break Instant::now();
        }
        assert!(restarted.elapsed() < Duration::from_secs(5), "no recovery within 5 s: {} {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(100));
    };
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }

    let seen = seen.lock().unwrap();
    // The session cache stops when its connection reports the close: a check sent in the
    // moment between Redis dying and that report may still be answered from it.
    let last_allowed = seen.iter().filter(|(sent, _, s)| *sent > killed && *s == 200).map(|(sent, _, _)| *sent).max();
    let window = last_allowed.map(|at| at - killed).unwrap_or_default();
    assert!(window < Duration::from_millis(50), "allowed {window:?} after Redis died");
    let during: Vec<u16> = seen
        .iter()
        .filter(|(sent, done, _)| *sent > killed + Duration::from_millis(50) && *done < restarting)
        .map(|(_, _, s)| *s)
        .collect();
    assert!(during.len() >= 4, "requests flowed during the outage: {during:?}");
    assert!(!during.contains(&200), "allowed while Redis was down: {during:?}");
    println!("session cache used for {window:?} after Redis died");
    assert!(during.iter().all(|s| [302, 401, 503].contains(s) || *s >= 500), "{during:?}");
    assert!(seen.iter().any(|(sent, _, s)| *sent < killed && *s == 200), "allowed before the outage");
    assert!(server.child.id() > 0 && !server.stdout().contains("panicked"), "no panic");
    println!("outage: {} checks refused; recovered {:?} after Redis returned", during.len(), recovered - restarted);
}

#[test]
fn database_stopped_then_back() {
    let mut pg = PostgresServer::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let storage = format!(
        "storage:\n  encryption_key: 'a-test-encryption-key-that-is-long-enough'\n  postgres:\n    address: 'tcp://127.0.0.1:{}'\n    database: portcullis\n    username: portcullis\n    timeout: 1s\n",
        pg.port
    );
    let local = format!(
        "storage:\n  encryption_key: 'a-test-encryption-key-that-is-long-enough'\n  local:\n    path: '{}/db.sqlite3'\n",
        dir.path().display()
    );
    let mut server = start(dir.path(), port, &[(&local, storage)]);
    let r = login(port);
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = cookie_of(&r);

    pg.stop();
    let down = login(port);
    assert_eq!(down.status, 503, "{}", down.body);
    assert!(down.json()["message"].as_str().unwrap().contains("unavailable"), "a clear error: {}", down.body);
    // Sessions live elsewhere: authorization of existing sessions needs no database.
    assert_eq!(check(port, &cookie), 200);

    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = login(port);
        if r.status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {} {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(server.child.try_wait().unwrap().is_none(), "the server kept running");
    assert!(!server.stdout().contains("panicked"));
}

/// Makes the SQLite database in `dir` read-only until dropped (even when the test panics:
/// an immutable file would also stop the temporary directory from being removed).
///
/// The database, its write-ahead log and the directory (no new journal or log can be
/// created) are made immutable with `chattr +i`, which stops writes even by root and even
/// through descriptors the server opened before. `chmod` would not: the connections the
/// server holds already would go on writing. The shared-memory index (`-shm`) is left alone: SQLite maps
/// it into memory, and an immutable mapped file kills the process with SIGBUS on the next
/// write to the mapping, which is not a storage outage but a signal no program survives.
struct ReadOnlyDatabase {
    /// Files then the directory, so undoing runs in reverse: directory first.
    paths: Vec<std::path::PathBuf>,
}

impl ReadOnlyDatabase {
    fn set(dir: &std::path::Path) -> Self {
        let mut paths: Vec<_> =
            ["db.sqlite3", "db.sqlite3-wal"].iter().map(|f| dir.join(f)).filter(|p| p.exists()).collect();
        assert!(paths.iter().any(|p| p.ends_with("db.sqlite3")), "the server created its database");
        paths.push(dir.to_path_buf());
        // Each path joins the guard once immutable, so a failure half-way undoes those done.
        let mut guard = Self { paths: Vec::new() };
        for path in paths {
            let status = Command::new("chattr").arg("+i").arg(&path).status().expect("chattr");
            assert!(status.success(), "cannot make {} immutable", path.display());
            guard.paths.push(path);
        }
        guard
    }
}

impl Drop for ReadOnlyDatabase {
    fn drop(&mut self) {
        for path in self.paths.iter().rev() {
            let _ = Command::new("chattr").arg("-i").arg(path).status();
        }
    }
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0")).unwrap_or(false)
}

/// `PRAGMA integrity_check` on the SQLite file at `path`, by an independent SQLite (Python's).
fn sqlite_integrity(path: &std::path::Path) -> String {
    let out = Command::new("python3")
        .args([
            "-c",
            "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute('PRAGMA integrity_check').fetchone()[0])",
        ])
        .arg(path)
        .output()
        .expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `n` logins sent at the same time.
fn logins_at_once(port: u16, n: usize) -> Vec<Response> {
    let threads: Vec<_> = (0..n).map(|_| std::thread::spawn(move || login(port))).collect();
    threads.into_iter().map(|t| t.join().unwrap()).collect()
}

#[test]
fn sqlite_made_read_only_then_writable() {
    if !is_root() {
        // chattr needs CAP_LINUX_IMMUTABLE; CI runs the tests as root.
        eprintln!("skipped: making the database immutable needs root");
        return;
    }
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db.sqlite3");
    let mut server = start(dir.path(), port, &[]);
    let r = login(port);
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = cookie_of(&r);
    assert_eq!(check(port, &cookie), 200);

    let read_only = ReadOnlyDatabase::set(dir.path());
    for path in &read_only.paths {
        if path.is_file() {
            let append = std::fs::OpenOptions::new().append(true).open(path);
            assert!(append.is_err(), "{} is still writable: the test would prove nothing", path.display());
        }
    }
    // Logins one by one, then several at once so that the pool opens new connections
    // while the file is read-only (SQLite then silently opens them read-only).
    for down in (0..2).map(|_| vec![login(port)]).chain([logins_at_once(port, 32)]).flatten() {
        assert_eq!(down.status, 503, "{}", down.body);
        let message = down.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains("unavailable"), "a clear error: {}", down.body);
    }
    // Sessions live in memory: authorization of existing sessions needs no database.
    assert_eq!(check(port, &cookie), 200);

    drop(read_only);
    let writable = Instant::now();
    let deadline = writable + Duration::from_secs(10);
    loop {
        let r = login(port);
        if r.status == 200 {
            assert_eq!(check(port, &cookie_of(&r)), 200);
            break;
        }
        assert_ne!(r.status, 500, "{}", r.body);
        assert!(Instant::now() < deadline, "no recovery: {} {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    let recovered = writable.elapsed();
    // Every pooled connection is usable again: none stayed read-only.
    for _ in 0..3 {
        for r in logins_at_once(port, 8) {
            assert_eq!(r.status, 200, "{}", r.body);
        }
    }
    assert_eq!(check(port, &cookie), 200, "the session from before the outage still works");
    assert_eq!(sqlite_integrity(&db), "ok");
    assert!(server.child.try_wait().unwrap().is_none(), "the server kept running");
    let out = server.stdout();
    assert!(!out.contains("panicked"), "{out}");
    println!("read-only: logins refused with 503; recovered {recovered:?} after the database was writable again");
}

#[test]
fn sigterm_under_load_finishes_requests_and_exits_zero() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut server = start(dir.path(), port, &[]);
    let cookie = cookie_of(&login(port));
    let outcomes: Arc<Mutex<Vec<u16>>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..8)
        .map(|_| {
            let (outcomes, stop, cookie) = (outcomes.clone(), stop.clone(), cookie.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let status = check(port, &cookie);
                    outcomes.lock().unwrap().push(status);
                    if status == 0 {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    server.terminate();
    let status = server.wait_exit(Duration::from_secs(15));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    assert!(status.success(), "exit status {status}");
    let outcomes = outcomes.lock().unwrap();
    let served = outcomes.iter().filter(|s| **s == 200).count();
    assert!(served > 50, "load flowed before the signal: {served}");
    // Every request either got its whole answer or was never accepted: nothing else.
    assert!(
        outcomes.iter().all(|s| *s == 200 || *s == 0),
        "{:?}",
        outcomes.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err(), "no new connections after exit");
}
