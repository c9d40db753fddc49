//! The portal over plain HTTP against the real binary: pages, CSRF refusals, static files.
//! The full flows run in Chromium (integration/browser/run.py).

mod common;

use common::*;

/// A server with one user (with none, the login page is the first administrator's form).
fn start() -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let users = format!("users:\n  john:\n    displayname: John\n    password: '{}'\n", argon2_hash("a password"));
    std::fs::write(dir.path().join("users.yml"), users).unwrap();
    let yaml = config_yaml(port, dir.path(), "");
    Server::start(Some(&yaml), port, &[])
}

#[test]
fn login_page_form_csrf_cookie_and_policy() {
    let s = start();
    let r = get(s.port, "/login?rd=https%3A%2F%2Fapp.example.com%2F", &[]);
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    assert!(r.body.contains(r#"autocomplete="username""#) && r.body.contains(r#"autocomplete="current-password""#));
    assert!(r.body.contains(r#"name="rd" value="https:&#x2f;&#x2f;app.example.com&#x2f;""#), "{}", r.body);
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.contains("form-action 'self' https://example.com:* https://*.example.com:*"), "{csp}");
    let set_cookie = r.header("set-cookie").unwrap();
    assert!(
        set_cookie.starts_with("portcullis_csrf=")
            && set_cookie.contains("HttpOnly")
            && set_cookie.contains("SameSite=Strict")
    );
    // An unsafe target is dropped from the form.
    let r = get(s.port, "/login?rd=https%3A%2F%2Fevil.example%2F", &[]);
    assert!(r.body.contains(r#"name="rd" value="""#));
    // The portal root sends the browser to the login page, keeping the query.
    let r = get(s.port, "/?rd=x&rm=GET", &[]);
    assert_eq!((r.status, r.header("location")), (302, Some("/login?rd=x&rm=GET")));
}

#[test]
fn posts_need_a_valid_token_and_the_same_origin() {
    let s = start();
    let page = get(s.port, "/login", &[]);
    let cookie = page.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let token = page.body.split(r#"name="csrf" value=""#).nth(1).unwrap().split('"').next().unwrap().to_string();
    let form = |t: &str| format!("csrf={t}&username=nobody&password=x");
    let post = |headers: &[(&str, &str)], body: &str| {
        let mut h = vec![("Content-Type", "application/x-www-form-urlencoded")];
        h.extend_from_slice(headers);
        request(s.port, "POST", "/login", &h, body)
    };
    assert_eq!(post(&[("Cookie", &cookie)], &form("")).status, 403, "no token");
    assert_eq!(post(&[("Cookie", &cookie)], &form(&"0".repeat(64))).status, 403, "wrong token");
    assert_eq!(post(&[], &form(&token)).status, 403, "token without its cookie");
    let foreign = [("Cookie", cookie.as_str()), ("Origin", "https://evil.example")];
    assert_eq!(post(&foreign, &form(&token)).status, 403, "foreign origin");
    let cross = [("Cookie", cookie.as_str()), ("Sec-Fetch-Site", "cross-site")];
    assert_eq!(post(&cross, &form(&token)).status, 403, "cross-site fetch metadata");
    let ok = [("Cookie", cookie.as_str()), ("Origin", "http://auth.example.com")];
    let r = post(&ok, &form(&token));
    assert_eq!(r.status, 401, "a valid post reaches the login, which refuses the unknown user");
    assert!(r.body.contains("Authentication failed"), "the error is shown inline");
}

#[test]
fn static_files_are_hashed_and_cached() {
    let s = start();
    let page = get(s.port, "/login", &[]);
    let href =
        page.body.split(r#"rel="stylesheet" href=""#).nth(1).unwrap().split('"').next().unwrap().replace("&#x2f;", "/");
    assert!(href.starts_with("/static/css/main.") && href.ends_with(".css"), "{href}");
    let css = get(s.port, &href, &[]);
    assert_eq!(css.status, 200);
    assert!(css.header("cache-control").unwrap().contains("immutable"));
    let etag = css.header("etag").unwrap().to_string();
    assert_eq!(get(s.port, "/static/css/main.css", &[("If-None-Match", &etag)]).status, 304);
    assert_eq!(get(s.port, "/static/css/nope.css", &[]).status, 404);
    let profile = get(s.port, "/profile", &[]);
    assert_eq!((profile.status, profile.header("location")), (302, Some("/login")), "the account needs a login");
}
