//! The four authorization endpoints over HTTP against the real binary, with the headers each
//! proxy sends: anonymous, one factor, two factors required, deny, Basic credentials,
//! exact Location encoding, identity headers, spoofed X-Forwarded-For.

mod common;

use common::*;

const RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: public.example.com, policy: bypass}
    - {domain: app.example.com, resources: ['^/admin'], subject: 'group:admins', policy: two_factor}
    - {domain: app.example.com, resources: ['^/admin'], policy: deny}
    - {domain: secure.example.com, policy: two_factor}
    - {domain: app.example.com, resources: ['^/internal'], networks: ['192.0.2.0/24'], policy: bypass}
    - {domain: app.example.com, resources: ['^/internal'], policy: deny}
    - {domain: app.example.com, policy: one_factor}
    - {domain: blocked.example.com, policy: deny}
";

fn users() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins, dev]\n  mary:\n    displayname: Mary\n    password: '{}'\n    groups: [dev]\n",
        argon2_hash("john password"),
        argon2_hash("mary password")
    )
}

fn start(extra: &str) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users()).unwrap();
    let yaml = config_yaml(port, dir.path(), &format!("{RULES}\n{extra}"));
    let server = Server::start(Some(&yaml), port, &[]);
    (server, dir)
}

fn start_with_trusted(proxies: &[&str]) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users()).unwrap();
    let list = proxies.iter().map(|p| format!("'{p}'")).collect::<Vec<_>>().join(", ");
    let yaml = config_yaml(port, dir.path(), RULES).replace(
        &format!("  address: 'tcp://127.0.0.1:{port}/'\n"),
        &format!("  address: 'tcp://127.0.0.1:{port}/'\n  trusted_proxies: [{list}]\n"),
    );
    assert!(yaml.contains("trusted_proxies"));
    let server = Server::start(Some(&yaml), port, &[]);
    (server, dir)
}

