//! The device authorization grant (RFC 8628) against the real binary: discovery, the
//! device authorization endpoint and its refusals, the user signing in at the portal
//! (forms with CSRF tokens) at the level the client demands, typing the code and
//! consenting, the device's polls (`authorization_pending`, `slow_down`, `access_denied`,
//! `expired_token`), tokens once and a reused device code revoking them, and the lockout
//! after wrong user codes. Stored rows are read from the SQLite database.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use portcullis::second_factor::totp::TotpService;
use serde_json::Value;

const ISSUER: &str = "https://auth.example.com";
const VERIFY: &str = "/consent/openid/device-authorization";
const TOTP_SECRET: &str = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

struct Setup {
    _server: Server,
    port: u16,
    dir: tempfile::TempDir,
}

/// The provider with device clients: `tv` (confidential, one factor, implicit consent
/// configured, refresh tokens), `cli` (public, two factors, a two-second device code),
/// `kiosk` (a policy that denies john), `web` (no device grant). John has a password and
/// TOTP.
fn start() -> Setup {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("users.yml"),
        format!(
            "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins, dev]\n",
            argon2_hash("correct horse")
        ),
    )
    .unwrap();
    let extra = "identity_providers:
  oidc:
    hmac_secret: 'a-very-long-hmac-secret-for-the-tests-0123456789'
    lifespans:
      custom:
        brief:
          device_code: 2s
    authorization_policies:
      mary_only:
        default_policy: deny
        rules:
          - policy: one_factor
            subject: 'user:mary'
    cors:
      endpoints: [device-authorization]
      allowed_origins: ['https://tv.example.com']
    clients:
      - client_id: tv
        client_name: Living Room TV
        client_secret: 'tv-secret-in-plaintext'
        token_endpoint_auth_method: client_secret_post
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', refresh_token]
        scopes: [openid, profile, email, offline_access]
        authorization_policy: one_factor
        consent_mode: implicit
      - client_id: cli
        client_name: Command Line
        public: true
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code']
        scopes: [openid]
        authorization_policy: two_factor
        lifespan: brief
      - client_id: kiosk
        public: true
        grant_types: ['urn:ietf:params:oauth:grant-type:device_code']
        authorization_policy: mary_only
      - client_id: web
        client_secret: 'web-secret-in-plaintext'
        redirect_uris: ['https://web.example.com/cb']
";
    let yaml = config_yaml(port, dir.path(), extra);
    let file = dir.path().join("c.yml");
    std::fs::write(&file, &yaml).unwrap();
    let file = file.display().to_string();
    let o = run(
        &["storage", "user", "totp", "generate", "john", "--secret", TOTP_SECRET, "--config", &file],
        dir.path(),
        &[],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let server = Server::start(Some(&yaml), port, &[]);
    Setup { _server: server, port, dir }
}

