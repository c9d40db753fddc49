//! The application answering in-process (no socket): the authorization matrix through the
//! HTTP adapter, the portal's flows page by page, a storage failure on a portal page, and
//! one ban refused alike by every way of presenting a password.

mod common;

use common::in_process::{Browser, TestApp, TestUser};
use portcullis::second_factor::totp::TotpService;
use portcullis::session::SessionData;
use portcullis::storage::TotpRecord;
use serde_json::json;

const JOHN: TestUser = TestUser { name: "john", password: "correct horse", groups: &["dev"] };

const RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: public.example.com, policy: bypass}
    - {domain: one.example.com, policy: one_factor}
    - {domain: two.example.com, policy: two_factor}
    - {domain: deny.example.com, policy: deny}
    - {domain: devs.example.com, policy: one_factor, subject: 'group:admins'}
";

fn now() -> i64 {
    portcullis::clock::now()
}

/// A session cookie at `level` (0, 1 or 2) for john, minted through the session service.
async fn session_cookie(t: &TestApp, level: u8) -> String {
    let sessions = &t.app.services.sessions;
    let settings = sessions.cookie_for_host("auth.example.com").unwrap();
    let mut data = SessionData::default();
    if level >= 1 {
        data.username = "john".into();
        data.display_name = "john Doe".into();
        data.emails = vec!["john@example.com".into()];
        data.groups = vec!["dev".into()];
        data.first_factor_at = Some(now());
    }
    if level >= 2 {
        data.second_factor_at = Some(now());
    }
    let (_, cookie) = sessions.issue(settings, None, data, now()).await.unwrap();
    cookie.split(';').next().unwrap().to_string()
}

/// The headers each implementation's proxy sends for a browser GET of `url`.
fn proxy_headers(implementation: &str, url: &str) -> Vec<(String, String)> {
    let parsed = url::Url::parse(url).unwrap();
    let host = parsed.host_str().unwrap().to_string();
    let mut h = vec![("accept".to_string(), "text/html".to_string())];
    match implementation {
        "forward-auth" => {
            h.push(("x-forwarded-method".into(), "GET".into()));
            h.push(("x-forwarded-proto".into(), "https".into()));
            h.push(("x-forwarded-host".into(), host));
            h.push(("x-forwarded-uri".into(), parsed.path().into()));
        }
        "auth-request" | "verify" => {
            h.push(("x-original-method".into(), "GET".into()));
            h.push(("x-original-url".into(), url.into()));
        }
        _ => {
            h.push(("x-forwarded-proto".into(), "https".into()));
            h.push(("x-forwarded-host".into(), host));
        }
    }
    h
}

/// Every session level against every policy, through each implementation's adapter.
#[tokio::test]
async fn authorization_matrix_in_process() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let cookies = [None, Some(session_cookie(&t, 1).await), Some(session_cookie(&t, 2).await)];
    // (host, expected status for anonymous, one factor, two factors); a login is a 302
    // except for AuthRequest (401); a rule for other groups forbids a logged-in user.
    let table = [
        ("public", [200, 200, 200]),
        ("one", [302, 200, 200]),
        ("two", [302, 302, 200]),
        ("deny", [403, 403, 403]),
        ("devs", [302, 403, 403]),
    ];
    for implementation in ["forward-auth", "auth-request", "ext-authz", "verify"] {
        for (host, expected) in table {
            for (level, cookie) in cookies.iter().enumerate() {
                let url = format!("https://{host}.example.com/page");
                let mut headers = proxy_headers(implementation, &url);
                if let Some(c) = cookie {
                    headers.push(("cookie".into(), c.clone()));
                }
                let path = match implementation {
                    "verify" => "/api/verify".to_string(),
                    "ext-authz" => "/api/authz/ext-authz/page".to_string(),
                    name => format!("/api/authz/{name}"),
                };
                let mut b = t.browser();
                b.host = "portcullis.internal".into();
                let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                let r = b.send("GET", &path, &refs, "").await;
                let mut want = expected[level];
                if want == 302 && implementation == "auth-request" {
                    want = 401;
                }
                assert_eq!(r.status, want, "{implementation} {host} level {level}: {}", r.body);
                if want == 200 && level > 0 {
                    assert_eq!(r.header("remote-user"), Some("john"), "{implementation} {host}");
                    assert_eq!(r.header("remote-groups"), Some("dev"));
                }
                if want == 302 || (want == 401 && implementation == "auth-request") {
                    let location = r.header("location").unwrap();
                    assert!(location.starts_with("https://auth.example.com/?rd="), "{location}");
                }
            }
        }
    }
}

/// Basic credentials at the proxy go through the same regulated check as a login.
#[tokio::test]
async fn basic_credentials_in_process() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    let url = "https://one.example.com/";
    let good = format!("Basic {}", base64_encode("john:correct horse"));
    let bad = format!("Basic {}", base64_encode("john:wrong"));
    for (auth, want) in [(good.as_str(), 200), (bad.as_str(), 401)] {
        let mut headers = proxy_headers("forward-auth", url);
        headers.push(("authorization".into(), auth.to_string()));
        let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let r = b.send("GET", "/api/authz/forward-auth", &refs, "").await;
        assert_eq!(r.status, want, "{}", r.body);
        if want == 401 {
            assert!(r.header("www-authenticate").unwrap().starts_with("Basic"));
        }
    }
}

