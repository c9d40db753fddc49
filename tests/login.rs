//! Users, sessions and first-factor login over HTTP against the real binary: bootstrap the
//! first admin, log in and out (memory and Redis stores), regulation, users-file reloads,
//! and a Redis outage.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins, dev]\n  off:\n    displayname: Disabled\n    password: '{}'\n    disabled: true\n",
        argon2_hash("correct horse"),
        argon2_hash("correct horse")
    )
}

struct Setup {
    server: Server,
    _dir: tempfile::TempDir,
    users: std::path::PathBuf,
}

fn start(extra: &str, users: Option<&str>) -> Setup {
    start_watching(extra, users, false)
}

fn start_email_login(extra: &str, users: Option<&str>) -> Setup {
    start_with_file_options(extra, users, "    search: {email: true}\n")
}

fn start_watching(extra: &str, users: Option<&str>, watch: bool) -> Setup {
    start_with_file_options(extra, users, if watch { "    watch: true\n" } else { "" })
}

/// Starts the server with extra lines under `authentication_backend.file`.
fn start_with_file_options(extra: &str, users: Option<&str>, file_options: &str) -> Setup {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.yml");
    if let Some(u) = users {
        std::fs::write(&users_path, u).unwrap();
    }
    let mut yaml = config_yaml(port, dir.path(), extra);
    let path_line = format!("    path: '{}'\n", users_path.display());
    assert!(yaml.contains(&path_line));
    yaml = yaml.replace(&path_line, &format!("{path_line}{file_options}"));
    let server = Server::start(Some(&yaml), port, &[]);
    Setup { server, _dir: dir, users: users_path }
}