fn form(pairs: &[(&str, &str)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

fn post_form(port: u16, path: &str, pairs: &[(&str, &str)]) -> Response {
    request(port, "POST", path, &[("Content-Type", "application/x-www-form-urlencoded")], &form(pairs))
}

fn device_authorize(port: u16, pairs: &[(&str, &str)]) -> Response {
    post_form(port, "/api/oidc/device-authorization", pairs)
}

fn tv_device(port: u16, scope: &str) -> Value {
    let r =
        device_authorize(port, &[("client_id", "tv"), ("client_secret", "tv-secret-in-plaintext"), ("scope", scope)]);
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// A poll of the token endpoint by `tv`.
fn tv_poll(port: u16, device_code: &str) -> Response {
    post_form(
        port,
        "/api/oidc/token",
        &[
            ("grant_type", GRANT),
            ("device_code", device_code),
            ("client_id", "tv"),
            ("client_secret", "tv-secret-in-plaintext"),
        ],
    )
}

fn oauth_error(r: &Response) -> (u16, String) {
    (r.status, r.json()["error"].as_str().unwrap_or_default().to_string())
}

/// Rows of `sql` against the server's database, one line each, columns joined by `|`.
fn rows(dir: &Path, sql: &str) -> Vec<String> {
    let script = "import sqlite3, sys\n\
                  c = sqlite3.connect(sys.argv[1])\n\
                  for row in c.execute(sys.argv[2]): print('|'.join('' if v is None else str(v) for v in row))";
    let db = dir.join("db.sqlite3").display().to_string();
    let out = std::process::Command::new("python3").args(["-c", script, &db, sql]).output().expect("python3");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(str::to_string).collect()
}

/// A browser: keeps cookies, posts forms from the portal's origin.
struct Browser {
    port: u16,
    jar: BTreeMap<String, String>,
}

impl Browser {
    fn new(port: u16) -> Self {
        Self { port, jar: BTreeMap::new() }
    }

    fn send(&mut self, method: &str, path: &str, content_type: &str, body: &str) -> Response {
        let path = path.strip_prefix(ISSUER).unwrap_or(path).to_string();
        let cookies: Vec<String> = self.jar.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let cookies = cookies.join("; ");
        let mut headers = vec![("Origin", ISSUER)];
        if !cookies.is_empty() {
            headers.push(("Cookie", &cookies));
        }
        if !content_type.is_empty() {
            headers.push(("Content-Type", content_type));
        }
        let r = request(self.port, method, &path, &headers, body);
        for (_, set) in r.headers.iter().filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie")) {
            let pair = set.split(';').next().unwrap().trim();
            let (name, value) = pair.split_once('=').unwrap();
            if set.contains("Max-Age=0") || value.is_empty() {
                self.jar.remove(name);
            } else {
                self.jar.insert(name.to_string(), value.to_string());
            }
        }
        r
    }

    fn get(&mut self, path: &str) -> Response {
        self.send("GET", path, "", "")
    }

    fn post(&mut self, path: &str, pairs: &[(&str, &str)]) -> Response {
        self.send("POST", path, "application/x-www-form-urlencoded", &form(pairs))
    }

    /// Signs in with the login form `login` leads to (a `/login?rd=...` URL); returns the
    /// answer to the form.
    fn sign_in(&mut self, login: &str) -> Response {
        let page = self.get(login);
        assert_eq!(page.status, 200, "{}", page.body);
        let url = url::Url::parse(&format!("{ISSUER}{}", login.strip_prefix(ISSUER).unwrap_or(login))).unwrap();
        let rd = url.query_pairs().find(|(k, _)| k == "rd").map(|(_, v)| v.into_owned()).unwrap_or_default();
        let csrf = csrf_of(&page);
        self.post("/login", &[("csrf", &csrf), ("username", "john"), ("password", "correct horse"), ("rd", &rd)])
    }

    /// The second factor by TOTP through the JSON API, as the portal's script would.
    fn totp(&mut self) {
        let record = totp_record(TOTP_SECRET);
        let code = TotpService::code_at(&record, now()).unwrap();
        let body = serde_json::json!({ "token": code }).to_string();
        let r = self.send("POST", "/api/secondfactor/totp", "application/json", &body);
        assert_eq!(r.status, 200, "{}", r.body);
    }

    /// The verification page's form answered with `code` (and a `decision`, when given).
    fn enter(&mut self, code: &str, decision: Option<&str>) -> Response {
        let page = self.get(VERIFY);
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = csrf_of(&page);
        let mut pairs = vec![("csrf", csrf.as_str()), ("user_code", code)];
        if let Some(d) = decision {
            pairs.push(("decision", d));
        }
        self.post(VERIFY, &pairs)
    }
}

fn csrf_of(page: &Response) -> String {
    page.body.split(r#"name="csrf" value=""#).nth(1).expect("a form").split('"').next().unwrap().to_string()
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

/// A browser signed in with the password only.
fn one_factor(port: u16) -> Browser {
    let mut b = Browser::new(port);
    let r = b.sign_in("/login");
    assert_eq!(r.status, 303, "{}", r.body);
    b
}

/// Verifies an ID token against the published keys and returns its claims.
fn verify_id_token(port: u16, id_token: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(&get(port, "/jwks.json", &[]).body).unwrap();
    let jwk = set.find(header.kid.as_deref().unwrap()).expect("the kid is published");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[ISSUER]);
    jsonwebtoken::decode::<Value>(id_token, &key, &validation).unwrap().claims
}

fn userinfo(port: u16, access_token: &str) -> Response {
    get(port, "/api/oidc/userinfo", &[("Authorization", &format!("Bearer {access_token}"))])
}

#[test]
fn discovery_and_cors_name_the_device_endpoint() {
    let s = start();
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"] {
        let d = get(s.port, path, &[]).json();
        assert_eq!(d["device_authorization_endpoint"], format!("{ISSUER}/api/oidc/device-authorization"), "{path}");
        let grants = d["grant_types_supported"].as_array().unwrap();
        assert!(grants.iter().any(|g| g == GRANT), "{path}: {grants:?}");
    }
    let preflight = |origin: &str| {
        request(
            s.port,
            "OPTIONS",
            "/api/oidc/device-authorization",
            &[("Origin", origin), ("Access-Control-Request-Method", "POST")],
            "",
        )
    };
    let r = preflight("https://tv.example.com");
    assert_eq!((r.status, r.header("access-control-allow-origin")), (204, Some("https://tv.example.com")));
    assert_eq!(preflight("https://evil.example.net").header("access-control-allow-origin"), None);
}

#[test]
fn device_flow_through_sign_in_and_consent_to_tokens_once() {
    let s = start();
    let r = device_authorize(
        s.port,
        &[("client_id", "tv"), ("client_secret", "tv-secret-in-plaintext"), ("scope", "openid profile offline_access")],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let d = r.json();
    let user_code = d["user_code"].as_str().unwrap().to_string();
    let device_code = d["device_code"].as_str().unwrap().to_string();
    let (letters, dash) = (user_code.replace('-', ""), user_code.find('-'));
    assert!(
        letters.len() == 8 && dash == Some(4) && letters.bytes().all(|b| b"BCDFGHJKLMNPQRSTVWXZ".contains(&b)),
        "{user_code}"
    );
    assert_eq!(d["verification_uri"], format!("{ISSUER}{VERIFY}"));
    assert_eq!(d["verification_uri_complete"], format!("{ISSUER}{VERIFY}?user_code={user_code}"));
    assert_eq!((d["expires_in"].as_i64(), d["interval"].as_i64()), (Some(600), Some(10)));

    // Stored by keyed hashes only.
    let table = rows(s.dir.path(), "SELECT * FROM oidc_device_codes").join("\n");
    assert!(table.contains("|tv|") && table.contains("|pending|"), "{table}");
    let random = device_code.split('_').nth(2).unwrap().split('.').next().unwrap();
    assert!(!table.contains(random) && !table.contains(&letters), "no code in clear: {table}");

    let r = tv_poll(s.port, &device_code);
    assert_eq!(oauth_error(&r), (400, "authorization_pending".to_string()), "{}", r.body);

    // The link: the login first, then back to the page with the code filled in.
    let mut b = Browser::new(s.port);
    let complete = d["verification_uri_complete"].as_str().unwrap();
    let r = b.get(complete);
    assert_eq!(r.status, 302);
    let login = r.header("location").unwrap().to_string();
    assert!(login.starts_with(&format!("{ISSUER}/login?rd=")), "{login}");
    let r = b.sign_in(&login);
    assert_eq!((r.status, r.header("location")), (303, Some(complete)), "one factor is what tv asks");
    let page = b.get(complete);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!(r#"value="{user_code}""#)), "prefilled: {}", page.body);

    // Typed in lower case without the dash: the consent question, although tv's consent
    // mode is implicit.
    let csrf = csrf_of(&page);
    let typed = letters.to_lowercase();
    assert_eq!(b.post(VERIFY, &[("csrf", "forged"), ("user_code", &typed)]).status, 403, "CSRF protected");
    let consent = b.post(VERIFY, &[("csrf", &csrf), ("user_code", &typed)]);
    assert_eq!(consent.status, 200, "{}", consent.body);
    for shown in ["Living Room TV", "See your name and username", &user_code, r#"value="accept""#, "john"] {
        assert!(consent.body.contains(shown), "{shown} in {}", consent.body);
    }
    assert_eq!(tv_poll(s.port, &device_code).json()["error"], "slow_down", "polled within the interval");

    let csrf = csrf_of(&consent);
    let done = b.post(VERIFY, &[("csrf", &csrf), ("user_code", &user_code), ("decision", "accept")]);
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("Device connected"), "{}", done.body);
    let row = rows(s.dir.path(), "SELECT status, subject, decided_at IS NOT NULL FROM oidc_device_codes");
    assert_eq!(row, ["approved|john|1"]);
    let consents = rows(s.dir.path(), "SELECT username, client_id, scopes, granted FROM oidc_consents");
    assert_eq!(consents, ["john|tv|openid profile offline_access|1"]);

    // Approved: tokens at once, whatever the interval.
    let r = tv_poll(s.port, &device_code);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("cache-control"), Some("no-store"));
    let t = r.json();
    assert_eq!(
        (t["token_type"].as_str(), t["scope"].as_str()),
        (Some("Bearer"), Some("openid profile offline_access"))
    );
    let claims = verify_id_token(s.port, t["id_token"].as_str().unwrap(), "tv");
    assert!(!claims["sub"].as_str().unwrap().is_empty());
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(claims["preferred_username"], "john", "the profile scope's claims");
    let access = t["access_token"].as_str().unwrap();
    let info = userinfo(s.port, access);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(
        (info.json()["preferred_username"].as_str(), info.json()["sub"].clone()),
        (Some("john"), claims["sub"].clone())
    );
    assert_eq!(rows(s.dir.path(), "SELECT status FROM oidc_device_codes"), ["used"]);

    // The refresh token works like any other.
    let refresh = post_form(
        s.port,
        "/api/oidc/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", t["refresh_token"].as_str().unwrap()),
            ("client_id", "tv"),
            ("client_secret", "tv-secret-in-plaintext"),
        ],
    );
    assert_eq!(refresh.status, 200, "{}", refresh.body);
    let refreshed = refresh.json()["access_token"].as_str().unwrap().to_string();

    // The device code again: refused, and everything it produced is revoked.
    let r = tv_poll(s.port, &device_code);
    assert_eq!(oauth_error(&r), (400, "invalid_grant".to_string()), "{}", r.body);
    assert_eq!(userinfo(s.port, access).status, 401);
    assert_eq!(userinfo(s.port, &refreshed).status, 401, "the refreshed token is of the same chain");
    // And the spent code is no longer a code at the portal.
    assert_eq!(b.enter(&user_code, None).status, 400);
}