fn base64_encode(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn record(secret: &str) -> TotpRecord {
    common::totp_record(secret)
}

/// Logs in through the portal's form; returns the answer to the form.
async fn portal_login(b: &mut Browser, rd: &str) -> common::in_process::Reply {
    let form = b.get(&format!("/login?rd={}", urlencode(rd))).await;
    assert_eq!(form.status, 200, "{}", form.body);
    b.submit(&form, "/login", &[("username", "john"), ("password", "correct horse"), ("rd", rd)]).await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The portal, page by page: login, elevation by mailed code, TOTP setup, sign-out, and
/// login again with the second factor on to the target.
#[tokio::test]
async fn portal_flows_in_process() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();

    // No second factor yet, no target: on to the account page.
    let r = portal_login(&mut b, "").await;
    assert_eq!((r.status, r.header("location")), (303, Some("/profile")), "{}", r.body);
    let profile = b.get("/profile").await;
    assert_eq!(profile.status, 200);
    assert!(profile.body.contains("john Doe"), "{}", profile.body);

    // Setting up TOTP needs elevation: a code by mail.
    let r = b.get("/profile/totp/enroll").await;
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/profile/elevate?next=%2Fprofile%2Ftotp%2Fenroll"));
    let form = b.get("/profile/elevate?next=/profile/totp/enroll").await;
    let asked = b.submit(&form, "/profile/elevate", &[("next", "/profile/totp/enroll")]).await;
    assert_eq!(asked.status, 200, "{}", asked.body);
    let code = t.last_code();
    let wrong = b.submit(&asked, "/profile/elevate", &[("otc", "WRONGCODE"), ("next", "/profile/totp/enroll")]).await;
    assert!(wrong.body.contains("Check your code"), "{}", wrong.body);
    let elevated = b.submit(&wrong, "/profile/elevate", &[("otc", &code), ("next", "/profile/totp/enroll")]).await;
    assert_eq!((elevated.status, elevated.header("location")), (303, Some("/profile/totp/enroll")));

    let enroll = b.get("/profile/totp/enroll").await;
    assert_eq!(enroll.status, 200, "{}", enroll.body);
    let at = enroll.body.find("<code").expect("the setup key is shown");
    let secret: String = enroll.body[at..].split('>').nth(1).unwrap().split('<').next().unwrap().replace(' ', "");
    let totp_code = TotpService::code_at(&record(&secret), now()).unwrap();
    let codes = b.submit(&enroll, "/profile/totp/enroll", &[("code", &totp_code)]).await;
    assert_eq!(codes.status, 200, "{}", codes.body);
    assert!(codes.body.contains("Recovery codes"), "{}", codes.body);

    // Signed out, then in again: the password leads to the TOTP page, the code to the target.
    let confirm = b.get("/logout").await;
    let out = b.submit(&confirm, "/logout", &[]).await;
    assert_eq!(out.status, 200);
    assert_eq!(b.get("/profile").await.status, 302, "the session is gone");
    let target = "https://two.example.com/page";
    let r = portal_login(&mut b, target).await;
    assert_eq!(r.status, 303);
    assert_eq!(r.header("location").unwrap(), format!("/login/totp?rd={}", urlencode(target)));
    let page = b.get(r.header("location").unwrap()).await;
    let bad = b.submit(&page, "/login/totp", &[("code", "000000"), ("rd", target)]).await;
    assert_eq!(bad.status, 401, "{}", bad.body);
    // The code used for the setup is spent; the next step's is accepted (skew 1).
    let mut code = TotpService::code_at(&record(&secret), now()).unwrap();
    if code == totp_code {
        code = TotpService::code_at(&record(&secret), now() + 30).unwrap();
    }
    let done = b.submit(&bad, "/login/totp", &[("code", &code), ("rd", target)]).await;
    assert_eq!((done.status, done.header("location")), (303, Some(target)), "{}", done.body);
    let state = b.api("GET", "/api/state", serde_json::Value::Null).await;
    assert_eq!(state.json()["data"]["authentication_level"], 2);

    // The audit trail saw it all, with the browser's request IDs.
    let events =
        t.app.services.storage.audit_list(portcullis::storage::AuditFilter { limit: 100, ..Default::default() });
    let events = events.await.unwrap();
    let seen = |name: &str, outcome: &str| {
        events.iter().any(|e| e.event == name && e.outcome == outcome && e.subject == "john")
    };
    assert!(seen("authentication", "success"), "{events:?}");
    assert!(seen("authentication", "failure"), "the wrong TOTP code: {events:?}");
    assert!(seen("second_factor.added", "success"), "{events:?}");
    assert!(events.iter().all(|e| !e.request_id.is_empty() && e.remote_ip == "127.0.0.1"));

    // Signing out everywhere is audited too.
    let profile = b.get("/profile").await;
    let r = b.submit(&profile, "/profile/sign-out-everywhere", &[]).await;
    assert_eq!(r.status, 303);
    let events = t.app.services.storage.audit_list(portcullis::storage::AuditFilter { limit: 1, ..Default::default() });
    assert_eq!(events.await.unwrap()[0].event, "sessions.revoked");
}

/// A form post without the page's token, or from another origin, changes nothing.
#[tokio::test]
async fn portal_posts_need_token_and_origin() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    let form = b.get("/login").await;
    let body = "username=john&password=correct+horse&csrf=forged";
    let r = b.send("POST", "/login", &[("content-type", "application/x-www-form-urlencoded")], body).await;
    assert_eq!(r.status, 403);
    let fields = format!("username=john&password=correct+horse&csrf={}", form.csrf());
    let headers = [("content-type", "application/x-www-form-urlencoded"), ("origin", "https://evil.example")];
    let r = b.send("POST", "/login", &headers, &fields).await;
    assert_eq!(r.status, 403);
    assert_eq!(b.api("GET", "/api/state", serde_json::Value::Null).await.json()["data"]["authentication_level"], 0);
    // A route answers only the methods it declares.
    let r = b.send("DELETE", "/api/secondfactor/totp/register", &[], "").await;
    assert_eq!(r.status, 403, "DELETE is declared (cancel); without a session it is refused");
    let r = b.send("PATCH", "/api/secondfactor/totp", &[], "").await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, POST, DELETE"));
}

