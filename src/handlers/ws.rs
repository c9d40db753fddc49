//! Passkey ceremonies over WebSockets (seed 004): `GET /auth/ws/authenticate`
//! (passwordless login) and `GET /auth/ws/register` (a passkey for the signed-in user).
//!
//! The handler checks the upgrade request ([`accept`]: the handshake's headers, the
//! cookie domain, the `Origin`, a free slot) and answers `101 Switching Protocols`; the
//! server then runs the ceremony on the upgraded connection ([`spawn`]). The ceremony's state
//! stays in the connection's memory. Messages are JSON text frames:
//!
//! ```text
//! server → {"type":"options","publicKey":{...}}
//! client → {"type":"credential","credential":{...},"description":"..."}   (description: register)
//! server → {"type":"result","ok":true,...} | {"type":"result","ok":false,"error":"...","status":401}
//! server closes
//! ```
//!
//! A login's session is created in the store; its cookie is fetched with the answered
//! `session_token` at `POST /auth/api/set-session` ([`crate::flows::session_handoff`]).
//! Limits: one message of at most [`MAX_MESSAGE`] bytes (larger: close 1009), the next
//! message within [`IDLE_LIMIT`] and the whole ceremony within [`CEREMONY_LIMIT`], one
//! ceremony per connection, text frames of the expected JSON only, at most
//! [`MAX_CEREMONIES`] connections at once.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, SinkExt, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Semaphore, SemaphorePermit};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{self, Message};
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use crate::flows::audit::Context;
use crate::flows::{Caller, Error, login, security_keys, session_handoff};
use crate::handlers::Request;
use crate::handlers::api::error_response;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::WebSocket;

/// Largest message (and frame) accepted from the client.
pub const MAX_MESSAGE: usize = 64 * 1024;
/// How long the client may take to send its next message.
pub const IDLE_LIMIT: Duration = Duration::from_secs(30);
/// How long a whole ceremony may take, from the upgrade to the client's answer.
pub const CEREMONY_LIMIT: Duration = Duration::from_secs(120);
/// Ceremonies running at once (each holds a connection that left the server's count).
pub const MAX_CEREMONIES: usize = 1024;
/// How long the server waits for the client's reply to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

static LIVE: Semaphore = Semaphore::const_new(MAX_CEREMONIES);

/// An upgrade the handler accepted, carried by its `101` response to the server, which
/// runs it ([`take`], [`spawn`]). Cloneable only because response extensions must be.
#[derive(Clone)]
pub struct Accepted(Arc<Mutex<Option<Ceremony>>>);

/// What a ceremony needs from its upgrade request.
struct Ceremony {
    kind: WebSocket,
    on_upgrade: OnUpgrade,
    host: String,
    cookies: Option<String>,
    context: Context,
    _slot: SemaphorePermit<'static>,
}

/// The accepted upgrade a response carries, taken out of it.
pub fn take(response: &mut HttpResponse) -> Option<Accepted> {
    response.extensions_mut().remove::<Accepted>()
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// True when the browser says the request comes from the portal of the host's cookie
/// domain, or from the request's own origin. A browser always sends `Origin` on a
/// WebSocket; a request without it is refused, so that no page of another site can open
/// a ceremony with the user's cookie (cross-site WebSocket hijacking).
fn origin_allowed(headers: &HeaderMap, host: &str, portal: &url::Url) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return false };
    let portal_origin = portal.origin().ascii_serialization();
    origin.eq_ignore_ascii_case(&portal_origin) || crate::handlers::origin::same_origin(headers, host)
}