fn login(port: u16, user: &str, password: &str) -> String {
    let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
    let r = request(port, "POST", "/api/firstfactor", &[], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

const HTML: (&str, &str) = ("Accept", "text/html,application/xhtml+xml");

/// A Traefik-style ForwardAuth request for `method url`.
fn forward_auth(port: u16, method: &str, url: &str, extra: &[(&str, &str)]) -> Response {
    let parsed = url::Url::parse(url).unwrap();
    let uri = match parsed.query() {
        Some(q) => format!("{}?{q}", parsed.path()),
        None => parsed.path().to_string(),
    };
    let mut headers = vec![
        ("X-Forwarded-Method", method),
        ("X-Forwarded-Proto", parsed.scheme()),
        ("X-Forwarded-Host", parsed.host_str().unwrap()),
        ("X-Forwarded-Uri", uri.as_str()),
    ];
    headers.extend_from_slice(extra);
    get(port, "/api/authz/forward-auth", &headers)
}

#[test]
fn forward_auth_decisions() {
    let (server, _dir) = start("");
    let port = server.port;

    let r = forward_auth(port, "GET", "https://app.example.com/page?x=1&y=a b", &[HTML]);
    assert_eq!(r.status, 302, "{}", r.body);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fpage%3Fx%3D1%26y%3Da%2520b&rm=GET")
    );
    assert!(r.header("remote-user").is_none());

    let r = forward_auth(port, "POST", "https://app.example.com/form", &[HTML]);
    assert_eq!(r.status, 303);
    assert!(r.header("location").unwrap().ends_with("&rm=POST"));

    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("X-Requested-With", "XMLHttpRequest"), HTML]);
    assert_eq!(r.status, 401, "XHR gets 401");
    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Accept", "application/json")]);
    assert_eq!(r.status, 401, "non-HTML clients get 401");

    let r = forward_auth(port, "GET", "https://public.example.com/", &[HTML]);
    assert_eq!(r.status, 200);
    assert!(r.header("remote-user").is_none());

    assert_eq!(forward_auth(port, "GET", "https://blocked.example.com/", &[HTML]).status, 403);
    // A deny rule after a subject rule: anonymous might be an admin, so log in first.
    assert_eq!(forward_auth(port, "GET", "https://app.example.com/admin", &[HTML]).status, 302);

    let john = login(port, "john", "john password");
    let r = forward_auth(port, "GET", "https://app.example.com/page", &[("Cookie", &john), HTML]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("remote-user"), Some("john"));
    assert_eq!(r.header("remote-groups"), Some("admins,dev"));
    assert_eq!(r.header("remote-name"), Some("John Doe"));
    assert_eq!(r.header("remote-email"), Some("john@example.com"));
    // A proxy that splits the cookies over several Cookie headers: the session is found
    // in any of them.
    let split = [("Cookie", "theme=dark"), ("Cookie", john.as_str()), ("Cookie", "lang=en"), HTML];
    assert_eq!(forward_auth(port, "GET", "https://app.example.com/page", &split).header("remote-user"), Some("john"));

    // One factor is not enough for two_factor rules: back to the portal.
    let r = forward_auth(port, "GET", "https://secure.example.com/", &[("Cookie", &john), HTML]);
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://auth.example.com/?rd=https%3A%2F%2Fsecure.example.com%2F&rm=GET"));
    assert_eq!(forward_auth(port, "GET", "https://app.example.com/admin", &[("Cookie", &john), HTML]).status, 302);

    let mary = login(port, "mary", "mary password");
    assert_eq!(forward_auth(port, "GET", "https://app.example.com/admin", &[("Cookie", &mary), HTML]).status, 403);
    assert_eq!(forward_auth(port, "GET", "https://blocked.example.com/", &[("Cookie", &mary), HTML]).status, 403);
    let r = forward_auth(port, "GET", "https://app.example.com/x", &[("Cookie", &mary), HTML]);
    assert_eq!((r.status, r.header("remote-email")), (200, Some("")));

    // Bad requests never allow.
    assert_eq!(get(port, "/api/authz/forward-auth", &[("X-Forwarded-Method", "GET")]).status, 400);
    assert_eq!(forward_auth(port, "GET", "http://app.example.com/", &[HTML]).status, 400, "http targets are refused");
    assert_eq!(forward_auth(port, "GET", "https://elsewhere.org/", &[HTML]).status, 403, "never redirect off-site");
}

#[test]
fn auth_request_ext_authz_and_legacy() {
    let (server, _dir) = start("");
    let port = server.port;
    let john = login(port, "john", "john password");

    let ar = |cookie: Option<&str>| {
        let mut h = vec![("X-Original-Method", "GET"), ("X-Original-URL", "https://app.example.com/p?q=1")];
        if let Some(c) = cookie {
            h.push(("Cookie", c));
        }
        get(port, "/api/authz/auth-request", &h)
    };
    let r = ar(None);
    assert_eq!(r.status, 401);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fp%3Fq%3D1&rm=GET")
    );
    let r = ar(Some(&john));
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));

    // Envoy: the original method and path are the sub-request's own.
    let envoy = |method: &str, path: &str, cookie: Option<&str>| {
        let mut h = vec![("Host", "app.example.com"), ("X-Forwarded-Proto", "https"), HTML];
        if let Some(c) = cookie {
            h.push(("Cookie", c));
        }
        request(port, method, &format!("/api/authz/ext-authz{path}"), &h, "")
    };
    let r = envoy("GET", "/items/7?view=full", None);
    assert_eq!(r.status, 302);
    assert_eq!(
        r.header("location"),
        Some("https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fitems%2F7%3Fview%3Dfull&rm=GET")
    );
    assert_eq!(envoy("DELETE", "/items/7", None).status, 303);
    let r = envoy("PUT", "/items/7", Some(&john));
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));

    let legacy = get(port, "/api/verify", &[("X-Original-URL", "https://app.example.com/"), HTML]);
    assert_eq!(legacy.status, 302);
    let legacy = get(port, "/api/verify", &[("X-Original-URL", "https://app.example.com/"), ("Cookie", &john)]);
    assert_eq!((legacy.status, legacy.header("remote-user")), (200, Some("john")));
}