/// With the database failing, the account page says so instead of showing empty facts.
#[tokio::test]
async fn storage_failure_shows_an_error_page() {
    use diesel::Connection;
    use diesel::connection::SimpleConnection;
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    portal_login(&mut b, "").await;
    assert_eq!(b.get("/profile").await.status, 200);

    let path = t.path().join("db.sqlite3");
    let mut db = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    db.batch_execute("DROP TABLE totp_configurations;").unwrap();

    let page = b.get("/profile").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.header("content-type").unwrap().starts_with("text/html"));
    assert!(page.body.contains("Storage is unavailable"), "{}", page.body);
    let api = b.api("GET", "/api/user/info", serde_json::Value::Null).await;
    assert_eq!(api.status, 503);
    assert_eq!(api.json()["message"], "Storage is unavailable; try again shortly");
}

/// Once banned, the user is refused alike by the login form's API, Basic credentials at
/// the proxy and a change of password — the right password changes nothing — and each
/// refusal is recorded as a banned attempt.
#[tokio::test]
async fn a_ban_is_refused_alike_everywhere_and_recorded() {
    use diesel::prelude::*;
    let t =
        TestApp::start(&format!("{RULES}\nregulation:\n  max_retries: 3\n  find_time: 2m\n  ban_time: 5m\n"), &[JOHN])
            .await;
    // A session from before the ban, for the change of password.
    let mut before = t.browser();
    let r = before.api("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"})).await;
    assert_eq!(r.status, 200);

    let mut b = t.browser();
    for _ in 0..3 {
        let r = b.api("POST", "/api/firstfactor", json!({"username": "john", "password": "wrong"})).await;
        assert_eq!(r.status, 401);
    }

    let login = b.api("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"})).await;
    assert_eq!(login.status, 429, "{}", login.body);
    assert!(login.header("retry-after").unwrap().parse::<i64>().unwrap() > 0);
    assert_eq!(login.json()["message"], "Authentication failed. Check your credentials.");

    let change = json!({"old_password": "correct horse", "new_password": "another horse battery"});
    let changed = before.api("POST", "/api/change-password", change).await;
    assert_eq!(changed.status, 429, "{}", changed.body);
    assert!(changed.header("retry-after").is_some());
    assert_eq!(changed.json()["message"], login.json()["message"]);

    let mut headers = proxy_headers("forward-auth", "https://one.example.com/");
    headers.push(("authorization".into(), format!("Basic {}", base64_encode("john:correct horse"))));
    let refs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let basic = b.send("GET", "/api/authz/forward-auth", &refs, "").await;
    assert_eq!(basic.status, 401, "{}", basic.body);
    assert!(basic.header("www-authenticate").is_some());

    let path = t.path().join("db.sqlite3");
    let mut db = diesel::SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        auth_type: String,
    }
    let banned: Vec<Row> = diesel::sql_query(
        "SELECT auth_type FROM authentication_logs WHERE banned = 1 AND username = 'john' ORDER BY id",
    )
    .load(&mut db)
    .unwrap();
    let kinds: Vec<&str> = banned.iter().map(|r| r.auth_type.as_str()).collect();
    assert_eq!(kinds.len(), 3, "one banned attempt per refusal: {kinds:?}");
    assert!(kinds.contains(&"Basic") && kinds.contains(&"1FA"), "{kinds:?}");
}

/// After elevation the user goes back only to the account page that asked: `next` is
/// never echoed into the redirect, so `/\evil.example.net` cannot be reached through it.
#[tokio::test]
async fn elevation_returns_only_to_known_pages() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    portal_login(&mut b, "").await;
    for (next, expected) in [
        ("/%5Cevil.example.net/phish", "/profile"),
        ("/\\evil.example.net/phish", "/profile"),
        ("//evil.example.net", "/profile"),
        ("https://evil.example.net/", "/profile"),
        ("/profile/totp/enroll", "/profile/totp/enroll"),
    ] {
        let form = b.get("/profile/elevate").await;
        let sent = b.submit(&form, "/profile/elevate", &[("next", next)]).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        let code = t.last_code();
        let r = b.submit(&sent, "/profile/elevate", &[("otc", &code), ("next", next)]).await;
        assert_eq!((r.status, r.header("location")), (303, Some(expected)), "next={next}");
    }
}