fn refuse(status: StatusCode, message: &str, extra: Option<(header::HeaderName, &'static str)>) -> HttpResponse {
    let mut r = response::ko(status, message);
    if let Some((name, value)) = extra {
        r.headers_mut().insert(name, HeaderValue::from_static(value));
    }
    r
}

/// Checks a WebSocket upgrade request and answers `101` carrying the [`Accepted`] upgrade,
/// or refuses it: `426` when it asks for no WebSocket (or another protocol version),
/// `400` for a malformed handshake or a connection that cannot upgrade (HTTP/2), `403`
/// for another site's `Origin` or a host under no cookie domain, `503` when
/// [`MAX_CEREMONIES`] are running.
pub fn accept(app: &App, kind: WebSocket, request: &Request<'_>, on_upgrade: Option<OnUpgrade>) -> HttpResponse {
    let headers = &request.parts.headers;
    if !header_has_token(headers, header::UPGRADE, "websocket")
        || !header_has_token(headers, header::CONNECTION, "upgrade")
    {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "This endpoint speaks WebSocket only",
            Some((header::UPGRADE, "websocket")),
        );
    }
    if headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()).map(str::trim) != Some("13") {
        return refuse(
            StatusCode::UPGRADE_REQUIRED,
            "Unsupported WebSocket version",
            Some((header::SEC_WEBSOCKET_VERSION, "13")),
        );
    }
    use base64::Engine;
    let key = headers.get(header::SEC_WEBSOCKET_KEY).map(HeaderValue::as_bytes).unwrap_or_default();
    let key_ok = base64::engine::general_purpose::STANDARD.decode(key).is_ok_and(|k| k.len() == 16);
    if !key_ok {
        return refuse(StatusCode::BAD_REQUEST, "Missing or malformed Sec-WebSocket-Key", None);
    }
    let host = request.host();
    let Some(settings) = app.services.sessions.cookie_for_host(host) else {
        return error_response(&Error::NoCookieDomain);
    };
    if !origin_allowed(headers, host, &settings.portal_url) {
        tracing::info!(host, "WebSocket upgrade from another origin refused");
        return error_response(&Error::CrossOrigin);
    }
    let Some(on_upgrade) = on_upgrade else {
        return refuse(StatusCode::BAD_REQUEST, "This connection cannot switch to WebSocket", None);
    };
    let Ok(slot) = LIVE.try_acquire() else {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, "Too many ceremonies in progress", None);
    };
    let ceremony = Ceremony {
        kind,
        on_upgrade,
        host: host.to_string(),
        cookies: request.cookies(),
        context: request.context(app),
        _slot: slot,
    };
    let accept_key = tungstenite::handshake::derive_accept_key(key);
    let mut r = Response::new(Full::default());
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&accept_key) {
        h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
    }
    r.extensions_mut().insert(Accepted(Arc::new(Mutex::new(Some(ceremony)))));
    r
}

/// Starts an accepted ceremony: it runs on its own once the connection has upgraded.
///
/// A plain function: the ceremony's future is made (and boxed) in this short-lived frame.
/// Made in the connection's service instead, unoptimized builds would keep a slot of its
/// size on the stack under every request the service answers.
pub fn spawn(app: Arc<App>, accepted: Accepted) {
    tokio::spawn(Box::pin(run(app, accepted)));
}

/// Runs an accepted ceremony once its connection has upgraded.
async fn run(app: Arc<App>, accepted: Accepted) {
    let Some(ceremony) = accepted.0.lock().ok().and_then(|mut c| c.take()) else { return };
    let upgraded = match ceremony.on_upgrade.await {
        Ok(upgraded) => upgraded,
        Err(e) => {
            tracing::debug!(error = %e, "WebSocket upgrade failed");
            return;
        }
    };
    let config = WebSocketConfig::default().max_message_size(Some(MAX_MESSAGE)).max_frame_size(Some(MAX_MESSAGE));
    let ws = WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config)).await;
    let limits = Limits { idle: IDLE_LIMIT, ceremony: CEREMONY_LIMIT };
    let mut conn = Connection { ws, deadline: Instant::now() + limits.ceremony, idle: limits.idle };
    let host = ceremony.host.as_str();
    let cookies = ceremony.cookies.as_deref();
    let context = &ceremony.context;
    let end = match ceremony.kind {
        WebSocket::Authenticate => authenticate(&app, &mut conn, host, cookies, context).await,
        WebSocket::Register => register(&app, &mut conn, host, cookies, context).await,
    };
    conn.finish(end).await;
}

/// The waits a ceremony allows its client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For each message.
    pub idle: Duration,
    /// For the whole ceremony.
    pub ceremony: Duration,
}

/// What the client sent next, or why nothing usable came.
#[derive(Debug, PartialEq, Eq)]
pub enum Incoming {
    /// A text message.
    Text(String),
    /// A binary message (refused: the protocol is JSON text).
    Binary,
    /// A message or frame over [`MAX_MESSAGE`].
    TooLarge,
    /// The client closed, or the connection failed.
    Gone,
    /// No message within the idle limit.
    Idle,
    /// The ceremony's time is up.
    Expired,
}

