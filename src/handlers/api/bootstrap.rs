//! `POST /api/bootstrap`: creates the first administrator with the one-time token logged at
//! startup (only while no user exists).

use http::StatusCode;
use serde::Deserialize;

use super::ApiRequest;
use crate::authn::bootstrap::TokenCheck;
use crate::authn::hashing_pool::PoolError;
use crate::authn::users_file::{User, UsersFileError};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize)]
struct Body {
    token: String,
    username: String,
    password: String,
    email: String,
    #[serde(default)]
    displayname: Option<String>,
}

/// Longest password accepted (hashing cost grows with length for some algorithms).
const MAX_PASSWORD_BYTES: usize = 1024;

/// Creates the first admin (group `admins`) and retires the token.
pub async fn post(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: Body = match request.json() {
        Ok(body) => body,
        Err(response) => return response,
    };
    let services = &app.services;
    let (check, mut guard) = services.bootstrap.check(&body.token).await;
    match check {
        TokenCheck::Unavailable => return response::ko(StatusCode::FORBIDDEN, "Bootstrap is not available"),
        TokenCheck::Invalid => return response::ko(StatusCode::UNAUTHORIZED, "Invalid bootstrap token"),
        TokenCheck::Valid => {}
    }
    if !services.users.snapshot().is_empty() {
        *guard = None;
        return response::ko(StatusCode::CONFLICT, "Users already exist; bootstrap is over");
    }
    if let Some(problem) = problem_with(app, &body) {
        return response::ko(StatusCode::BAD_REQUEST, &problem);
    }
    let params = app.config.authentication_backend.file.clone().unwrap_or_default().password;
    let hash = match services.hashing.hash(&body.password, &params).await {
        Ok(hash) => hash,
        Err(PoolError::Busy) => return response::ko(StatusCode::SERVICE_UNAVAILABLE, "Server busy; try again shortly"),
        Err(e) => {
            tracing::error!(error = %e, "cannot hash the bootstrap password");
            return response::ko(StatusCode::INTERNAL_SERVER_ERROR, "Cannot hash the password");
        }
    };
    let user = User {
        username: body.username.clone(),
        display_name: body
            .displayname
            .clone()
            .filter(|d| !d.trim().is_empty())
            .unwrap_or_else(|| body.username.clone()),
        password_hash: hash,
        emails: vec![body.email.clone()],
        groups: vec!["admins".into()],
        disabled: false,
    };
    let users = services.users.clone();
    match tokio::task::spawn_blocking(move || users.add_user(&user)).await {
        Ok(Ok(())) => {
            *guard = None;
            tracing::info!(username = %body.username, "first administrator created; bootstrap is over");
            let mut r = response::ok();
            *r.status_mut() = StatusCode::CREATED;
            r
        }
        Ok(Err(UsersFileError::UserExists(_))) => response::ko(StatusCode::CONFLICT, "User already exists"),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "cannot write the users file");
            response::ko(StatusCode::SERVICE_UNAVAILABLE, "Cannot write the users file")
        }
        Err(e) => {
            tracing::error!(error = %e, "bootstrap task failed");
            response::ko(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

fn problem_with(app: &App, body: &Body) -> Option<String> {
    let name = &body.username;
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':') {
        return Some("username must be 1 to 100 characters without spaces, control characters or ':'".into());
    }
    let email_ok =
        body.email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) && body.email.len() <= 254;
    if !email_ok {
        return Some("email must be a valid address".into());
    }
    let policy = &app.config.password_policy.standard;
    let min = if policy.enabled { policy.min_length.max(8) } else { 8 } as usize;
    let chars = body.password.chars().count();
    if chars < min {
        return Some(format!("password must be at least {min} characters long"));
    }
    if body.password.len() > MAX_PASSWORD_BYTES
        || (policy.enabled && policy.max_length > 0 && chars > policy.max_length as usize)
    {
        return Some("password is too long".into());
    }
    None
}
