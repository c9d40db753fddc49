//! Seed 004's account API under `/auth/api/` against the binary with sessions in a real
//! redis-server: validate, forward-auth answering 204, the session list (where each came
//! from, which is this one), ending another session (refused at the proxy on its next
//! request), the display name, signing out, and ending every session.

mod common;

use common::redis::RedisServer;
use common::*;
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [dev]\n",
        argon2_hash(PASSWORD)
    )
}

struct Setup {
    server: Server,
    _redis: RedisServer,
    _dir: tempfile::TempDir,
}

fn start() -> Setup {
    let redis = RedisServer::start();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let extra =
        "access_control:\n  default_policy: deny\n  rules:\n    - domain: app.example.com\n      policy: one_factor\n";
    let yaml = config_yaml(port, dir.path(), extra);
    let redis_port = redis.port.to_string();
    let env = [
        ("PORTCULLIS_SESSION_REDIS_HOST", "127.0.0.1"),
        ("PORTCULLIS_SESSION_REDIS_PORT", redis_port.as_str()),
        ("PORTCULLIS_SESSION_SECRET", "a-session-secret-for-the-account-sessions-test"),
    ];
    let server = Server::start(Some(&yaml), port, &env);
    Setup { server, _redis: redis, _dir: dir }
}

/// A signed-in browser: its session cookie, and the User-Agent it signed in with.
struct Device {
    cookie: String,
    agent: &'static str,
}

impl Setup {
    fn sign_in(&self, agent: &'static str) -> Device {
        let body = json!({"username": "john", "password": PASSWORD}).to_string();
        let r = request(self.server.port, "POST", "/api/firstfactor", &[("User-Agent", agent)], &body);
        assert_eq!(r.status, 200, "{}", r.body);
        let set = r.header("set-cookie").expect("a session cookie");
        Device { cookie: set.split(';').next().unwrap().to_string(), agent }
    }

    fn call(&self, d: Option<&Device>, method: &str, path: &str, body: &str) -> Response {
        let mut headers = vec![];
        if let Some(d) = d {
            headers.push(("Cookie", d.cookie.as_str()));
            headers.push(("User-Agent", d.agent));
        }
        request(self.server.port, method, path, &headers, body)
    }

    fn forward(&self, d: Option<&Device>, host: &str) -> Response {
        let mut headers = vec![
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", host),
            ("X-Forwarded-Uri", "/page"),
        ];
        if let Some(d) = d {
            headers.push(("Cookie", d.cookie.as_str()));
        }
        get(self.server.port, "/auth/api/forward", &headers)
    }

    fn sessions(&self, d: &Device) -> Vec<Value> {
        let r = self.call(Some(d), "POST", "/auth/api/user-info", "");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()["data"]["sessions"].as_array().unwrap().clone()
    }
}

