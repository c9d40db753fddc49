//! Password reset through mail delivered to a real SMTP server, and password change under
//! both policies, against the real binary.

mod common;

use common::client::Client;
use common::smtp::{SmtpCapture, parse_mail};
use common::*;
use serde_json::json;

const WAIT: std::time::Duration = std::time::Duration::from_secs(15);

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins]\n",
        argon2_hash("correct horse")
    )
}

/// Starts the server with `extra` YAML; the file notifier is replaced by SMTP when given.
fn start(extra: &str, smtp: Option<&SmtpCapture>) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    // Cheap hashes keep the test fast; the algorithm is still argon2id.
    let hashing = "    password:\n      argon2:\n        iterations: 1\n        memory: 8192\n        parallelism: 1\n";
    let mut yaml = config_yaml(port, dir.path(), extra);
    let users_line = format!("    path: '{}/users.yml'\n", dir.path().display());
    yaml = yaml.replace(&users_line, &format!("{users_line}{hashing}"));
    if let Some(capture) = smtp {
        let file = format!("notifier:\n  filesystem:\n    filename: '{}/notifications.txt'\n", dir.path().display());
        let smtp_yaml = format!(
            "notifier:\n  smtp:\n    address: 'smtp://127.0.0.1:{}'\n    sender: 'Portcullis <auth@example.com>'\n    username: mailer\n    password: mail-secret\n    subject: '[Example] {{title}}'\n",
            capture.port()
        );
        assert!(yaml.contains(&file));
        yaml = yaml.replace(&file, &smtp_yaml);
    }
    (Server::start(Some(&yaml), port, &[]), dir)
}

fn login(c: &mut Client, password: &str) -> u16 {
    c.json("POST", "/api/firstfactor", json!({"username": "john", "password": password})).status
}

fn token_in(message: &str) -> String {
    let mail = parse_mail(message);
    let text = mail.part("text/plain");
    let start = text.find("reset-password/step2?token=").expect("a reset link") + "reset-password/step2?token=".len();
    text[start..].chars().take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c)).collect()
}

#[test]
fn password_reset_by_mailed_link() {
    let capture = SmtpCapture::start(Some(("mailer", "mail-secret")));
    let (server, _dir) = start("", Some(&capture));
    let mut c = Client::new(server.port);
    let mut logged_in = Client::new(server.port);
    assert_eq!(login(&mut logged_in, "correct horse"), 200);

    let known = c.json("POST", "/api/reset-password/identity/start", json!({"username": "john"}));
    let unknown = c.json("POST", "/api/reset-password/identity/start", json!({"username": "nobody"}));
    assert_eq!((known.status, unknown.status), (200, 200));
    assert_eq!(known.body, unknown.body, "no account enumeration");
    let messages = capture.wait_for(1, WAIT);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(capture.messages().len(), 1, "only the real user gets mail");
    let mail = &messages[0];
    assert!(mail.contains("Subject: [Example] Reset your password"), "{mail}");
    assert!(
        mail.contains("To: \"John Doe\" <john@example.com>") || mail.contains("To: John Doe <john@example.com>"),
        "{mail}"
    );
    assert!(mail.contains("multipart/alternative") && mail.contains("text/html"), "{mail}");
    let token = token_in(mail);
    assert!(token.matches('.').count() == 2, "a JWT: {token}");
    assert!(!server.stdout().contains(&token), "the token is not logged");

    // Without redeeming the link, no password can be set.
    assert_eq!(c.json("POST", "/api/reset-password", json!({"password": "new horse battery"})).status, 403);
    let r = c.json("POST", "/api/reset-password/identity/finish", json!({"token": token}));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = c.json("POST", "/api/reset-password", json!({"password": "new horse battery"}));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(logged_in.level(), 0, "a reset ends the user's sessions");
    let mut fresh = Client::new(server.port);
    assert_eq!(login(&mut fresh, "correct horse"), 401, "the old password is refused");
    assert_eq!(login(&mut fresh, "new horse battery"), 200);

    // The link works once.
    let mut again = Client::new(server.port);
    let r = again.json("POST", "/api/reset-password/identity/finish", json!({"token": token}));
    assert_eq!(r.status, 400, "{}", r.body);
    // A tampered token is refused.
    let tampered = format!("{}x", token);
    assert_eq!(again.json("POST", "/api/reset-password/identity/finish", json!({"token": tampered})).status, 400);
    // A password-changed notice followed the reset.
    let all = capture.wait_for(2, WAIT);
    assert_eq!(parse_mail(&all[1]).header("Subject"), "[Example] Your password was changed");

    // A link the user revokes cannot be used.
    // Addresses do not log in unless authentication_backend.file.search.email is on.
    c.json("POST", "/api/reset-password/identity/start", json!({"username": "john@example.com"}));
    c.json("POST", "/api/reset-password/identity/start", json!({"username": "john"}));
    let revoked = token_in(capture.wait_for(3, WAIT).last().unwrap());
    assert_eq!(c.json("DELETE", "/api/reset-password", json!({"token": revoked})).status, 200);
    assert_eq!(c.json("POST", "/api/reset-password/identity/finish", json!({"token": revoked})).status, 400);
    assert_eq!(capture.messages().len(), 3);
}

