//! The second factor: `/api/secondfactor/totp` (POST), `/api/secondfactor/recovery-codes`
//! (POST), `/api/secondfactor/email` (PUT sends, POST checks) and
//! `/api/secondfactor/webauthn` (GET challenge, POST answer).

use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::PublicKeyCredential;

use super::{Request, redirect_answer};
use crate::flows::second_factor;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize)]
struct CodeBody {
    #[serde(alias = "code")]
    token: String,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

/// `POST /api/secondfactor/totp`.
pub async fn totp(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CodeBody = request.json()?;
        Ok(redirect_answer(second_factor::totp(app, caller, &body.token, body.target_url.as_deref()).await?))
    })
}

/// `POST /api/secondfactor/recovery-codes`.
pub async fn recovery_code(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CodeBody = request.json()?;
        Ok(redirect_answer(second_factor::recovery_code(app, caller, &body.token, body.target_url.as_deref()).await?))
    })
}

#[derive(Serialize)]
struct Sent {
    delete_id: String,
}

/// `PUT /api/secondfactor/email`.
pub async fn send_email_code(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let delete_id = second_factor::send_email_code(app, caller).await?;
        Ok(response::ok_data(&Sent { delete_id }))
    })
}

/// `POST /api/secondfactor/email`.
pub async fn email_code(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CodeBody = request.json()?;
        Ok(redirect_answer(second_factor::email_code(app, caller, &body.token, body.target_url.as_deref()).await?))
    })
}

/// `GET /api/secondfactor/webauthn`.
pub async fn security_key_begin(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&second_factor::security_key_begin(app, caller).await?)))
}

#[derive(Deserialize)]
struct AssertionBody {
    response: PublicKeyCredential,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

/// `POST /api/secondfactor/webauthn`.
pub async fn security_key_finish(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: AssertionBody = request.json()?;
        let target = body.target_url.as_deref();
        Ok(redirect_answer(second_factor::security_key_finish(app, caller, &body.response, target).await?))
    })
}