#[test]
fn basic_credentials() {
    let (server, _dir) = start("");
    let port = server.port;
    let basic = |user: &str, password: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}")))
    };
    let good = basic("john", "john password");
    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Authorization", &good)]);
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
    assert_eq!(r.header("remote-groups"), Some("admins,dev"));

    let bad = basic("john", "wrong");
    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Authorization", &bad), HTML]);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic realm=\"Authorization Required\""));
    // Basic is one factor: two_factor rules challenge again rather than redirect.
    let r = forward_auth(port, "GET", "https://secure.example.com/", &[("Authorization", &good), HTML]);
    assert_eq!(r.status, 401);
    // A bypass rule ignores bad credentials.
    assert_eq!(forward_auth(port, "GET", "https://public.example.com/", &[("Authorization", &bad)]).status, 200);
}

#[test]
fn forwarded_for_is_believed_only_from_trusted_proxies() {
    // Loopback is trusted by default: the proxy's X-Forwarded-For decides the network.
    let (trusting, _d1) = start("");
    let via_proxy = [("X-Forwarded-For", "192.0.2.10"), HTML];
    assert_eq!(forward_auth(trusting.port, "GET", "https://app.example.com/internal", &via_proxy).status, 200);
    assert_eq!(forward_auth(trusting.port, "GET", "https://app.example.com/internal", &[HTML]).status, 403);

    // When the peer is not a trusted proxy, its X-Forwarded-For claim is ignored.
    let (strict, _d2) = start_with_trusted(&["10.255.255.1"]);
    let spoofed = forward_auth(strict.port, "GET", "https://app.example.com/internal", &via_proxy);
    assert_eq!(spoofed.status, 403, "a spoofed X-Forwarded-For must not satisfy a networks rule");
}

#[test]
fn login_redirects_only_where_one_factor_is_enough() {
    let (server, _dir) = start("");
    let port = server.port;
    let login_to = |target: &str| {
        let body =
            format!(r#"{{"username":"mary","password":"mary password","targetURL":"{target}","requestMethod":"GET"}}"#);
        request(port, "POST", "/api/firstfactor", &[], &body).json()
    };
    assert_eq!(login_to("https://app.example.com/x")["data"]["redirect"], "https://app.example.com/x");
    assert!(
        login_to("https://secure.example.com/").get("data").is_none(),
        "two_factor: the portal asks for a second factor"
    );
    assert_eq!(
        login_to("https://blocked.example.com/")["data"]["redirect"],
        "https://blocked.example.com/",
        "deny: sent on, to see why"
    );
    assert!(login_to("https://evil.example/").get("data").is_none(), "unsafe targets never");
}

#[test]
fn basic_credentials_are_cached_until_the_password_changes() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let users_path = dir.path().join("users.yml");
    std::fs::write(&users_path, users()).unwrap();
    let endpoints = "  endpoints:\n    authz:\n      forward-auth:\n        implementation: ForwardAuth\n        authn_strategies:\n          - {name: HeaderAuthorization, schemes: [Basic], scheme_basic_cache_lifespan: 5m}\n          - {name: CookieSession}\n";
    let address = format!("  address: 'tcp://127.0.0.1:{port}/'\n");
    let path_line = format!("    path: '{}'\n", users_path.display());
    let yaml = config_yaml(port, dir.path(), RULES)
        .replace(&address, &format!("{address}{endpoints}"))
        .replace(&path_line, &format!("{path_line}    watch: true\n"));
    assert!(yaml.contains("scheme_basic_cache_lifespan") && yaml.contains("watch: true"));
    let server = Server::start(Some(&yaml), port, &[]);

    let basic = |password: &str| {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("john:{password}")))
    };
    let old = basic("john password");
    for _ in 0..5 {
        let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Authorization", &old)]);
        assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
    }
    let logged = std::process::Command::new("python3")
        .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"select count(*) from authentication_logs where auth_type='Basic'\").fetchone()[0])"])
        .arg(dir.path().join("db.sqlite3"))
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&logged.stdout).trim(),
        "1",
        "four of five requests were answered from the cache"
    );

    // A password change (here: an edit of the users file) invalidates the cached entry.
    let current = std::fs::read_to_string(&users_path).unwrap();
    let johns_password = current.lines().find(|l| l.trim_start().starts_with("password:")).unwrap().to_string();
    let changed = current.replacen(&johns_password, &format!("    password: '{}'", argon2_hash("new password")), 1);
    assert_ne!(changed, current);
    std::fs::write(&users_path, changed).unwrap();
    server.wait_for_log("users file reloaded");
    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Authorization", &old), HTML]);
    assert_eq!(r.status, 401, "the old password no longer works");
    let r = forward_auth(port, "GET", "https://app.example.com/api", &[("Authorization", &basic("new password"))]);
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
}

