//! The one regulated credential check. Every way of presenting a secret — a password at
//! the login form, the JSON API, Basic credentials at the proxy, the old password when
//! changing it; a TOTP, recovery or mailed code; a security key or passkey — goes through
//! one of the two functions here, so each is refused in the same order, with the same
//! answer, and leaves the same record in the authentication log:
//!
//! 1. regulation reserves the attempt: a banned account or address is refused (and the
//!    refusal recorded) before the secret is looked at, so a ban also stops guessing from
//!    costing CPU; otherwise the attempt is written as failed, in the same locked step, so
//!    concurrent guesses each count before the next is judged;
//! 2. the secret is checked — for passwords, an unknown or disabled account costs the same
//!    hash as a real one (a decoy), so neither timing nor answer tells them apart; with
//!    the LDAP backend, by binding to the directory as the user;
//! 3. the attempt is settled (a success recorded as one); if that cannot be recorded the
//!    check fails closed, since regulation reads that log.

use std::sync::Arc;

use super::audit::{self, Context, Event, Outcome};
use super::{Error, Factor, Result};
use crate::authn::hashing_pool::{DECOY_HASH, PoolError};
use crate::authn::users_file::User;
use crate::clock::now;
use crate::regulation::{Ticket, Verdict};
use crate::server::App;
use crate::storage::{AuthAttempt, AuthType, Settlement};

/// Where an attempt came from and what it was for, as the authentication log records it.
#[derive(Clone, Copy, Debug)]
pub struct Origin<'a> {
    /// What kind of secret was presented.
    pub auth_type: AuthType,
    /// Where the request came from.
    pub context: &'a Context,
    /// The URL the user was heading to, if known.
    pub target_url: &'a str,
    /// That request's method, if known.
    pub request_method: &'a str,
}

impl Origin<'_> {
    fn ip_text(&self) -> String {
        self.context.ip_text()
    }

    fn attempt(&self, username: &str, successful: bool, banned: bool) -> AuthAttempt {
        AuthAttempt {
            time: now(),
            successful,
            banned,
            username: username.to_string(),
            auth_type: self.auth_type,
            remote_ip: self.ip_text(),
            request_uri: self.target_url.to_string(),
            request_method: self.request_method.to_string(),
        }
    }
}

/// Checks `password` for the account `login` names (its username, or an address when the
/// users backend allows email logins). Returns the user on success.
pub async fn check_password(app: &App, login: &str, password: &str, origin: Origin<'_>) -> Result<Arc<User>> {
    let started = std::time::Instant::now();
    // Boxed: the check's future is large, and a second copy of it in this one's would
    // weigh on every caller's stack in debug builds.
    let outcome = Box::pin(password_attempt(app, login, password, origin)).await;
    crate::telemetry::first_factor(&outcome, started);
    outcome
}

async fn password_attempt(app: &App, login: &str, password: &str, origin: Origin<'_>) -> Result<Arc<User>> {
    let services = &app.services;
    // Regulation counts attempts per account, whichever login name (username, email, other
    // case) was typed, so switching between them buys no extra guesses.
    let found = services.users.find_login(login).await?;
    let account = found.as_ref().map_or(login, |u| u.username.as_str()).to_string();
    let _turn = app.services.regulator.turn(&account, &origin.ip_text()).await;
    let ticket = reserve(app, &account, origin, Factor::Password).await?;

    // A passkey-only account has no usable password: checked against the decoy, as if
    // unknown (same cost, same answer).
    let passwordless = match &found {
        Some(u) => services.storage.passwordless(&u.username).await.map_err(Error::RegulationUnavailable)?,
        None => false,
    };
    let user = found.filter(|u| !u.disabled && !passwordless);
    let matched = if let Some(ldap) = services.users.ldap() {
        // The directory checks the password: a bind as the user.
        let checked = match &user {
            Some(u) => Box::pin(ldap.check_password(u, password)).await,
            None => Ok(false),
        };
        match checked {
            Ok(matched) => matched,
            Err(e) => {
                settle(app, ticket, Settlement::NotChecked).await?;
                return Err(e.into());
            }
        }
    } else {
        let stored = user.as_ref().map_or(DECOY_HASH, |u| u.password_hash.as_str());
        match services.hashing.verify(password, stored).await {
            Ok(matched) => matched,
            Err(PoolError::Busy) => {
                settle(app, ticket, Settlement::NotChecked).await?;
                return Err(Error::Busy);
            }
            Err(e) => {
                // A malformed stored hash: the user cannot log in until an operator fixes it.
                tracing::error!(username = %account, error = %e, "cannot check the password");
                false
            }
        }
    };
    let user = user.filter(|_| matched);
    settle(app, ticket, if user.is_some() { Settlement::Succeeded } else { Settlement::Failed }).await?;
    audit_attempt(app, &account, origin, user.is_some()).await;
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
    let outcome = Box::pin(secret_attempt(app, username, origin, verify)).await;
    crate::telemetry::second_factor(&outcome, origin.auth_type);
    outcome
}

