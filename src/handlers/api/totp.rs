//! TOTP: registration (`/api/secondfactor/totp/register`), sign-in and removal
//! (`/api/secondfactor/totp`), and recovery codes (`/api/secondfactor/recovery-codes`).
//!
//! Registration happens in two steps so that a secret is only stored once the user proved
//! their app computes the right codes; the offered secret waits in the session. Adding or
//! removing a factor needs an elevated session.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::guard::{self, Authed, BAD_CODE, authed, require_elevation, storage_failed};
use super::{ApiRequest, now};
use crate::second_factor::recovery;
use crate::second_factor::totp::TotpError;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::{AuthLevel, PENDING_LIFETIME_SECS};
use crate::storage::AuthType;

#[derive(Deserialize, Default)]
#[serde(default)]
struct StartBody {
    algorithm: Option<String>,
    length: Option<u32>,
    period: Option<u32>,
}

#[derive(Serialize)]
struct StartAnswer {
    base32_secret: String,
    otpauth_url: String,
    /// The same URL as a QR code, a PNG `data:` URI ready for an `<img>`.
    qr_code: String,
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

#[derive(Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// Turns an empty body into `{}` so that optional-field bodies may be omitted.
fn optional_json<T: serde::de::DeserializeOwned + Default>(request: &ApiRequest<'_>) -> Result<T, HttpResponse> {
    if request.body.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { request.json() }
}

/// `/api/secondfactor/totp/register`: GET options, PUT start, POST finish, DELETE cancel.
pub async fn register(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = match request.parts.method {
        Method::GET => Ok(response::ok_data(&app.services.totp.options())),
        Method::PUT => start(app, request, &authed).await,
        Method::POST => finish(app, request, &authed).await,
        _ => cancel(app, &authed).await,
    };
    result.unwrap_or_else(|r| r)
}

async fn start(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let body: StartBody = optional_json(request)?;
    let totp = &app.services.totp;
    let pending = totp
        .offer(body.algorithm.as_deref(), body.length, body.period, now())
        .map_err(|e| response::ko(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let (otpauth_url, qr_code) = totp.enrollment_links(&pending, &authed.data().username).map_err(|e| match e {
        TotpError::NotAllowed(_) => response::ko(StatusCode::BAD_REQUEST, &e.to_string()),
        TotpError::Invalid(_) => response::ko(StatusCode::BAD_REQUEST, "Cannot create a TOTP setup for this account"),
    })?;
    let answer = StartAnswer { base32_secret: pending.secret.clone(), otpauth_url, qr_code };
    let mut data = authed.data().clone();
    data.pending_totp = Some(pending);
    guard::save(app, authed, data).await?;
    Ok(response::ok_data(&answer))
}

async fn finish(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let body: TokenBody = request.json()?;
    let now = now();
    let Some(pending) = authed.data().pending_totp.clone().filter(|p| now - p.created_at < PENDING_LIFETIME_SECS)
    else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No TOTP registration is in progress; start again"));
    };
    let username = authed.data().username.clone();
    let totp = &app.services.totp;
    let record =
        totp.confirm(&pending, &username, now).map_err(|e| response::ko(StatusCode::BAD_REQUEST, &e.to_string()))?;
    let Some(step) = totp.matching_step(&record, &body.token, now) else {
        return Err(response::ko(StatusCode::BAD_REQUEST, BAD_CODE));
    };
    let storage = &app.services.storage;
    storage.totp_save(record).await.map_err(|e| storage_failed(&e))?;
    // The confirming code is spent: it cannot also sign in.
    storage.totp_use_step(&username, step, now).await.map_err(|e| storage_failed(&e))?;
    let codes = recovery::generate();
    let hashes = codes.iter().map(|c| recovery::hash(storage.cipher(), c)).collect();
    storage.recovery_replace(&username, hashes, now).await.map_err(|e| storage_failed(&e))?;
    let mut data = authed.data().clone();
    data.pending_totp = None;
    guard::save(app, authed, data).await?;
    tracing::info!(username = %username, "TOTP registered");
    Ok(response::ok_data(&RecoveryCodes { recovery_codes: codes }))
}

async fn cancel(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let mut data = authed.data().clone();
    data.pending_totp = None;
    guard::save(app, authed, data).await?;
    Ok(response::ok())
}

#[derive(Serialize)]
struct Configuration {
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    issuer: String,
    algorithm: String,
    digits: u32,
    period: u32,
}

/// RFC 3339 rendering of Unix seconds.
pub fn rfc3339(secs: i64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `/api/secondfactor/totp`: GET the setup, POST a code to sign in, DELETE the setup.
pub async fn totp(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = match request.parts.method {
        Method::GET => describe(app, &authed).await,
        Method::POST => sign_in(app, request, &authed).await,
        _ => remove(app, &authed).await,
    };
    result.unwrap_or_else(|r| r)
}

async fn describe(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let record = app.services.storage.totp_get(&authed.data().username).await.map_err(|e| storage_failed(&e))?;
    let Some(r) = record else { return Err(response::ko(StatusCode::NOT_FOUND, "No TOTP device is registered")) };
    Ok(response::ok_data(&Configuration {
        created_at: rfc3339(r.created_at),
        last_used_at: r.last_used_at.map(rfc3339),
        issuer: r.issuer,
        algorithm: r.algorithm,
        digits: r.digits,
        period: r.period,
    }))
}

async fn sign_in(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let body: TokenBody = request.json()?;
    let username = authed.data().username.clone();
    guard::check_ban(app, request, &username).await?;
    let now = now();
    let storage = &app.services.storage;
    let record = storage.totp_get(&username).await.map_err(|e| storage_failed(&e))?;
    let Some(record) = record else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No TOTP device is registered"));
    };
    let totp = &app.services.totp;
    let accepted = match totp.matching_step(&record, &body.token, now) {
        Some(_) if totp.reuse_allowed() => true,
        Some(step) => storage.totp_use_step(&username, step, now).await.map_err(|e| storage_failed(&e))?,
        None => false,
    };
    let target = body.target_url.as_deref();
    guard::record_attempt(app, request, &username, AuthType::Totp, accepted, target).await?;
    if !accepted {
        tracing::info!(username = %username, "TOTP code refused");
        return Err(response::ko(StatusCode::UNAUTHORIZED, BAD_CODE));
    }
    Ok(guard::complete_second_factor(app, authed, "totp", target).await)
}

async fn remove(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let username = &authed.data().username;
    let storage = &app.services.storage;
    if !storage.totp_delete(username).await.map_err(|e| storage_failed(&e))? {
        return Err(response::ko(StatusCode::NOT_FOUND, "No TOTP device is registered"));
    }
    // Recovery codes back up TOTP; without it they would be a password-strength factor.
    storage.recovery_replace(username, Vec::new(), now()).await.map_err(|e| storage_failed(&e))?;
    tracing::info!(username = %username, "TOTP removed");
    Ok(response::ok())
}

#[derive(Serialize)]
struct Remaining {
    remaining: i64,
}

#[derive(Deserialize)]
struct CodeBody {
    #[serde(alias = "code")]
    token: String,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

/// `/api/secondfactor/recovery-codes`: GET how many are left, PUT a new set (elevated),
/// POST one to sign in (it is burned).
pub async fn recovery_codes(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = match request.parts.method {
        Method::GET => app
            .services
            .storage
            .recovery_remaining(&authed.data().username)
            .await
            .map(|remaining| response::ok_data(&Remaining { remaining }))
            .map_err(|e| storage_failed(&e)),
        Method::PUT => regenerate(app, &authed).await,
        _ => use_code(app, request, &authed).await,
    };
    result.unwrap_or_else(|r| r)
}

async fn regenerate(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let username = &authed.data().username;
    let storage = &app.services.storage;
    if !storage.totp_exists(username).await.map_err(|e| storage_failed(&e))? {
        return Err(response::ko(StatusCode::BAD_REQUEST, "Register a TOTP device first"));
    }
    let codes = recovery::generate();
    let hashes = codes.iter().map(|c| recovery::hash(storage.cipher(), c)).collect();
    storage.recovery_replace(username, hashes, now()).await.map_err(|e| storage_failed(&e))?;
    tracing::info!(username = %username, "recovery codes regenerated");
    Ok(response::ok_data(&RecoveryCodes { recovery_codes: codes }))
}

async fn use_code(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let body: CodeBody = request.json()?;
    let username = authed.data().username.clone();
    guard::check_ban(app, request, &username).await?;
    let storage = &app.services.storage;
    let hash = recovery::hash(storage.cipher(), &body.token);
    let burned = storage.recovery_burn(&username, &hash, now()).await.map_err(|e| storage_failed(&e))?;
    let target = body.target_url.as_deref();
    guard::record_attempt(app, request, &username, AuthType::RecoveryCode, burned, target).await?;
    if !burned {
        tracing::info!(username = %username, "recovery code refused");
        return Err(response::ko(StatusCode::UNAUTHORIZED, BAD_CODE));
    }
    tracing::warn!(username = %username, "a recovery code was used");
    Ok(guard::complete_second_factor(app, authed, "recovery", target).await)
}
