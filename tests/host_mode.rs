//! Seed 004's two deployment modes against the binary: every path of its tables, with and
//! without a dedicated auth host (`PORTCULLIS_AUTH_HOST`), by status and Location.

mod common;

use common::*;
use serde_json::json;

const PASSWORD: &str = "correct horse battery";

fn start(auth_host: Option<&str>) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let users = format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [dev]\n",
        argon2_hash(PASSWORD)
    );
    std::fs::write(dir.path().join("users.yml"), users).unwrap();
    let extra = "access_control:\n  default_policy: one_factor\n";
    let yaml = config_yaml(port, dir.path(), extra);
    let env: Vec<(&str, &str)> = auth_host.map(|h| vec![("PORTCULLIS_AUTH_HOST", h)]).unwrap_or_default();
    (Server::start(Some(&yaml), port, &env), dir)
}

fn at(server: &Server, method: &str, host: &str, path: &str, cookie: Option<&str>) -> Response {
    let mut headers = vec![("Host", host)];
    if let Some(c) = cookie {
        headers.push(("Cookie", c));
    }
    request(server.port, method, path, &headers, "")
}

/// A stylesheet the portal serves, by its hashed name.
fn asset(server: &Server) -> String {
    let page = at(server, "GET", "auth.example.com", "/login", None).body;
    let href = page.split("href=\"").find(|s| s.contains(".css")).unwrap().split('"').next().unwrap();
    href.replace("&#x2f;", "/").trim_start_matches("/static/").to_string()
}