#[test]
fn wrong_smtp_credentials_fail_the_startup_check() {
    let capture = SmtpCapture::start(Some(("mailer", "another-secret")));
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(port, dir.path(), "").replace(
        &format!("notifier:\n  filesystem:\n    filename: '{}/notifications.txt'\n", dir.path().display()),
        &format!(
            "notifier:\n  smtp:\n    address: 'smtp://127.0.0.1:{}'\n    sender: 'a@example.com'\n    username: mailer\n    password: mail-secret\n",
            capture.port()
        ),
    );
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = run(&["--config", path.to_str().unwrap()], dir.path(), &[]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(stderr.contains("notifier") && stderr.contains("SMTP"), "{stderr}");
    assert!(!stderr.contains("mail-secret"), "the password is not printed: {stderr}");
}

#[test]
fn a_silent_smtp_server_fails_the_startup_check_in_time() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let smtp_port = listener.local_addr().unwrap().port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(port, dir.path(), "").replace(
        &format!("notifier:\n  filesystem:\n    filename: '{}/notifications.txt'\n", dir.path().display()),
        &format!("notifier:\n  smtp:\n    address: 'smtp://127.0.0.1:{smtp_port}'\n    sender: 'a@example.com'\n    timeout: 1s\n"),
    );
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, yaml).unwrap();
    let started = std::time::Instant::now();
    let out = run(&["--config", path.to_str().unwrap()], dir.path(), &[]);
    assert!(!out.status.success());
    assert!(started.elapsed() < std::time::Duration::from_secs(20), "bounded by notifier.smtp.timeout");
    let output = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(output.contains("notifier.smtp.timeout"), "{output}");
    drop(listener);
}

#[test]
fn password_change_under_the_standard_policy() {
    let policy = "password_policy:\n  standard:\n    enabled: true\n    min_length: 12\n    require_uppercase: true\n    require_number: true\n";
    let (server, _dir) = start(policy, None);
    let mut c = Client::new(server.port);
    let mut other = Client::new(server.port);
    assert_eq!(login(&mut c, "correct horse"), 200);
    assert_eq!(login(&mut other, "correct horse"), 200);
    let change = |c: &mut Client, old: &str, new: &str| {
        c.json("POST", "/api/change-password", json!({"username": "john", "old_password": old, "new_password": new}))
    };
    let r = change(&mut c, "wrong", "Correct-Horse-42");
    assert_eq!(r.status, 401, "{}", r.body);
    let r = change(&mut c, "correct horse", "short1A");
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().contains("at least 12"), "{}", r.body);
    let r = change(&mut c, "correct horse", "longbutnouppercase1");
    assert!(r.json()["message"].as_str().unwrap().contains("upper-case"), "{}", r.body);
    // Authelia's frontend sends the display name as `username`; the session decides whose
    // password changes, so the field is ignored (as Authelia does).
    let r = c.json(
        "POST",
        "/api/change-password",
        json!({"username": "John Doe", "old_password": "correct horse", "new_password": "Correct-Horse-42"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(c.level(), 1, "this session stays");
    assert_eq!(other.level(), 0, "other sessions end");
    let mut fresh = Client::new(server.port);
    assert_eq!(login(&mut fresh, "correct horse"), 401);
    assert_eq!(login(&mut fresh, "Correct-Horse-42"), 200);
    let policy = Client::new(server.port).call("GET", "/api/configuration/password-policy", "").json();
    assert_eq!(policy["data"]["mode"], "standard");
    assert_eq!(policy["data"]["min_length"], 12);
}

#[test]
fn password_change_under_the_zxcvbn_policy() {
    let (server, _dir) = start("password_policy:\n  zxcvbn:\n    enabled: true\n    min_score: 4\n", None);
    let mut c = Client::new(server.port);
    assert_eq!(login(&mut c, "correct horse"), 200);
    let change = |c: &mut Client, new: &str| {
        c.json("POST", "/api/change-password", json!({"old_password": "correct horse", "new_password": new}))
    };
    for weak in ["password123", "johndoe2024", "qwertyuiop"] {
        let r = change(&mut c, weak);
        assert_eq!(r.status, 400, "{weak}: {}", r.body);
        assert!(r.json()["message"].as_str().unwrap().contains("too easy to guess"));
    }
    assert_eq!(change(&mut c, "plinth-marmalade-orbit-kestrel-97").status, 200);
    assert_eq!(
        Client::new(server.port).call("GET", "/api/configuration/password-policy", "").json()["data"]["mode"],
        "zxcvbn"
    );
}