#[test]
fn slow_down_and_expiry() {
    let s = start();
    // A public client authenticates by its ID alone.
    let r = device_authorize(s.port, &[("client_id", "cli"), ("scope", "openid")]);
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.json();
    assert_eq!(d["expires_in"], 2, "the client's named lifespan");
    let code = d["device_code"].as_str().unwrap();
    let poll =
        || post_form(s.port, "/api/oidc/token", &[("grant_type", GRANT), ("device_code", code), ("client_id", "cli")]);
    assert_eq!(oauth_error(&poll()), (400, "authorization_pending".to_string()));
    assert_eq!(oauth_error(&poll()), (400, "slow_down".to_string()));
    assert_eq!(rows(s.dir.path(), "SELECT poll_interval FROM oidc_device_codes"), ["15"]);
    assert_eq!(oauth_error(&poll()), (400, "slow_down".to_string()), "still too fast");
    assert_eq!(rows(s.dir.path(), "SELECT poll_interval FROM oidc_device_codes"), ["20"]);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    assert_eq!(oauth_error(&poll()), (400, "expired_token".to_string()));
    // Expired: the user cannot approve it any more.
    let mut b = one_factor(s.port);
    let r = b.enter(d["user_code"].as_str().unwrap(), None);
    assert_eq!(r.status, 400);
    assert!(r.body.contains("This code is not valid"), "{}", r.body);
}