fn login(port: u16, username: &str, password: &str, extra: &str, cookie: Option<&str>) -> Response {
    let body = format!(r#"{{"username":"{username}","password":"{password}"{extra}}}"#);
    let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
    request(port, "POST", "/api/firstfactor", &headers, &body)
}

/// `name=value` from a Set-Cookie header.
fn cookie_of(r: &Response) -> String {
    r.header("set-cookie").expect("set-cookie").split(';').next().unwrap().to_string()
}

fn state(port: u16, cookie: &str) -> serde_json::Value {
    get(port, "/api/state", &[("Cookie", cookie)]).json()
}

#[test]
fn login_session_and_logout() {
    let s = start("", Some(&users_yaml()));
    let port = s.server.port;

    let ok = login(port, "john", "correct horse", "", None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    // No two_factor rule: one factor suffices and the domain's default URL is the target.
    assert_eq!(ok.json(), serde_json::json!({"status": "OK", "data": {"redirect": "https://www.example.com/"}}));
    let set_cookie = ok.header("set-cookie").unwrap().to_string();
    for part in ["authelia_session=", "Domain=example.com", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(set_cookie.contains(part), "{part} missing: {set_cookie}");
    }
    assert!(!set_cookie.contains("Max-Age"), "not remembered: a browser-session cookie");
    let cookie = cookie_of(&ok);

    let st = state(port, &cookie);
    assert_eq!(st["data"]["username"], "john");
    assert_eq!(st["data"]["authentication_level"], 1);
    assert_eq!(st["data"]["factor_knowledge"], true);

    let info = get(port, "/api/user/info", &[("Cookie", &cookie)]);
    assert_eq!(info.status, 200, "{}", info.body);
    let info = info.json();
    assert_eq!(info["data"]["display_name"], "John Doe");
    assert_eq!(info["data"]["emails"], serde_json::json!(["j**n@example.com"]), "partly hidden, as Authelia");
    assert_eq!(info["data"]["groups"], serde_json::json!(["admins", "dev"]));
    assert_eq!(info["data"]["method"], "totp");

    let check = request(
        port,
        "POST",
        "/api/checks/safe-redirection",
        &[("Cookie", &cookie)],
        r#"{"uri":"https://app.example.com/a"}"#,
    );
    assert_eq!(check.json()["data"]["ok"], true);
    let check = request(
        port,
        "POST",
        "/api/checks/safe-redirection",
        &[("Cookie", &cookie)],
        r#"{"uri":"https://evil.example/"}"#,
    );
    assert_eq!(check.json()["data"]["ok"], false);

    // Logging in again with a live session issues a new ID; the old one dies.
    let again = login(port, "john", "correct horse", r#","targetURL":"https://app.example.com/x""#, Some(&cookie));
    assert_eq!(again.json()["data"]["redirect"], "https://app.example.com/x");
    let renewed = cookie_of(&again);
    assert_ne!(renewed, cookie, "session ID must change at login");
    assert_eq!(state(port, &cookie)["data"]["authentication_level"], 0, "the old ID is dead");

    // An unsafe target is never echoed back as a redirect.
    let evil = login(port, "john", "correct horse", r#","targetURL":"https://evil.example/""#, None);
    assert_eq!(evil.status, 200);
    assert!(evil.json().get("data").is_none(), "{}", evil.body);

    let out = request(port, "POST", "/api/logout", &[("Cookie", &renewed)], "");
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(state(port, &renewed)["data"]["authentication_level"], 0, "logout destroys the session");
    assert_eq!(get(port, "/api/user/info", &[("Cookie", &renewed)]).status, 403);

    // Remember me gives a persistent cookie.
    let remembered = login(port, "john", "correct horse", r#","keepMeLoggedIn":true"#, None);
    assert!(remembered.header("set-cookie").unwrap().contains("Max-Age=2592000"));
}

#[test]
fn wrong_credentials_look_alike_and_bans_stop_checking() {
    let s = start_email_login("regulation: {max_retries: 3, find_time: 2m, ban_time: 5m}", Some(&users_yaml()));
    let port = s.server.port;
    let generic = serde_json::json!({"status": "KO", "message": "Authentication failed. Check your credentials."});
    for (user, password) in [("nobody", "x"), ("off", "correct horse")] {
        let r = login(port, user, password, "", None);
        assert_eq!(
            (r.status, r.json()),
            (401, generic.clone()),
            "{user}: unknown and disabled users fail the same way"
        );
    }
    // Failures count against the account whichever login name is typed.
    for name in ["john", "john@example.com", "john"] {
        let r = login(port, name, "wrong", "", None);
        assert_eq!((r.status, r.json()), (401, generic.clone()), "{name}");
    }
    // Banned: even the right password is refused, with Retry-After.
    let banned = login(port, "john@example.com", "correct horse", "", None);
    assert_eq!(banned.status, 429, "{}", banned.body);
    let retry: u64 = banned.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    assert!(banned.header("set-cookie").is_none());

    // Malformed requests are 400 with a JSON error, never a 500.
    for body in ["", "{", r#"{"username":"john"}"#, "[1,2]"] {
        let r = request(port, "POST", "/api/firstfactor", &[], body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert_eq!(r.json()["status"], "KO");
    }
}

#[test]
fn a_ban_set_by_hand_holds_with_regulation_off_until_revoked() {
    let s = start("regulation: {max_retries: 0}", Some(&users_yaml()));
    let port = s.server.port;
    let config = s._dir.path().join("cli.yml");
    std::fs::write(&config, config_yaml(port, s._dir.path(), "")).unwrap();
    let cli = |args: &[&str]| {
        let mut all = vec!["storage", "bans"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", config.to_str().unwrap()]);
        let o = run(&all, s._dir.path(), &[]);
        (o.status.code(), String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr))
    };
    let (code, out) = cli(&["user", "add", "john", "--duration", "1h", "--reason", "shared password"]);
    assert_eq!(code, Some(0), "{out}");
    let banned = login(port, "john", "correct horse", "", None);
    assert_eq!(banned.status, 429, "{}", banned.body);
    let retry: u64 = banned.header("retry-after").unwrap().parse().unwrap();
    assert!((3500..=3600).contains(&retry), "{retry}");
    let (_, out) = cli(&["user", "list"]);
    assert!(out.contains("john") && out.contains("cli") && out.contains("shared password"), "{out}");

    // A permanent ban on an address; a bad address or duration is refused.
    let (code, out) = cli(&["ip", "add", "127.0.0.1", "--permanent"]);
    assert_eq!(code, Some(0), "{out}");
    let (_, out) = cli(&["ip", "list"]);
    assert!(out.contains("127.0.0.1") && out.contains("permanent"), "{out}");
    for bad in [&["ip", "add", "not-an-ip"][..], &["user", "add", "mary", "--duration", "soon"]] {
        let (code, out) = cli(bad);
        assert_eq!(code, Some(1), "{bad:?}: {out}");
    }

    // Lifting both lets the right password in again.
    for args in [["user", "revoke", "john"], ["ip", "revoke", "127.0.0.1"]] {
        assert_eq!(cli(&args).0, Some(0));
    }
    let r = login(port, "john", "correct horse", "", None);
    assert_eq!(r.status, 200, "{}", r.body);
    let (_, out) = cli(&["user", "list"]);
    assert!(!out.contains("john"), "{out}");
}

#[test]
fn attempts_are_logged_in_storage() {
    let s = start("", Some(&users_yaml()));
    let port = s.server.port;
    login(port, "john", "wrong", "", None);
    login(port, "john", "correct horse", "", None);
    let db = s._dir.path().join("db.sqlite3");
    let out = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute('select username, successful, auth_type, remote_ip from authentication_logs order by id').fetchall())"])
        .arg(&db)
        .output()
        .unwrap();
    let rows = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        rows.trim(),
        "[('john', 0, '1FA', '127.0.0.1'), ('john', 1, '1FA', '127.0.0.1')]",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bootstrap_creates_the_first_admin_once() {
    let s = start("", None);
    let port = s.server.port;
    let log = s.server.wait_for_log("/auth/bootstrap/complete");
    let token: String = log
        .split("\"token\\\":\\\"")
        .nth(1)
        .or_else(|| log.split("\"token\":\"").nth(1))
        .map(|rest| rest.chars().take_while(char::is_ascii_alphanumeric).collect())
        .unwrap_or_else(|| panic!("no bootstrap token in the log:\n{log}"));
    assert_eq!(token.len(), 32);

    let create = |token: &str, password: &str| {
        let body =
            format!(r#"{{"token":"{token}","username":"admin","password":"{password}","email":"admin@example.com"}}"#);
        request(port, "POST", "/api/bootstrap", &[], &body)
    };
    assert_eq!(create("x".repeat(32).as_str(), "a-long-password").status, 401);
    assert_eq!(create(&token, "short").status, 400, "weak passwords are refused and the token survives");
    let made = create(&token, "a-long-password");
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(create(&token, "a-long-password").status, 409, "the token works once");

    let users = std::fs::read_to_string(&s.users).unwrap();
    assert!(users.contains("admin") && users.contains("$argon2id$") && users.contains("admins"), "{users}");
    let ok = login(port, "admin", "a-long-password", "", None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(state(port, &cookie_of(&ok))["data"]["username"], "admin");
}

#[test]
fn users_file_edits_are_picked_up_without_restart() {
    // Regulation off: the failed login below must not ban the account being added.
    let s = start_watching("regulation: {max_retries: 0}", Some(&users_yaml()), true);
    let port = s.server.port;
    assert_eq!(login(port, "kim", "kims password", "", None).status, 401);
    let added =
        format!("{}  kim:\n    displayname: Kim\n    password: '{}'\n", users_yaml(), argon2_hash("kims password"));
    std::fs::write(&s.users, added).unwrap();
    let log = s.server.wait_for_log("users file reloaded");
    assert!(log.contains("users file reloaded"), "no reload within the wait:\n{log}");
    let r = login(port, "kim", "kims password", "", None);
    assert_eq!(r.status, 200, "the new user was not picked up: {}", r.body);

    // A broken edit keeps the previous users, and the error names the line.
    std::fs::write(&s.users, "users: [broken\n").unwrap();
    let log = s.server.wait_for_log("keeping the previous users");
    let line = log.lines().find(|l| l.contains("keeping the previous users")).unwrap_or_else(|| panic!("{log}"));
    assert!(line.contains("line"), "{line}");
    assert_eq!(login(port, "kim", "kims password", "", None).status, 200);
}

#[test]
fn redis_sessions_fail_closed_and_recover() {
    let mut redis = RedisServer::start();
    let extra = format!(
        "session:\n  secret: 'a-session-secret-for-redis'\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s",
        redis.port
    );
    // config_yaml already has a session block; merge by replacing it.
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = config_yaml(port, dir.path(), "").replace("session:\n", &format!("{extra}\n"));
    let server = Server::start(Some(&yaml), port, &[]);

    let ok = login(port, "john", "correct horse", "", None);
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = cookie_of(&ok);
    assert_eq!(state(port, &cookie)["data"]["username"], "john");
    assert!(redis.cli(&["--scan"]).contains("portcullis:session:"), "the session lives in Redis");

    redis.kill();
    // The local session cache stops as soon as its connection reports the close (well
    // under a millisecond, decision 0031); from then on nothing is answered from it.
    server.wait_for_log("session cache saw its connection fail");
    let down = get(port, "/api/state", &[("Cookie", &cookie)]);
    assert_eq!(down.status, 503, "fail closed while Redis is down: {}", down.body);
    assert_eq!(down.json()["status"], "KO");
    assert_eq!(login(port, "john", "correct horse", "", None).status, 503);

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let r = login(port, "john", "correct horse", "", None);
        if r.status == 200 {
            assert_eq!(state(port, &cookie_of(&r))["data"]["username"], "john");
            break;
        }
        assert!(Instant::now() < deadline, "no recovery within 5 s: {} {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(server);
}

/// A username carrying a newline and a terminal escape cannot forge a log line.
#[test]
fn control_characters_in_usernames_cannot_forge_log_lines() {
    let s = start("", Some(&users_yaml()));
    let forged = "mallory\\n2026-01-01T00:00:00Z  INFO portcullis: login succeeded username=admin\\u001b[2J";
    let r = login(s.server.port, forged, "guess", "", None);
    assert_eq!(r.status, 401);
    let log = s.server.wait_for_log("password refused");
    assert!(!log.lines().any(|l| l.starts_with("2026-01-01T00:00:00Z")), "a forged line reached the log:\n{log}");
    assert!(!log.contains('\u{1b}'), "a raw escape reached the log");
    assert!(log.contains("mallory\\n2026"), "the value is kept, escaped:\n{log}");
}
