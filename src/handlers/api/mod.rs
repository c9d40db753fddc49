//! The JSON API under `/api`, answering in Authelia's envelope
//! (`{"status":"OK","data":...}` / `{"status":"KO","message":...}`).
//!
//! Helpers here return `Result<_, HttpResponse>`: the error is the finished answer to send,
//! produced at most once per request, so it is not worth boxing.
#![allow(clippy::result_large_err)]

mod bootstrap;
mod change_password;
mod configuration;
mod elevation;
mod email_code;
mod firstfactor;
pub mod guard;
mod logout;
mod passkey;
mod redirection;
pub mod reset_password;
mod state;
mod totp;
mod user_info;
mod webauthn;

use std::net::IpAddr;

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::de::DeserializeOwned;

use crate::authn::users_file::User;
use crate::notifier::{Message, Recipient};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Endpoint;
use crate::session::{CookieSettings, LoadedSession, SessionData, StoreError};

/// What an API handler gets from the server.
pub struct ApiRequest<'a> {
    /// Method, URI and headers.
    pub parts: &'a http::request::Parts,
    /// The body (already bounded in size).
    pub body: Bytes,
    /// The connecting peer.
    pub remote: Option<IpAddr>,
    /// The path relative to the base path.
    pub path: &'a str,
}

impl ApiRequest<'_> {
    /// The host the request was addressed to.
    pub fn host(&self) -> &str {
        self.parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| self.parts.uri.host())
            .unwrap_or_default()
    }

    /// All `Cookie` headers joined (HTTP/2 may split them).
    pub fn cookies(&self) -> Option<String> {
        let values: Vec<&str> =
            self.parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join("; "))
    }

    /// The body parsed as JSON, or a 400 answer saying why not.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, HttpResponse> {
        serde_json::from_slice(&self.body).map_err(|e| {
            let what = if self.body.is_empty() {
                "a JSON body is required".to_string()
            } else {
                format!("invalid JSON body: {e}")
            };
            response::ko(StatusCode::BAD_REQUEST, &what)
        })
    }
}

/// The cookie domain of a request and its session, if it has a valid one.
pub struct Current<'a> {
    /// The cookie domain the request's host belongs to.
    pub settings: &'a CookieSettings,
    /// The session, when the request carries a valid one.
    pub session: Option<LoadedSession>,
}

/// Looks up the request's session. `Ok(None)` when the host is under no cookie domain;
/// `Err` with a 503 answer when the session store is down (fail closed).
pub async fn current<'a>(app: &'a App, request: &ApiRequest<'_>) -> Result<Option<Current<'a>>, HttpResponse> {
    let sessions = &app.services.sessions;
    let Some(settings) = sessions.cookie_for_host(request.host()) else { return Ok(None) };
    let cookies = request.cookies();
    match sessions.load(settings, cookies.as_deref(), now()).await {
        Ok(session) => Ok(Some(Current { settings, session })),
        Err(e) => Err(store_unavailable(&e)),
    }
}

/// The 503 answer for a session store that cannot be reached.
pub fn store_unavailable(e: &StoreError) -> HttpResponse {
    tracing::error!(error = %e, "session store error");
    response::ko(StatusCode::SERVICE_UNAVAILABLE, "Session storage is unavailable; try again shortly")
}

/// Current Unix time in seconds.
pub fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// `403 {"status":"KO","message":"Forbidden"}`, Authelia's answer without a session.
pub fn forbidden() -> HttpResponse {
    response::ko(StatusCode::FORBIDDEN, "Forbidden")
}

