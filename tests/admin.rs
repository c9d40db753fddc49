//! The admin API against the real binary, on the users file, the database users backend
//! on SQLite and on PostgreSQL: who may call it, every endpoint, the effects seen at the
//! forward-auth endpoint (revoked and disabled users), the users file rewritten with its
//! other keys kept, the audit trail, and paging through 10,000 users.

mod common;

use std::time::Instant;

use common::client::Client;
use common::databases::PostgresServer;
use common::*;
use portcullis::config::schema::{LocalStorage, SqlStorage, Storage as StorageConfig};
use portcullis::config::types::Secret;
use portcullis::second_factor::totp::TotpService;
use portcullis::storage::Storage;
use serde_json::{Value, json};

const KEY: &str = "a-test-encryption-key-that-is-long-enough";
const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Backend {
    File,
    Sqlite,
    Postgres,
}

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    storage: StorageConfig,
    _postgres: Option<PostgresServer>,
}

fn users_yaml() -> String {
    format!(
        "# edited by hand\nusers:\n  root:\n    displayname: Root\n    password: '{root}'\n    email: root@example.com\n    groups: [admins]\n  john:\n    displayname: John Doe\n    password: '{john}'\n    email: john@example.com\n    groups: [dev]\n    given_name: John\n",
        root = argon2_hash("root password"),
        john = argon2_hash("john password"),
    )
}

fn now() -> i64 {
    portcullis::clock::now()
}

impl Setup {
    fn start(backend: Backend, extra: &str) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
        let postgres = (backend == Backend::Postgres).then(PostgresServer::start);
        let mut yaml = config_yaml(
            port,
            dir.path(),
            &format!(
                "access_control:\n  default_policy: one_factor\nregulation:\n  max_retries: 3\n  find_time: 2m\n  ban_time: 5m\npassword_policy:\n  standard:\n    enabled: true\n    min_length: 8\n{extra}"
            ),
        );
        let storage = match &postgres {
            Some(pg) => {
                yaml = yaml.replace(
                    &format!("  local:\n    path: '{}/db.sqlite3'\n", dir.path().display()),
                    &format!(
                        "  postgres:\n    address: 'tcp://127.0.0.1:{}'\n    database: portcullis\n    username: portcullis\n",
                        pg.port
                    ),
                );
                StorageConfig {
                    encryption_key: Secret::new(KEY),
                    postgres: Some(SqlStorage {
                        address: Some(format!("tcp://127.0.0.1:{}", pg.port)),
                        database: Some("portcullis".into()),
                        username: Some("portcullis".into()),
                        ..Default::default()
                    }),
                    ..Default::default()
                }
            }
            None => StorageConfig {
                encryption_key: Secret::new(KEY),
                local: Some(LocalStorage { path: Some(dir.path().join("db.sqlite3").display().to_string()) }),
                ..Default::default()
            },
        };
        if backend != Backend::File {
            let file_section = format!("  file:\n    path: '{}/users.yml'\n", dir.path().display());
            assert!(yaml.contains(&file_section), "{yaml}");
            yaml = yaml.replace(&file_section, "  database: {}\n");
            // The database users come from the users file, through the import command.
            let config = dir.path().join("import.yml");
            std::fs::write(&config, &yaml).unwrap();
            let users = dir.path().join("users.yml").display().to_string();
            let out = run(&["users", "import", &users, "--config", &config.display().to_string()], dir.path(), &[]);
            assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert!(stdout.contains("Imported 2 user(s)"), "{stdout}");
        }
        // Root has a TOTP device from the start (stored directly), for two-factor sessions.
        runtime().block_on(async {
            let storage = Storage::open(&storage, None).await.unwrap();
            storage
                .totp_save(portcullis::storage::TotpRecord { username: "root".into(), ..totp_record(SECRET) })
                .await
                .unwrap();
        });
        let server = Server::start(Some(&yaml), port, &[]);
        Setup { server, dir, storage, _postgres: postgres }
    }

    fn client(&self) -> Client {
        Client::new(self.server.port)
    }

    fn login(&self, user: &str, password: &str) -> Client {
        let mut c = self.client();
        let r = c.json("POST", "/api/firstfactor", json!({"username": user, "password": password}));
        assert_eq!(r.status, 200, "{user}: {}", r.body);
        c
    }

    /// Root with two factors.
    fn admin(&self) -> Client {
        let mut c = self.login("root", "root password");
        let code = TotpService::code_at(&totp_record(SECRET), now()).unwrap();
        let r = c.json("POST", "/api/secondfactor/totp", json!({"token": code}));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(c.level(), 2);
        c
    }

    /// The forward-auth answer for a browser GET of app.example.com with `c`'s session.
    fn forward_auth(&self, c: &Client) -> u16 {
        let mut headers = vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/"),
            ("Accept", "text/html"),
        ];
        let cookie = c.cookie.clone().unwrap_or_default();
        headers.push(("Cookie", cookie.as_str()));
        get(self.server.port, "/api/authz/forward-auth", &headers).status
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn data(r: &Response) -> Value {
    r.json()["data"].clone()
}