#[test]
fn refusals_at_the_device_and_token_endpoints() {
    let s = start();
    let refused = |pairs: &[(&str, &str)]| oauth_error(&device_authorize(s.port, pairs));
    assert_eq!(refused(&[("client_id", "tv"), ("client_secret", "wrong")]), (401, "invalid_client".into()));
    assert_eq!(refused(&[("client_id", "nobody")]), (401, "invalid_client".into()));
    assert_eq!(
        refused(&[("client_id", "tv")]),
        (401, "invalid_client".into()),
        "a confidential client needs its secret"
    );
    let basic = |id: &str, secret: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}")))
    };
    let web = basic("web", "web-secret-in-plaintext");
    let r = request(
        s.port,
        "POST",
        "/api/oidc/device-authorization",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &web)],
        "scope=openid",
    );
    assert_eq!(oauth_error(&r), (400, "unauthorized_client".into()), "web has no device grant: {}", r.body);
    let tv =
        |scope: &str| refused(&[("client_id", "tv"), ("client_secret", "tv-secret-in-plaintext"), ("scope", scope)]);
    assert_eq!(tv("openid admin"), (400, "invalid_scope".into()));
    let r = device_authorize(
        s.port,
        &[("client_id", "tv"), ("client_secret", "tv-secret-in-plaintext"), ("audience", "https://api.example.com")],
    );
    assert_eq!(oauth_error(&r), (400, "invalid_request".into()));

    let device_code = tv_device(s.port, "openid")["device_code"].as_str().unwrap().to_string();
    // Another client cannot poll with tv's device code, nor tv with a forged or no code.
    let r = post_form(
        s.port,
        "/api/oidc/token",
        &[("grant_type", GRANT), ("device_code", &device_code), ("client_id", "cli")],
    );
    assert_eq!(oauth_error(&r), (400, "invalid_grant".into()), "{}", r.body);
    let forged = format!("{}x", &device_code[..device_code.len() - 1]);
    assert_eq!(oauth_error(&tv_poll(s.port, &forged)), (400, "invalid_grant".into()));
    assert_eq!(oauth_error(&tv_poll(s.port, "")), (400, "invalid_request".into()));
    let r = request(
        s.port,
        "POST",
        "/api/oidc/token",
        &[("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", &web)],
        &form(&[("grant_type", GRANT), ("device_code", &device_code)]),
    );
    assert_eq!(oauth_error(&r), (400, "unauthorized_client".into()), "web may not use the grant: {}", r.body);
    // Not a page either: the verification page answers only signed-in users.
    let r = get(s.port, VERIFY, &[]);
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().starts_with(&format!("{ISSUER}/login?rd=")));
    assert_eq!(oauth_error(&tv_poll(s.port, &device_code)), (400, "authorization_pending".into()), "untouched");
}