/// The client's next message within the earlier of `deadline` and `idle` from now.
/// Pings and pongs are answered by the library and do not count as messages.
pub async fn next_message<S>(ws: &mut WebSocketStream<S>, deadline: Instant, idle: Duration) -> Incoming
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let idle_at = Instant::now() + idle;
    let (until, late) = if idle_at < deadline { (idle_at, Incoming::Idle) } else { (deadline, Incoming::Expired) };
    loop {
        let next = match tokio::time::timeout_at(until, ws.next()).await {
            Err(_) => return late,
            Ok(next) => next,
        };
        return match next {
            None | Some(Ok(Message::Close(_))) => Incoming::Gone,
            Some(Ok(Message::Text(text))) => Incoming::Text(text.as_str().to_string()),
            Some(Ok(Message::Binary(_))) => Incoming::Binary,
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
            Some(Err(tungstenite::Error::Capacity(_))) => Incoming::TooLarge,
            Some(Err(e)) => {
                tracing::debug!(error = %e, "WebSocket read failed");
                Incoming::Gone
            }
        };
    }
}

/// How a ceremony ends: a last result to send (if any), then the close frame.
struct End {
    result: Option<serde_json::Value>,
    code: CloseCode,
    reason: &'static str,
}

impl End {
    /// The client's input can no longer be read as frames (the rest of an oversized one).
    fn unreadable(&self) -> bool {
        self.code == CloseCode::Size
    }
}

impl End {
    fn done(result: serde_json::Value) -> Self {
        Self { result: Some(result), code: CloseCode::Normal, reason: "" }
    }

    fn failed(e: &Error) -> Self {
        Self { result: Some(error_result(e)), code: CloseCode::Normal, reason: "" }
    }

    fn refused(e: &Error, code: CloseCode, reason: &'static str) -> Self {
        Self { result: Some(error_result(e)), code, reason }
    }

    fn silent() -> Self {
        Self { result: None, code: CloseCode::Normal, reason: "" }
    }
}

/// `{"type":"result","ok":false,...}` for `e` (faults logged here, once).
fn error_result(e: &Error) -> serde_json::Value {
    e.log();
    let mut result = serde_json::json!({
        "type": "result",
        "ok": false,
        "error": e.message(),
        "status": e.status().as_u16(),
    });
    if let Some(secs) = e.retry_after() {
        result["retry_after"] = secs.into();
    }
    result
}

struct Connection<S> {
    ws: WebSocketStream<S>,
    deadline: Instant,
    idle: Duration,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    async fn send(&mut self, value: &serde_json::Value) -> bool {
        self.ws.send(Message::text(value.to_string())).await.is_ok()
    }

    /// The ceremony's options to the client.
    async fn offer(&mut self, mut options: serde_json::Value) -> Result<(), End> {
        if let Some(object) = options.as_object_mut() {
            object.insert("type".into(), "options".into());
        }
        if self.send(&options).await { Ok(()) } else { Err(End::silent()) }
    }

    /// The client's credential message.
    /// Sends `options` and reads the one credential answer, parsed as `T`, with the
    /// answer's other fields.
    async fn ask<T: serde::de::DeserializeOwned>(&mut self, options: serde_json::Value) -> Result<(T, Answer), End> {
        self.offer(options).await?;
        let ClientMessage::Credential { credential, description, keep_me_logged_in } = self.credential().await?;
        Ok((parse_credential(credential)?, Answer { description, keep_me_logged_in }))
    }

    async fn credential(&mut self) -> Result<ClientMessage, End> {
        let text = match next_message(&mut self.ws, self.deadline, self.idle).await {
            Incoming::Text(text) => text,
            Incoming::Binary => {
                let e = Error::InvalidRequest("binary messages are not accepted".into());
                return Err(End::refused(&e, CloseCode::Unsupported, "text frames only"));
            }
            Incoming::TooLarge => {
                let e = Error::InvalidRequest(format!("a message may have at most {MAX_MESSAGE} bytes"));
                return Err(End::refused(&e, CloseCode::Size, "message too large"));
            }
            Incoming::Idle => {
                let e = Error::InvalidRequest("no message in time".into());
                return Err(End::refused(&e, CloseCode::Away, "idle"));
            }
            Incoming::Expired => {
                let e = Error::InvalidRequest("the ceremony took too long".into());
                return Err(End::refused(&e, CloseCode::Policy, "ceremony timeout"));
            }
            Incoming::Gone => return Err(End::silent()),
        };
        serde_json::from_str::<ClientMessage>(&text).map_err(|e| {
            let e = Error::InvalidRequest(format!("invalid message: {e}"));
            End::refused(&e, CloseCode::Policy, "invalid message")
        })
    }

