//! Passkey ceremonies over WebSockets against the real binary, with a real WebSocket
//! client and a software authenticator: registering a passkey (signed in and elevated),
//! a passwordless login whose session token becomes a cookie at /auth/api/set-session
//! (once, on its own cookie domain only), and the protocol's limits (Origin, handshake,
//! message size and type, one ceremony per connection, refused assertions regulated).

mod common;

use std::time::Duration;

use common::client::Client;
use common::*;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{WebSocketStream, client_async};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs_proto::{AllowCredentials, CreationChallengeResponse, RequestChallengeResponse};

const ORIGIN: &str = "https://auth.example.com";

type Ws = WebSocketStream<TcpStream>;

fn users_yaml() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins]\n",
        argon2_hash("correct horse")
    )
}

struct Setup {
    server: Server,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
}

impl Setup {
    /// A server with passkey login, the account API, two cookie domains, and `extra`.
    fn start(extra: &str) -> Self {
        let port = free_port();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
        let yaml = format!(
            "
server:
  address: 'tcp://127.0.0.1:{port}/'
authentication_backend:
  file:
    path: '{dir}/users.yml'
    search:
      email: true
session:
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com/'
      default_redirection_url: 'https://www.example.com/'
    - domain: example.org
      authelia_url: 'https://auth.example.org/'
storage:
  encryption_key: 'a-test-encryption-key-that-is-long-enough'
  local:
    path: '{dir}/db.sqlite3'
notifier:
  filesystem:
    filename: '{dir}/notifications.txt'
identity_validation:
  reset_password:
    jwt_secret: 'a-test-jwt-secret-that-is-long-enough'
access_control:
  default_policy: one_factor
webauthn:
  enable_passkey_login: true
account_api:
  enabled: true
{extra}
",
            dir = dir.path().display()
        );
        let server = Server::start(Some(&yaml), port, &[]);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Setup { server, dir, runtime }
    }

    fn client(&self) -> Client {
        Client::new(self.server.port)
    }

    fn port(&self) -> u16 {
        self.server.port
    }

    /// Opens `path` as a WebSocket with `headers` (Host auth.example.com and the portal's
    /// Origin unless given); the refusal's status when the upgrade is refused.
    fn open(&self, path: &str, headers: &[(&str, &str)]) -> Result<Ws, u16> {
        let port = self.port();
        self.runtime.block_on(async {
            let mut request = format!("ws://127.0.0.1:{port}{path}").into_client_request().unwrap();
            let h = request.headers_mut();
            h.insert("host", "auth.example.com".parse().unwrap());
            h.insert("origin", ORIGIN.parse().unwrap());
            for (k, v) in headers {
                h.insert(http::HeaderName::from_bytes(k.as_bytes()).unwrap(), v.parse().unwrap());
            }
            let stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
            match client_async(request, stream).await {
                Ok((ws, response)) => {
                    assert_eq!(response.status(), 101);
                    Ok(ws)
                }
                Err(tungstenite::Error::Http(response)) => Err(response.status().as_u16()),
                Err(e) => panic!("handshake: {e}"),
            }
        })
    }

    /// The next message: a JSON text message, or the close frame's code.
    fn next(&self, ws: &mut Ws) -> Next {
        self.runtime.block_on(async {
            loop {
                let message =
                    tokio::time::timeout(Duration::from_secs(20), ws.next()).await.expect("a message in time");
                return match message {
                    Some(Ok(Message::Text(t))) => Next::Json(serde_json::from_str(t.as_str()).unwrap()),
                    Some(Ok(Message::Close(frame))) => Next::Closed(frame.map(|f| f.code)),
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(other)) => panic!("unexpected message {other:?}"),
                    Some(Err(e)) => Next::Failed(e.to_string()),
                    None => Next::Failed("ended".into()),
                };
            }
        })
    }

    fn json(&self, ws: &mut Ws) -> Value {
        match self.next(ws) {
            Next::Json(v) => v,
            Next::Failed(e) => panic!("expected a message, the connection failed: {e}"),
            other => panic!("expected a message, got {other:?}"),
        }
    }

    fn send(&self, ws: &mut Ws, messages: Vec<Message>) {
        self.runtime.block_on(async {
            for m in messages {
                ws.feed(m).await.unwrap();
            }
            ws.flush().await.unwrap();
        })
    }

    fn closed_with(&self, ws: &mut Ws) -> Option<CloseCode> {
        match self.next(ws) {
            Next::Closed(code) => code,
            other => panic!("expected the close, got {other:?}"),
        }
    }

    fn db(&self, sql: &str) -> String {
        let out = std::process::Command::new("python3")
            .args(["-c", "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchall())"])
            .arg(self.dir.path().join("db.sqlite3"))
            .arg(sql)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn messages(&self) -> usize {
        std::fs::read_to_string(self.dir.path().join("notifications.txt"))
            .map(|t| t.matches("----------------------------------------").count())
            .unwrap_or(0)
    }
}

