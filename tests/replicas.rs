//! Replicas sharing Redis (sessions, cache invalidation) and a database, against the real
//! binary: Basic credentials cached on one replica stop working there the moment the
//! password changes on another, and a lost invalidation channel flushes the caches; then
//! three replicas behind a real NGINX round-robin upstream with PostgreSQL (log in on one,
//! allowed on the others; log out on one, refused on the others; a ban holds everywhere;
//! a replica killed under load costs no request; a rule edit applies everywhere within a
//! second without a failed request).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use common::databases::PostgresServer;
use common::redis::RedisServer;
use common::*;

const PASSWORD: &str = "john password";

fn users(password: &str) -> String {
    format!(
        "users:\n  john:\n    displayname: John\n    password: '{}'\n    email: john@example.com\n    groups: [dev]\n",
        argon2_hash(password)
    )
}

fn rules(app_policy: &str) -> String {
    format!(
        "access_control:\n  default_policy: deny\n  rules:\n    - {{domain: public.example.com, policy: {app_policy}}}\n    - {{domain: app.example.com, policy: one_factor}}\n"
    )
}

/// One replica's own file: its port, and everything shared (users file, notifier file,
/// Redis, the database). The rules are a second file all replicas read.
fn replica_yaml(port: u16, shared: &Path, redis: u16, storage: &str) -> String {
    format!(
        "
server:
  address: 'tcp://127.0.0.1:{port}/'
  endpoints:
    authz:
      forward-auth:
        implementation: ForwardAuth
        authn_strategies:
          - {{name: HeaderAuthorization, schemes: [Basic], scheme_basic_cache_lifespan: 5m}}
          - {{name: CookieSession}}
authentication_backend:
  file:
    path: '{dir}/users.yml'
session:
  secret: 'a-shared-session-secret-that-is-long-enough'
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com/'
  redis:
    host: 127.0.0.1
    port: {redis}
storage:
  encryption_key: 'a-test-encryption-key-that-is-long-enough'
{storage}
notifier:
  filesystem:
    filename: '{dir}/notifications.txt'
identity_validation:
  reset_password:
    jwt_secret: 'a-test-jwt-secret-that-is-long-enough'
regulation:
  max_retries: 3
  find_time: 2m
  ban_time: 5m
",
        dir = shared.display()
    )
}

/// Starts a replica on `port`.
fn replica(shared: &Path, name: &str, port: u16, redis: u16, storage: &str) -> Server {
    let main = shared.join(format!("replica-{name}.yml"));
    std::fs::write(&main, replica_yaml(port, shared, redis, storage)).unwrap();
    let files = format!("{},{}", main.display(), shared.join("rules.yml").display());
    Server::start(None, port, &[("PORTCULLIS_CONFIG", files.as_str())])
}

fn basic(password: &str) -> String {
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("john:{password}")))
}