/// The mail's cancel link: a confirmation page, then the code is dead and the user is told
/// to change their password.
#[tokio::test]
async fn the_cancel_link_of_an_elevation_mail_works() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    portal_login(&mut b, "").await;
    let form = b.get("/profile/elevate").await;
    b.submit(&form, "/profile/elevate", &[]).await;
    let code = t.last_code();
    let mail = std::fs::read_to_string(t.path().join("notifications.txt")).unwrap();
    let link = mail.split_whitespace().rev().find(|w| w.contains("/revoke/one-time-code?id=")).expect("a cancel link");
    let path = &link[link.find("/revoke/").unwrap()..];

    // Anyone holding the mail may cancel, without a session.
    let mut other = t.browser();
    let confirm = other.get(path).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Cancel the code"), "{}", confirm.body);
    let done = other.submit(&confirm, path, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("change it now"), "{}", done.body);

    let elevate = b.get("/profile/elevate").await;
    let r = b.submit(&elevate, "/profile/elevate", &[("otc", &code)]).await;
    assert!(r.body.contains("Check your code"), "the cancelled code no longer elevates: {}", r.body);
}

/// The JSON API refuses what a page on another origin could send: a `text/plain` or form
/// body (no preflight needed), or a browser saying the request is cross-origin, even from
/// a sibling subdomain whose requests carry the session cookie.
#[tokio::test]
async fn the_api_refuses_cross_site_requests() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    let login = json!({"username": "john", "password": "correct horse"}).to_string();
    let r = b.api("POST", "/api/firstfactor", serde_json::from_str(&login).unwrap()).await;
    assert_eq!(r.status, 200);

    let sibling =
        [("content-type", "text/plain"), ("origin", "https://app.example.com"), ("sec-fetch-site", "same-site")];
    let r = b.send("POST", "/api/logout", &sibling, "{}").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = b.send("POST", "/api/logout", &[("content-type", "text/plain")], "{}").await;
    assert_eq!(r.status, 415, "{}", r.body);
    let r = b.send("POST", "/api/user/session/elevation", &[("sec-fetch-site", "same-site")], "").await;
    assert_eq!(r.status, 403, "{}", r.body);
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let r = b.send("POST", "/api/user/info/2fa_method", &form, "method=totp").await;
    assert_eq!(r.status, 415);
    let state = b.api("GET", "/api/state", serde_json::Value::Null).await;
    assert_eq!(state.json()["data"]["authentication_level"], 1, "nothing above ended the session");
    assert_eq!(std::fs::read_to_string(t.path().join("notifications.txt")).unwrap_or_default(), "", "no mail sent");

    // Login CSRF: a cross-site form logging the victim into the attacker's account.
    let mut victim = t.browser();
    let cross = [("content-type", "text/plain"), ("origin", "https://evil.example"), ("sec-fetch-site", "cross-site")];
    let r = victim.send("POST", "/api/firstfactor", &cross, &login).await;
    assert_eq!(r.status, 403);
    assert!(victim.cookies.is_empty(), "no session was set");

    // The portal's own script and Authelia's frontend send JSON from the same origin.
    let same = [
        ("content-type", "application/json; charset=utf-8"),
        ("origin", "https://auth.example.com"),
        ("sec-fetch-site", "same-origin"),
    ];
    let r = b.send("POST", "/api/logout", &same, "{}").await;
    assert_eq!(r.status, 200, "{}", r.body);
}

/// Anonymous requests leave nothing on the server: a flood of passkey challenges (and of
/// answers to them) stores no session; the challenge travels in a sealed cookie.
#[tokio::test]
async fn a_flood_of_anonymous_challenges_stores_nothing() {
    let t = TestApp::start(&format!("{RULES}\nwebauthn:\n  enable_passkey_login: true\n"), &[JOHN]).await;
    let portcullis::session::Store::Memory(store) = t.app.services.sessions.store() else {
        panic!("the test configuration uses the memory store")
    };
    for i in 0..5000 {
        let mut b = t.browser();
        let path = if i % 2 == 0 { "/api/firstfactor/passkey" } else { "/login/passkey/begin" };
        let r = b.get(path).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(b.cookies.contains_key("portcullis_passkey"));
        assert!(!b.cookies.contains_key("authelia_session"), "no session for an anonymous challenge");
        if i % 500 == 0 {
            let answer = json!({"response": {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
                "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA", "userHandle": "AAAA"}}});
            let r = b.api("POST", "/api/firstfactor/passkey", answer).await;
            assert_eq!(r.status, 401, "{}", r.body);
            assert!(!b.cookies.contains_key("portcullis_passkey"), "the challenge is taken");
        }
    }
    assert_eq!(store.len(), 0, "the store holds nothing");
    let mut tampered = t.browser();
    tampered.cookies.insert("portcullis_passkey".into(), "bm90IGEgc2VhbGVkIHN0YXRl".into());
    let r = tampered
        .api(
            "POST",
            "/api/firstfactor/passkey",
            json!({"response": {"id": "AAAA", "rawId": "AAAA", "type": "public-key",
        "response": {"authenticatorData": "AAAA", "clientDataJSON": "AAAA", "signature": "AAAA"}}}),
        )
        .await;
    assert_eq!(r.status, 400, "a cookie not sealed by the server is no challenge: {}", r.body);
}

// ---------------------------------------------------------------- targets the proxy cannot be tricked into

/// An app whose `/public` is open and everything else needs a login.
const PATH_RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: app.example.com, resources: ['^/public([/?].*)?$'], policy: bypass}
    - {domain: app.example.com, resources: ['^/read([/?].*)?$'], methods: [GET, HEAD], policy: bypass}
    - {domain: app.example.com, policy: one_factor}
";

/// Asks `endpoint` (an authorization path) with `headers`, the sub-request's Host being
/// `host`, as the proxy would; anonymous.
async fn ask(
    t: &TestApp,
    method: &str,
    endpoint: &str,
    host: &str,
    headers: &[(&str, &str)],
) -> common::in_process::Reply {
    let mut b = t.browser();
    b.host = host.into();
    let mut all = vec![("accept", "text/html")];
    all.extend_from_slice(headers);
    b.send(method, endpoint, &all, "").await
}