#[derive(Debug)]
enum Next {
    Json(Value),
    Closed(Option<CloseCode>),
    Failed(String),
}

fn text(v: Value) -> Message {
    Message::text(v.to_string())
}

fn login(c: &mut Client) {
    let r = c.json("POST", "/api/firstfactor", json!({"username": "john", "password": "correct horse"}));
    assert_eq!(r.status, 200, "{}", r.body);
}

fn elevate(s: &Setup, c: &mut Client) {
    let before = s.messages();
    assert_eq!(c.call("POST", "/api/user/session/elevation", "").status, 200);
    assert_eq!(s.messages(), before + 1);
    let r = c.json("PUT", "/api/user/session/elevation", json!({"otc": last_code(s.dir.path())}));
    assert_eq!(r.status, 200, "{}", r.body);
}

/// The options message without its type, as the browser's API takes it.
fn options<T: serde::de::DeserializeOwned>(mut message: Value) -> T {
    assert_eq!(message["type"], "options", "{message}");
    message.as_object_mut().unwrap().remove("type");
    serde_json::from_value(message).unwrap()
}

/// A passkey registered over the WebSocket for john (signed in and elevated in `c`):
/// the credential ID and the user handle.
fn register(s: &Setup, c: &Client, key: &mut SoftPasskey) -> (String, String) {
    let cookie = c.cookie.clone().unwrap();
    let mut ws = s.open("/auth/ws/register", &[("cookie", &cookie)]).unwrap();
    let message = s.json(&mut ws);
    let user_handle = message["publicKey"]["user"]["id"].as_str().unwrap().to_string();
    assert_eq!(message["publicKey"]["authenticatorSelection"]["residentKey"], "required", "{message}");
    let mut challenge: CreationChallengeResponse = options(message);
    // The software authenticator cannot keep a discoverable credential: it is asked for a
    // plain one (the login below names it, as a browser's discoverable one would not need).
    let selection = challenge.public_key.authenticator_selection.as_mut().unwrap();
    selection.resident_key = Some(webauthn_rs_proto::ResidentKeyRequirement::Discouraged);
    selection.require_resident_key = false;
    let credential = key.do_registration(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    s.send(&mut ws, vec![text(json!({"type": "credential", "credential": credential, "description": "Phone"}))]);
    let result = s.json(&mut ws);
    assert_eq!(result["type"], "result");
    assert_eq!(result["ok"], true, "{result}");
    let kid = result["credential_id"].as_str().unwrap().to_string();
    assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Normal));
    (kid, user_handle)
}

/// The assertion for the challenge in `message`, by `key` for credential `kid`.
fn assert_with(key: &mut SoftPasskey, message: Value, kid: &str, user_handle: &str) -> Value {
    let mut challenge: RequestChallengeResponse = options(message);
    assert!(challenge.public_key.allow_credentials.is_empty(), "a discoverable login names no credential");
    // The software authenticator holds no discoverable credentials: name its one, and add
    // the user handle a platform authenticator returns.
    let allowed: AllowCredentials = serde_json::from_value(json!({"type": "public-key", "id": kid})).unwrap();
    challenge.public_key.allow_credentials = vec![allowed];
    let mut assertion = key.do_authentication(url::Url::parse(ORIGIN).unwrap(), challenge).unwrap();
    use base64::Engine;
    assertion.response.user_handle =
        Some(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(user_handle).unwrap());
    serde_json::to_value(assertion).unwrap()
}

/// A login over the WebSocket: the result message.
fn authenticate(s: &Setup, key: &mut SoftPasskey, kid: &str, user_handle: &str) -> Value {
    let mut ws = s.open("/auth/ws/authenticate", &[]).unwrap();
    let message = s.json(&mut ws);
    let assertion = assert_with(key, message, kid, user_handle);
    s.send(&mut ws, vec![text(json!({"type": "credential", "credential": assertion}))]);
    let result = s.json(&mut ws);
    assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Normal));
    result
}

