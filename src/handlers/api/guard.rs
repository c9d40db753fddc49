//! What protected API endpoints check before acting: a session at the required level, an
//! elevated session for sensitive changes, regulation of guesses; and what they do after a
//! second factor succeeds (a new session ID at the higher level, then the safe redirect).

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::{ApiRequest, current, forbidden, now, store_unavailable, with_cookie};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::{AuthLevel, CookieSettings, LoadedSession, SessionData};
use crate::storage::{AuthAttempt, AuthType};

/// Message for refused one-time secrets: never says which part was wrong.
pub const BAD_CODE: &str = "Authentication failed. Check your code.";

/// A request with a valid session at a required level.
pub struct Authed<'a> {
    /// The request's cookie domain.
    pub settings: &'a CookieSettings,
    /// Its session.
    pub session: LoadedSession,
}

impl Authed<'_> {
    /// The session's contents.
    pub fn data(&self) -> &SessionData {
        &self.session.data
    }
}

/// The request's session if it is at least `level`; 403 otherwise (503 when the store is
/// down).
pub async fn authed<'a>(app: &'a App, request: &ApiRequest<'_>, level: AuthLevel) -> Result<Authed<'a>, HttpResponse> {
    match current(app, request).await? {
        Some(c) => match c.session {
            Some(session) if session.data.level() >= level => Ok(Authed { settings: c.settings, session }),
            _ => Err(forbidden()),
        },
        None => Err(forbidden()),
    }
}

/// Whether the session may make sensitive changes now: it proved identity by an emailed
/// code recently, or, when the operator allows it, by a second factor.
pub fn is_elevated(app: &App, data: &SessionData, now: i64) -> bool {
    let es = &app.config.identity_validation.elevated_session;
    data.elevated_until.is_some_and(|until| until > now)
        || (es.skip_second_factor && data.level() == AuthLevel::TwoFactor)
}

/// 403 unless the session is elevated.
pub fn require_elevation(app: &App, authed: &Authed<'_>) -> Result<(), HttpResponse> {
    if is_elevated(app, authed.data(), now()) {
        Ok(())
    } else {
        Err(response::ko(
            StatusCode::FORBIDDEN,
            "Elevation required: confirm your identity with a one-time code first (/api/user/session/elevation)",
        ))
    }
}

/// The client address as regulation records it.
pub fn client_ip(app: &App, request: &ApiRequest<'_>) -> String {
    app.client_ip(request.remote, &request.parts.headers).map(|ip| ip.to_string()).unwrap_or_default()
}

/// 429 with Retry-After when `username` (or the client) is banned; 503 when regulation
/// cannot be checked (fail closed).
pub async fn check_ban(app: &App, request: &ApiRequest<'_>, username: &str) -> Result<(), HttpResponse> {
    let now = now();
    match app.services.regulator.banned_until(username, &client_ip(app, request), now).await {
        Ok(None) => Ok(()),
        Ok(Some(until)) => Err(too_many(until - now, BAD_CODE)),
        Err(e) => {
            tracing::error!(error = %e, "regulation check failed");
            Err(response::ko(StatusCode::SERVICE_UNAVAILABLE, "Authentication is temporarily unavailable"))
        }
    }
}

/// 429 with `Retry-After: secs`.
pub fn too_many(secs: i64, message: &str) -> HttpResponse {
    let mut r = response::ko(StatusCode::TOO_MANY_REQUESTS, message);
    if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// 503 with `Retry-After: 1` when every password-hashing slot stayed busy.
pub fn busy() -> HttpResponse {
    let mut r = response::ko(StatusCode::SERVICE_UNAVAILABLE, "Too many logins in progress; try again shortly");
    r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

/// Records an attempt for regulation; `Err(503)` when it cannot be recorded (without the
/// record, guesses would go uncounted).
pub async fn record_attempt(
    app: &App,
    request: &ApiRequest<'_>,
    username: &str,
    auth_type: AuthType,
    successful: bool,
    target: Option<&str>,
) -> Result<(), HttpResponse> {
    let attempt = AuthAttempt {
        time: now(),
        successful,
        banned: false,
        username: username.to_string(),
        auth_type,
        remote_ip: client_ip(app, request),
        request_uri: target.unwrap_or_default().to_string(),
        request_method: String::new(),
    };
    app.services.regulator.record(attempt).await.map_err(|e| {
        tracing::error!(error = %e, "cannot record the attempt");
        response::ko(StatusCode::SERVICE_UNAVAILABLE, "Authentication is temporarily unavailable")
    })
}

/// The 500 answer for a storage failure (logged, details not shown).
pub fn storage_failed(e: &dyn std::fmt::Display) -> HttpResponse {
    tracing::error!(error = %e, "storage error");
    response::ko(StatusCode::SERVICE_UNAVAILABLE, "Storage is unavailable; try again shortly")
}

#[derive(Serialize)]
struct Redirect {
    redirect: String,
}

/// Raises the session to two factors under a new ID and answers with the redirect.
pub async fn complete_second_factor(
    app: &App,
    authed: &Authed<'_>,
    method: &str,
    target_url: Option<&str>,
) -> HttpResponse {
    let now = now();
    let mut data = authed.data().clone();
    data.second_factor_at = Some(now);
    data.second_factor_method = Some(method.to_string());
    data.email_code = None;
    data.webauthn = None;
    let cookie = match app.services.sessions.issue(authed.settings, Some(&authed.session.id), data, now).await {
        Ok((_, cookie)) => cookie,
        Err(e) => return store_unavailable(&e),
    };
    tracing::info!(username = %authed.data().username, method, "second factor succeeded");
    with_cookie(redirect_answer(app, authed.settings, target_url), &cookie)
}

/// `{"redirect": target}` when `target` is safe; the domain's default redirection URL
/// when no target was given; a plain OK otherwise.
pub fn redirect_answer(app: &App, settings: &CookieSettings, target_url: Option<&str>) -> HttpResponse {
    match target_url.filter(|t| !t.is_empty()) {
        Some(t) if app.services.sessions.is_safe_redirect(t) => {
            response::ok_data(&Redirect { redirect: t.to_string() })
        }
        Some(_) => response::ok(),
        None => match &settings.default_redirection_url {
            Some(url) => response::ok_data(&Redirect { redirect: url.to_string() }),
            None => response::ok(),
        },
    }
}

/// Saves changed session data under the same ID.
pub async fn save(app: &App, authed: &Authed<'_>, data: SessionData) -> Result<(), HttpResponse> {
    app.services.sessions.update(authed.settings, &authed.session, data, now()).await.map_err(|e| store_unavailable(&e))
}