/// The authorization answer to an anonymous GET of `host` + `path` (raw, as the client sent
/// it) through each of the four implementations.
async fn ask_all(t: &TestApp, host: &str, path: &str) -> Vec<(&'static str, u16)> {
    let url = format!("https://{host}{path}");
    let fa = [
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", host),
        ("x-forwarded-uri", path),
    ];
    let ar = [("x-original-method", "GET"), ("x-original-url", url.as_str())];
    vec![
        ("ForwardAuth", ask(t, "GET", "/api/authz/forward-auth", "portcullis.internal", &fa).await.status),
        ("AuthRequest", ask(t, "GET", "/api/authz/auth-request", "portcullis.internal", &ar).await.status),
        (
            "ExtAuthz",
            ask(t, "GET", &format!("/api/authz/ext-authz{path}"), host, &[("x-forwarded-proto", "https")]).await.status,
        ),
        ("Legacy", ask(t, "GET", "/api/verify", "portcullis.internal", &ar).await.status),
        ("Legacy", ask(t, "GET", "/api/verify", "portcullis.internal", &fa).await.status),
    ]
}

/// NGINX picks the server by the Host header's part before `:` while a target built from
/// the whole header could carry the path elsewhere (`:#`, `:?`) or a different one (`:\p`):
/// such targets, fragments, empty or non-numeric ports and encoded hosts are refused (400).
#[tokio::test]
async fn a_target_cannot_hide_or_replace_its_path_in_the_host() {
    let t = TestApp::start(PATH_RULES, &[]).await;
    // Controls: an ordinary host, with or without a port.
    for host in ["app.example.com", "app.example.com:8443"] {
        for (implementation, status) in ask_all(&t, host, "/account").await {
            assert!(matches!(status, 302 | 401), "{implementation} {host}: {status}");
        }
        for (implementation, status) in ask_all(&t, host, "/public/x").await {
            assert_eq!(status, 200, "{implementation} {host}");
        }
    }
    let hosts = [
        "app.example.com:#",
        "app.example.com:?",
        "app.example.com:@",
        "app.example.com:\\public",
        "app.example.com:",
        "app.example.com:x",
        "app.example.com:443#",
        "x@app.example.com",
        "app%2eexample.com",
        "app.example.com\\public",
    ];
    for host in hosts {
        let url = format!("https://{host}/account");
        let ar = [("x-original-method", "GET"), ("x-original-url", url.as_str())];
        let r = ask(&t, "GET", "/api/authz/auth-request", "portcullis.internal", &ar).await;
        assert_eq!(r.status, 400, "AuthRequest {host}: {}", r.body);
        let r = ask(&t, "GET", "/api/verify", "portcullis.internal", &ar).await;
        assert_eq!(r.status, 400, "Legacy {host}: {}", r.body);
        let fa = [
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", host),
            ("x-forwarded-uri", "/account"),
        ];
        let r = ask(&t, "GET", "/api/authz/forward-auth", "portcullis.internal", &fa).await;
        assert_eq!(r.status, 400, "ForwardAuth {host}: {}", r.body);
        let r = ask(&t, "GET", "/api/authz/ext-authz/account", host, &[("x-forwarded-proto", "https")]).await;
        assert_eq!(r.status, 400, "ExtAuthz {host}: {}", r.body);
    }
    // A fragment in the target is never sent by a browser: refused wherever it appears.
    let ar = [("x-original-method", "GET"), ("x-original-url", "https://app.example.com/public#/../account")];
    assert_eq!(ask(&t, "GET", "/api/authz/auth-request", "portcullis.internal", &ar).await.status, 400);
    let fa = [
        ("x-forwarded-method", "GET"),
        ("x-forwarded-proto", "https"),
        ("x-forwarded-host", "app.example.com"),
        ("x-forwarded-uri", "/public/x#y"),
    ];
    assert_eq!(ask(&t, "GET", "/api/authz/forward-auth", "portcullis.internal", &fa).await.status, 400);
}

/// Paths are judged as every backend may read them: decoded once or until stable, with
/// `%2F` a separator or not, `//..` merged or not, `;` parameters kept or dropped. A
/// spelling whose readings differ in what they can reach (an encoded `%`, dot segment,
/// backslash, or slash unless `access_control.allow_encoded_slashes` is set) is refused
/// (400); the others get the strictest decision of their readings.
#[tokio::test]
async fn no_spelling_of_a_path_is_judged_weaker_than_a_backend_reads_it() {
    let t = TestApp::start(PATH_RULES, &[]).await;
    let refused = [
        "/account/%252e%252e/public",
        "/account/%252E%252E/public/x",
        "/account/%2e%2e/public",
        "/account/.%2E/public",
        "/account/%2e/../public",
        "/public/..%2faccount",
        "/public%2F..%2Faccount",
        "/account/%5c..%5cpublic",
        "/%2570ublic/x",
        "/public/%25%32%65%25%32%65/account",
    ];
    for path in refused {
        for (implementation, status) in ask_all(&t, "app.example.com", path).await {
            assert_eq!(status, 400, "{implementation} {path}");
        }
    }
    // Raw backslashes (some servers read them as `/`), where a proxy can send them.
    for path in ["/account\\..\\public", "/public\\x"] {
        let url = format!("https://app.example.com{path}");
        let ar = [("x-original-method", "GET"), ("x-original-url", url.as_str())];
        assert_eq!(ask(&t, "GET", "/api/authz/auth-request", "portcullis.internal", &ar).await.status, 400, "{path}");
    }
    // Unambiguous spellings are judged, by their strictest reading.
    let login = [
        "/account",
        "/public//../account",
        "/public/..;/account",
        "/public/x/..//../account",
        "/files/100%25",
        "/public/../account",
    ];
    for path in login {
        for (implementation, status) in ask_all(&t, "app.example.com", path).await {
            assert!(matches!(status, 302 | 401), "{implementation} {path}: {status}");
        }
    }
    for path in ["/public/x", "/public/a%20b", "/public/caf%C3%A9", "/public/100%25", "/public/x?next=%252e%252e"] {
        for (implementation, status) in ask_all(&t, "app.example.com", path).await {
            assert_eq!(status, 200, "{implementation} {path}");
        }
    }
}