/// `POST /auth/api/set-session` with `token` on `host`: the status and the session cookie.
fn set_session(s: &Setup, host: &str, token: &str) -> (u16, Option<String>) {
    let bearer = format!("Bearer {token}");
    let r = request(s.port(), "POST", "/auth/api/set-session", &[("Host", host), ("Authorization", &bearer)], "");
    let cookie = r
        .headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.split(';').next().unwrap().trim().to_string())
        .find(|c| c.starts_with("authelia_session=") && c.len() > "authelia_session=".len());
    if r.status == 200 {
        assert_eq!(r.json()["status"], "OK");
    } else {
        assert!(r.header("www-authenticate").is_some_and(|v| v.starts_with("Bearer")), "{:?}", r.headers);
    }
    (r.status, cookie)
}

fn forward_auth(s: &Setup, cookie: &str) -> Response {
    get(
        s.port(),
        "/api/authz/forward-auth",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/"),
            ("Cookie", cookie),
        ],
    )
}

#[test]
fn register_and_log_in_over_websockets_then_hand_the_session_to_the_browser() {
    let s = Setup::start("");
    let mut c = s.client();
    login(&mut c);
    let mut key = SoftPasskey::new(true);

    // Registering needs an elevated session: refused with a result, then closed.
    let cookie = c.cookie.clone().unwrap();
    let mut ws = s.open("/auth/ws/register", &[("cookie", &cookie)]).unwrap();
    let refused = s.json(&mut ws);
    assert_eq!((refused["ok"].clone(), refused["status"].clone()), (json!(false), json!(403)), "{refused}");
    assert!(s.closed_with(&mut ws).is_some());
    // And a session at all.
    let mut ws = s.open("/auth/ws/register", &[]).unwrap();
    assert_eq!(s.json(&mut ws)["status"], 403);

    elevate(&s, &mut c);
    let (kid, user_handle) = register(&s, &c, &mut key);
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert_eq!(list["data"][0]["kid"], kid.as_str());
    assert_eq!(list["data"][0]["description"], "Phone");
    assert_eq!(list["data"][0]["discoverable"], true);

    // Passwordless login over the WebSocket.
    let result = authenticate(&s, &mut key, &kid, &user_handle);
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["username"], "john");
    assert_eq!(result["expires_in"], 60);
    let token = result["session_token"].as_str().unwrap().to_string();
    assert!(!s.server.stdout().contains(&token), "the token is not logged");

    // The token is bound to its cookie domain, and is no cookie by itself.
    assert_eq!(set_session(&s, "auth.example.org", &token).0, 401);
    assert_eq!(forward_auth(&s, &format!("authelia_session={token}")).status, 401);
    // Exchanged once for the session's cookie.
    let (status, cookie) = set_session(&s, "auth.example.com", &token);
    assert_eq!(status, 200);
    let cookie = cookie.expect("the session cookie");
    let allowed = forward_auth(&s, &cookie);
    assert_eq!(allowed.status, 200, "{}", allowed.body);
    assert_eq!(allowed.header("remote-user"), Some("john"));
    let info = request(s.port(), "GET", "/api/user/info", &[("Cookie", &cookie)], "");
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["data"]["display_name"], "John Doe");
    // Reused: refused, and the session it named lives on only under the new cookie.
    assert_eq!(set_session(&s, "auth.example.com", &token).0, 401);
    assert_eq!(forward_auth(&s, &cookie).status, 200);
    // Garbage and missing tokens.
    assert_eq!(set_session(&s, "auth.example.com", "not-a-token").0, 401);
    let r = request(s.port(), "POST", "/auth/api/set-session", &[], "");
    assert_eq!(r.status, 401);

    // A wrong assertion (signed for another challenge): refused, logged, regulated.
    let mut first = s.open("/auth/ws/authenticate", &[]).unwrap();
    let stale = assert_with(&mut key, s.json(&mut first), &kid, &user_handle);
    let mut second = s.open("/auth/ws/authenticate", &[]).unwrap();
    s.json(&mut second);
    s.send(&mut second, vec![text(json!({"type": "credential", "credential": stale}))]);
    let result = s.json(&mut second);
    assert_eq!((result["ok"].clone(), result["status"].clone()), (json!(false), json!(401)), "{result}");
    assert!(result.get("session_token").is_none());
    assert_eq!(
        s.db("select username, successful, auth_type from authentication_logs where auth_type = 'Passkey' order by id"),
        "[('john', 1, 'Passkey'), ('john', 0, 'Passkey')]"
    );

    // Removed by its WebAuthn credential ID, as seed 004's frontends name it (elevated).
    let path = format!("/auth/api/credential/{kid}");
    assert_eq!(c.call("DELETE", "/auth/api/credential/no-such-credential", "").status, 404);
    let r = c.call("DELETE", &path, "");
    assert_eq!(r.status, 200, "{}", r.body);
    let list = c.call("GET", "/api/secondfactor/webauthn/credentials", "").json();
    assert_eq!(list["data"], json!([]), "{list}");
    assert_eq!(c.call("DELETE", &path, "").status, 404);
}

