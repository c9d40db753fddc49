//! Managing the authenticator app: `/api/secondfactor/totp/register` (GET options, PUT
//! offer, POST confirm, DELETE cancel), `/api/secondfactor/totp` (GET describe, DELETE
//! remove) and `/api/secondfactor/recovery-codes` (GET count, PUT renew).

use serde::{Deserialize, Serialize};

use super::Request;
use crate::clock::rfc3339;
use crate::flows::totp::{self, OfferOptions};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `GET /api/secondfactor/totp/register`: what the user may choose.
pub async fn options(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        caller.require(crate::session::AuthLevel::OneFactor)?;
        Ok(response::ok_data(&app.services.totp.options()))
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct OfferBody {
    algorithm: Option<String>,
    length: Option<u32>,
    period: Option<u32>,
}

/// `PUT /api/secondfactor/totp/register`.
pub async fn offer(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: OfferBody = request.json_or_default()?;
        let options = OfferOptions { algorithm: body.algorithm.as_deref(), length: body.length, period: body.period };
        Ok(response::ok_data(&totp::offer(app, caller, options).await?))
    })
}

#[derive(Deserialize)]
struct TokenBody {
    token: String,
}

#[derive(Serialize)]
struct RecoveryCodes {
    recovery_codes: Vec<String>,
}

/// `POST /api/secondfactor/totp/register`.
pub async fn confirm(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: TokenBody = request.json()?;
        let recovery_codes = totp::confirm(app, caller, &body.token).await?;
        Ok(response::ok_data(&RecoveryCodes { recovery_codes }))
    })
}

/// `DELETE /api/secondfactor/totp/register`.
pub async fn cancel(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        totp::cancel(app, caller).await?;
        Ok(response::ok())
    })
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

/// `GET /api/secondfactor/totp`.
pub async fn describe(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let r = totp::describe(app, caller).await?;
        Ok(response::ok_data(&Configuration {
            created_at: rfc3339(r.created_at),
            last_used_at: r.last_used_at.map(rfc3339),
            issuer: r.issuer,
            algorithm: r.algorithm,
            digits: r.digits,
            period: r.period,
        }))
    })
}

/// `DELETE /api/secondfactor/totp`.
pub async fn remove(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        totp::remove(app, caller).await?;
        Ok(response::ok())
    })
}

#[derive(Serialize)]
struct Remaining {
    remaining: i64,
}

/// `GET /api/secondfactor/recovery-codes`.
pub async fn recovery_remaining(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        Ok(response::ok_data(&Remaining { remaining: totp::recovery_remaining(app, caller).await? }))
    })
}

/// `PUT /api/secondfactor/recovery-codes`.
pub async fn recovery_regenerate(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let recovery_codes = totp::regenerate_recovery_codes(app, caller).await?;
        Ok(response::ok_data(&RecoveryCodes { recovery_codes }))
    })
}
