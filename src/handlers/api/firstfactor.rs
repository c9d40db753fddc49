//! `POST /api/firstfactor`: username and password → a first-factor session.
//!
//! Order matters for security: a banned user is refused before the password is looked at;
//! an unknown or disabled user costs the same hash as a real one (no user enumeration by
//! timing); every attempt is logged for regulation; success always issues a new session
//! ID (no session fixation).

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::{Deserialize, Serialize};

use super::{ApiRequest, current, now, store_unavailable, with_cookie};
use crate::authn::hashing_pool::{DECOY_HASH, PoolError};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::SessionData;
use crate::storage::{AuthAttempt, AuthType};

/// Authelia's message for every credential failure: it never says which part was wrong.
pub const BAD_CREDENTIALS: &str = "Authentication failed. Check your credentials.";

#[derive(Deserialize)]
struct Body {
    username: String,
    password: String,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
}

#[derive(Serialize)]
struct Redirect {
    redirect: String,
}

/// Checks the credentials and starts a first-factor session.
pub async fn post(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: Body = match request.json() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let current = match current(app, request).await {
        Ok(Some(current)) => current,
        Ok(None) => return response::ko(StatusCode::FORBIDDEN, "The portal is not under a configured cookie domain"),
        Err(response) => return response,
    };
    let services = &app.services;
    let ip = app.client_ip(request.remote, &request.parts.headers).map(|ip| ip.to_string()).unwrap_or_default();
    let now = now();
    let attempt = |successful: bool, banned: bool, username: &str| AuthAttempt {
        time: now,
        successful,
        banned,
        username: username.to_string(),
        auth_type: AuthType::FirstFactor,
        remote_ip: ip.clone(),
        request_uri: body.target_url.clone().unwrap_or_default(),
        request_method: body.request_method.clone().unwrap_or_default(),
    };

    // Regulation counts attempts per account, whichever login name (username, email, other
    // case) was typed, so switching between them buys no extra guesses.
    let found = services.users.find_login(&body.username);
    let account = found.as_ref().map_or(body.username.as_str(), |u| u.username.as_str()).to_string();
    match services.regulator.banned_until(&account, &ip, now).await {
        Ok(None) => {}
        Ok(Some(until)) => {
            if let Err(e) = services.regulator.record(attempt(false, true, &account)).await {
                tracing::error!(error = %e, "cannot record a banned attempt");
            }
            tracing::info!(username = %account, "login refused: user is banned");
            let mut r = response::ko(StatusCode::TOO_MANY_REQUESTS, BAD_CREDENTIALS);
            if let Ok(v) = HeaderValue::from_str(&(until - now).max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return r;
        }
        Err(e) => {
            tracing::error!(error = %e, "regulation check failed");
            return response::ko(StatusCode::SERVICE_UNAVAILABLE, "Authentication is temporarily unavailable");
        }
    }

    let user = found.filter(|u| !u.disabled);
    let stored = user.as_ref().map_or(DECOY_HASH, |u| u.password_hash.as_str());
    let matched = match services.hashing.verify(&body.password, stored).await {
        Ok(matched) => matched,
        Err(PoolError::Busy) => {
            let mut r = response::ko(StatusCode::SERVICE_UNAVAILABLE, "Too many logins in progress; try again shortly");
            r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return r;
        }
        Err(e) => {
            // A malformed stored hash: the user cannot log in until an operator fixes it.
            tracing::error!(username = %body.username, error = %e, "cannot check the password");
            false
        }
    };
    let user = user.filter(|_| matched);
    if let Err(e) = services.regulator.record(attempt(user.is_some(), false, &account)).await {
        // Without the log, regulation cannot work: fail closed.
        tracing::error!(error = %e, "cannot record the login attempt");
        return response::ko(StatusCode::SERVICE_UNAVAILABLE, "Authentication is temporarily unavailable");
    }
    let Some(user) = user else {
        tracing::info!(username = %body.username, "login failed");
        return response::ko(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS);
    };

    let settings = current.settings;
    let data = session_for(&user, now, body.keep_me_logged_in.unwrap_or(false) && !settings.remember_me.is_zero());
    let previous = current.session.as_ref().map(|s| &s.id);
    let cookie = match services.sessions.issue(settings, previous, data, now).await {
        Ok((_, cookie)) => cookie,
        Err(e) => return store_unavailable(&e),
    };
    tracing::info!(username = %user.username, "login succeeded");

    let target = body.target_url.as_deref();
    let answer = match redirect_after_first_factor(app, settings, target, body.request_method.as_deref(), &user) {
        Some(redirect) => response::ok_data(&Redirect { redirect }),
        None => response::ok(),
    };
    with_cookie(answer, &cookie)
}

/// A first-factor session for `user`.
pub(super) fn session_for(user: &crate::authn::users_file::User, now: i64, remember_me: bool) -> SessionData {
    SessionData {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        emails: user.emails.clone(),
        groups: user.groups.clone(),
        first_factor_at: Some(now),
        remember_me,
        ..Default::default()
    }
}

/// Where the portal sends the user now, if one factor is enough: the safe target unless its
/// access rule (evaluated for this user) needs two factors, or, when no target was
/// given and no rule asks for two factors, the domain's default redirection URL.
pub(super) fn redirect_after_first_factor(
    app: &App,
    settings: &crate::session::CookieSettings,
    target: Option<&str>,
    method: Option<&str>,
    user: &crate::authn::users_file::User,
) -> Option<String> {
    use crate::access_control::{Object, Policy, Subject};
    match target.filter(|t| !t.is_empty()) {
        Some(t) if app.services.sessions.is_safe_redirect(t) => {
            let url = url::Url::parse(t).ok()?;
            let method = method.filter(|m| !m.is_empty()).unwrap_or("GET");
            let subject = Subject { username: &user.username, groups: &user.groups, client_id: "", ip: None };
            let decision = app.access_control.evaluate(&subject, &Object::new(&url, method));
            // As Authelia: only a two-factor target keeps the user at the portal; a denied
            // target is still redirected to, where the user sees why.
            (decision.policy != Policy::TwoFactor).then(|| t.to_string())
        }
        Some(_) => None,
        None if app.config.access_control.second_factor_required() => None,
        None => settings.default_redirection_url.as_ref().map(|u| u.to_string()),
    }
}
