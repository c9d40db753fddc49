//! Password reset: `/api/reset-password/identity/start` mails a single-use link,
//! `.../identity/finish` redeems it into the session, `POST /api/reset-password` sets the
//! new password, `DELETE /api/reset-password` revokes a link the user did not ask for.
//!
//! The start step answers the same, at the same speed, whether or not the user exists:
//! the lookup and mail happen after the answer, so neither body nor timing enumerates
//! accounts. A per-client limit keeps it from being used to flood mailboxes.

use http::{Method, StatusCode};
use serde::Deserialize;

use super::guard::{self, storage_failed};
use super::{ApiRequest, Current, current, now, store_unavailable, with_cookie};
use crate::authn::hashing_pool::PoolError;
use crate::authn::password_policy;
use crate::identity::reset_token::TokenError;
use crate::notifier::Message;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::SessionData;

#[derive(Deserialize)]
struct StartBody {
    username: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

async fn session_domain<'a>(app: &'a App, request: &ApiRequest<'_>) -> Result<Current<'a>, HttpResponse> {
    match current(app, request).await? {
        Some(c) => Ok(c),
        None => Err(response::ko(StatusCode::FORBIDDEN, "The portal is not under a configured cookie domain")),
    }
}

/// `POST /api/reset-password/identity/start`.
pub async fn start(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: StartBody = match request.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let current = match session_domain(app, request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let client = guard::client_ip(app, request);
    let now = now();
    if let Err(retry) = app.services.reset_limiter.hit(&client, now) {
        return guard::too_many(retry, "Too many password reset requests; try again later");
    }
    let user = app.services.users.find_login(body.username.trim()).filter(|u| !u.disabled);
    if let Some(user) = user
        && let Some(address) = user.emails.first().cloned()
    {
        let tokens = app.services.reset_tokens.clone();
        let notifier = app.services.notifier.clone();
        let portal = current.settings.portal_url.clone();
        tokio::spawn(async move {
            let token = match tokens.issue(&user.username, now).await {
                Ok(Some(token)) => token,
                Ok(None) => {
                    tracing::info!(username = %user.username, "password reset link not sent: too many recently");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot issue a password reset link");
                    return;
                }
            };
            let Ok(mut link) = portal.join("reset-password") else { return };
            link.query_pairs_mut().append_pair("token", &token);
            let message = Message::ResetPassword {
                display_name: user.display_name.clone(),
                link: link.to_string(),
                expires_in: std::time::Duration::from_secs(u64::try_from(tokens.lifespan()).unwrap_or(300)),
                remote_ip: client,
            };
            let to = crate::notifier::Recipient { name: user.display_name.clone(), address };
            match notifier.send(&to, &message).await {
                Ok(()) => tracing::info!(username = %user.username, "password reset link sent"),
                Err(e) => tracing::error!(username = %user.username, error = %e, "cannot send the password reset link"),
            }
        });
    } else {
        tracing::info!("password reset requested for an unknown or disabled user");
    }
    response::ok()
}

/// `POST /api/reset-password/identity/finish`: redeems the link's token (once) and lets
/// this session set the user's new password.
pub async fn finish(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: TokenBody = match request.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let current = match session_domain(app, request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let now = now();
    let username = match app.services.reset_tokens.redeem(&body.token, now).await {
        Ok(username) => username,
        Err(TokenError::Invalid) => {
            return response::ko(StatusCode::BAD_REQUEST, "The link is invalid, has expired or was already used");
        }
        Err(TokenError::Storage(e)) => return storage_failed(&e),
    };
    // A fresh anonymous session holds the permission: whoever was logged in on this
    // browser is logged out, and the permission cannot leak into an existing session.
    let data = SessionData { password_reset_username: Some(username.clone()), ..Default::default() };
    let previous = current.session.as_ref().map(|s| &s.id);
    match app.services.sessions.issue(current.settings, previous, data, now).await {
        Ok((_, cookie)) => {
            tracing::info!(username = %username, "password reset link redeemed");
            with_cookie(response::ok(), &cookie)
        }
        Err(e) => store_unavailable(&e),
    }
}

/// `POST /api/reset-password` sets the new password; `DELETE` revokes a link.
pub async fn reset(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    if request.parts.method == Method::DELETE {
        let body: TokenBody = match request.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        return match app.services.reset_tokens.revoke(&body.token, now()).await {
            Ok(()) => response::ok(),
            Err(TokenError::Invalid) => {
                response::ko(StatusCode::BAD_REQUEST, "The link is invalid or was already used")
            }
            Err(TokenError::Storage(e)) => storage_failed(&e),
        };
    }
    let body: PasswordBody = match request.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let current = match session_domain(app, request).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let Some(session) = current.session.filter(|s| s.data.password_reset_username.is_some()) else {
        return response::ko(StatusCode::FORBIDDEN, "Open the link from the password reset mail first");
    };
    let username = session.data.password_reset_username.clone().unwrap_or_default();
    let Some(user) = app.services.users.find_login(&username).filter(|u| u.username == username && !u.disabled) else {
        return response::ko(StatusCode::FORBIDDEN, "This account cannot reset its password");
    };
    if let Err(r) = set_password(app, &user, &body.password, None).await {
        return r;
    }
    // The permission is spent with the session that held it.
    let clear = match app.services.sessions.end(current.settings, &session.id).await {
        Ok(clear) => clear,
        Err(e) => return store_unavailable(&e),
    };
    super::notify_password_changed(app, request, &user);
    tracing::info!(username = %user.username, "password reset");
    with_cookie(response::ok(), &clear)
}

/// Checks `password` against the policy, hashes it, stores it, and ends the user's
/// sessions other than `keep`.
pub async fn set_password(
    app: &App,
    user: &crate::authn::users_file::User,
    password: &str,
    keep: Option<&crate::session::SessionId>,
) -> Result<(), HttpResponse> {
    let mut context = vec![user.username.as_str(), user.display_name.as_str()];
    context.extend(user.emails.iter().map(String::as_str));
    if let Err(violation) = password_policy::check(&app.config.password_policy, password, &context) {
        return Err(response::ko(StatusCode::BAD_REQUEST, &violation.0));
    }
    let params = app.config.authentication_backend.file.clone().unwrap_or_default().password;
    let hash = match app.services.hashing.hash(password, &params).await {
        Ok(hash) => hash,
        Err(PoolError::Busy) => return Err(guard::busy()),
        Err(e) => return Err(storage_failed(&e)),
    };
    let users = app.services.users.clone();
    let username = user.username.clone();
    tokio::task::spawn_blocking(move || users.set_password_hash(&username, &hash))
        .await
        .map_err(|e| storage_failed(&e))?
        .map_err(|e| storage_failed(&e))?;
    match app.services.sessions.end_all_for(&user.username, keep).await {
        Ok(n) => tracing::info!(username = %user.username, ended = n, "other sessions ended after a password change"),
        Err(e) => return Err(store_unavailable(&e)),
    }
    Ok(())
}
