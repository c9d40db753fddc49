//! Personal API tokens against the real binary: creating, listing, revoking and checking
//! them under `/api/auth` (good and bad input), then using them at the forward-auth
//! endpoint as Bearer and as the Basic password, with `token:any` rules; revoked, expired
//! and disabled-user tokens refused at the next request; the check endpoint's limit per
//! address; and no token in the log or the mail.

mod common;

use common::client::Client;
use common::*;
use portcullis::second_factor::totp::TotpService;
use portcullis::storage::Storage;
use serde_json::{Value, json};

const RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: api.example.com, subject: 'token:any', policy: one_factor}
    - {domain: api.example.com, policy: deny}
    - {domain: ci.example.com, subject: 'token:deploy', policy: one_factor}
    - {domain: ci.example.com, policy: deny}
    - {domain: app.example.com, policy: one_factor}
";

/// Bearer and Basic in `Authorization`, then the session cookie.
const ENDPOINTS: &str = "  endpoints:
    authz:
      forward-auth:
        implementation: ForwardAuth
        authn_strategies:
          - {name: HeaderAuthorization, schemes: [Basic, Bearer]}
          - {name: CookieSession}
";

const SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [dev]\n  mary:\n    displayname: Mary\n    password: '{}'\n    email: mary@example.com\n    groups: [dev]\n  root:\n    displayname: Root\n    password: '{}'\n    email: root@example.com\n    groups: [admins]\n",
        argon2_hash("john password"),
        argon2_hash("mary password"),
        argon2_hash("root password"),
    )
}

/// A server with tokens on; `database` moves the users into the database (where an
/// administrator can disable them). Root has a TOTP device.
fn start(extra: &str, database: bool) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let address = format!("  address: 'tcp://127.0.0.1:{port}/'\n");
    let mut yaml = config_yaml(port, dir.path(), &format!("{RULES}\napi_tokens:\n  enabled: true\n{extra}"))
        .replace(&address, &format!("{address}{ENDPOINTS}"));
    if database {
        let file_section = format!("  file:\n    path: '{}/users.yml'\n", dir.path().display());
        yaml = yaml.replace(&file_section, "  database: {}\n");
        let config = dir.path().join("import.yml");
        std::fs::write(&config, &yaml).unwrap();
        let users = dir.path().join("users.yml").display().to_string();
        let out = run(&["users", "import", &users, "--config", &config.display().to_string()], dir.path(), &[]);
        assert!(out.status.success(), "import: {}", String::from_utf8_lossy(&out.stderr));
    }
    let storage = portcullis::config::schema::Storage {
        encryption_key: portcullis::config::types::Secret::new("a-test-encryption-key-that-is-long-enough"),
        local: Some(portcullis::config::schema::LocalStorage {
            path: Some(dir.path().join("db.sqlite3").display().to_string()),
        }),
        ..Default::default()
    };
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let storage = Storage::open(&storage, None).await.unwrap();
        let record = portcullis::storage::TotpRecord { username: "root".into(), ..totp_record(SECRET) };
        storage.totp_save(record).await.unwrap();
    });
    (Server::start(Some(&yaml), port, &[]), dir)
}

fn login(port: u16, user: &str) -> Client {
    let mut c = Client::new(port);
    let r = c.json("POST", "/api/firstfactor", json!({"username": user, "password": format!("{user} password")}));
    assert_eq!(r.status, 200, "{user}: {}", r.body);
    c
}

fn data(r: &Response) -> Value {
    r.json()["data"].clone()
}

/// Creates a token with `body`; answers (id, token).
fn create(c: &mut Client, body: Value) -> (i64, String) {
    let r = c.json("POST", "/api/auth/me/create-token", body);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = data(&r);
    (d["id"].as_i64().unwrap(), d["token"].as_str().unwrap().to_string())
}

/// A Traefik-style ForwardAuth request for GET `url` with `authorization` (may be empty)
/// and `cookie` (may be empty).
fn forward_auth(port: u16, url: &str, authorization: &str, cookie: &str) -> Response {
    let parsed = url::Url::parse(url).unwrap();
    let mut headers = vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", parsed.host_str().unwrap()),
        ("X-Forwarded-Uri", parsed.path()),
    ];
    if !authorization.is_empty() {
        headers.push(("Authorization", authorization));
    }
    if !cookie.is_empty() {
        headers.push(("Cookie", cookie));
    }
    get(port, "/api/authz/forward-auth", &headers)
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn basic(user: &str, password: &str) -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
}

