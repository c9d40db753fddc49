//! The account API (`/api/auth`, seed 001) against the real binary, with users in the
//! database: login and its second factor, bearer tokens (forged, expired, wrong kind,
//! revoked by a password change, of a disabled user), the profile, password change and
//! reset, email verification, and signup by referral.

mod common;

use common::client::Client;
use common::*;
use portcullis::second_factor::totp::TotpService;
use serde_json::{Value, json};

const JWT_SECRET: &str = "an-account-api-jwt-secret-for-the-tests";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
}

impl Setup {
    fn start() -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        let hash = argon2_hash("correct horse");
        let mut users = String::from("users:\n");
        for name in ["john", "mary", "eve", "dora"] {
            let groups = if name == "mary" { "[admins]" } else { "[]" };
            users.push_str(&format!(
                "  {name}:\n    displayname: {name}\n    password: '{hash}'\n    email: {name}@example.com\n    groups: {groups}\n"
            ));
        }
        std::fs::write(dir.path().join("users.yml"), users).unwrap();
        let extra = format!(
            "account_api:\n  enabled: true\n  jwt_secret: '{JWT_SECRET}'\n\
             signup:\n  enabled: true\n  referral_uses: 1\n\
             regulation: {{max_retries: 3, find_time: 2m, ban_time: 5m}}\n\
             password_policy: {{standard: {{enabled: true, min_length: 10}}}}\n"
        );
        let mut yaml = config_yaml(port, dir.path(), &extra);
        let file_section = format!("  file:\n    path: '{}/users.yml'\n", dir.path().display());
        assert!(yaml.contains(&file_section));
        yaml = yaml.replace(&file_section, "  database:\n    search: {email: true}\n");
        let config = dir.path().join("c.yml");
        std::fs::write(&config, &yaml).unwrap();
        let cli = |args: &[&str]| {
            let mut all = args.to_vec();
            all.extend_from_slice(&["--config", config.to_str().unwrap()]);
            let o = run(&all, dir.path(), &[]);
            assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
        };
        cli(&["users", "import", dir.path().join("users.yml").to_str().unwrap()]);
        cli(&["storage", "user", "totp", "generate", "mary", "--secret", TOTP_SECRET]);
        let server = Server::start(Some(&yaml), port, &[]);
        Setup { server, dir }
    }

    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Option<Value>) -> Response {
        let bearer = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(b) = &bearer {
            headers.push(("Authorization", b.as_str()));
        }
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        request(self.server.port, method, path, &headers, &body)
    }

    fn login(&self, email: &str, password: &str) -> Response {
        self.call("POST", "/api/auth/login", None, Some(json!({"email": email, "password": password})))
    }

    fn token(&self, email: &str, password: &str) -> String {
        let r = self.login(email, password);
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]["token"].as_str().unwrap().to_string()
    }

    fn db(&self, sql: &str) -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); r=c.execute(sys.argv[2]).fetchall(); c.commit(); print(r)"])
            .arg(self.dir.path().join("db.sqlite3"))
            .arg(sql)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn mail(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("notifications.txt")).unwrap_or_default()
    }
}