#[test]
fn an_account_access_token_is_exchanged_for_a_cookie_session() {
    let s = Setup::start("");
    let r = request(
        s.port(),
        "POST",
        "/api/auth/login",
        &[],
        &json!({"email": "john@example.com", "password": "correct horse"}).to_string(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let token = r.json()["data"]["token"].as_str().unwrap().to_string();
    let (status, cookie) = set_session(&s, "auth.example.com", &token);
    assert_eq!(status, 200);
    let cookie = cookie.expect("a session cookie");
    let state = request(s.port(), "GET", "/api/state", &[("Cookie", &cookie)], "").json();
    assert_eq!(state["data"]["username"], "john");
    assert_eq!(state["data"]["authentication_level"], 1, "the token's level");
    assert_eq!(forward_auth(&s, &cookie).status, 200);
    // A tampered token is refused.
    let tampered = format!("{}x", &token[..token.len() - 1]);
    assert_eq!(set_session(&s, "auth.example.com", &tampered).0, 401);
}

#[test]
fn the_upgrade_is_checked_before_switching() {
    let s = Setup::start("");
    // Another site's page (cross-site WebSocket hijacking), or none said.
    assert_eq!(s.open("/auth/ws/authenticate", &[("origin", "https://evil.example")]).err(), Some(403));
    assert_eq!(s.open("/auth/ws/register", &[("origin", "https://app.example.org")]).err(), Some(403));
    assert_eq!(s.open("/auth/ws/authenticate", &[("origin", "null")]).err(), Some(403));
    // The same origin as the request's host is fine.
    assert!(
        s.open("/auth/ws/authenticate", &[("host", "app.example.com"), ("origin", "https://app.example.com")]).is_ok()
    );

    let port = s.port();
    let ws_headers = |extra: &[(&'static str, &'static str)]| {
        let mut h = vec![
            ("Origin", ORIGIN),
            ("Connection", "keep-alive, Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ];
        for (k, v) in extra {
            h.retain(|(name, _)| !name.eq_ignore_ascii_case(k));
            if !v.is_empty() {
                h.push((k, v));
            }
        }
        h
    };
    let plain = get(port, "/auth/ws/authenticate", &[("Origin", ORIGIN)]);
    assert_eq!(plain.status, 426);
    assert_eq!(plain.header("upgrade"), Some("websocket"));
    let old = get(port, "/auth/ws/authenticate", &ws_headers(&[("Sec-WebSocket-Version", "8")]));
    assert_eq!(old.status, 426);
    assert_eq!(old.header("sec-websocket-version"), Some("13"));
    assert_eq!(get(port, "/auth/ws/authenticate", &ws_headers(&[("Sec-WebSocket-Key", "")])).status, 400);
    assert_eq!(get(port, "/auth/ws/authenticate", &ws_headers(&[("Sec-WebSocket-Key", "c2hvcnQ=")])).status, 400);
    assert_eq!(get(port, "/auth/ws/authenticate", &ws_headers(&[("Connection", "keep-alive")])).status, 426);
    assert_eq!(request(port, "POST", "/auth/ws/authenticate", &ws_headers(&[]), "").status, 405);
    // A handshake by hand: the accept key of RFC 6455's example.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut raw = "GET /auth/ws/authenticate HTTP/1.1\r\nHost: auth.example.com\r\n".to_string();
    for (k, v) in ws_headers(&[]) {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    stream.write_all(format!("{raw}\r\n").as_bytes()).unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "{head}");
}

#[test]
fn messages_outside_the_protocol_end_the_ceremony() {
    let s = Setup::start("");

    // Oversized: closed with 1009.
    let mut ws = s.open("/auth/ws/authenticate", &[]).unwrap();
    s.json(&mut ws);
    s.send(&mut ws, vec![Message::text("x".repeat(100 * 1024))]);
    let result = s.json(&mut ws);
    assert_eq!((result["ok"].clone(), result["status"].clone()), (json!(false), json!(400)), "{result}");
    assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Size));

    // Not JSON, or JSON of another shape: refused, closed with 1008.
    for garbage in ["{not json", r#"{"type":"hello"}"#, r#"{"type":"credential","credential":{"id":1}}"#] {
        let mut ws = s.open("/auth/ws/authenticate", &[]).unwrap();
        s.json(&mut ws);
        s.send(&mut ws, vec![Message::text(garbage)]);
        let result = s.json(&mut ws);
        assert_eq!((result["ok"].clone(), result["status"].clone()), (json!(false), json!(400)), "{garbage}: {result}");
        assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Policy), "{garbage}");
    }

    // Binary frames: refused, closed with 1003.
    let mut ws = s.open("/auth/ws/authenticate", &[]).unwrap();
    s.json(&mut ws);
    s.send(&mut ws, vec![Message::binary(vec![1, 2, 3])]);
    assert_eq!(s.json(&mut ws)["ok"], false);
    assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Unsupported));

    // One ceremony per connection: a second credential after the first is refused.
    let mut c = s.client();
    login(&mut c);
    elevate(&s, &mut c);
    let mut key = SoftPasskey::new(true);
    let (kid, user_handle) = register(&s, &c, &mut key);
    let mut ws = s.open("/auth/ws/authenticate", &[]).unwrap();
    let assertion = assert_with(&mut key, s.json(&mut ws), &kid, &user_handle);
    let message = json!({"type": "credential", "credential": assertion});
    s.send(&mut ws, vec![text(message.clone()), text(message)]);
    let first = s.json(&mut ws);
    assert_eq!(first["ok"], true, "{first}");
    let second = s.json(&mut ws);
    assert_eq!((second["ok"].clone(), second["status"].clone()), (json!(false), json!(400)), "{second}");
    assert_eq!(s.closed_with(&mut ws), Some(CloseCode::Policy));
    // The first ceremony's token still works.
    assert_eq!(set_session(&s, "auth.example.com", first["session_token"].as_str().unwrap()).0, 200);
}

