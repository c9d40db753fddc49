//! Fault injection against the real binary: Redis killed while authorization requests
//! flow, the database stopped, and SIGTERM under load. In every case the server fails
//! closed, does not panic, and recovers by itself.

mod common;

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
    let during: Vec<u16> =
        seen.iter().filter(|(sent, done, _)| *sent > killed && *done < restarting).map(|(_, _, s)| *s).collect();
    assert!(during.len() >= 4, "requests flowed during the outage: {during:?}");
    assert!(!during.contains(&200), "allowed while Redis was down: {during:?}");
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