/// With `access_control.allow_encoded_slashes`, `%2F` is accepted and judged both as a
/// separator and as part of a segment; the strictest reading decides.
#[tokio::test]
async fn encoded_slashes_when_allowed_are_judged_both_ways() {
    let t = TestApp::start(&format!("{PATH_RULES}  allow_encoded_slashes: true\n"), &[]).await;
    for path in ["/public%2F..%2Faccount", "/public/..%2Faccount", "/account%2Fpublic", "/repos/a%2Fb"] {
        for (implementation, status) in ask_all(&t, "app.example.com", path).await {
            assert!(matches!(status, 302 | 401), "{implementation} {path}: {status}");
        }
    }
    for (implementation, status) in ask_all(&t, "app.example.com", "/public/a%2Fb").await {
        assert_eq!(status, 200, "{implementation}");
    }
    // The other ambiguous encodings stay refused.
    for (implementation, status) in ask_all(&t, "app.example.com", "/account/%252e%252e/public").await {
        assert_eq!(status, 400, "{implementation}");
    }
}

/// `/api/verify` serves proxies that name the target in X-Forwarded-* (Traefik, Caddy,
/// which pass the client's other headers on) and ones that name it in X-Original-URL
/// (NGINX). A client must not pick what is judged by adding the other source: when both
/// are present they must name the same target and method, or the request is refused.
#[tokio::test]
async fn legacy_endpoint_does_not_let_the_client_pick_the_target() {
    let t = TestApp::start(PATH_RULES, &[]).await;
    let traefik = |uri: &'static str, method: &'static str| {
        vec![
            ("x-forwarded-method", method),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", uri),
        ]
    };
    // Each source alone is used.
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &traefik("/account", "GET")).await.status, 302);
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &traefik("/public/x", "GET")).await.status, 200);
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &traefik("/read/x", "POST")).await.status, 303);
    let nginx = [("x-original-method", "GET"), ("x-original-url", "https://app.example.com/public/x")];
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &nginx).await.status, 200);

    // The client adds X-Original-URL (or X-Original-Method) to what Traefik sends.
    let mut spoofed = traefik("/account", "GET");
    spoofed.push(("x-original-url", "https://app.example.com/public/x"));
    let r = ask(&t, "GET", "/api/verify", "portcullis.internal", &spoofed).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut spoofed = traefik("/read/x", "POST");
    spoofed.push(("x-original-method", "GET"));
    let r = ask(&t, "GET", "/api/verify", "portcullis.internal", &spoofed).await;
    assert_eq!(r.status, 400, "{}", r.body);
    let mut spoofed = traefik("/account", "GET");
    spoofed.push(("x-original-url", "https://other.example.com/account"));
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &spoofed).await.status, 400);

    // The client adds X-Forwarded-* to what NGINX sends.
    let mut spoofed = vec![("x-original-method", "GET"), ("x-original-url", "https://app.example.com/account")];
    spoofed.push(("x-forwarded-uri", "/public/x"));
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &spoofed).await.status, 400);

    // Both sources set by the proxy (Authelia's NGINX snippets do) and agreeing: judged.
    let mut both = traefik("/account?x=1", "GET");
    both.push(("x-original-url", "https://app.example.com/account?x=1"));
    both.push(("x-original-method", "GET"));
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &both).await.status, 302);
    let mut both = traefik("/public/x", "GET");
    both.push(("x-original-url", "https://app.example.com/public/x"));
    assert_eq!(ask(&t, "GET", "/api/verify", "portcullis.internal", &both).await.status, 200);
}

// ---------------------------------------------------------------- second factors under regulation

const REGULATED: &str = "regulation:\n  max_retries: 3\n  find_time: 2m\n  ban_time: 5m\n";

