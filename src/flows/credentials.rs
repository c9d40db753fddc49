//! The one regulated credential check. Every way of presenting a secret — a password at
//! the login form, the JSON API, Basic credentials at the proxy, the old password when
//! changing it; a TOTP, recovery or mailed code; a security key or passkey — goes through
//! one of the two functions here, so each is refused in the same order, with the same
//! answer, and leaves the same record in the authentication log:
//!
//! 1. regulation: a banned account or address is refused before the secret is looked at
//!    (so a ban also stops guessing from costing CPU), and the refusal is recorded;
//! 2. the secret is checked — for passwords, an unknown or disabled account costs the same
//!    hash as a real one (a decoy), so neither timing nor answer tells them apart;
//! 3. the attempt is recorded; if it cannot be, the check fails closed, since regulation
//!    reads that log.

use std::net::IpAddr;
use std::sync::Arc;

use super::{Error, Factor, Result};
use crate::authn::hashing_pool::{DECOY_HASH, PoolError};
use crate::authn::users_file::User;
use crate::clock::now;
use crate::server::App;
use crate::storage::{AuthAttempt, AuthType};

/// Where an attempt came from and what it was for, as the authentication log records it.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// What kind of secret was presented.
    pub auth_type: AuthType,
    /// The client address.
    pub ip: Option<IpAddr>,
    /// The URL the user was heading to, if known.
    pub target_url: &'a str,
    /// That request's method, if known.
    pub request_method: &'a str,
}

impl Origin<'_> {
    fn attempt(&self, username: &str, successful: bool, banned: bool) -> AuthAttempt {
        AuthAttempt {
            time: now(),
            successful,
            banned,
            username: username.to_string(),
            auth_type: self.auth_type,
            remote_ip: self.ip.map(|ip| ip.to_string()).unwrap_or_default(),
            request_uri: self.target_url.to_string(),
            request_method: self.request_method.to_string(),
        }
    }
}

/// Checks `password` for the account `login` names (its username, or an address when the
/// users backend allows email logins). Returns the user on success.
pub async fn check_password(app: &App, login: &str, password: &str, origin: Origin<'_>) -> Result<Arc<User>> {
    let services = &app.services;
    // Regulation counts attempts per account, whichever login name (username, email, other
    // case) was typed, so switching between them buys no extra guesses.
    let found = services.users.find_login(login);
    let account = found.as_ref().map_or(login, |u| u.username.as_str()).to_string();
    refuse_if_banned(app, &account, origin, Factor::Password).await?;

    let user = found.filter(|u| !u.disabled);
    let stored = user.as_ref().map_or(DECOY_HASH, |u| u.password_hash.as_str());
    let matched = match services.hashing.verify(password, stored).await {
        Ok(matched) => matched,
        Err(PoolError::Busy) => return Err(Error::Busy),
        Err(e) => {
            // A malformed stored hash: the user cannot log in until an operator fixes it.
            tracing::error!(username = %account, error = %e, "cannot check the password");
            false
        }
    };
    let user = user.filter(|_| matched);
    record(app, origin.attempt(&account, user.is_some(), false)).await?;
    match user {
        Some(user) => Ok(user),
        None => {
            tracing::info!(username = %account, auth_type = ?origin.auth_type, "password refused");
            Err(Error::BadCredentials)
        }
    }
}

/// Checks a one-time secret of `username` with `verify` (which says whether it matched),
/// under regulation. `Ok(false)` when it did not match; the caller says how to refuse.
pub async fn check_secret(
    app: &App,
    username: &str,
    origin: Origin<'_>,
    verify: impl Future<Output = Result<bool>>,
) -> Result<bool> {
    refuse_if_banned(app, username, origin, Factor::Code).await?;
    let verified = verify.await;
    let matched = matches!(verified, Ok(true));
    record(app, origin.attempt(username, matched, false)).await?;
    if !matched {
        tracing::info!(username = %username, auth_type = ?origin.auth_type, "one-time secret refused");
    }
    verified
}

/// [`Error::Banned`] (recorded as a banned attempt) when the account or the client is
/// banned; [`Error::RegulationUnavailable`] when that cannot be told.
async fn refuse_if_banned(app: &App, username: &str, origin: Origin<'_>, factor: Factor) -> Result<()> {
    let now = now();
    let ip = origin.ip.map(|ip| ip.to_string()).unwrap_or_default();
    match app.services.regulator.banned_until(username, &ip, now).await {
        Ok(None) => Ok(()),
        Ok(Some(until)) => {
            if let Err(e) = app.services.regulator.record(origin.attempt(username, false, true)).await {
                tracing::error!(error = %e, "cannot record a banned attempt");
            }
            tracing::info!(username = %username, auth_type = ?origin.auth_type, "attempt refused: banned");
            Err(Error::Banned { retry_after: until - now, factor })
        }
        Err(e) => Err(Error::RegulationUnavailable(e)),
    }
}

async fn record(app: &App, attempt: AuthAttempt) -> Result<()> {
    app.services.regulator.record(attempt).await.map_err(Error::RegulationUnavailable)
}