    /// Sends the last result (unless the client has already sent another message: one
    /// ceremony per connection) and closes.
    async fn finish(mut self, end: End) {
        let mut end = end;
        // A message sent after the credential (a second ceremony) is refused.
        if end.result.is_some()
            && !end.unreadable()
            && let Some(Some(Ok(Message::Text(_) | Message::Binary(_)))) = self.ws.next().now_or_never()
        {
            if let Some(result) = end.result.take() {
                self.send(&result).await;
            }
            let e = Error::InvalidRequest("one ceremony per connection".into());
            end = End::refused(&e, CloseCode::Policy, "one ceremony per connection");
        }
        if let Some(result) = &end.result {
            self.send(result).await;
        }
        let frame = CloseFrame { code: end.code, reason: end.reason.into() };
        if self.ws.close(Some(frame)).await.is_err() {
            return;
        }
        // Wait for the client's close (reading whatever it still sends) so the connection
        // ends cleanly, but not for long. After an oversized frame, its rest is read as
        // bytes: closing with unread input would reset the connection, and the client
        // could lose the close frame.
        if end.unreadable() {
            let raw = self.ws.get_mut();
            let _ = tokio::time::timeout(CLOSE_WAIT, async {
                let mut buf = vec![0u8; 16 * 1024];
                let mut left = 4 * MAX_MESSAGE;
                while left > 0 {
                    match tokio::io::AsyncReadExt::read(raw, &mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => left = left.saturating_sub(n),
                    }
                }
            })
            .await;
            return;
        }
        let _ =
            tokio::time::timeout(CLOSE_WAIT, async { while self.ws.next().await.is_some_and(|m| m.is_ok()) {} }).await;
    }
}

/// A message from the client.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
enum ClientMessage {
    /// The authenticator's answer.
    Credential {
        credential: serde_json::Value,
        /// The new credential's name (registration).
        #[serde(default)]
        description: Option<String>,
        /// Keep the session past inactivity (login).
        #[serde(rename = "keepMeLoggedIn", default)]
        keep_me_logged_in: bool,
    },
}

/// What a credential message says besides the credential.
struct Answer {
    /// The new credential's name (registration).
    description: Option<String>,
    /// Keep the session past inactivity (login).
    keep_me_logged_in: bool,
}

fn parse_credential<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, End> {
    serde_json::from_value(value).map_err(|e| {
        let e = Error::InvalidRequest(format!("invalid credential: {e}"));
        End::refused(&e, CloseCode::Policy, "invalid credential")
    })
}

/// A passwordless login: the challenge, the assertion through the same regulated check as
/// `POST /api/firstfactor/passkey`, a new session in the store and its session token.
async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    app: &App,
    conn: &mut Connection<S>,
    host: &str,
    cookies: Option<&str>,
    context: &Context,
) -> End {
    let mut caller = match Caller::open(app, host, cookies, context.clone()).await {
        Ok(caller) => caller,
        Err(e) => return End::failed(&e),
    };
    let (options, state) = match login::passkey_challenge(app, &caller) {
        Ok(challenge) => challenge,
        Err(e) => return End::failed(&e),
    };
    let (credential, answer): (PublicKeyCredential, _) = match conn.ask(options).await {
        Ok(answered) => answered,
        Err(end) => return end,
    };
    let remember_me = answer.keep_me_logged_in;
    let outcome = async {
        let verified = login::passkey_verify(app, &caller, &state, &credential, None, None).await?;
        let user = login::passkey_session(app, &mut caller, verified, remember_me).await?;
        let (token, expires_in) = session_handoff::issue(app, &caller)?;
        Ok::<_, Error>(serde_json::json!({
            "type": "result",
            "ok": true,
            "username": user.username,
            "session_token": token,
            "expires_in": expires_in,
        }))
    };
    match outcome.await {
        Ok(result) => End::done(result),
        Err(e) => End::failed(&e),
    }
}