/// John with a TOTP device (stored directly) and a one-factor session in `b`.
async fn with_totp(t: &TestApp, b: &mut Browser) -> TotpRecord {
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let record = TotpRecord { created_at: now(), ..record(secret) };
    t.app.services.storage.totp_save(record.clone()).await.unwrap();
    let r = b.api("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    record
}

fn wrong_code(record: &TotpRecord) -> String {
    let right = TotpService::code_at(record, now()).unwrap();
    let next = TotpService::code_at(record, now() + 30).unwrap();
    let previous = TotpService::code_at(record, now() - 30).unwrap();
    (0..1_000_000).map(|n| format!("{n:06}")).find(|c| *c != right && *c != next && *c != previous).unwrap()
}

/// Knowing the password buys no extra guesses at the code: a successful password login
/// between wrong codes does not clear them, and the fourth wrong code is refused unchecked.
#[tokio::test]
async fn password_logins_between_wrong_codes_do_not_reset_the_count() {
    let t = TestApp::start(&format!("{RULES}\n{REGULATED}"), &[JOHN]).await;
    let mut b = t.browser();
    let record = with_totp(&t, &mut b).await;
    let wrong = wrong_code(&record);
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let r = b.api("POST", "/api/secondfactor/totp", json!({"token": wrong})).await;
        statuses.push(r.status);
        // A fresh, correct password login between every two guesses.
        let login = b.api("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"})).await;
        if r.status == 429 {
            assert_eq!(login.status, 429, "a banned account is banned for passwords too");
        }
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429, 429]);
    // Even the right code is refused during the ban.
    let right = TotpService::code_at(&record, now()).unwrap();
    let r = b.api("POST", "/api/secondfactor/totp", json!({"token": right})).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert!(r.header("retry-after").is_some());
}

/// Guesses sent at once are each counted before the next is judged: of 60 concurrent
/// wrong codes with a limit of 3, exactly 3 are checked.
#[tokio::test]
async fn concurrent_wrong_codes_are_checked_only_up_to_the_limit() {
    let t = TestApp::start(&format!("{RULES}\n{REGULATED}"), &[JOHN]).await;
    let mut b = t.browser();
    let record = with_totp(&t, &mut b).await;
    let wrong = wrong_code(&record);
    let guesses = (0..60).map(|_| {
        let mut guesser = t.browser();
        guesser.cookies = b.cookies.clone();
        let body = json!({"token": wrong});
        async move { guesser.api("POST", "/api/secondfactor/totp", body).await.status }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!((checked, refused), (3, 57), "{statuses:?}");
}

// ---------------------------------------------------------------- the admin console

const ROOT: TestUser = TestUser { name: "root", password: "root password", groups: &["admins"] };

/// Root signed in with two factors (TOTP stored directly).
async fn admin_browser(t: &TestApp) -> Browser {
    let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    let record = TotpRecord { username: "root".into(), created_at: now(), ..record(secret) };
    t.app.services.storage.totp_save(record.clone()).await.unwrap();
    let mut b = t.browser();
    let r = b.api("POST", "/api/firstfactor", json!({"username": "root", "password": "root password"})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r =
        b.api("POST", "/api/secondfactor/totp", json!({"token": TotpService::code_at(&record, now()).unwrap()})).await;
    assert_eq!(r.status, 200, "{}", r.body);
    b
}

/// Who sees the console: nobody signed out (sent to sign in), no non-admin and no
/// one-factor admin (a 403 page without admin data).
#[tokio::test]
async fn the_console_is_for_two_factor_admins_only() {
    let t = TestApp::start(RULES, &[JOHN, ROOT]).await;
    let mut anonymous = t.browser();
    let r = anonymous.get("/admin/users").await;
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().starts_with("/login?rd=https%3A%2F%2Fauth.example.com%2Fadmin%2Fusers"));
    let mut john = t.browser();
    portal_login(&mut john, "").await;
    for path in ["/admin/users", "/admin/users/root", "/admin/audit", "/admin/audit.csv", "/admin/settings"] {
        let r = john.get(path).await;
        assert_eq!(r.status, 403, "{path}");
        assert!(!r.body.contains("root@example.com") && !r.body.contains("admin.user"), "{path}: {}", r.body);
    }
    let mut root = t.browser();
    let r = root.api("POST", "/api/firstfactor", json!({"username": "root", "password": "root password"})).await;
    assert_eq!(r.status, 200);
    let r = root.get("/admin/users").await;
    assert_eq!(r.status, 403);
    assert!(r.body.contains("two factors"), "{}", r.body);
    assert!(r.body.contains("totp?rd=https%3A%2F%2Fauth.example.com%2Fadmin%2Fusers"), "{}", r.body);

    // Signing in for the console goes on to the second factor, as a two-factor rule does.
    let mut root = t.browser();
    let rd = "https://auth.example.com/admin/users";
    let form = root.get(&format!("/login?rd={}", urlencode(rd))).await;
    let r = root.submit(&form, "/login", &[("username", "root"), ("password", "root password"), ("rd", rd)]).await;
    // root has no second factor yet: the second-factor page offers to set one up.
    assert_eq!((r.status, r.header("location")), (200, None), "{}", r.body);
    assert!(r.body.contains("<h1>Second factor</h1>"), "{}", r.body);
}

/// The console's pages and actions: create, confirm a destructive action, the audit page
/// and its exports, the settings with secrets redacted; each page under 50 KB.
#[tokio::test]
async fn the_console_manages_users_and_shows_the_trail() {
    let t = TestApp::start(RULES, &[JOHN, ROOT]).await;
    let mut a = admin_browser(&t).await;
    let list = a.get("/admin/users").await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert!(list.body.contains("john") && list.body.contains("root"));
    let filtered = a.get("/admin/users?group=admins").await;
    assert!(filtered.body.contains(">root<") && !filtered.body.contains(">john<"), "{}", filtered.body);

    let created = a
        .submit(
            &list,
            "/admin/users",
            &[
                ("username", "kim"),
                ("email", "kim@example.com"),
                ("groups", "dev, ops"),
                ("password", "kim password 1"),
            ],
        )
        .await;
    assert_eq!(
        (created.status, created.header("location")),
        (303, Some("/admin/users/kim?done=created")),
        "{}",
        created.body
    );
    let page = a.get("/admin/users/kim?done=created").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("The user was created.") && page.body.contains("dev, ops"));

    // A destructive action asks first; nothing happens until confirmed.
    let asked = a.submit(&page, "/admin/users/kim", &[("action", "disable")]).await;
    assert_eq!(asked.status, 200);
    assert!(asked.body.contains("Please confirm"), "{}", asked.body);
    assert!(!t.app.services.users.get("kim").await.unwrap().unwrap().disabled);
    let done = a.submit(&asked, "/admin/users/kim", &[("action", "disable"), ("id", ""), ("confirmed", "1")]).await;
    assert_eq!(done.status, 303);
    assert!(t.app.services.users.get("kim").await.unwrap().unwrap().disabled);
    let page = a.get("/admin/users/kim").await;
    let wrong = a
        .submit(&page, "/admin/users/kim", &[("action", "set_password"), ("password", "a"), ("password_repeat", "b")])
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong.body.contains("do not match"), "{}", wrong.body);

    let audit = a.get("/admin/audit?user=kim").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("admin.user.created") && audit.body.contains("admin.user.updated"), "{}", audit.body);
    let csv = a.get("/admin/audit.csv?user=kim").await;
    assert_eq!(csv.header("content-type"), Some("text/csv; charset=utf-8"));
    assert!(csv.header("content-disposition").unwrap().contains("audit.csv"));
    assert!(csv.body.starts_with("time,event,outcome,actor,subject,ip,user_agent,request_id,detail\r\n"));
    assert!(csv.body.contains("\"admin.user.created\",\"success\",\"root\",\"kim\""), "{}", csv.body);
    let json: serde_json::Value =
        serde_json::from_str(&a.get("/admin/audit.json?event=admin.user.*").await.body).unwrap();
    assert!(json.as_array().unwrap().iter().all(|e| e["event"].as_str().unwrap().starts_with("admin.user.")));

    let settings = a.get("/admin/settings").await;
    assert_eq!(settings.status, 200);
    assert!(settings.body.contains("&lt;redacted&gt;"), "secrets are redacted");
    assert!(!settings.body.contains("a-test-encryption-key-that-is-long-enough"), "the storage key is never shown");

    for path in ["/admin/users", "/admin/users/kim", "/admin/audit", "/admin/settings"] {
        let r = a.get(path).await;
        assert!(r.body.len() < 50 * 1024, "{path}: {} bytes", r.body.len());
    }
}