/// Adds a `Set-Cookie` header.
pub fn with_cookie(mut response: HttpResponse, set_cookie: &str) -> HttpResponse {
    if let Ok(value) = HeaderValue::from_str(set_cookie) {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
    response
}

/// Runs the handler for `endpoint`.
pub async fn call(endpoint: Endpoint, app: &App, request: ApiRequest<'_>) -> HttpResponse {
    match endpoint {
        Endpoint::Health => response::ok(),
        Endpoint::State => state::get(app, &request).await,
        Endpoint::Configuration => configuration::get(app),
        Endpoint::PasswordPolicy => configuration::password_policy(app),
        Endpoint::OpenApi => openapi_spec(app),
        Endpoint::Logout => logout::post(app, &request).await,
        Endpoint::UserInfo => user_info::get(app, &request).await,
        Endpoint::UserInfoMethod => user_info::set_method(app, &request).await,
        Endpoint::TotpRegister => totp::register(app, &request).await,
        Endpoint::Totp => totp::totp(app, &request).await,
        Endpoint::RecoveryCodes => totp::recovery_codes(app, &request).await,
        Endpoint::WebAuthn => webauthn::assertion(app, &request).await,
        Endpoint::WebAuthnCredentials => webauthn::credentials(app, &request).await,
        Endpoint::WebAuthnRegister => webauthn::register(app, &request).await,
        Endpoint::WebAuthnCredential => webauthn::credential(app, &request).await,
        Endpoint::Passkey => passkey::handle(app, &request).await,
        Endpoint::EmailCode => email_code::handle(app, &request).await,
        Endpoint::Elevation => elevation::handle(app, &request).await,
        Endpoint::ElevationRevoke => elevation::revoke(app, &request).await,
        Endpoint::ResetStart => reset_password::start(app, &request).await,
        Endpoint::ResetFinish => reset_password::finish(app, &request).await,
        Endpoint::ResetPassword => reset_password::reset(app, &request).await,
        Endpoint::ChangePassword => change_password::post(app, &request).await,
        Endpoint::SafeRedirection => redirection::post(app, &request).await,
        Endpoint::FirstFactor => firstfactor::post(app, &request).await,
        Endpoint::Bootstrap => bootstrap::post(app, &request).await,
        Endpoint::Portal => response::ko(StatusCode::NOT_FOUND, "Not Found"),
        Endpoint::Authz(i) => match app.authz.get(i) {
            Some(endpoint) => crate::handlers::authz::handle(app, endpoint, &request).await,
            None => response::ko(StatusCode::NOT_FOUND, "Not Found"),
        },
    }
}

/// Sends `message` now; 503 when the mail cannot be delivered (the user asked for it and
/// should know).
pub async fn send_mail(app: &App, name: &str, address: String, message: Message) -> Result<(), HttpResponse> {
    let to = Recipient { name: name.to_string(), address };
    app.services.notifier.send(&to, &message).await.map_err(|e| {
        tracing::error!(error = %e, "cannot send mail");
        response::ko(StatusCode::SERVICE_UNAVAILABLE, "The message could not be sent; try again later")
    })
}

/// Sends `message` in the background (notices the request does not wait for).
fn send_mail_later(app: &App, name: &str, address: Option<&String>, message: Message) {
    let Some(address) = address.cloned() else { return };
    let notifier = app.services.notifier.clone();
    let to = Recipient { name: name.to_string(), address };
    tokio::spawn(async move {
        if let Err(e) = notifier.send(&to, &message).await {
            tracing::error!(error = %e, "cannot send a notice");
        }
    });
}

/// Tells the user by mail that a second factor was added or removed.
pub fn notify_security_event(app: &App, request: &ApiRequest<'_>, data: &SessionData, detail: String) {
    let message = Message::SecurityEvent {
        display_name: data.display_name.clone(),
        detail,
        remote_ip: guard::client_ip(app, request),
    };
    send_mail_later(app, &data.display_name, data.emails.first(), message);
}

/// Tells the user by mail that their password changed.
pub fn notify_password_changed(app: &App, request: &ApiRequest<'_>, user: &User) {
    let message =
        Message::PasswordChanged { display_name: user.display_name.clone(), remote_ip: guard::client_ip(app, request) };
    send_mail_later(app, &user.display_name, user.emails.first(), message);
}

fn openapi_spec(app: &App) -> HttpResponse {
    let mut r = response::bytes(StatusCode::OK, "application/yaml; charset=utf-8", app.openapi_spec.clone());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
