//! The local session cache in front of Redis (decision 0031), against the real binary and
//! a real redis-server: two replicas share Redis; a hot session is answered without a
//! Redis read; a logout, a logout-all, a key deleted behind Portcullis' back and a
//! FLUSHALL are each seen by the other replica on its next check; the time from a
//! deletion in Redis to the other replica refusing is measured; and the cache can be
//! turned off.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use sha2::{Digest, Sha256};

const RULES: &str =
    "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.com\n      policy: one_factor\n";

fn replica(dir: &std::path::Path, redis: u16, extra: &str) -> Server {
    let port = free_port();
    let sub = dir.join(port.to_string());
    std::fs::create_dir(&sub).unwrap();
    let users = format!(
        "users:\n  john:\n    displayname: John\n    password: '{}'\n    email: john@example.com\n",
        argon2_hash("correct horse")
    );
    std::fs::write(sub.join("users.yml"), users).unwrap();
    let session = format!(
        "session:\n  secret: 'a-shared-session-secret-that-is-long-enough'\n  redis:\n    host: 127.0.0.1\n    port: {redis}\n{extra}"
    );
    let yaml = config_yaml(port, &sub, RULES).replace("session:\n", &session);
    let server = Server::start(Some(&yaml), port, &[]);
    server.wait_for_log("cache invalidation channel listening");
    server
}

fn login(port: u16) -> String {
    let r = request(port, "POST", "/api/firstfactor", &[], r#"{"username":"john","password":"correct horse"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string()
}

/// A ForwardAuth check of `https://app.example.com/` with `cookie`.
fn check(port: u16, cookie: &str) -> u16 {
    let headers = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Uri", "/"),
        ("Cookie", cookie),
    ];
    get(port, "/api/authz/forward-auth", &headers).status
}

/// The Redis key the session of `cookie` is filed under.
fn redis_key(cookie: &str) -> String {
    let id = cookie.split_once('=').unwrap().1;
    format!("portcullis:session:{}", portcullis::hex::encode(&Sha256::digest(id.as_bytes())))
}

/// How many GET commands Redis has run.
fn redis_gets(redis: &RedisServer) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]);
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_get:calls="))
        .and_then(|rest| rest.split(',').next())
        .map(|n| n.parse().unwrap())
        .unwrap_or(0)
}

/// Waits until `server` trusts its cache again (after start, or after a flush).
fn until_cached(server: &Server, cookie: &str, redis: &RedisServer) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        assert_eq!(check(server.port, cookie), 200);
        let before = redis_gets(redis);
        assert_eq!(check(server.port, cookie), 200);
        if redis_gets(redis) == before {
            return;
        }
        assert!(Instant::now() < deadline, "the session is never answered from the cache:\n{}", server.stdout());
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends one RESP command on a raw connection and reads its (short) answer.
fn redis_command(port: u16, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut command = format!("*{}\r\n", args.len());
    for arg in args {
        command.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(command.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).to_string()
}

#[test]
fn hot_sessions_skip_redis_and_changes_anywhere_are_seen_at_once() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), redis.port, "");
    let b = replica(dir.path(), redis.port, "");

    // A hot session costs no Redis read on either replica.
    let cookie = login(a.port);
    until_cached(&a, &cookie, &redis);
    until_cached(&b, &cookie, &redis);
    let before = redis_gets(&redis);
    for _ in 0..100 {
        assert_eq!(check(a.port, &cookie), 200);
        assert_eq!(check(b.port, &cookie), 200);
    }
    let reads = redis_gets(&redis) - before;
    assert!(reads <= 2, "200 checks of a hot session read Redis {reads} times");

    // A logout on one replica: the next check on the other is refused, every time.
    for round in 0..10 {
        let cookie = login(a.port);
        until_cached(&a, &cookie, &redis);
        until_cached(&b, &cookie, &redis);
        let (ends, other) = if round % 2 == 0 { (&b, &a) } else { (&a, &b) };
        let r = request(ends.port, "POST", "/api/logout", &[("Cookie", cookie.as_str())], "");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(check(other.port, &cookie), 401, "round {round}: still allowed after the logout");
    }

    // Every session of the user ended on B: refused on A at once.
    let (phone, laptop) = (login(a.port), login(a.port));
    until_cached(&a, &phone, &redis);
    until_cached(&a, &laptop, &redis);
    let r = request(b.port, "POST", "/auth/api/user/logout-all", &[("Cookie", laptop.as_str())], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(check(a.port, &phone), 401);
    assert_eq!(check(a.port, &laptop), 401);

    // A session deleted in Redis behind Portcullis' back: the window between the DEL's
    // answer and a replica refusing, measured over 20 sessions.
    let mut windows = Vec::new();
    for _ in 0..20 {
        let cookie = login(a.port);
        until_cached(&a, &cookie, &redis);
        let deleted = {
            let answer = redis_command(redis.port, &["DEL", &redis_key(&cookie)]);
            assert_eq!(answer, ":1\r\n");
            Instant::now()
        };
        let mut allowed = 0;
        while check(a.port, &cookie) == 200 {
            allowed += 1;
            assert!(deleted.elapsed() < Duration::from_secs(1), "still allowed a second after the DEL");
        }
        windows.push((deleted.elapsed(), allowed));
    }
    let allowed_after: usize = windows.iter().map(|(_, n)| n).sum();
    let slowest = windows.iter().map(|(w, _)| *w).max().unwrap();
    println!("after a DEL in Redis: {allowed_after} checks allowed over 20 sessions; refused within {slowest:?}");
    assert_eq!(allowed_after, 0, "a check after the DEL answered from the cache: {windows:?}");

    // FLUSHALL is announced without keys: the canary catches it.
    let cookie = login(a.port);
    until_cached(&a, &cookie, &redis);
    assert_eq!(redis_command(redis.port, &["FLUSHALL"]), "+OK\r\n");
    let flushed = Instant::now();
    while check(a.port, &cookie) == 200 {
        assert!(flushed.elapsed() < Duration::from_secs(1), "still allowed a second after FLUSHALL");
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("after FLUSHALL: refused within {:?}", flushed.elapsed());
    assert!(a.stdout().contains("session cache saw its canary disappear"), "{}", a.stdout());

    // And the cache comes back after the flush.
    let cookie = login(b.port);
    until_cached(&a, &cookie, &redis);
}

#[test]
fn the_cache_can_be_turned_off() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), redis.port, "    client_side_cache: false\n");
    let cookie = login(a.port);
    assert_eq!(check(a.port, &cookie), 200);
    let before = redis_gets(&redis);
    for _ in 0..20 {
        assert_eq!(check(a.port, &cookie), 200);
    }
    assert_eq!(redis_gets(&redis) - before, 20, "every check reads Redis");
    assert!(!a.stdout().contains("session cache"), "{}", a.stdout());
}
