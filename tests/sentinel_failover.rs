//! A real Redis Sentinel failover under load: a master, two replicas and three sentinels
//! on loopback, the real binary reaching them through `session.redis.high_availability`.
//! The master is killed (SIGKILL) while authorization requests flow with a valid session,
//! with no session and with a logged-out session. No request without a valid session is
//! ever allowed, and the valid session (replicated before the kill) is allowed again, as
//! the same user and without logging in again, within 10 s of the kill.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;

const NAME: &str = "portcullis-master";

const RULES: &str =
    "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.com\n      policy: one_factor\n";

fn login(port: u16) -> String {
    let r = request(port, "POST", "/api/firstfactor", &[], r#"{"username":"john","password":"correct horse"}"#);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("set-cookie").expect("a session cookie").split(';').next().unwrap().to_string()
}

/// A ForwardAuth check of `https://app.example.com/` with `cookie`: the status and the
/// Remote-User header; status 0 when the connection failed. Panics if the answer sets a
/// cookie: a browser would lose its session to a refusal during the failover.
fn check(port: u16, cookie: Option<&str>) -> (u16, Option<String>) {
    let cookie = cookie.map(|c| format!("Cookie: {c}\r\n")).unwrap_or_default();
    let raw = format!(
        "GET /api/authz/forward-auth HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\nAccept: text/html\r\n\
         X-Forwarded-Method: GET\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Host: app.example.com\r\n\
         X-Forwarded-Uri: /\r\n{cookie}\r\n"
    );
    match try_request(port, &raw) {
        Ok(r) => {
            assert!(r.header("set-cookie").is_none(), "an authorization answer set a cookie: {r:?}");
            (r.status, r.header("remote-user").map(str::to_string))
        }
        Err(_) => (0, None),
    }
}

/// The fields of `SENTINEL MASTER <name>` as asked of `sentinel`.
fn sentinel_view(sentinel: &RedisServer, field: &str) -> Option<String> {
    let out = sentinel.cli(&["SENTINEL", "MASTER", NAME]);
    let lines: Vec<&str> = out.lines().collect();
    lines.chunks(2).find(|kv| kv[0] == field).and_then(|kv| kv.get(1)).map(|v| v.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Valid,
    NoCookie,
    LoggedOut,
}

#[test]
fn master_killed_under_load_fails_closed_and_keeps_sessions() {
    let test_started = Instant::now();
    let mut master = RedisServer::start();
    let replicas = [RedisServer::replica_of(&master), RedisServer::replica_of(&master)];
    // Quorum 2 of 3; the master is down after 1 s without an answer; a failed election is
    // retried after 2 × failover-timeout.
    let sentinels: Vec<RedisServer> =
        (0..3).map(|_| RedisServer::fast_sentinel(&master, NAME, 2, 1000, 2000)).collect();
    // Each sentinel must know the replicas and the other sentinels (hello messages every
    // 2 s) before the kill, or it could not take part in the election.
    let deadline = Instant::now() + Duration::from_secs(10);
    for sentinel in &sentinels {
        while sentinel_view(sentinel, "num-slaves").as_deref() != Some("2")
            || sentinel_view(sentinel, "num-other-sentinels").as_deref() != Some("2")
        {
            assert!(Instant::now() < deadline, "the sentinels did not discover each other and the replicas");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.yml"),
        format!(
            "users:\n  john:\n    displayname: John\n    password: '{}'\n    email: john@example.com\n",
            argon2_hash("correct horse")
        ),
    )
    .unwrap();
    // `host` is the first sentinel, `nodes` the two others (as in Authelia).
    let session = format!(
        "session:\n  secret: 'a-session-secret-for-redis'\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s\n    \
         high_availability:\n      sentinel_name: {NAME}\n      nodes:\n        - host: 127.0.0.1\n          port: {}\n        \
         - host: 127.0.0.1\n          port: {}\n",
        sentinels[0].port, sentinels[1].port, sentinels[2].port
    );
    let yaml = config_yaml(port, dir.path(), RULES);
    assert!(yaml.contains("session:\n"));
    let server = Server::start(Some(&yaml.replacen("session:\n", &session, 1)), port, &[]);

    let valid = login(port);
    let logged_out = login(port);
    let r = request(port, "POST", "/api/logout", &[("Cookie", &logged_out)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(check(port, Some(&valid)), (200, Some("john".into())));
    assert_eq!(check(port, None).0, 302);
    assert_eq!(check(port, Some(&logged_out)).0, 302, "the logout ended the session");
    assert!(master.cli(&["--scan"]).contains("portcullis:session:"), "the sentinels led the server to the master");

    // The session writes (and the logout's deletion) reach both replicas before the kill:
    // a marker written after them on the master, then WAIT for both replicas to
    // acknowledge it. Replication is ordered, so everything written before it is there too.
    let acked = master.cli_script("SET portcullis-test:replication-marker 1\nWAIT 2 5000\n");
    assert_eq!(acked.lines().last(), Some("2"), "both replicas acknowledged: {acked}");

    // (sent, finished, kind, status, Remote-User) of every check made during the run.
    type Seen = Vec<(Instant, Instant, Kind, u16, Option<String>)>;
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> =
        [(Kind::Valid, Some(valid.clone())), (Kind::NoCookie, None), (Kind::LoggedOut, Some(logged_out))]
            .into_iter()
            .map(|(kind, cookie)| {
                let (seen, stop) = (seen.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let sent = Instant::now();
                        let (status, user) = check(port, cookie.as_deref());
                        seen.lock().unwrap().push((sent, Instant::now(), kind, status, user));
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
            })
            .collect();

    std::thread::sleep(Duration::from_millis(500));
    master.kill();
    let killed = Instant::now();

    // Until the valid session is allowed again (or 20 s), then one more second of load.
    let recovered = loop {
        let first = seen
            .lock()
            .unwrap()
            .iter()
            .find(|(sent, _, kind, status, _)| *sent > killed && *kind == Kind::Valid && *status == 200)
            .map(|(_, done, ..)| *done);
        if let Some(done) = first {
            break Some(done);
        }
        if killed.elapsed() > Duration::from_secs(20) {
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if recovered.is_some() {
        std::thread::sleep(Duration::from_secs(1));
    }
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().unwrap();
    }
    let seen = seen.lock().unwrap();

    let wrongly_allowed: Vec<_> =
        seen.iter().filter(|(_, _, kind, status, _)| *kind != Kind::Valid && *status == 200).collect();
    let count = |kind: Kind, after: bool| {
        seen.iter().filter(|(sent, _, k, ..)| *k == kind && (*sent > killed) == after).count()
    };
    let refused_valid: Vec<u16> = seen
        .iter()
        .filter(|(sent, _, kind, status, _)| *sent > killed && *kind == Kind::Valid && *status != 200)
        .map(|(_, _, _, status, _)| *status)
        .collect();
    let slowest = seen.iter().filter(|(sent, ..)| *sent > killed).map(|(sent, done, ..)| *done - *sent).max();
    let new_master = sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", NAME]);
    println!(
        "sentinel failover: checks before/after the kill: valid {}/{}, no cookie {}/{}, logged out {}/{}; \
         valid refused {} times during the failover ({:?}); wrongly allowed {}; recovery {:?} after the kill; \
         slowest check after the kill {:?}; new master {:?}; whole test {:?}",
        count(Kind::Valid, false),
        count(Kind::Valid, true),
        count(Kind::NoCookie, false),
        count(Kind::NoCookie, true),
        count(Kind::LoggedOut, false),
        count(Kind::LoggedOut, true),
        refused_valid.len(),
        refused_valid.iter().collect::<std::collections::BTreeSet<_>>(),
        wrongly_allowed.len(),
        recovered.map(|r| r - killed),
        slowest,
        new_master.lines().collect::<Vec<_>>(),
        test_started.elapsed(),
    );

    assert!(wrongly_allowed.is_empty(), "requests without a valid session were allowed: {wrongly_allowed:?}");
    assert!(
        seen.iter()
            .filter(|(.., kind, _, _)| *kind != Kind::Valid)
            .all(|(_, _, _, s, _)| [302, 401].contains(s) || *s >= 500),
        "refusals are redirects, 401 or server errors"
    );
    assert!(
        seen.iter().filter(|(_, _, _, status, _)| *status == 200).all(|(.., user)| user.as_deref() == Some("john")),
        "every allowed request is John's"
    );
    assert!(
        count(Kind::NoCookie, true) >= 10 && count(Kind::LoggedOut, true) >= 10,
        "requests flowed during the failover"
    );
    assert!(!refused_valid.is_empty(), "the kill interrupted the valid session (the test saw the outage)");
    let recovered = recovered.unwrap_or_else(|| {
        panic!("the valid session was not allowed again within 20 s of the kill; stdout:\n{}", server.stdout())
    });
    assert!(recovered - killed <= Duration::from_secs(10), "recovery took {:?}", recovered - killed);
    assert!(
        replicas.iter().any(|r| new_master.lines().nth(1) == Some(r.port.to_string().as_str())),
        "a replica was promoted: {new_master}"
    );
    // Still John's session, read from the promoted replica: no login since the kill.
    assert_eq!(check(port, Some(&valid)), (200, Some("john".into())));
    assert_eq!(check(port, None).0, 302);
    assert!(!server.stdout().contains("panicked"), "no panic");
}