/// The whole admin API on one backend.
fn admin_api(backend: Backend) {
    let s = Setup::start(backend, "");

    // Who may call it.
    let mut anonymous = s.client();
    assert_eq!(anonymous.call("GET", "/api/admin/users", "").status, 401);
    let mut john = s.login("john", "john password");
    assert_eq!(john.call("GET", "/api/admin/users", "").status, 403, "not an admin");
    let mut one_factor_root = s.login("root", "root password");
    assert_eq!(one_factor_root.call("GET", "/api/admin/users", "").status, 403, "two factors are required");
    let mut a = s.admin();

    // Listing and reading.
    let list = a.call("GET", "/api/admin/users", "");
    assert_eq!(list.status, 200, "{}", list.body);
    let names: Vec<String> =
        data(&list)["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect();
    assert_eq!(names, ["john", "root"], "{backend:?}");
    assert!(!list.body.contains("argon2"), "no password hash is ever shown");
    let admins = a.call("GET", "/api/admin/users?group=admins", "");
    assert_eq!(data(&admins)["users"].as_array().unwrap().len(), 1);
    assert_eq!(data(&a.call("GET", "/api/admin/users?search=doe", ""))["users"][0]["username"], "john");
    let root = a.call("GET", "/api/admin/users/root", "");
    assert_eq!(data(&root)["has_totp"], true, "{}", root.body);
    assert_eq!(a.call("GET", "/api/admin/users/nobody", "").status, 404);
    assert_eq!(a.call("GET", "/api/admin/users?limit=x", "").status, 400);

    // Creating: bad input named, duplicates refused, the password policy applied.
    let kim = json!({"username": "kim", "display_name": "Kim", "email": "kim@example.com", "groups": ["dev"], "password": "kim password 1"});
    let bad = a.json(
        "POST",
        "/api/admin/users",
        json!({"username": "kim", "email": "not-an-address", "password": "x1y2z3w4"}),
    );
    assert_eq!(bad.status, 400);
    assert!(bad.json()["message"].as_str().unwrap().starts_with("email"), "{}", bad.body);
    let bad = a.json(
        "POST",
        "/api/admin/users",
        json!({"username": "k m", "email": "k@example.com", "password": "x1y2z3w4"}),
    );
    assert!(bad.json()["message"].as_str().unwrap().starts_with("username"), "{}", bad.body);
    let unknown_field = a.json(
        "POST",
        "/api/admin/users",
        json!({"username": "x", "email": "x@example.com", "password": "p", "admin": true}),
    );
    assert_eq!(unknown_field.status, 400, "{}", unknown_field.body);
    let created = a.json("POST", "/api/admin/users", kim.clone());
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(data(&created)["email"], "kim@example.com");
    assert_eq!(a.json("POST", "/api/admin/users", kim).status, 409);
    let mut kim = s.login("kim", "kim password 1");
    assert_eq!(s.forward_auth(&kim), 200);

    // Changing.
    let patched = a.json(
        "PATCH",
        "/api/admin/users/kim",
        json!({"display_name": "Kim Lee", "emails": ["kim@example.com", "k@example.org"]}),
    );
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(data(&patched)["emails"], json!(["kim@example.com", "k@example.org"]));
    assert_eq!(a.json("PATCH", "/api/admin/users/nobody", json!({"disabled": true})).status, 404);
    assert_eq!(a.json("PATCH", "/api/admin/users/root", json!({"disabled": true})).status, 409, "not oneself");
    assert_eq!(a.json("PATCH", "/api/admin/users/root", json!({"groups": ["dev"]})).status, 409, "not out of admins");
    assert_eq!(a.call("DELETE", "/api/admin/users/root", "").status, 409, "not oneself");

    // Revoking sessions: refused by the proxy at the very next request.
    let revoked = a.call("DELETE", "/api/admin/users/kim/sessions", "");
    assert_eq!(revoked.status, 200, "{}", revoked.body);
    assert_eq!(data(&revoked)["sessions"], 1);
    assert_eq!(s.forward_auth(&kim), 302);

    // A password set by an admin; the old one stops working.
    let weak = a.json("POST", "/api/admin/users/kim/password", json!({"password": "x"}));
    assert_eq!(weak.status, 400, "the policy applies: {}", weak.body);
    assert_eq!(a.json("POST", "/api/admin/users/kim/password", json!({"password": "kim password 2"})).status, 200);
    assert_eq!(
        s.client().json("POST", "/api/firstfactor", json!({"username": "kim", "password": "kim password 1"})).status,
        401
    );
    kim = s.login("kim", "kim password 2");
    assert_eq!(a.call("POST", "/api/admin/users/kim/reset-email", "").status, 200);
    let mail = std::fs::read_to_string(s.dir.path().join("notifications.txt")).unwrap();
    assert!(mail.contains("reset-password/step2?token="), "{mail}");

    // Disabling: the session ends and the password no longer works.
    assert_eq!(a.json("PATCH", "/api/admin/users/kim", json!({"disabled": true})).status, 200);
    assert_eq!(s.forward_auth(&kim), 302);
    assert_eq!(
        s.client().json("POST", "/api/firstfactor", json!({"username": "kim", "password": "kim password 2"})).status,
        401
    );
    let disabled = a.call("GET", "/api/admin/users?disabled=true", "");
    assert_eq!(data(&disabled)["users"][0]["username"], "kim");

    // Passkey-only login: no password is accepted.
    assert_eq!(a.json("PUT", "/api/admin/users/john/passwordless", json!({"passwordless": true})).status, 200);
    assert_eq!(
        s.client().json("POST", "/api/firstfactor", json!({"username": "john", "password": "john password"})).status,
        401
    );
    assert_eq!(a.json("PUT", "/api/admin/users/john/passwordless", json!({"passwordless": false})).status, 200);

    // Bans: listed, lifted.
    // The refusal while passkey-only counted as one failure: two more make three.
    for _ in 0..2 {
        assert_eq!(
            s.client().json("POST", "/api/firstfactor", json!({"username": "john", "password": "wrong"})).status,
            401
        );
    }
    assert_eq!(
        s.client().json("POST", "/api/firstfactor", json!({"username": "john", "password": "john password"})).status,
        429
    );
    let bans = a.call("GET", "/api/admin/bans", "");
    assert!(
        data(&bans).as_array().unwrap().iter().any(|b| b["kind"] == "user" && b["value"] == "john"),
        "{}",
        bans.body
    );
    assert_eq!(a.call("DELETE", "/api/admin/bans/john", "").status, 200);
    assert_eq!(a.call("DELETE", "/api/admin/bans/ip/not-an-ip", "").status, 400);
    assert_eq!(a.call("DELETE", "/api/admin/bans/ip/192.0.2.1", "").status, 200);
    john = s.login("john", "john password");

    // Second factors.
    assert_eq!(a.call("DELETE", "/api/admin/users/john/totp", "").status, 404, "john has none");
    assert_eq!(a.call("DELETE", "/api/admin/users/john/webauthn/1", "").status, 404);
    assert_eq!(a.call("DELETE", "/api/admin/users/john/webauthn/x", "").status, 400);

    // Statistics.
    let stats = a.call("GET", "/api/admin/sessions/stats", "");
    assert_eq!(stats.status, 200, "{}", stats.body);
    let users = data(&stats)["users"].clone();
    assert!(users.as_array().unwrap().iter().any(|u| u["username"] == "root" && u["two_factor"] == 1), "{users}");
    assert!(data(&stats)["total"].as_u64().unwrap() >= 2);

    // Deleting.
    assert_eq!(a.call("DELETE", "/api/admin/users/kim", "").status, 200);
    assert_eq!(a.call("GET", "/api/admin/users/kim", "").status, 404);
    assert_eq!(a.call("DELETE", "/api/admin/users/kim", "").status, 404);

    // Cookie-authenticated mutations from another origin are refused.
    let cross = request(
        s.server.port,
        "DELETE",
        "/api/admin/users/john/sessions",
        &[
            ("Cookie", a.cookie.as_deref().unwrap()),
            ("Origin", "https://evil.example"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        "",
    );
    assert_eq!(cross.status, 403);
    assert_eq!(s.forward_auth(&john), 200, "john's session survived the forged request");

    // The audit trail: every kind of event, with its actor.
    let audit = a.call("GET", "/api/admin/audit?limit=500", "");
    assert_eq!(audit.status, 200, "{}", audit.body);
    let events = data(&audit)["events"].as_array().unwrap().clone();
    let names: std::collections::BTreeSet<String> =
        events.iter().map(|e| e["event"].as_str().unwrap().to_string()).collect();
    for expected in [
        "authentication",
        "ban",
        "admin.user.created",
        "admin.user.updated",
        "admin.user.deleted",
        "admin.sessions.revoked",
        "admin.password.set",
        "admin.reset_email.sent",
        "admin.passwordless.set",
        "admin.ban.lifted",
        "admin.users.listed",
        "admin.user.viewed",
        "admin.bans.listed",
        "admin.sessions.stats",
    ] {
        assert!(names.contains(expected), "{backend:?}: no '{expected}' in {names:?}");
    }
    let created = events.iter().find(|e| e["event"] == "admin.user.created").unwrap();
    assert_eq!((created["actor"].as_str(), created["subject"].as_str()), (Some("root"), Some("kim")));
    assert!(!created["request_id"].as_str().unwrap().is_empty());
    let refused = events.iter().find(|e| e["event"] == "authentication" && e["outcome"] == "refused").unwrap();
    assert_eq!(refused["subject"], "john");
    let only_kim = a.call("GET", "/api/admin/audit?user=kim&event=admin.*", "");
    assert!(data(&only_kim)["events"].as_array().unwrap().iter().all(|e| e["subject"] == "kim" || e["actor"] == "kim"));
    let page = a.call("GET", "/api/admin/audit?limit=2", "");
    let cursor = data(&page)["next_cursor"].as_str().unwrap().to_string();
    let next = a.call("GET", &format!("/api/admin/audit?limit=2&cursor={cursor}"), "");
    assert!(data(&next)["events"][0]["id"].as_i64().unwrap() < cursor.parse::<i64>().unwrap());

    if backend == Backend::File {
        // The file was rewritten in place, keeping what the admin API does not know.
        let file = std::fs::read_to_string(s.dir.path().join("users.yml")).unwrap();
        assert!(file.contains("given_name: John"), "unknown keys are kept:\n{file}");
        assert!(!file.contains("kim"), "the deleted user is gone:\n{file}");
    }
}

#[test]
fn admin_api_on_the_users_file() {
    admin_api(Backend::File);
}

#[test]
fn admin_api_on_sqlite() {
    admin_api(Backend::Sqlite);
}

#[test]
fn admin_api_on_postgres() {
    admin_api(Backend::Postgres);
}

/// Paging through 10,000 users: every user once, in order (the time per page is printed,
/// not asserted).
#[test]
fn paging_through_ten_thousand_users() {
    let s = Setup::start(Backend::Sqlite, "");
    runtime().block_on(async {
        let storage = Storage::open(&s.storage, None).await.unwrap();
        let hash = argon2_hash("unused");
        let mut inserts = Vec::new();
        for i in 0..10_000 {
            let user = portcullis::storage::StoredUser {
                username: format!("user{i:05}"),
                display_name: format!("User {i}"),
                password_hash: hash.clone(),
                emails: vec![format!("user{i:05}@example.com")],
                groups: vec![if i % 10 == 0 { "tenth".into() } else { "rest".into() }],
                disabled: false,
                created_at: 0,
                updated_at: 0,
            };
            inserts.push(storage.user_insert(user));
            if inserts.len() == 200 {
                for r in futures_util::future::join_all(inserts.drain(..)).await {
                    r.unwrap();
                }
            }
        }
        for r in futures_util::future::join_all(inserts).await {
            r.unwrap();
        }
    });
    let mut a = s.admin();
    let mut seen = Vec::new();
    let mut cursor = String::new();
    let mut slowest = std::time::Duration::ZERO;
    loop {
        let started = Instant::now();
        let r = a.call("GET", &format!("/api/admin/users?limit=500&cursor={cursor}"), "");
        slowest = slowest.max(started.elapsed());
        assert_eq!(r.status, 200, "{}", r.body);
        let page = data(&r);
        seen.extend(page["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 10_002, "every user once");
    let mut sorted = seen.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(sorted, seen, "in order, no repeats");
    let tenth = a.call("GET", "/api/admin/users?group=tenth&limit=500&search=user099", "");
    assert_eq!(data(&tenth)["users"].as_array().unwrap().len(), 10, "user09900, user09910, ... user09990");
    println!("slowest page of 500 users: {slowest:?}");
}
