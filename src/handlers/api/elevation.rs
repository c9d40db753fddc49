//! `/api/user/session/elevation`: proving identity again, by a code sent by mail, before
//! sensitive changes (adding or removing second factors, recovery codes).
//!
//! GET reports the state, POST mails a code (returning the ID that cancels it), PUT checks
//! the code and elevates the session for `elevation_lifespan` under a new session ID, and
//! `DELETE /{id}` cancels a pending code (also reachable from the mail's link, so it needs
//! no session: the ID is an unguessable UUID and cancelling is harmless).

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::guard::{self, Authed, BAD_CODE, authed, is_elevated, storage_failed};
use super::{ApiRequest, now, store_unavailable, with_cookie};
use crate::identity::codes::{CodeError, Intent};
use crate::notifier::{CodePurpose, Message};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;
use crate::storage::AuthType;

#[derive(Serialize)]
struct Status {
    require_second_factor: bool,
    skip_second_factor: bool,
    can_skip_second_factor: bool,
    factor_knowledge: bool,
    elevated: bool,
    expires: i64,
}

#[derive(Serialize)]
struct Started {
    delete_id: String,
}

#[derive(Deserialize)]
struct VerifyBody {
    otc: String,
}

/// GET, POST and PUT on `/api/user/session/elevation`.
pub async fn handle(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = match request.parts.method {
        Method::GET => status(app, &authed).await,
        Method::POST => start(app, request, &authed).await,
        _ => verify(app, request, &authed).await,
    };
    result.unwrap_or_else(|r| r)
}

/// Issues a one-time code for `purpose` and mails it to the user's first address; returns
/// the code's public ID. `revoke` builds the cancel link from that ID, when there is one.
pub async fn mail_code(
    app: &App,
    request: &ApiRequest<'_>,
    authed: &Authed<'_>,
    purpose: CodePurpose,
    characters: u32,
    lifespan: std::time::Duration,
    revoke: impl Fn(&str) -> Option<String>,
) -> Result<String, HttpResponse> {
    let data = authed.data();
    let Some(address) = data.emails.first().cloned() else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "Your account has no email address to send a code to"));
    };
    let secs = i64::try_from(lifespan.as_secs()).unwrap_or(300);
    let (id, code) = match app.services.codes.issue(&data.username, intent_of(purpose), characters, secs, now()).await {
        Ok(issued) => issued,
        Err(CodeError::RateLimited(retry)) => {
            return Err(guard::too_many(retry, "Too many codes were requested; try again later"));
        }
        Err(e) => return Err(storage_failed(&e)),
    };
    let message = Message::OneTimeCode {
        display_name: data.display_name.clone(),
        code,
        purpose,
        expires_in: lifespan,
        remote_ip: guard::client_ip(app, request),
        revoke_link: revoke(&id),
    };
    super::send_mail(app, &data.display_name, address, message).await?;
    Ok(id)
}

/// Checks `code` against the code [`mail_code`] sent for `purpose` and the session keeps
/// pending: refused while the user or address is banned, the attempt recorded for
/// regulation either way. `Ok` when it matched.
pub async fn check_mailed_code(
    app: &App,
    request: &ApiRequest<'_>,
    authed: &Authed<'_>,
    purpose: CodePurpose,
    code: &str,
    target_url: Option<&str>,
) -> Result<(), HttpResponse> {
    let data = authed.data();
    let username = &data.username;
    guard::check_ban(app, request, username).await?;
    let pending = match purpose {
        CodePurpose::Elevation => &data.elevation_code,
        CodePurpose::SignIn => &data.email_code,
    };
    let Some(id) = pending else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No code is pending; request one first"));
    };
    let checked = app.services.codes.verify(id, username, intent_of(purpose), code, now()).await;
    guard::record_attempt(app, request, username, AuthType::EmailCode, checked.is_ok(), target_url).await?;
    match checked {
        Ok(()) => Ok(()),
        Err(CodeError::Storage(e)) => Err(storage_failed(&e)),
        Err(_) => Err(response::ko(StatusCode::UNAUTHORIZED, BAD_CODE)),
    }
}

/// The code store's intent for a mailed code's purpose.
fn intent_of(purpose: CodePurpose) -> Intent {
    match purpose {
        CodePurpose::Elevation => Intent::Elevation,
        CodePurpose::SignIn => Intent::SignIn,
    }
}

/// Whether the user has any second factor registered.
pub async fn has_second_factor(app: &App, username: &str) -> Result<bool, HttpResponse> {
    let storage = &app.services.storage;
    let totp = storage.totp_exists(username).await.map_err(|e| storage_failed(&e))?;
    let keys = storage.webauthn_count(username).await.map_err(|e| storage_failed(&e))?;
    Ok(totp || keys > 0)
}

async fn status(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let es = &app.config.identity_validation.elevated_session;
    let data = authed.data();
    let now = now();
    let can_skip = es.skip_second_factor && has_second_factor(app, &data.username).await?;
    Ok(response::ok_data(&Status {
        require_second_factor: es.require_second_factor,
        skip_second_factor: es.skip_second_factor,
        can_skip_second_factor: can_skip,
        factor_knowledge: data.first_factor_at.is_some(),
        elevated: is_elevated(app, data, now),
        expires: data.elevated_until.map_or(0, |until| (until - now).max(0)),
    }))
}

async fn start(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let es = &app.config.identity_validation.elevated_session;
    let data = authed.data();
    if es.require_second_factor && data.level() < AuthLevel::TwoFactor && has_second_factor(app, &data.username).await?
    {
        return Err(response::ko(StatusCode::FORBIDDEN, "Complete the second factor before elevating this session"));
    }
    let lifespan = es.code_lifespan.get();
    let revoke =
        |id: &str| authed.settings.portal_url.join(&format!("revoke/elevation/{id}")).ok().map(|u| u.to_string());
    let id = mail_code(app, request, authed, CodePurpose::Elevation, es.characters, lifespan, revoke).await?;
    let mut updated = data.clone();
    updated.elevation_code = Some(id.clone());
    guard::save(app, authed, updated).await?;
    Ok(response::ok_data(&Started { delete_id: id }))
}

async fn verify(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let body: VerifyBody = request.json()?;
    let data = authed.data();
    check_mailed_code(app, request, authed, CodePurpose::Elevation, &body.otc, None).await?;
    let now = now();
    let lifespan = i64::try_from(app.config.identity_validation.elevated_session.elevation_lifespan.get().as_secs())
        .unwrap_or(600);
    let mut updated = data.clone();
    updated.elevation_code = None;
    updated.elevated_until = Some(now + lifespan);
    // Elevation is a privilege change: the session gets a new ID.
    let sessions = &app.services.sessions;
    match sessions.issue(authed.settings, Some(&authed.session.id), updated, now).await {
        Ok((_, cookie)) => {
            tracing::info!(username = %data.username, "session elevated");
            Ok(with_cookie(response::ok(), &cookie))
        }
        Err(e) => Err(store_unavailable(&e)),
    }
}

/// `DELETE /api/user/session/elevation/{id}`: cancels a pending code.
pub async fn revoke(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let id = request.path.rsplit('/').next().unwrap_or_default();
    if uuid::Uuid::parse_str(id).is_err() {
        return response::ko(StatusCode::BAD_REQUEST, "Invalid code ID");
    }
    match app.services.codes.revoke(id, now()).await {
        Ok(true) => response::ok(),
        Ok(false) => response::ko(StatusCode::NOT_FOUND, "No pending code with that ID"),
        Err(e) => storage_failed(&e),
    }
}