fn verify(port: u16, token: &str) -> Response {
    let query: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("token", token).finish();
    get(port, &format!("/api/auth/verify-token?{query}"), &[])
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn tokens_are_created_listed_used_and_revoked() {
    let (server, dir) = start("  max_per_user: 4\n  max_lifespan: 90d\n", false);
    let port = server.port;

    // Anonymous callers are told to sign in.
    let mut anonymous = Client::new(port);
    for (method, path) in
        [("POST", "/api/auth/me/create-token"), ("POST", "/api/auth/me/tokens"), ("DELETE", "/api/auth/me/tokens/1")]
    {
        let r = anonymous.call(method, path, "");
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert_eq!(r.json()["status"], "KO");
    }

    // Bad input is a 400 naming the field.
    let mut john = login(port, "john");
    for body in [
        json!({"expires_in": "soon"}),
        json!({"expires_in": -1}),
        json!({"expires_in": 0}),
        json!({"expires_in": 1.5}),
        json!({"expires_in": "100d"}),
        json!({"name": "x".repeat(65)}),
        json!({"scopes": ["has space"]}),
        json!({"expire": 60}),
    ] {
        let r = john.json("POST", "/api/auth/me/create-token", body.clone());
        assert_eq!(r.status, 400, "{body}: {}", r.body);
    }
    let r = john.call("POST", "/api/auth/me/create-token", "{not json");
    assert_eq!(r.status, 400, "{}", r.body);

    // Created once: the value is in this answer only.
    let r =
        john.json("POST", "/api/auth/me/create-token", json!({"name": "ci", "expires_in": "30d", "scopes": ["read"]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let created = data(&r);
    let token = created["token"].as_str().unwrap().to_string();
    let id = created["id"].as_i64().unwrap();
    assert!(token.starts_with("pcat_") && token.len() == 43, "{token}");
    assert_eq!(created["name"], "ci");
    assert_eq!(created["prefix"].as_str().unwrap(), &token[..13]);
    assert_eq!(created["scopes"], json!(["read"]));
    let (made, ends) = (created["created_at"].as_i64().unwrap(), created["expires_at"].as_i64().unwrap());
    assert_eq!(ends - made, 30 * 86_400 * 1000, "Unix milliseconds");
    let (default_id, default_token) = create(&mut john, json!({}));
    let listed = john.call("POST", "/api/auth/me/tokens", "");
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = data(&listed);
    assert_eq!(items.as_array().unwrap().len(), 2, "{}", listed.body);
    assert_eq!(items[0]["id"], id);
    assert_eq!(items[1]["name"], "API token");
    assert_eq!(items[1]["expires_at"].as_i64().unwrap() - items[1]["created_at"].as_i64().unwrap(), 90 * 86_400_000);
    assert!(items[0].get("token").is_none() && items[0].get("token_hash").is_none());
    assert!(!listed.body.contains(&token) && !listed.body.contains(&token[13..]), "never the token again");

    // At the proxy: as Bearer and as Basic with the owner's name, identity headers set.
    let r = forward_auth(port, "https://app.example.com/", &bearer(&token), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("remote-user"), Some("john"));
    assert_eq!(r.header("remote-email"), Some("john@example.com"));
    assert_eq!(r.header("remote-name"), Some("John Doe"));
    assert_eq!(r.header("remote-groups"), Some("dev"));
    let r = forward_auth(port, "https://app.example.com/", &basic("john", &token), "");
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
    let r = forward_auth(port, "https://app.example.com/", &basic("mary", &token), "");
    assert_eq!(r.status, 401, "another user's name with the token");
    assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Basic")));
    let mut typo = token.clone();
    typo.replace_range(10..11, if &token[10..11] == "a" { "b" } else { "a" });
    assert_eq!(forward_auth(port, "https://app.example.com/", &bearer(&typo), "").status, 401);
    assert_eq!(forward_auth(port, "https://app.example.com/", "Bearer pcat_short", "").status, 401);

    // token:any lets tokens in where sessions are refused, and token:<name> only that one.
    let session = john.cookie.clone().unwrap();
    assert_eq!(forward_auth(port, "https://api.example.com/", &bearer(&token), "").status, 200);
    assert_eq!(forward_auth(port, "https://api.example.com/", "", &session).status, 403, "a session is not a token");
    assert_eq!(forward_auth(port, "https://app.example.com/", "", &session).status, 200);
    assert_eq!(forward_auth(port, "https://ci.example.com/", &bearer(&token), "").status, 403, "named 'ci'");
    let (_, deploy) = create(&mut john, json!({"name": "deploy"}));
    assert_eq!(forward_auth(port, "https://ci.example.com/", &bearer(&deploy), "").status, 200);

    // The check endpoint.
    assert_eq!(data(&verify(port, &token)), json!(true));
    assert_eq!(data(&verify(port, &typo)), json!(false));
    assert_eq!(data(&verify(port, "anything")), json!(false));
    assert_eq!(get(port, "/api/auth/verify-token", &[]).status, 400);

    // The last use is recorded (in the background).
    wait_until("last_used_at", || {
        let items = data(&john.call("POST", "/api/auth/me/tokens", ""));
        items[0]["last_used_at"].as_i64().is_some()
    });

    // Another user cannot see or revoke it.
    let mut mary = login(port, "mary");
    assert_eq!(data(&mary.call("POST", "/api/auth/me/tokens", "")), json!([]));
    let r = mary.call("DELETE", &format!("/api/auth/me/tokens/{id}"), "");
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(mary.call("DELETE", "/api/auth/me/tokens/not-a-number", "").status, 404);
    assert_eq!(forward_auth(port, "https://app.example.com/", &bearer(&token), "").status, 200, "still in force");

    // Revoked: refused at the very next request (it was cached), and gone from the list.
    let r = john.call("DELETE", &format!("/api/auth/me/tokens/{id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    let r = forward_auth(port, "https://app.example.com/", &bearer(&token), "");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("www-authenticate").is_some());
    assert_eq!(forward_auth(port, "https://app.example.com/", &basic("john", &token), "").status, 401);
    assert_eq!(data(&verify(port, &token)), json!(false));
    assert_eq!(john.call("DELETE", &format!("/api/auth/me/tokens/{id}"), "").status, 404, "revoked once");
    let ids: Vec<i64> = data(&john.call("POST", "/api/auth/me/tokens", ""))
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_i64().unwrap())
        .collect();
    assert!(!ids.contains(&id) && ids.contains(&default_id), "{ids:?}");

    // Expired: refused even though it was cached a moment ago.
    let (_, short) = create(&mut john, json!({"expires_in": 1}));
    assert_eq!(forward_auth(port, "https://app.example.com/", &bearer(&short), "").status, 200);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(forward_auth(port, "https://app.example.com/", &bearer(&short), "").status, 401, "expired");
    assert_eq!(data(&verify(port, &short)), json!(false));

    // The cap (4) counts tokens in force: not the revoked or the expired one.
    let (_, fourth) = create(&mut john, json!({"name": "four"}));
    let (_, fifth) = create(&mut john, json!({"name": "five"}));
    let r = john.json("POST", "/api/auth/me/create-token", json!({"name": "six"}));
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("revoke"), "{}", r.body);

    // The check endpoint is limited per address: 60 checks per window.
    let mut refused = None;
    for i in 0..70 {
        let r = verify(port, &default_token);
        if r.status == 429 {
            refused = Some((i, r.header("retry-after").map(str::to_string)));
            break;
        }
        assert_eq!(data(&r), json!(true));
    }
    let (at, retry) = refused.expect("a 429 after the limit");
    assert!(at <= 60 && retry.is_some(), "{at} {retry:?}");

    // Nothing about the tokens in the log or the mail, which names the token's prefix.
    server.wait_for_log("API token revoked");
    let log = format!("{}{}", server.stdout(), server.stderr());
    let mail = std::fs::read_to_string(dir.path().join("notifications.txt")).unwrap();
    assert!(mail.contains("API token named 'ci'"), "{mail}");
    for secret in [&token, &default_token, &deploy, &short, &fourth, &fifth] {
        assert!(!log.contains(secret.as_str()), "a token in the log");
        assert!(!log.contains(&secret[13..]), "a token's secret part in the log");
        assert!(!mail.contains(&secret[13..]), "a token's secret part in the mail");
    }
}

#[test]
fn a_disabled_or_deleted_user_is_refused_at_once() {
    let (server, _dir) = start("", true);
    let port = server.port;

    // A user with a second factor must have passed it to create a token.
    let mut root = login(port, "root");
    let r = root.json("POST", "/api/auth/me/create-token", json!({"name": "admin"}));
    assert_eq!(r.status, 403, "{}", r.body);
    let code = TotpService::code_at(&totp_record(SECRET), portcullis::clock::now()).unwrap();
    let r = root.json("POST", "/api/secondfactor/totp", json!({"token": code}));
    assert_eq!(r.status, 200, "{}", r.body);
    create(&mut root, json!({"name": "admin"}));

    let mut john = login(port, "john");
    let (_, token) = create(&mut john, json!({"name": "ci"}));
    let ok = |token: &str| forward_auth(port, "https://app.example.com/", &bearer(token), "").status;
    assert_eq!(ok(&token), 200);
    assert_eq!(ok(&token), 200, "cached");

    // Disabled: refused at the next request; enabled again: the token works again.
    let r = root.json("PATCH", "/api/admin/users/john", json!({"disabled": true}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(ok(&token), 401, "a disabled user's token");
    assert_eq!(data(&verify(port, &token)), json!(false));
    assert_eq!(root.json("PATCH", "/api/admin/users/john", json!({"disabled": false})).status, 200);
    assert_eq!(ok(&token), 200);

    // A change of groups reaches the proxy at once too.
    let r = root.json("PATCH", "/api/admin/users/john", json!({"groups": ["dev", "ops"]}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = forward_auth(port, "https://app.example.com/", &bearer(&token), "");
    assert_eq!(r.header("remote-groups"), Some("dev,ops"));

    // Deleted: refused, and a new account of the same name does not inherit the token.
    assert_eq!(root.call("DELETE", "/api/admin/users/john", "").status, 200);
    assert_eq!(ok(&token), 401);
    let new_john = json!({"username": "john", "email": "john@example.com", "password": "john password 2"});
    let r = root.json("POST", "/api/admin/users", new_john);
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(ok(&token), 401, "the old account's token stays revoked");
}
