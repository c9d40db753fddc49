//! `POST /api/firstfactor` (password), `/api/firstfactor/passkey` (passwordless),
//! `/api/firstfactor/reauthenticate` (the password again) and `/api/secondfactor/password`
//! (the password after a passkey).

use serde::Deserialize;
use webauthn_rs::prelude::PublicKeyCredential;

use super::{Request, redirect_answer};
use crate::flows::login::{self, PasskeyLogin, PasswordLogin};
use crate::flows::second_factor;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize)]
struct PasswordBody {
    username: String,
    password: String,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
}

/// `POST /api/firstfactor`.
pub async fn password(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordBody = request.json()?;
        let input = PasswordLogin {
            username: &body.username,
            password: &body.password,
            remember_me: body.keep_me_logged_in.unwrap_or(false),
            target_url: body.target_url.as_deref(),
            request_method: body.request_method.as_deref(),
        };
        Ok(redirect_answer(login::with_password(app, caller, input).await?))
    })
}

/// `GET /api/firstfactor/passkey`: the challenge.
pub async fn passkey_begin(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&login::passkey_begin(app, caller).await?)))
}

#[derive(Deserialize)]
struct PasskeyBody {
    response: PublicKeyCredential,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
    #[serde(rename = "keepMeLoggedIn", default)]
    keep_me_logged_in: Option<bool>,
}

/// `POST /api/firstfactor/passkey`: the answer.
pub async fn passkey_finish(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasskeyBody = request.json()?;
        let input = PasskeyLogin {
            response: &body.response,
            remember_me: body.keep_me_logged_in.unwrap_or(false),
            target_url: body.target_url.as_deref(),
            request_method: body.request_method.as_deref(),
        };
        Ok(redirect_answer(login::passkey_finish(app, caller, input).await?))
    })
}

#[derive(Deserialize)]
struct PasswordAgainBody {
    password: String,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
    #[serde(rename = "requestMethod", default)]
    request_method: Option<String>,
}

/// `POST /api/firstfactor/reauthenticate`.
pub async fn reauthenticate(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordAgainBody = request.json()?;
        let (target, method) = (body.target_url.as_deref(), body.request_method.as_deref());
        Ok(redirect_answer(login::reauthenticate(app, caller, &body.password, target, method).await?))
    })
}

/// `POST /api/secondfactor/password`.
pub async fn second_factor_password(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordAgainBody = request.json()?;
        Ok(redirect_answer(second_factor::password(app, caller, &body.password, body.target_url.as_deref()).await?))
    })
}