async fn secret_attempt(
    app: &App,
    username: &str,
    origin: Origin<'_>,
    verify: impl Future<Output = Result<bool>>,
) -> Result<bool> {
    let _turn = app.services.regulator.turn(username, &origin.ip_text()).await;
    let ticket = reserve(app, username, origin, Factor::Code).await?;
    let verified = verify.await;
    let settlement = match verified {
        Ok(true) => Settlement::Succeeded,
        Ok(false) => Settlement::Failed,
        Err(_) => Settlement::NotChecked,
    };
    settle(app, ticket, settlement).await?;
    if let Ok(matched) = verified {
        audit_attempt(app, username, origin, matched).await;
    }
    if matches!(verified, Ok(false)) {
        tracing::info!(username = %username, auth_type = ?origin.auth_type, "one-time secret refused");
    }
    verified
}

/// Reserves the attempt: [`Error::Banned`] (recorded as a banned attempt) when the account
/// or the client is banned; [`Error::RegulationUnavailable`] when that cannot be told.
async fn reserve(app: &App, username: &str, origin: Origin<'_>, factor: Factor) -> Result<Ticket> {
    let attempt = origin.attempt(username, false, false);
    let now = attempt.time;
    match app.services.regulator.begin(attempt).await.map_err(Error::RegulationUnavailable)? {
        Verdict::Proceed(ticket) => Ok(ticket),
        Verdict::Banned(until) => {
            tracing::info!(username = %username, auth_type = ?origin.auth_type, "attempt refused: banned");
            let detail = serde_json::json!({"type": origin.auth_type.as_str(), "reason": "banned", "until": until});
            let event =
                Event { name: "authentication", outcome: Outcome::Refused, actor: "", subject: username, detail };
            audit::record(app, origin.context, event).await;
            Err(Error::Banned { retry_after: until - now, factor })
        }
    }
}

/// Audits a checked attempt; a failure that starts a ban is audited as the ban too.
async fn audit_attempt(app: &App, username: &str, origin: Origin<'_>, matched: bool) {
    let (outcome, reason) = if matched { (Outcome::Success, None) } else { (Outcome::Failure, Some("wrong secret")) };
    let detail = serde_json::json!({"type": origin.auth_type.as_str(), "reason": reason});
    let event = Event { name: "authentication", outcome, actor: "", subject: username, detail };
    audit::record(app, origin.context, event).await;
    if matched {
        return;
    }
    let now = now();
    match app.services.regulator.banned_until(username, &origin.ip_text(), now).await {
        Ok(Some(until)) => {
            let detail = serde_json::json!({"until": until, "address": origin.ip_text()});
            let event = Event { name: "ban", outcome: Outcome::Success, actor: "", subject: username, detail };
            audit::record(app, origin.context, event).await;
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "cannot tell whether a failure started a ban"),
    }
}

/// Records how the attempt ended; if that cannot be recorded the check fails closed.
async fn settle(app: &App, ticket: Ticket, settlement: Settlement) -> Result<()> {
    app.services.regulator.settle(ticket, settlement).await.map_err(Error::RegulationUnavailable)
}
