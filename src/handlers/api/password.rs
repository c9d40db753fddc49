//! Passwords: `/api/reset-password/identity/start` mails a single-use link,
//! `.../identity/finish` redeems it into the session, `POST /api/reset-password` sets the
//! new password, `DELETE /api/reset-password` revokes a link the user did not ask for;
//! `POST /api/change-password` changes the logged-in user's password.

use serde::Deserialize;

use super::{Request, answer};
use crate::flows::password::{self, PasswordChange};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

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

/// `POST /api/reset-password/identity/start`.
pub async fn reset_start(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: StartBody = request.json()?;
        password::reset_start(app, caller, &body.username).await?;
        Ok(response::ok())
    })
}

/// `POST /api/reset-password/identity/finish`.
pub async fn reset_redeem(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: TokenBody = request.json()?;
        password::reset_redeem(app, caller, &body.token).await?;
        Ok(response::ok())
    })
}

/// `POST /api/reset-password`.
pub async fn reset_set(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordBody = request.json()?;
        password::reset_set(app, caller, &body.password).await?;
        Ok(response::ok())
    })
}

/// `DELETE /api/reset-password`.
pub async fn reset_revoke(app: &App, request: &Request<'_>) -> HttpResponse {
    let revoked = match request.json::<TokenBody>() {
        Ok(body) => password::reset_revoke(app, &body.token).await,
        Err(e) => Err(e),
    };
    answer(revoked, |()| response::ok())
}

#[derive(Deserialize)]
struct ChangeBody {
    /// Sent by Authelia's frontend (with the display name in it); the session says whose
    /// password changes, so it is read and ignored, as Authelia does.
    #[serde(default, rename = "username")]
    _username: Option<String>,
    old_password: String,
    new_password: String,
}

/// `POST /api/change-password`.
pub async fn change(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: ChangeBody = request.json()?;
        let change = PasswordChange { old_password: &body.old_password, new_password: &body.new_password };
        password::change(app, caller, change).await?;
        Ok(response::ok())
    })
}
