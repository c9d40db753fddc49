//! The JSON API under `/api`, answering in Authelia's envelope
//! (`{"status":"OK","data":...}` / `{"status":"KO","message":...}`).
//!
//! Helpers here return `Result<_, HttpResponse>`: the error is the finished answer to send,
//! produced at most once per request, so it is not worth boxing.
#![allow(clippy::result_large_err)]

mod bootstrap;
mod configuration;
mod firstfactor;
mod logout;
mod redirection;
mod state;
mod user_info;

use std::net::IpAddr;

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::de::DeserializeOwned;

use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Endpoint;
use crate::session::{CookieSettings, LoadedSession, StoreError};

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
        Endpoint::SafeRedirection => redirection::post(app, &request).await,
        Endpoint::FirstFactor => firstfactor::post(app, &request).await,
        Endpoint::Bootstrap => bootstrap::post(app, &request).await,
        Endpoint::Authz(i) => match app.authz.get(i) {
            Some(endpoint) => crate::handlers::authz::handle(app, endpoint, &request).await,
            None => response::ko(StatusCode::NOT_FOUND, "Not Found"),
        },
    }
}

fn openapi_spec(app: &App) -> HttpResponse {
    let mut r = response::bytes(StatusCode::OK, "application/yaml; charset=utf-8", app.openapi_spec.clone());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