fn sign_in(server: &Server) -> String {
    let body = json!({"username": "john", "password": PASSWORD}).to_string();
    let r = request(server.port, "POST", "/api/firstfactor", &[("Host", "auth.example.com")], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

#[test]
fn without_an_auth_host_every_host_serves_the_auth_paths() {
    let (s, _dir) = start(None);
    let css = asset(&s);
    for host in ["auth.example.com", "app.example.com"] {
        let r = at(&s, "GET", host, "/auth/", None);
        assert_eq!(r.status, 302, "{host}: {}", r.body);
        assert!(r.header("location").unwrap().ends_with("/login"), "{host}");
        let r = at(&s, "GET", host, "/auth/admin/", None);
        assert_ne!(r.status, 404, "{host}: the admin console");
        assert_eq!(at(&s, "GET", host, "/auth/restricted", None).status, 403);
        assert_eq!(at(&s, "GET", host, &format!("/auth/assets/{css}"), None).status, 200, "{host}");
        assert_eq!(at(&s, "POST", host, "/auth/api/validate", None).status, 401);
        assert_eq!(at(&s, "POST", host, "/auth/api/user/logout-all", None).status, 403, "served, refused");
        assert_eq!(at(&s, "GET", host, "/login", None).status, 200);
    }
}

#[test]
fn a_dedicated_auth_host_keeps_the_portal_and_other_hosts_redirect_or_hide() {
    let (s, _dir) = start(Some("auth.example.com"));
    let css = asset(&s);
    let cookie = sign_in(&s);

    // The auth host: the portal at its root.
    let r = at(&s, "GET", "auth.example.com", "/", None);
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().ends_with("/login"));
    assert_ne!(at(&s, "GET", "auth.example.com", "/admin/", None).status, 404);
    assert_eq!(at(&s, "GET", "auth.example.com", "/restricted", None).status, 403);
    assert_eq!(at(&s, "POST", "auth.example.com", "/auth/api/user/logout-all", None).status, 403, "served there");

    // A device-addition link lives at the auth host's root, and is made for it there.
    let unknown = at(&s, "GET", "auth.example.com", "/pdl_0123456789abcdefghijklmnopqrstuv", None);
    assert_eq!(unknown.status, 404, "an unknown link's page: {}", unknown.body);
    let made =
        request(s.port, "POST", "/auth/api/create-link", &[("Host", "auth.example.com"), ("Cookie", &cookie)], "{}");
    assert_eq!(made.status, 200, "{}", made.body);
    let token = made.json()["data"]["token"].as_str().unwrap().to_string();
    assert_eq!(made.json()["data"]["url"], format!("https://auth.example.com/{token}"));
    let page = at(&s, "GET", "auth.example.com", &format!("/{token}"), None);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("data-device-link"), "{}", page.body);
    let r = at(&s, "GET", "app.example.com", &format!("/auth/{token}"), None);
    assert_eq!((r.status, r.header("location")), (307, Some(format!("https://auth.example.com/{token}").as_str())));

    // Other hosts: an account summary at / and /auth/.
    for path in ["/", "/auth/", "/auth"] {
        let r = at(&s, "GET", "app.example.com", path, None);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert!(r.body.contains("data-summary-anonymous"), "{path}");
        let r = at(&s, "GET", "app.example.com", path, Some(&cookie));
        assert!(r.body.contains("data-summary-user") && r.body.contains("John Doe"), "{path}: {}", r.body);
    }
    // Portal pages go to the auth host with 307, /auth stripped, query kept.
    for (path, location) in [
        ("/auth/admin/", "https://auth.example.com/admin/"),
        ("/admin/", "https://auth.example.com/admin/"),
        ("/admin", "https://auth.example.com/admin"),
        ("/auth/restricted", "https://auth.example.com/restricted"),
        ("/auth/pdl_0123456789abcdefghijklmnopqrstuv", "https://auth.example.com/pdl_0123456789abcdefghijklmnopqrstuv"),
        (
            "/login?rd=https%3A%2F%2Fapp.example.com%2F",
            "https://auth.example.com/login?rd=https%3A%2F%2Fapp.example.com%2F",
        ),
        ("/profile", "https://auth.example.com/profile"),
    ] {
        let r = at(&s, "GET", "app.example.com", path, None);
        assert_eq!((r.status, r.header("location")), (307, Some(location)), "{path}");
    }
    let r = at(&s, "POST", "app.example.com", "/login", None);
    assert_eq!((r.status, r.header("location")), (307, Some("https://auth.example.com/login")), "method kept");
    // Restricted namespaces: 404, even signed in.
    for path in [
        "/auth/api/user/logout-all",
        "/auth/api/user/display-name",
        "/auth/api/user",
        "/auth/api/admin",
        "/auth/api/admin/orgs",
        "/auth/api/ws",
        "/auth/ws/register",
        "/auth/ws/authenticate",
    ] {
        for method in ["GET", "POST"] {
            assert_eq!(at(&s, method, "app.example.com", path, Some(&cookie)).status, 404, "{method} {path}");
        }
    }
    // The unrestricted API and the assets are served on every host.
    assert_eq!(at(&s, "POST", "app.example.com", "/auth/api/validate", Some(&cookie)).status, 200);
    assert_eq!(at(&s, "POST", "app.example.com", "/auth/api/user-info", Some(&cookie)).status, 200);
    assert_eq!(at(&s, "POST", "app.example.com", "/auth/api/validate", None).status, 401);
    assert_eq!(at(&s, "GET", "app.example.com", &format!("/auth/assets/{css}"), None).status, 200);
    // Authelia's API and the authorization endpoints do not move.
    let r = get(
        s.port,
        "/api/authz/forward-auth",
        &[
            ("Host", "127.0.0.1"),
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/"),
            ("Cookie", cookie.as_str()),
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(at(&s, "GET", "app.example.com", "/api/health", None).status, 200);
}

#[test]
fn a_bad_auth_host_stops_the_start_with_its_key() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), "users: {}\n").unwrap();
    let yaml = config_yaml(free_port(), dir.path(), "");
    let path = dir.path().join("configuration.yml");
    std::fs::write(&path, yaml).unwrap();
    let out = run(
        &["--config", path.to_str().unwrap()],
        dir.path(),
        &[("PORTCULLIS_AUTH_HOST", "https://auth.example.com/with/path")],
    );
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("server.auth_host"), "{stderr}");
}