fn forged(claims: Value, key: &str) -> String {
    let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    jsonwebtoken::encode(&header, &claims, &jsonwebtoken::EncodingKey::from_secret(key.as_bytes())).unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn login_tokens_and_profile() {
    let s = Setup::start();
    let r = s.login("john@example.com", "correct horse");
    assert_eq!(r.status, 200, "{}", r.body);
    let data = &r.json()["data"];
    assert_eq!(data["second_factor_required"], false);
    assert_eq!(data["user"]["username"], "john");
    assert_eq!(data["user"]["email"], "john@example.com");
    assert_eq!(data["user"]["email_verified"], false);
    assert!(r.header("set-cookie").is_none(), "the account API sets no cookie");
    let token = data["token"].as_str().unwrap().to_string();
    assert!(data["expires_at"].as_i64().unwrap() > now() + 3000);

    // By username too; wrong password, missing field.
    assert_eq!(s.login("john", "correct horse").status, 200);
    let wrong = s.login("john@example.com", "wrong");
    assert_eq!((wrong.status, wrong.json()["status"].as_str()), (401, Some("KO")));
    assert_eq!(s.call("POST", "/api/auth/login", None, Some(json!({"password": "x"}))).status, 400);
    assert_eq!(s.call("POST", "/api/auth/login", None, Some(json!({"email": "john"}))).status, 400);

    let me = s.call("GET", "/api/auth/me", Some(&token), None);
    assert_eq!(me.status, 200, "{}", me.body);
    assert_eq!(me.json()["data"]["name"], "john");
    // The token stands for the user on the rest of the API, too.
    let info = s.call("GET", "/api/user/info", Some(&token), None);
    assert_eq!((info.status, info.json()["data"]["display_name"].as_str()), (200, Some("john")), "{}", info.body);

    // No token, garbage, another key, tampered, alg none, expired, wrong audience: 401.
    let claims = |exp: i64, aud: &str| {
        json!({"iss": "Portcullis", "aud": aud, "typ": "access", "sub": "john", "lvl": 2, "iat": now() - 10,
               "exp": exp, "ims": (now() - 10) * 1000, "jti": "x"})
    };
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let payload = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap().replace("\"john\"", "\"dora\"");
    parts[1] = b64.encode(payload);
    let tampered = parts.join(".");
    let none = format!(
        "{}.{}.",
        b64.encode(r#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(claims(now() + 600, "portcullis-account-api").to_string())
    );
    for (what, bad) in [
        ("none", None),
        ("garbage", Some("not-a-token".to_string())),
        ("other key", Some(forged(claims(now() + 600, "portcullis-account-api"), "another-secret-another-secret-123"))),
        ("tampered", Some(tampered)),
        ("alg none", Some(none)),
        ("expired", Some(forged(claims(now() - 1, "portcullis-account-api"), JWT_SECRET))),
        ("audience", Some(forged(claims(now() + 600, "elsewhere"), JWT_SECRET))),
    ] {
        let r = s.call("GET", "/api/auth/me", bad.as_deref(), None);
        assert_eq!(r.status, 401, "{what}: {}", r.body);
        assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{what}");
    }
    // A valid signature is not enough: a pending login is no access.
    let pending = forged(
        json!({"iss": "Portcullis", "aud": "portcullis-account-api", "typ": "pending", "sub": "john",
        "lvl": 1, "iat": now(), "exp": now() + 60, "ims": now() * 1000, "jti": "y"}),
        JWT_SECRET,
    );
    assert_eq!(s.call("GET", "/api/auth/me", Some(&pending), None).status, 401);

    // The display name.
    let r = s.call("PUT", "/api/auth/me/name", Some(&token), Some(json!({"name": "John Doe"})));
    assert_eq!((r.status, r.json()["data"].as_bool()), (200, Some(true)), "{}", r.body);
    assert_eq!(s.call("GET", "/api/auth/me", Some(&token), None).json()["data"]["name"], "John Doe");
    assert_eq!(s.call("PUT", "/api/auth/me/name", Some(&token), Some(json!({"name": " "}))).status, 400);
    assert_eq!(s.call("PUT", "/api/auth/me/name", None, Some(json!({"name": "X"}))).status, 401);

    // A disabled user's token stops working at once.
    s.db("update users set disabled = 1 where username = 'john'");
    assert_eq!(s.call("GET", "/api/auth/me", Some(&token), None).status, 401);
    assert_eq!(s.login("john", "correct horse").status, 401);

    // Bans apply: three wrong passwords, then even the right one is refused.
    for _ in 0..3 {
        assert_eq!(s.login("eve@example.com", "wrong").status, 401);
    }
    let banned = s.login("eve@example.com", "correct horse");
    assert_eq!(banned.status, 429, "{}", banned.body);
    assert!(!s.server.stdout().contains(&token), "tokens are never logged");
}

#[test]
fn a_second_factor_finishes_the_login() {
    let s = Setup::start();
    let r = s.login("mary@example.com", "correct horse");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["second_factor_required"], true);
    assert_eq!(r.json()["data"]["user"]["second_factor"], true);
    let pending = r.json()["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/api/auth/me", Some(&pending), None).status, 401, "a pending login is no access");

    let finish = |code: &str| {
        s.call("POST", "/api/auth/login/second-factor", None, Some(json!({"token": pending, "code": code})))
    };
    assert_eq!(finish("000000").status, 401);
    let code = TotpService::code_at(
        &portcullis::storage::TotpRecord { username: "mary".into(), ..totp_record(TOTP_SECRET) },
        now(),
    )
    .unwrap();
    let r = finish(&code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["second_factor_required"], false);
    let token = r.json()["data"]["token"].as_str().unwrap().to_string();
    let state = s.call("GET", "/api/state", Some(&token), None);
    assert_eq!(state.json()["data"]["authentication_level"], 2, "{}", state.body);
    // The same code again: each time step counts once.
    assert_eq!(finish(&code).status, 401);
    // An access token does not finish a login.
    let r = s.call("POST", "/api/auth/login/second-factor", None, Some(json!({"token": token, "code": code})));
    assert_eq!(r.status, 401);
}