#[test]
fn deny_policy_denial_and_two_factor_clients() {
    let s = start();
    let mut b = one_factor(s.port);

    // The user refuses: the device is told access_denied, and the refusal is recorded.
    let d = tv_device(s.port, "openid email");
    let device_code = d["device_code"].as_str().unwrap();
    let consent = b.enter(d["user_code"].as_str().unwrap(), None);
    assert_eq!(consent.status, 200, "{}", consent.body);
    let csrf = csrf_of(&consent);
    let r = b.post(VERIFY, &[("csrf", &csrf), ("user_code", d["user_code"].as_str().unwrap()), ("decision", "deny")]);
    assert_eq!(r.status, 200);
    assert!(r.body.contains("Request refused"), "{}", r.body);
    assert_eq!(oauth_error(&tv_poll(s.port, device_code)), (400, "access_denied".into()));
    assert_eq!(oauth_error(&tv_poll(s.port, device_code)), (400, "access_denied".into()), "and stays so");
    assert_eq!(rows(s.dir.path(), "SELECT status, subject FROM oidc_device_codes"), ["denied|john"]);
    assert_eq!(rows(s.dir.path(), "SELECT client_id, granted FROM oidc_consents"), ["tv|0"]);

    // A client whose policy denies the user: refused at once, the device told so.
    let r = device_authorize(s.port, &[("client_id", "kiosk")]);
    let kiosk = r.json();
    let r = b.enter(kiosk["user_code"].as_str().unwrap(), None);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("You may not use this application"), "{}", r.body);
    let poll = post_form(
        s.port,
        "/api/oidc/token",
        &[("grant_type", GRANT), ("device_code", kiosk["device_code"].as_str().unwrap()), ("client_id", "kiosk")],
    );
    assert_eq!(oauth_error(&poll), (400, "access_denied".into()));

    // A two-factor client: the password is not enough; the second factor, then consent.
    let d = device_authorize(s.port, &[("client_id", "cli"), ("scope", "openid")]).json();
    let code = d["user_code"].as_str().unwrap();
    let r = b.enter(code, None);
    assert_eq!(r.status, 303, "{}", r.body);
    let login = r.header("location").unwrap().to_string();
    let back = format!("{ISSUER}{VERIFY}?{}", form(&[("user_code", code), ("client_id", "cli")]));
    assert_eq!(login, format!("{ISSUER}/login?{}", form(&[("rd", &back)])));
    let r = b.get(&login);
    assert_eq!(r.status, 302, "{}", r.body);
    assert!(r.header("location").unwrap().starts_with("/login/totp?rd="), "{:?}", r.header("location"));
    b.totp();
    let consent = b.enter(code, None);
    assert!(consent.body.contains("Command Line"), "{}", consent.body);
    let csrf = csrf_of(&consent);
    let r = b.post(VERIFY, &[("csrf", &csrf), ("user_code", code), ("decision", "accept")]);
    assert!(r.body.contains("Device connected"), "{}", r.body);
    let t = post_form(
        s.port,
        "/api/oidc/token",
        &[("grant_type", GRANT), ("device_code", d["device_code"].as_str().unwrap()), ("client_id", "cli")],
    );
    assert_eq!(t.status, 200, "{}", t.body);
    assert!(t.json().get("refresh_token").is_none(), "cli has no refresh grant");
    let claims = verify_id_token(s.port, t.json()["id_token"].as_str().unwrap(), "cli");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
}

