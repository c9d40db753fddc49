//! First run against the real binary, users in the database: the startup token creates
//! the first administrator once; tokens from `portcullis bootstrap token` and from
//! `POST /auth/bootstrap/tokens` (administrators only); expired, wrong and reused tokens;
//! refused tokens rate-limited per address; eight concurrent completions with eight
//! tokens making exactly one administrator; the login page's first-administrator form.

mod common;

use std::path::PathBuf;

use common::*;
use serde_json::{Value, json};

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Setup {
    /// A server with the database users backend and no user at all.
    fn start(extra: &str) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let mut yaml = config_yaml(port, dir.path(), extra);
        let file_section = format!("  file:\n    path: '{}/users.yml'\n", dir.path().display());
        assert!(yaml.contains(&file_section));
        yaml = yaml.replace(&file_section, "  database: {}\n");
        let config = dir.path().join("c.yml");
        std::fs::write(&config, &yaml).unwrap();
        let server = Server::start(Some(&yaml), port, &[]);
        Setup { server, dir, config }
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// The token the server logged at startup.
    fn startup_token(&self) -> String {
        let log = self.server.wait_for_log("/auth/bootstrap/complete");
        let token: String = log
            .split("\"token\\\":\\\"")
            .nth(1)
            .or_else(|| log.split("\"token\":\"").nth(1))
            .map(|rest| rest.chars().take_while(char::is_ascii_alphanumeric).collect())
            .unwrap_or_else(|| panic!("no bootstrap token in the log:\n{log}"));
        assert_eq!(token.len(), 32, "{log}");
        token
    }

    /// `portcullis bootstrap token` with this configuration.
    fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["bootstrap", "token"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", self.config.to_str().unwrap()]);
        run(&all, self.dir.path(), &[])
    }

    /// A token issued on the command line.
    fn cli_token(&self, ttl: &str) -> String {
        let out = self.cli(&["--ttl", ttl]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let stdout = String::from_utf8(out.stdout).unwrap();
        let mut lines = stdout.lines();
        let token = lines.next().unwrap().to_string();
        assert_eq!(token.len(), 32, "{stdout}");
        assert!(lines.next().is_some_and(|l| l.starts_with("expires at ")), "{stdout}");
        token
    }

    fn complete(&self, token: &str, username: &str, password: &str) -> Response {
        let body = json!({"token": token, "username": username, "password": password, "email": format!("{username}@example.com")});
        request(self.port(), "POST", "/auth/bootstrap/complete", &[], &body.to_string())
    }

    fn db(&self, sql: &str) -> String {
        let out = std::process::Command::new("python3")
            .args([
                "-c",
                "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(sys.argv[2]).fetchall())",
            ])
            .arg(self.dir.path().join("db.sqlite3"))
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }

    fn login(&self, username: &str, password: &str) -> Response {
        let body = json!({"username": username, "password": password});
        request(self.port(), "POST", "/api/firstfactor", &[], &body.to_string())
    }

    fn session(&self, username: &str, password: &str) -> String {
        let r = self.login(username, password);
        assert_eq!(r.status, 200, "{}", r.body);
        cookie(&r, "authelia_session")
    }

    fn issue(&self, cookie: Option<&str>, body: &str) -> Response {
        let headers: Vec<(&str, &str)> = cookie.map(|c| vec![("Cookie", c)]).unwrap_or_default();
        request(self.port(), "POST", "/auth/bootstrap/tokens", &headers, body)
    }
}

/// `name=value` of the Set-Cookie header setting `name`.
fn cookie(r: &Response, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap_or_default().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie in: {:?}", r.headers))
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn the_startup_token_works_once() {
    let s = Setup::start("");
    let token = s.startup_token();
    assert_eq!(s.db("select count(*) from bootstrap_tokens where created_by = 'startup'"), "[(1,)]");
    assert!(!s.db("select token_hash from bootstrap_tokens").contains(&token), "only the keyed hash is stored");

    let wrong = s.complete(&"x".repeat(32), "admin", "a-long-password");
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(wrong.json()["message"], "Invalid bootstrap token");
    let malformed = request(s.port(), "POST", "/auth/bootstrap/complete", &[], r#"{"token":"x"}"#);
    assert_eq!(malformed.status, 400, "{}", malformed.body);
    assert_eq!(s.complete(&token, "admin", "short").status, 400, "weak passwords are refused, the token survives");
    assert_eq!(s.complete(&token, "bad name", "a-long-password").status, 400);

    let made = s.complete(&token, "admin", "a-long-password");
    assert_eq!(made.status, 201, "{}", made.body);
    assert_eq!(made.json(), json!({"status": "OK"}));
    let again = s.complete(&token, "other", "a-long-password");
    assert_eq!(again.status, 409, "{}", again.body);
    assert_eq!(s.db("select username from users"), "[('admin',)]");
    assert_eq!(s.db("select count(*) from bootstrap_tokens where used_at is not null"), "[(1,)]");

    let ok = s.login("admin", "a-long-password");
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The old path is the same operation.
    let alias = request(
        s.port(),
        "POST",
        "/api/bootstrap",
        &[],
        &json!({"token": token, "username": "x", "password": "a-long-password", "email": "x@example.com"}).to_string(),
    );
    assert_eq!(alias.status, 409, "{}", alias.body);
}

#[test]
fn expired_and_guessed_tokens_are_refused_then_rate_limited() {
    let s = Setup::start("");
    let short = s.cli_token("1s");
    assert_eq!(s.db("select created_by from bootstrap_tokens order by id"), "[('startup',), ('cli',)]");
    std::thread::sleep(std::time::Duration::from_secs(2));
    let expired = s.complete(&short, "admin", "a-long-password");
    assert_eq!(expired.status, 401, "{}", expired.body);
    assert!(expired.json()["message"].as_str().unwrap().contains("expired"), "{}", expired.body);

    let bad_ttl = s.cli(&["--ttl", "25h"]);
    assert!(!bad_ttl.status.success());
    assert!(String::from_utf8_lossy(&bad_ttl.stderr).contains("24h"));

    // Ten refused tokens per address and window; the next attempt waits, even with a
    // good token.
    for n in 1..10 {
        let r = s.complete(&format!("guess{n:027}"), "admin", "a-long-password");
        assert_eq!(r.status, 401, "attempt {n}: {}", r.body);
    }
    let limited = s.complete(&s.startup_token(), "admin", "a-long-password");
    assert_eq!(limited.status, 429, "{}", limited.body);
    let retry: i64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 0 && retry <= 600, "{retry}");
    assert_eq!(s.db("select count(*) from users"), "[(0,)]");
}

#[test]
fn eight_concurrent_completions_make_one_administrator() {
    let s = Setup::start("");
    let tokens: Vec<String> = (0..8).map(|_| s.cli_token("10m")).collect();
    let port = s.port();
    let answers: Vec<Response> = std::thread::scope(|scope| {
        let handles: Vec<_> = tokens
            .iter()
            .enumerate()
            .map(|(n, token)| {
                scope.spawn(move || {
                    let body = json!({"token": token, "username": format!("admin{n}"), "password": "a-long-password", "email": format!("admin{n}@example.com")});
                    request(port, "POST", "/auth/bootstrap/complete", &[], &body.to_string())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 201).count(), 1, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 409).count(), 7, "{statuses:?}");
    assert_eq!(s.db("select count(*) from users"), "[(1,)]");
    assert_eq!(s.db("select count(*) from user_groups where group_name = 'admins'"), "[(1,)]");
}

#[test]
fn administrators_issue_tokens() {
    let s = Setup::start("admin: {require_two_factor: false}\n");
    let made = s.complete(&s.startup_token(), "admin", "a-long-password");
    assert_eq!(made.status, 201, "{}", made.body);

    assert_eq!(s.issue(None, "{}").status, 401, "no caller");
    let admin = s.session("admin", "a-long-password");
    let created = request(
        s.port(),
        "POST",
        "/api/admin/users",
        &[("Cookie", admin.as_str())],
        &json!({"username": "john", "password": "johns-long-password", "email": "john@example.com"}).to_string(),
    );
    assert_eq!(created.status, 201, "{}", created.body);
    let john = s.session("john", "johns-long-password");
    assert_eq!(s.issue(Some(&john), "{}").status, 403, "not an administrator");

    let before = now();
    let issued = s.issue(Some(&admin), "{}");
    assert_eq!(issued.status, 201, "{}", issued.body);
    let data: Value = issued.json()["data"].clone();
    let token = data["token"].as_str().unwrap().to_string();
    assert_eq!(token.len(), 32);
    let expires_at = data["expires_at"].as_i64().unwrap();
    assert!((before + 3600..=now() + 3600).contains(&expires_at), "{expires_at}");
    let empty = request(s.port(), "POST", "/auth/bootstrap/tokens", &[("Cookie", admin.as_str())], "");
    assert_eq!(empty.status, 201, "an empty body is the default: {}", empty.body);
    let half = s.issue(Some(&admin), r#"{"ttl":"30m"}"#);
    assert_eq!(half.status, 201, "{}", half.body);
    let expires_at = half.json()["data"]["expires_at"].as_i64().unwrap();
    assert!((before + 1800..=now() + 1800).contains(&expires_at), "{expires_at}");
    assert_eq!(s.issue(Some(&admin), r#"{"ttl":"25h"}"#).status, 400);
    assert_eq!(s.issue(Some(&admin), r#"{"ttl":"soon"}"#).status, 400);
    assert_eq!(
        s.db("select created_by from bootstrap_tokens where created_by = 'admin'"),
        "[('admin',), ('admin',), ('admin',)]"
    );

    // Setup is complete: the token cannot make a second administrator.
    let refused = s.complete(&token, "second", "a-long-password");
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert_eq!(s.db("select count(*) from users"), "[(2,)]");

    // Nor can the command line issue one now.
    let cli = s.cli(&[]);
    assert_eq!(cli.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&cli.stderr).contains("setup is complete"), "{cli:?}");
    assert!(cli.stdout.is_empty());
}

#[test]
fn the_login_page_creates_the_first_administrator() {
    let s = Setup::start("");
    let token = s.startup_token();
    let page = get(s.port(), "/login", &[]);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Create the first administrator"), "{}", page.body);
    assert!(page.body.contains("action=\"&#x2f;setup\""), "{}", page.body);
    let csrf_cookie = cookie(&page, "portcullis_csrf");
    let csrf = {
        let at = page.body.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
        page.body[at..].split('"').next().unwrap().to_string()
    };
    let post = |fields: &[(&str, &str)]| {
        let mut form = url::form_urlencoded::Serializer::new(String::new());
        form.append_pair("csrf", &csrf);
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let headers = [
            ("Cookie", csrf_cookie.as_str()),
            ("Origin", "https://auth.example.com"),
            ("Content-Type", "application/x-www-form-urlencoded"),
        ];
        request(s.port(), "POST", "/setup", &headers, &form.finish())
    };
    let fields = |token: &str, repeat: &str| {
        vec![
            ("token", token.to_string()),
            ("username", "root".to_string()),
            ("email", "root@example.com".to_string()),
            ("password", "a-long-password".to_string()),
            ("password_repeat", repeat.to_string()),
        ]
    };
    let send = |f: Vec<(&str, String)>| post(&f.iter().map(|(k, v)| (*k, v.as_str())).collect::<Vec<_>>());

    let mismatch = send(fields(&token, "another-password"));
    assert_eq!(mismatch.status, 400);
    assert!(mismatch.body.contains("value=\"root\"") && mismatch.body.contains("value=\"root@example.com\""));
    let wrong = send(fields("wrong-token", "a-long-password"));
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("Invalid bootstrap token") && wrong.body.contains("value=\"root\""), "{}", wrong.body);
    let forged = request(
        s.port(),
        "POST",
        "/setup",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        &format!(
            "csrf=x&token={token}&username=evil&email=e%40example.com&password=a-long-password&password_repeat=a-long-password"
        ),
    );
    assert_eq!(forged.status, 403, "no CSRF token, no administrator");

    let done = send(fields(&token, "a-long-password"));
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(
        done.body.contains("The administrator was created") && done.body.contains("href=\"&#x2f;login\""),
        "{}",
        done.body
    );
    assert_eq!(s.db("select username from users"), "[('root',)]");

    let login = get(s.port(), "/login", &[]);
    assert_eq!(login.status, 200);
    assert!(!login.body.contains("Create the first administrator"), "{}", login.body);
    assert!(login.body.contains("name=\"password\""));
    assert_eq!(get(s.port(), "/setup", &[]).status, 302, "the form is gone");
    assert_eq!(s.login("root", "a-long-password").status, 200);
}