/// A ForwardAuth check of `https://<host>/` with `extra` headers (a cookie, credentials).
fn check(port: u16, host: &str, extra: &[(&str, &str)]) -> std::io::Result<Response> {
    let mut raw = format!(
        "GET /api/authz/forward-auth HTTP/1.1\r\nHost: auth.example.com\r\nX-Forwarded-Proto: https\r\n\
         X-Forwarded-Host: {host}\r\nX-Forwarded-Uri: /\r\nX-Forwarded-Method: GET\r\nConnection: close\r\n"
    );
    for (k, v) in extra {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str("\r\n");
    try_request(port, &raw)
}

fn status(port: u16, host: &str, extra: &[(&str, &str)]) -> u16 {
    check(port, host, extra).unwrap().status
}

fn login(port: u16, password: &str) -> Response {
    let body = format!(r#"{{"username":"john","password":"{password}"}}"#);
    request(port, "POST", "/api/firstfactor", &[], &body)
}

fn cookie_of(r: &Response) -> String {
    r.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

#[test]
fn cached_credentials_are_dropped_on_every_replica_when_the_password_changes() {
    let redis = RedisServer::start();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("users.yml"), users(PASSWORD)).unwrap();
    std::fs::write(shared.path().join("rules.yml"), rules("bypass")).unwrap();
    let storage = format!("  local:\n    path: '{}/db.sqlite3'\n", shared.path().display());
    let a = replica(shared.path(), "a", free_port(), redis.port, &storage);
    let b = replica(shared.path(), "b", free_port(), redis.port, &storage);
    for server in [&a, &b] {
        server.wait_for_log("cache invalidation channel listening");
    }

    // B verifies the password once and caches it (the users file is not watched, so B's
    // copy of the users stays as it read it).
    let old = basic(PASSWORD);
    assert_eq!(status(b.port, "app.example.com", &[("Authorization", &old)]), 200);
    assert_eq!(status(b.port, "app.example.com", &[("Authorization", &old)]), 200);

    // The password changes on A.
    let mut client = client::Client::new(a.port);
    let r = client.json("POST", "/api/firstfactor", serde_json::json!({"username": "john", "password": PASSWORD}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = client.json(
        "POST",
        "/api/change-password",
        serde_json::json!({"old_password": PASSWORD, "new_password": "a new password"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let changed = Instant::now();
    let mut refused_after = None;
    let mut accepted = 0;
    while changed.elapsed() < Duration::from_secs(2) {
        // When the request was sent (a refusal costs a hash, slow in debug builds).
        let sent = changed.elapsed();
        match status(b.port, "app.example.com", &[("Authorization", &old)]) {
            401 => {
                refused_after = Some(sent);
                break;
            }
            _ => accepted += 1,
        }
    }
    let refused_after = refused_after.unwrap_or_else(|| panic!("B still accepts the old password:\n{}", b.stdout()));
    println!(
        "old password refused by the other replica for a request sent {refused_after:?} after the change answered \
         ({accepted} accepted before)"
    );
    assert!(refused_after < Duration::from_millis(100), "{refused_after:?}");
    let new = basic("a new password");
    assert_eq!(status(b.port, "app.example.com", &[("Authorization", &new)]), 200, "B re-read the users file");

    // Notices may be lost while the channel is down: every replica forgets everything.
    drop(redis);
    for server in [&a, &b] {
        let log = server.wait_for_log("caches flushed");
        assert!(log.contains("cache invalidation channel"), "{log}");
    }
}

// ------------------------------------------------------------------ NGINX, 3 replicas

struct Nginx {
    child: Child,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// NGINX with a round-robin upstream of `replicas` on `port`, each replica also alone on
/// its own port in `direct` ("through replica A" means through NGINX to A), retrying the
/// next replica when one fails (`proxy_next_upstream`).
fn nginx(port: u16, replicas: &[u16], direct: &[u16]) -> Nginx {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display();
    let servers: String =
        replicas.iter().map(|p| format!("    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n")).collect();
    let proxy = "
      proxy_http_version 1.1;
      proxy_set_header Connection \"\";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $remote_addr;
      proxy_connect_timeout 1s;
      proxy_next_upstream error timeout http_502 http_503;
      add_header X-Upstream $upstream_addr always;";
    let mut singles = String::new();
    for (listen, replica) in direct.iter().zip(replicas) {
        singles.push_str(&format!(
            "  server {{\n    listen 127.0.0.1:{listen};\n    location / {{\n      proxy_pass http://127.0.0.1:{replica};{proxy}\n    }}\n  }}\n"
        ));
    }
    let conf = format!(
        "user root;
worker_processes 1;
error_log {d}/error.log warn;
pid {d}/nginx.pid;
events {{ worker_connections 512; }}
http {{
  access_log off;
  client_body_temp_path {d}/body;
  proxy_temp_path {d}/proxy;
  fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi;
  scgi_temp_path {d}/scgi;
  upstream portcullis {{
{servers}    keepalive 16;
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://portcullis;{proxy}
    }}
  }}
{singles}}}
"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    let child = Command::new(nginx_binary())
        .args(["-p", &d.to_string(), "-c", path.to_str().unwrap(), "-g", "daemon off;"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("stderr.log")).unwrap())
        .spawn()
        .expect("nginx (integration/install-deps installs it)");
    let nginx = Nginx { child, _dir: dir };
    let deadline = Instant::now() + Duration::from_secs(10);
    for p in std::iter::once(&port).chain(direct) {
        while try_request(*p, "GET /api/health HTTP/1.1\r\nHost: auth.example.com\r\nConnection: close\r\n\r\n")
            .map_or(true, |r| r.status != 200)
        {
            assert!(Instant::now() < deadline, "nginx did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    nginx
}

fn nginx_binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("nginx"))
}

/// When an answer came (since the load started), and its status or why there was none.
type Answer = (Duration, Result<u16, String>);

/// Runs `clients` loops of `one` until `stop`; returns each answer's (time since `start`,
/// status) and every failure (no answer, or an answer outside `accepted`).
fn load(
    clients: usize,
    stop: &Arc<AtomicBool>,
    started: Instant,
    one: impl Fn() -> std::io::Result<Response> + Send + Sync + 'static,
) -> Vec<std::thread::JoinHandle<Vec<Answer>>> {
    let one = Arc::new(one);
    (0..clients)
        .map(|_| {
            let (stop, one) = (stop.clone(), one.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let answer = one().map(|r| r.status).map_err(|e| e.to_string());
                    seen.push((started.elapsed(), answer));
                }
                seen
            })
        })
        .collect()
}

fn collect(handles: Vec<std::thread::JoinHandle<Vec<Answer>>>) -> Vec<Answer> {
    let mut all: Vec<_> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
    all.sort_by_key(|(at, _)| *at);
    all
}

#[test]
fn three_replicas_behind_nginx_share_everything() {
    let redis = RedisServer::start();
    let pg = PostgresServer::start();
    let shared = tempfile::tempdir().unwrap();
    std::fs::write(shared.path().join("users.yml"), users(PASSWORD)).unwrap();
    std::fs::write(shared.path().join("rules.yml"), rules("bypass")).unwrap();
    let storage = format!(
        "  postgres:\n    address: 'tcp://127.0.0.1:{}'\n    database: portcullis\n    username: portcullis\n",
        pg.port
    );
    let ports = [free_port(), free_port(), free_port()];
    // Started together against a fresh database: the migration lock lets one migrate.
    let starters: Vec<_> = ports
        .iter()
        .zip(["a", "b", "c"])
        .map(|(port, name)| {
            let (shared, storage, port, redis) = (shared.path().to_path_buf(), storage.clone(), *port, redis.port);
            std::thread::spawn(move || replica(&shared, name, port, redis, &storage))
        })
        .collect();
    let mut replicas: Vec<Option<Server>> = starters.into_iter().map(|s| Some(s.join().unwrap())).collect();
    let front = free_port();
    let direct = [free_port(), free_port(), free_port()];
    let _nginx = nginx(front, &ports, &direct);
    let [via_a, via_b, via_c] = direct;

    // Round robin reaches every replica.
    let mut upstreams = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let r = check(front, "public.example.com", &[]).unwrap();
        assert_eq!(r.status, 200);
        upstreams.insert(r.header("x-upstream").unwrap().to_string());
    }
    assert_eq!(upstreams.len(), 3, "{upstreams:?}");

    // Log in through A; allowed through B and C.
    let r = login(via_a, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = cookie_of(&r);
    for port in [via_a, via_b, via_c] {
        assert_eq!(status(port, "app.example.com", &[("Cookie", &cookie)]), 200);
    }
    // Log out on B; refused on A and C at the next request.
    let r = request(via_b, "POST", "/api/logout", &[("Cookie", &cookie)], "");
    assert_eq!(r.status, 200, "{}", r.body);
    for port in [via_a, via_c] {
        assert_eq!(status(port, "app.example.com", &[("Cookie", &cookie)]), 401);
    }

    // Rate limits count on every replica together: ten reset requests from one address
    // spread over A, B and C use up its window everywhere.
    let reset = |port: u16| {
        let body = r#"{"username":"john"}"#;
        request(port, "POST", "/api/reset-password/identity/start", &[], body).status
    };
    for i in 0..10 {
        let status = reset([via_a, via_b, via_c][i % 3]);
        assert_eq!(status, 200, "request {i} within the window");
    }
    for port in [via_a, via_b, via_c] {
        assert_eq!(reset(port), 429, "the window is used up on every replica");
    }

    let r = login(via_a, PASSWORD);
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = cookie_of(&r);

    // Kill B under load through the round robin: NGINX retries the next replica.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let c2 = cookie.clone();
    let handles = load(4, &stop, started, move || check(front, "app.example.com", &[("Cookie", &c2)]));
    std::thread::sleep(Duration::from_millis(700));
    let killed_at = started.elapsed();
    replicas[1].take(); // SIGKILL, then reaped
    std::thread::sleep(Duration::from_millis(1300));
    stop.store(true, Ordering::Relaxed);
    let answers = collect(handles);
    let failed: Vec<_> = answers.iter().filter(|(_, a)| a.as_ref().map_or(true, |s| *s != 200)).collect();
    let after = answers.iter().filter(|(at, _)| *at > killed_at).count();
    println!("replica killed under load: {} checks ({after} after the kill), {} failed", answers.len(), failed.len());
    assert!(after > 50, "too little load after the kill: {after}");
    assert!(failed.is_empty(), "failed: {failed:?}");

    // Edit the rules under load: every remaining replica applies the new decision within a
    // second, and no request fails.
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let handles = load(4, &stop, started, move || check(front, "public.example.com", &[]));
    std::thread::sleep(Duration::from_millis(500));
    let written = started.elapsed();
    let path = shared.path().join("rules.yml");
    let tmp = shared.path().join(".rules.yml.tmp");
    std::fs::write(&tmp, rules("deny")).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::Relaxed);
    let answers = collect(handles);
    let failed: Vec<_> = answers.iter().filter(|(_, a)| !matches!(a, Ok(200 | 403))).collect();
    let last_old = answers.iter().filter(|(_, a)| matches!(a, Ok(200))).map(|(at, _)| *at).max().unwrap();
    let first_new = answers.iter().find(|(_, a)| matches!(a, Ok(403))).map(|(at, _)| *at);
    let first_new = first_new.unwrap_or_else(|| panic!("the new rule never applied"));
    let everywhere = last_old.saturating_sub(written);
    println!(
        "rule edit under load: {} checks, {} failed; first new decision {:?} and the last old one {:?} after the write",
        answers.len(),
        failed.len(),
        first_new.saturating_sub(written),
        everywhere
    );
    assert!(failed.is_empty(), "failed: {failed:?}");
    assert!(everywhere < Duration::from_secs(1), "the old decision was still given {everywhere:?} after the write");

    // A ban earned on A holds on C: the right password is refused there.
    for _ in 0..3 {
        assert_eq!(login(via_a, "wrong").status, 401);
    }
    let r = login(via_c, PASSWORD);
    assert_eq!(r.status, 429, "banned on C too: {}", r.body);
    drop(replicas);
}