#[test]
fn sessions_are_listed_ended_one_by_one_or_all_and_the_proxy_sees_it_at_once() {
    let s = start();
    let laptop = s.sign_in("Laptop Browser/1.0");
    let phone = s.sign_in("Phone Browser/2.0");

    // validate: a session is valid; no session is 401.
    let r = s.call(Some(&laptop), "POST", "/auth/api/validate", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["username"], "john");
    assert_eq!(s.call(None, "POST", "/auth/api/validate", "").status, 401);

    // forward: 204 with the identity headers; 401 with where to log in; 403 when denied.
    let r = s.forward(Some(&laptop), "app.example.com");
    assert_eq!(r.status, 204, "{}", r.body);
    assert!(r.body.is_empty());
    assert_eq!(r.header("remote-user"), Some("john"));
    assert_eq!(r.header("remote-email"), Some("john@example.com"));
    let expires = r.header("remote-session-expires").expect("Remote-Session-Expires");
    assert!(expires.ends_with('Z') && expires.len() == 20, "ISO 8601 UTC: {expires}");
    let r = s.forward(None, "app.example.com");
    assert_eq!(r.status, 401, "{}", r.body);
    assert!(r.header("location").is_some_and(|l| l.starts_with("https://auth.example.com/")), "{:?}", r.headers);
    assert_eq!(s.forward(Some(&laptop), "secret.example.com").status, 403);

    // user-info: the user, credentials, and both sessions with where they came from.
    let r = s.call(Some(&laptop), "POST", "/auth/api/user-info", "");
    let info = r.json()["data"].clone();
    assert_eq!(info["user"]["username"], "john");
    assert_eq!(info["user"]["emails"], json!(["john@example.com"]));
    assert_eq!(info["credentials"], json!([]));
    let sessions = s.sessions(&laptop);
    assert_eq!(sessions.len(), 2, "{sessions:?}");
    let mine: Vec<_> = sessions.iter().filter(|x| x["current"] == true).collect();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["user_agent"], "Laptop Browser/1.0");
    assert_eq!(mine[0]["ip"], "127.0.0.1");
    let other = sessions.iter().find(|x| x["current"] == false).unwrap();
    assert_eq!(other["user_agent"], "Phone Browser/2.0");
    let other_id = other["id"].as_str().unwrap().to_string();
    assert_eq!(other_id.len(), 32);
    assert!(!phone.cookie.contains(&other_id), "the public ID is not the session's secret ID");
    assert_eq!(s.call(None, "POST", "/auth/api/user-info", "").status, 401);

    // Ending the phone's session from the laptop: the proxy refuses it on its next request.
    assert_eq!(s.forward(Some(&phone), "app.example.com").status, 204);
    let r = s.call(Some(&laptop), "DELETE", &format!("/auth/api/session/{other_id}"), "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.forward(Some(&phone), "app.example.com").status, 401);
    assert_eq!(s.sessions(&laptop).len(), 1);
    assert_eq!(s.call(Some(&laptop), "DELETE", &format!("/auth/api/session/{other_id}"), "").status, 404);
    assert_eq!(s.call(Some(&laptop), "DELETE", "/auth/api/session/not-a-session", "").status, 404);
    // Nobody else's sessions: an ID of john's means nothing to an anonymous caller.
    let laptop_id = s.sessions(&laptop)[0]["id"].as_str().unwrap().to_string();
    assert_eq!(s.call(None, "DELETE", &format!("/auth/api/session/{laptop_id}"), "").status, 403);

    // The display name changes for the proxy's Remote-Name too.
    let r = s.call(Some(&laptop), "PUT", "/auth/api/user/display-name", &json!({"display_name": "Johnny"}).to_string());
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(s.call(Some(&laptop), "PUT", "/auth/api/user/display-name", "{}").status, 400);
    assert_eq!(s.call(Some(&laptop), "DELETE", "/auth/api/credential/not-a-number", "").status, 404);

    // Every session ends at once, this one included.
    let tablet = s.sign_in("Tablet/3.0");
    let r = s.call(Some(&laptop), "POST", "/auth/api/user/logout-all", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["data"]["sessions_ended"], 2);
    assert_eq!(s.forward(Some(&laptop), "app.example.com").status, 401);
    assert_eq!(s.forward(Some(&tablet), "app.example.com").status, 401);

    // Signing out ends only this session.
    let a = s.sign_in("A/1");
    let b = s.sign_in("B/1");
    let r = s.call(Some(&a), "POST", "/auth/api/logout", "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("set-cookie").is_some_and(|c| c.contains("Max-Age=0")), "{:?}", r.headers);
    assert_eq!(s.forward(Some(&a), "app.example.com").status, 401);
    assert_eq!(s.forward(Some(&b), "app.example.com").status, 204);
    let named = s.forward(Some(&b), "app.example.com");
    assert_eq!(named.header("remote-name"), Some("Johnny"));

    // Cross-site state changes are refused as everywhere in the API.
    let r = request(
        s.server.port,
        "POST",
        "/auth/api/user/logout-all",
        &[("Cookie", b.cookie.as_str()), ("Origin", "https://evil.example.net")],
        "",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(s.forward(Some(&b), "app.example.com").status, 204);
}