#[test]
fn a_password_change_refuses_every_earlier_token() {
    let s = Setup::start();
    let token = s.token("dora@example.com", "correct horse");
    let other = s.token("dora", "correct horse");
    let change = |token: &str, current: &str, new: &str| {
        s.call("PUT", "/api/auth/me/password", Some(token), Some(json!({"password": current, "new_password": new})))
    };
    assert_eq!(change(&token, "wrong", "Another-Horse-42").status, 401);
    assert_eq!(change(&token, "correct horse", "short").status, 400, "the policy applies");
    let r = change(&token, "correct horse", "Another-Horse-42");
    assert_eq!((r.status, r.json()["data"].as_bool()), (200, Some(true)), "{}", r.body);
    for t in [&token, &other] {
        assert_eq!(s.call("GET", "/api/auth/me", Some(t), None).status, 401, "tokens from before the change");
    }
    assert_eq!(s.login("dora", "correct horse").status, 401);
    let fresh = s.token("dora", "Another-Horse-42");
    assert_eq!(s.call("GET", "/api/auth/me", Some(&fresh), None).status, 200);
}

#[test]
fn a_reset_token_sets_the_password_once_and_ends_every_token() {
    let s = Setup::start();
    let token = s.token("dora", "correct horse");
    let r = s.call("POST", "/api/auth/send-password-reset-link", None, Some(json!({"email": "dora@example.com"})));
    assert_eq!(r.status, 200);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let link = loop {
        if let Some(link) = s.mail().split_whitespace().find(|w| w.contains("token=")).map(str::to_string) {
            break link;
        }
        assert!(std::time::Instant::now() < deadline, "no reset mail");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let reset_token = link.split("token=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let reset = |password: &str| {
        s.call("POST", "/api/auth/reset-password-with-token", Some(&reset_token), Some(json!({"password": password})))
    };
    assert_eq!(
        s.call("POST", "/api/auth/send-password-reset-link", None, Some(json!({"email": "nobody@example.com"}))).status,
        200,
        "the same answer for an unknown address"
    );
    assert_eq!(reset("short").status, 400, "the policy applies, and the link is not spent");
    let r = reset("Third-Horse-77");
    assert_eq!((r.status, r.json()["data"].as_bool()), (200, Some(true)), "{}", r.body);
    assert_eq!(reset("Fourth-Horse-88").status, 400, "used");
    assert_eq!(s.call("GET", "/api/auth/me", Some(&token), None).status, 401, "tokens from before the reset");
    assert_eq!(s.login("dora", "Third-Horse-77").status, 200);
    let r = s.call(
        "POST",
        "/api/auth/reset-password-with-token",
        Some("forged"),
        Some(json!({"password": "Fifth-Horse-99"})),
    );
    assert_eq!(r.status, 400);
}

#[test]
fn email_verification_by_mailed_code() {
    let s = Setup::start();
    let token = s.token("john", "correct horse");
    let r = s.call("POST", "/api/auth/me/send-otp", Some(&token), None);
    assert_eq!(r.status, 200, "{}", r.body);
    let otp_token = r.json()["data"]["token"].as_str().unwrap().to_string();
    assert!(s.mail().contains("confirm this email address"), "{}", s.mail());
    let code = last_code(s.dir.path());

    let multipart = |otp: &str, token: &str| {
        let boundary = "XyZzY";
        let body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"otp\"\r\n\r\n{otp}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"token\"\r\n\r\n{token}\r\n--{boundary}--\r\n"
        );
        let ct = format!("multipart/form-data; boundary={boundary}");
        request(s.server.port, "POST", "/api/auth/verify-otp", &[("Content-Type", ct.as_str())], &body)
    };
    assert_eq!(multipart("WRONG1", &otp_token).status, 401);
    assert_eq!(multipart(&code, &token).status, 401, "an access token is not an OTP token");
    let r = multipart(&code, &otp_token);
    assert_eq!((r.status, r.json()["data"].as_bool()), (200, Some(true)), "{}", r.body);
    assert_eq!(s.call("GET", "/api/auth/me", Some(&token), None).json()["data"]["email_verified"], true);
    assert_eq!(multipart(&code, &otp_token).status, 401, "a code works once");
    let r = request(s.server.port, "POST", "/api/auth/verify-otp", &[("Content-Type", "text/plain")], "otp=1");
    assert_eq!(r.status, 400);
}

