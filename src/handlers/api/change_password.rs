//! `POST /api/change-password`: a logged-in user replaces their password, proving the old
//! one (regulated like a login, as it is a password guess) and, when
//! `authentication_backend.password_change.require_elevation` is set, with an elevated
//! session. Other sessions of the user end; this one stays.

use http::StatusCode;
use serde::Deserialize;

use super::ApiRequest;
use super::firstfactor::BAD_CREDENTIALS;
use super::guard::{self, authed, require_elevation};
use crate::authn::hashing_pool::PoolError;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;
use crate::storage::AuthType;

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    username: Option<String>,
    old_password: String,
    new_password: String,
}

/// Checks the old password and the policy, then stores the new hash.
pub async fn post(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    run(app, request).await.unwrap_or_else(|r| r)
}

async fn run(app: &App, request: &ApiRequest<'_>) -> Result<HttpResponse, HttpResponse> {
    let body: Body = request.json()?;
    let authed = authed(app, request, AuthLevel::OneFactor).await?;
    if app.config.authentication_backend.password_change.require_elevation {
        require_elevation(app, &authed)?;
    }
    let username = authed.data().username.clone();
    if body.username.as_deref().is_some_and(|u| !u.is_empty() && u != username) {
        return Err(response::ko(StatusCode::FORBIDDEN, "You can only change your own password"));
    }
    guard::check_ban(app, request, &username).await?;
    let Some(user) = app.services.users.find_login(&username).filter(|u| u.username == username && !u.disabled) else {
        return Err(response::ko(StatusCode::FORBIDDEN, "This account cannot change its password"));
    };
    let matched = match app.services.hashing.verify(&body.old_password, &user.password_hash).await {
        Ok(m) => m,
        Err(PoolError::Busy) => return Err(guard::busy()),
        Err(e) => {
            tracing::error!(username = %username, error = %e, "cannot check the password");
            false
        }
    };
    guard::record_attempt(app, request, &username, AuthType::FirstFactor, matched, None).await?;
    if !matched {
        return Err(response::ko(StatusCode::UNAUTHORIZED, BAD_CREDENTIALS));
    }
    if body.new_password == body.old_password {
        return Err(response::ko(StatusCode::BAD_REQUEST, "The new password must differ from the old one"));
    }
    super::reset_password::set_password(app, &user, &body.new_password, Some(&authed.session.id)).await?;
    super::notify_password_changed(app, request, &user);
    tracing::info!(username = %username, "password changed");
    Ok(response::ok())
}