/// The reset mail links to Authelia's frontend routes, which the portal serves: the new
/// password form at `/reset-password/step2`, and the "I did not ask for this" link at
/// `/revoke/reset-password`, which (after a confirmation) kills the link.
#[tokio::test]
async fn the_reset_mail_links_work_at_authelias_routes() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    let forgot = b.get("/forgot-password").await;
    let sent = b.submit(&forgot, "/forgot-password", &[("username", "john")]).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    // The link is mailed after the answer (the same answer whether the account exists).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mail = loop {
        let mail = std::fs::read_to_string(t.path().join("notifications.txt")).unwrap_or_default();
        if mail.contains("/revoke/reset-password") || std::time::Instant::now() > deadline {
            break mail;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    let path_of = |needle: &str| {
        let link = mail.split_whitespace().find(|w| w.contains(needle)).unwrap_or_else(|| panic!("{needle} in {mail}"));
        link[link.find(needle).unwrap()..].to_string()
    };
    let step2 = path_of("/reset-password/step2?token=");
    let revoke = path_of("/revoke/reset-password?token=");

    let form = b.get(&step2).await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("name=\"password_repeat\""), "{}", form.body);

    let mut other = t.browser();
    let confirm = other.get(&revoke).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    assert!(confirm.body.contains("Cancel the link"), "{}", confirm.body);
    let done = other.submit(&confirm, &revoke, &[]).await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("The link is cancelled"), "{}", done.body);

    let r = b
        .submit(
            &form,
            "/reset-password/step2",
            &[("password", "N3w-Passw0rd!x"), ("password_repeat", "N3w-Passw0rd!x")],
        )
        .await;
    assert_ne!(r.status, 200, "a cancelled link sets no password: {}", r.body);
    assert!(!r.body.contains("Your password was changed"), "{}", r.body);
}

/// Mails sent before the cancel link moved to `/revoke/one-time-code?id=` still work.
#[tokio::test]
async fn older_elevation_cancel_links_still_work() {
    let t = TestApp::start(RULES, &[JOHN]).await;
    let mut b = t.browser();
    portal_login(&mut b, "").await;
    let form = b.get("/profile/elevate").await;
    b.submit(&form, "/profile/elevate", &[]).await;
    let code = t.last_code();
    let mail = std::fs::read_to_string(t.path().join("notifications.txt")).unwrap();
    let link = mail.split_whitespace().rev().find(|w| w.contains("/revoke/one-time-code?id=")).expect("a cancel link");
    let id = &link[link.find("id=").unwrap() + 3..];
    let path = format!("/revoke/elevation/{id}");
    let mut other = t.browser();
    let confirm = other.get(&path).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let done = other.submit(&confirm, &path, &[]).await;
    assert!(done.body.contains("change it now"), "{}", done.body);
    let elevate = b.get("/profile/elevate").await;
    let r = b.submit(&elevate, "/profile/elevate", &[("otc", &code)]).await;
    assert!(r.body.contains("Check your code"), "the cancelled code no longer elevates: {}", r.body);
}
