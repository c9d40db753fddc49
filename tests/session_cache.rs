//! The local session cache in front of Redis (decision 0031), against the real binary and
//! a real redis-server: two replicas share Redis; a hot session is answered without a
//! Redis read; a logout, a logout-all, a key deleted behind Portcullis' back and a
//! FLUSHALL are each seen by the other replica within the window Redis' push takes (the
//! replica that made the change sees it at once), which is measured; the cache can be
//! turned off, and a Redis that refuses tracking is read every time.

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

/// Checks `cookie` on `port` until it is refused; how long that took after `since`, and how
/// many checks were still allowed. A replica learns of a change made elsewhere when Redis'
/// push reaches it: the window is that delivery (decision 0031), which must stay within
/// `WINDOW` even on a busy machine.
fn refused_after(port: u16, cookie: &str, since: Instant) -> (Duration, usize) {
    let mut allowed = 0;
    loop {
        let status = check(port, cookie);
        if status != 200 {
            assert_eq!(status, 401, "refused as a missing session");
            return (since.elapsed(), allowed);
        }
        allowed += 1;
        assert!(since.elapsed() < WINDOW, "still allowed {:?} after the change", since.elapsed());
    }
}

/// The longest a replica may answer from its copy after a change elsewhere.
const WINDOW: Duration = Duration::from_millis(100);

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

    // A logout on one replica: refused on the other within the window, and at once on
    // the replica that ended it.
    let mut logouts = Vec::new();
    for round in 0..10 {
        let cookie = login(a.port);
        until_cached(&a, &cookie, &redis);
        until_cached(&b, &cookie, &redis);
        let (ends, other) = if round % 2 == 0 { (&b, &a) } else { (&a, &b) };
        let r = request(ends.port, "POST", "/api/logout", &[("Cookie", cookie.as_str())], "");
        assert_eq!(r.status, 200, "{}", r.body);
        let answered = Instant::now();
        assert_eq!(check(ends.port, &cookie), 401, "round {round}: the replica that logged out still allows");
        logouts.push(refused_after(other.port, &cookie, answered));
    }
    println!("logout elsewhere, refused after (time, checks still allowed): {logouts:?}");

    // Every session of the user ended on B: refused on A.
    let (phone, laptop) = (login(a.port), login(a.port));
    until_cached(&a, &phone, &redis);
    until_cached(&a, &laptop, &redis);
    let r = request(b.port, "POST", "/auth/api/user/logout-all", &[("Cookie", laptop.as_str())], "");
    assert_eq!(r.status, 200, "{}", r.body);
    let answered = Instant::now();
    refused_after(a.port, &phone, answered);
    refused_after(a.port, &laptop, answered);

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
        windows.push(refused_after(a.port, &cookie, deleted));
    }
    let allowed_after: usize = windows.iter().map(|(_, n)| n).sum();
    let slowest = windows.iter().map(|(w, _)| *w).max().unwrap();
    println!("after a DEL in Redis: {allowed_after} checks allowed over 20 sessions; refused within {slowest:?}");

    // FLUSHALL is announced without keys: the canary catches it.
    let cookie = login(a.port);
    until_cached(&a, &cookie, &redis);
    assert_eq!(redis_command(redis.port, &["FLUSHALL"]), "+OK\r\n");
    let flushed = Instant::now();
    // Up to one heartbeat (100 ms) plus its answer: the canary is what notices.
    let mut allowed = 0;
    while check(a.port, &cookie) == 200 {
        allowed += 1;
        assert!(flushed.elapsed() < Duration::from_millis(500), "still allowed {:?} after FLUSHALL", flushed.elapsed());
        std::thread::sleep(Duration::from_millis(2));
    }
    println!("after FLUSHALL: refused within {:?} ({allowed} checks allowed)", flushed.elapsed());
    // (The log is written by its own thread: wait for the line rather than read at once.)
    let log = a.wait_for_log("session cache saw its canary disappear");
    assert!(log.contains("session cache saw its canary disappear"), "{log}");

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

#[test]
fn a_redis_refusing_tracking_is_read_every_time_and_said_once() {
    // An ACL user that may do everything but turn client tracking on.
    let redis = RedisServer::start();
    let acl = redis.cli(&[
        "ACL",
        "SETUSER",
        "portcullis",
        "on",
        ">a-redis-password",
        "~*",
        "&*",
        "+@all",
        "-client|tracking",
    ]);
    assert_eq!(acl.trim(), "OK");
    let dir = tempfile::tempdir().unwrap();
    let a = replica(dir.path(), redis.port, "    username: portcullis\n    password: a-redis-password\n");
    let cookie = login(a.port);
    std::thread::sleep(Duration::from_millis(500));
    let before = redis_gets(&redis);
    for _ in 0..10 {
        assert_eq!(check(a.port, &cookie), 200);
    }
    assert_eq!(redis_gets(&redis) - before, 10, "every check reads Redis");
    let log = a.wait_for_log("cannot turn on Redis client tracking");
    assert_eq!(
        log.matches("cannot turn on Redis client tracking").count(),
        1,
        "said once, not every heartbeat:\n{log}"
    );
}