#[test]
fn signup_needs_a_valid_referral_token() {
    let s = Setup::start();
    let token = s.token("john", "correct horse");
    let r = s.call("POST", "/api/auth/me/referrals", Some(&token), None);
    assert_eq!(r.status, 201, "{}", r.body);
    let referral = r.json()["data"]["token"].as_str().unwrap().to_string();
    assert!(referral.starts_with("pcr_") && referral.len() >= 36, "{referral}");
    assert_eq!(s.call("POST", "/api/auth/me/referrals", None, None).status, 401);

    let signup = |referrer: &str, email: &str, password: &str| {
        s.call(
            "POST",
            "/api/auth/signup",
            None,
            Some(json!({"referrer_token": referrer, "email": email, "password": password, "name": "New Person"})),
        )
    };
    assert_eq!(signup("pcr_wrong", "new@example.com", "A-Good-Password-1").status, 400);
    assert_eq!(signup(&referral, "new@example.com", "short").status, 400, "the policy applies");
    let r = signup(&referral, "New@Example.com", "A-Good-Password-1");
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.json()["data"]["user"]["username"], "new@example.com");
    let new_token = r.json()["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(s.call("GET", "/api/auth/me", Some(&new_token), None).json()["data"]["name"], "New Person");
    assert_eq!(signup(&referral, "other@example.com", "A-Good-Password-1").status, 400, "used up");
    let again = s.call("POST", "/api/auth/me/referrals", Some(&token), None).json()["data"]["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(signup(&again, "john@example.com", "A-Good-Password-1").status, 409, "the address is taken");
    assert_eq!(s.login("new@example.com", "A-Good-Password-1").status, 200);
    assert!(s.db("select detail from audit_log where event = 'account.signed_up'").contains("john"));
}

#[test]
fn local_login_and_web_session_administration() {
    let s = Setup::start();
    // Seed 003's local login: 201 with the same answer.
    let r = s.call("POST", "/auth/local/login", None, Some(json!({"username": "john", "password": "correct horse"})));
    assert_eq!(r.status, 201, "{}", r.body);
    let john = r.json()["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(
        s.call("POST", "/auth/local/login", None, Some(json!({"username": "john", "password": "x"}))).status,
        401
    );

    // An administrator with two factors (mary, TOTP) by bearer token.
    let pending = s.login("mary", "correct horse").json()["data"]["token"].as_str().unwrap().to_string();
    let code = TotpService::code_at(
        &portcullis::storage::TotpRecord { username: "mary".into(), ..totp_record(TOTP_SECRET) },
        now(),
    )
    .unwrap();
    let r = s.call("POST", "/api/auth/login/second-factor", None, Some(json!({"token": pending, "code": code})));
    let admin = r.json()["data"]["token"].as_str().unwrap().to_string();

    // Two web sessions (cookies) of john.
    let mut browsers: Vec<Client> = (0..2).map(|_| Client::new(s.server.port)).collect();
    for b in &mut browsers {
        let r = b.json("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"}));
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let stats = s.call("GET", "/auth/sessions/stats", Some(&admin), None);
    assert_eq!(stats.status, 200, "{}", stats.body);
    assert_eq!(stats.json()["data"]["total"], 2, "{}", stats.body);
    assert_eq!(stats.json()["data"]["one_factor"], 2);
    assert_eq!(stats.json()["data"]["user_count"], 1);
    for who in [Some(john.as_str()), None] {
        assert!(matches!(s.call("GET", "/auth/sessions/stats", who, None).status, 401 | 403), "not an admin");
        assert!(matches!(s.call("POST", "/auth/sessions/revoke-all", who, Some(json!({}))).status, 401 | 403));
    }
    let r = s.call("POST", "/auth/sessions/revoke-all", Some(&admin), Some(json!({"except_current": true})));
    assert_eq!(r.status, 204, "{}", r.body);
    for b in &mut browsers {
        assert_eq!(b.level(), 0, "every web session ended");
    }
    assert_eq!(s.call("GET", "/auth/sessions/stats", Some(&admin), None).json()["data"]["total"], 0);
    assert!(s.db("select event from audit_log where event = 'admin.sessions.revoked_all'").contains("revoked_all"));
}