#[test]
fn regulation_bans_apply_to_websocket_logins() {
    let s = Setup::start("regulation:\n  max_retries: 2\n  find_time: 2m\n  ban_time: 5m\n");
    let mut c = s.client();
    login(&mut c);
    elevate(&s, &mut c);
    let mut key = SoftPasskey::new(true);
    let (kid, user_handle) = register(&s, &c, &mut key);
    for _ in 0..2 {
        let mut first = s.open("/auth/ws/authenticate", &[]).unwrap();
        let stale = assert_with(&mut key, s.json(&mut first), &kid, &user_handle);
        let mut second = s.open("/auth/ws/authenticate", &[]).unwrap();
        s.json(&mut second);
        s.send(&mut second, vec![text(json!({"type": "credential", "credential": stale}))]);
        assert_eq!(s.json(&mut second)["status"], 401);
    }
    // Banned now: even the right assertion is refused, with when to try again.
    let result = authenticate(&s, &mut key, &kid, &user_handle);
    assert_eq!((result["ok"].clone(), result["status"].clone()), (json!(false), json!(429)), "{result}");
    assert!(result["retry_after"].as_i64().unwrap() > 0);
}

#[test]
fn the_routes_follow_the_webauthn_settings() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let server = Server::start(Some(&config_yaml(port, dir.path(), "")), port, &[]);
    assert_eq!(get(server.port, "/auth/ws/authenticate", &[]).status, 404, "passkey login is off");
    assert_eq!(get(server.port, "/auth/ws/register", &[]).status, 426);
    drop(server);
    let port = free_port();
    let server = Server::start(Some(&config_yaml(port, dir.path(), "webauthn:\n  disable: true\n")), port, &[]);
    assert_eq!(get(server.port, "/auth/ws/register", &[]).status, 404);
    assert_eq!(request(server.port, "POST", "/auth/api/set-session", &[], "").status, 401);
}