#[test]
fn wrong_user_codes_lock_code_entry() {
    let s = start();
    let d = tv_device(s.port, "openid");
    let mut b = one_factor(s.port);
    let right = d["user_code"].as_str().unwrap();
    // Four codes one letter off the right one, and one that is no code at all.
    let mut wrong: Vec<String> = (0..4)
        .map(|i| {
            let mut letters: Vec<char> = right.replace('-', "").chars().collect();
            letters[i] = if letters[i] == 'B' { 'C' } else { 'B' };
            letters.into_iter().collect()
        })
        .collect();
    wrong.push("not a code".into());
    for code in &wrong {
        let r = b.enter(code, None);
        assert_eq!(r.status, 400, "{code}: {}", r.body);
        assert!(r.body.contains("This code is not valid"), "{}", r.body);
    }
    // Locked now, even for the right code, and for a decision posted directly.
    let r = b.enter(right, None);
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.body.contains("Too many wrong codes"), "{}", r.body);
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!(retry > 500 && retry <= 600, "{retry}");
    assert_eq!(b.enter(right, Some("accept")).status, 429);
    // Another session from the same address is locked too.
    let mut other = one_factor(s.port);
    assert_eq!(other.enter(right, None).status, 429);
    assert_eq!(
        oauth_error(&tv_poll(s.port, d["device_code"].as_str().unwrap())),
        (400, "authorization_pending".into())
    );
    assert_eq!(rows(s.dir.path(), "SELECT status FROM oidc_device_codes"), ["pending"]);
}