/// A passkey for the signed-in, elevated user of the upgrade request's session cookie.
async fn register<S: AsyncRead + AsyncWrite + Unpin>(
    app: &App,
    conn: &mut Connection<S>,
    host: &str,
    cookies: Option<&str>,
    context: &Context,
) -> End {
    let start = async {
        let caller = Caller::open(app, host, cookies, context.clone()).await?;
        security_keys::registration_start(app, &caller, true, String::new()).await
    };
    let (options, mut pending) = match start.await {
        Ok(started) => started,
        Err(e) => return End::failed(&e),
    };
    let (credential, answer): (RegisterPublicKeyCredential, _) = match conn.ask(options).await {
        Ok(answered) => answered,
        Err(end) => return end,
    };
    pending.description = answer.description.unwrap_or_default();
    let finish = async {
        // The session as it is now: it may have ended or lost its elevation meanwhile.
        let caller = Caller::open(app, host, cookies, context.clone()).await?;
        security_keys::registration_store(app, &caller, &pending, &credential).await
    };
    match finish.await {
        Ok(kid) => End::done(serde_json::json!({"type": "result", "ok": true, "credential_id": kid})),
        Err(e) => End::failed(&e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn pair(max: usize) -> (WebSocketStream<tokio::io::DuplexStream>, WebSocketStream<tokio::io::DuplexStream>) {
        let (a, b) = tokio::io::duplex(1 << 20);
        let config = WebSocketConfig::default().max_message_size(Some(max)).max_frame_size(Some(max));
        let server = WebSocketStream::from_raw_socket(a, Role::Server, Some(config)).await;
        let client = WebSocketStream::from_raw_socket(b, Role::Client, None).await;
        (server, client)
    }

    #[tokio::test]
    async fn the_idle_limit_and_the_ceremony_deadline_end_the_wait() {
        let (mut server, _client) = pair(MAX_MESSAGE).await;
        let far = Instant::now() + Duration::from_secs(60);
        let started = Instant::now();
        assert_eq!(next_message(&mut server, far, Duration::from_millis(50)).await, Incoming::Idle);
        assert!(started.elapsed() < Duration::from_secs(5));
        let soon = Instant::now() + Duration::from_millis(50);
        assert_eq!(next_message(&mut server, soon, Duration::from_secs(60)).await, Incoming::Expired);
        // A deadline already passed ends the wait at once.
        assert_eq!(next_message(&mut server, Instant::now(), Duration::from_secs(60)).await, Incoming::Expired);
    }

    #[tokio::test]
    async fn pings_do_not_count_as_messages_or_reset_the_idle_limit() {
        let (mut server, mut client) = pair(MAX_MESSAGE).await;
        let far = Instant::now() + Duration::from_secs(60);
        let pinger = tokio::spawn(async move {
            for _ in 0..10 {
                if client.send(Message::Ping(vec![1].into())).await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            client
        });
        assert_eq!(next_message(&mut server, far, Duration::from_millis(100)).await, Incoming::Idle);
        let _ = pinger.await;
    }

    #[tokio::test]
    async fn messages_are_sorted_by_kind_and_size() {
        let (mut server, mut client) = pair(16).await;
        let far = Instant::now() + Duration::from_secs(60);
        client.send(Message::text("{}")).await.unwrap();
        assert_eq!(next_message(&mut server, far, Duration::from_secs(5)).await, Incoming::Text("{}".into()));
        client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
        assert_eq!(next_message(&mut server, far, Duration::from_secs(5)).await, Incoming::Binary);
        client.send(Message::text("x".repeat(17))).await.unwrap();
        assert_eq!(next_message(&mut server, far, Duration::from_secs(5)).await, Incoming::TooLarge);
        drop(client);
        let (mut server, client) = pair(16).await;
        drop(client);
        assert_eq!(next_message(&mut server, far, Duration::from_secs(5)).await, Incoming::Gone);
    }

    #[test]
    fn client_messages_are_one_typed_shape() {
        let ok = r#"{"type":"credential","credential":{"id":"x"},"description":"Phone"}"#;
        assert!(matches!(
            serde_json::from_str::<ClientMessage>(ok),
            Ok(ClientMessage::Credential { description: Some(d), .. }) if d == "Phone"
        ));
        for bad in [r#"{"type":"options"}"#, r#"{"credential":{}}"#, r#"[]"#, "nope", r#"{"type":"credential"}"#] {
            assert!(serde_json::from_str::<ClientMessage>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_the_portal_or_the_same_origin_may_open_a_ceremony() {
        let portal = url::Url::parse("https://auth.example.com/").unwrap();
        let headers = |origin: Option<&str>| {
            let mut h = HeaderMap::new();
            if let Some(o) = origin {
                h.insert(header::ORIGIN, o.parse().unwrap());
            }
            h
        };
        assert!(origin_allowed(&headers(Some("https://auth.example.com")), "auth.example.com", &portal));
        assert!(origin_allowed(&headers(Some("https://auth.example.com")), "other.example.com", &portal));
        assert!(origin_allowed(&headers(Some("https://app.example.com")), "app.example.com", &portal));
        assert!(!origin_allowed(&headers(Some("https://evil.example")), "auth.example.com", &portal));
        assert!(!origin_allowed(&headers(Some("http://auth.example.com")), "other.example.com", &portal));
        assert!(!origin_allowed(&headers(Some("null")), "auth.example.com", &portal));
        assert!(!origin_allowed(&headers(None), "auth.example.com", &portal));
    }
}
