//! First run: creating the first administrator with the one-time token logged at start
//! (only while no user exists; the token then dies).

use super::{Error, Result};
use crate::authn::bootstrap::TokenCheck;
use crate::authn::hashing_pool::PoolError;
use crate::authn::users_file::User;
use crate::server::App;

/// Longest password accepted (hashing cost grows with length for some algorithms).
const MAX_PASSWORD_BYTES: usize = 1024;

/// The first administrator.
pub struct FirstAdmin<'a> {
    /// The one-time token.
    pub token: &'a str,
    /// Login name.
    pub username: &'a str,
    /// Password (checked against the policy's length rules).
    pub password: &'a str,
    /// Address.
    pub email: &'a str,
    /// Name to show (the username when absent).
    pub display_name: Option<&'a str>,
}

/// Creates the first admin (group `admins`) and retires the token.
pub async fn create_first_admin(app: &App, admin: FirstAdmin<'_>) -> Result<()> {
    let services = &app.services;
    let (check, mut guard) = services.bootstrap.check(admin.token).await;
    match check {
        TokenCheck::Unavailable => return Err(Error::BootstrapUnavailable),
        TokenCheck::Invalid => return Err(Error::BootstrapTokenInvalid),
        TokenCheck::Valid => {}
    }
    if services.users.any().await? {
        *guard = None;
        return Err(Error::UsersExist);
    }
    if let Some(problem) = problem_with(app, &admin) {
        return Err(Error::InvalidUser(problem));
    }
    let params = app.config.authentication_backend.password_hashing();
    let hash = match services.hashing.hash(admin.password, &params).await {
        Ok(hash) => hash,
        Err(PoolError::Busy) => return Err(Error::Busy),
        Err(e) => return Err(Error::Internal(format!("cannot hash the bootstrap password: {e}"))),
    };
    let user = User {
        username: admin.username.to_string(),
        display_name: admin.display_name.filter(|d| !d.trim().is_empty()).unwrap_or(admin.username).to_string(),
        password_hash: hash,
        emails: vec![admin.email.to_string()],
        groups: vec!["admins".into()],
        disabled: false,
    };
    match services.users.create(user, crate::clock::now()).await {
        Ok(()) => {
            *guard = None;
            tracing::info!(username = %admin.username, "first administrator created; bootstrap is over");
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

fn problem_with(app: &App, admin: &FirstAdmin<'_>) -> Option<String> {
    let name = admin.username;
    if name.is_empty() || name.len() > 100 || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':') {
        return Some("username must be 1 to 100 characters without spaces, control characters or ':'".into());
    }
    let email = admin.email;
    let email_ok = email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.')) && email.len() <= 254;
    if !email_ok {
        return Some("email must be a valid address".into());
    }
    let policy = &app.config.password_policy.standard;
    let min = if policy.enabled { policy.min_length.max(8) } else { 8 } as usize;
    let chars = admin.password.chars().count();
    if chars < min {
        return Some(format!("password must be at least {min} characters long"));
    }
    if admin.password.len() > MAX_PASSWORD_BYTES
        || (policy.enabled && policy.max_length > 0 && chars > policy.max_length as usize)
    {
        return Some("password is too long".into());
    }
    None
}