#[test]
fn the_proxy_may_name_the_portal_under_the_cookie_domain_and_legacy_may_ask_for_basic() {
    let (server, _dir) = start("");
    let port = server.port;
    let john = login(port, "john", "john password");
    let forwarded = [
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Uri", "/p"),
        HTML,
    ];
    let named = |portal: &str| {
        let query = url::form_urlencoded::Serializer::new(String::new()).append_pair("authelia_url", portal).finish();
        get(port, &format!("/api/authz/forward-auth?{query}"), &forwarded)
    };
    let r = named("https://login.example.com/");
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("https://login.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fp&rm=GET"));
    for foreign in ["https://evil.test/", "http://login.example.com/", "https://example.com.evil.test/", "not a url"] {
        let r = named(foreign);
        assert_eq!(r.status, 400, "{foreign}: {}", r.body);
        assert_eq!(r.header("location"), None);
    }

    // ExtAuthz: the header (its query string is the original request's).
    let r = get(
        port,
        "/api/authz/ext-authz/p?authelia_url=https%3A%2F%2Fignored.example.com%2F",
        &[
            ("Host", "app.example.com"),
            ("X-Forwarded-Proto", "https"),
            ("X-Authelia-URL", "https://sso.example.com/"),
            HTML,
        ],
    );
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().starts_with("https://sso.example.com/?rd="), "{:?}", r.header("location"));

    // Legacy: `rd`, else the header.
    let original = ("X-Original-URL", "https://app.example.com/");
    let r = get(port, "/api/verify?rd=https%3A%2F%2Flegacy.example.com%2F", &[original, HTML]);
    assert_eq!(r.status, 302);
    assert!(r.header("location").unwrap().starts_with("https://legacy.example.com/?rd="));
    let r = get(port, "/api/verify", &[original, ("X-Authelia-URL", "https://hdr.example.com/"), HTML]);
    assert!(r.header("location").unwrap().starts_with("https://hdr.example.com/?rd="));

    // `?auth=basic`: Basic in Authorization, a prompt instead of the portal, and a session
    // cookie is not what this endpoint wants.
    let basic_prompt = |headers: &[(&str, &str)]| {
        let r = get(port, "/api/verify?auth=basic", headers);
        (r.status, r.header("www-authenticate").map(str::to_string), r.header("location").map(str::to_string))
    };
    let prompt = (401, Some("Basic realm=\"Authorization Required\"".to_string()), None);
    assert_eq!(basic_prompt(&[original, HTML]), prompt);
    assert_eq!(basic_prompt(&[original, HTML, ("Cookie", &john)]), prompt);
    use base64::Engine;
    let good = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("john:john password"));
    let r = get(port, "/api/verify?auth=basic", &[original, ("Authorization", &good)]);
    assert_eq!((r.status, r.header("remote-user")), (200, Some("john")));
    let bad = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("john:wrong"));
    assert_eq!(basic_prompt(&[original, ("Authorization", &bad)]), prompt);
    // Without it, Proxy-Authorization as before and the cookie counts.
    let r = get(port, "/api/verify", &[original, ("Authorization", &good), HTML]);
    assert_eq!(r.status, 302, "Authorization is not the legacy header");
}
