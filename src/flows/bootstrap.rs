//! First run: bootstrap tokens (issued at startup while no user exists, by
//! `portcullis bootstrap token`, or by an administrator) and creating the first
//! administrator with one. Tokens live in the database by keyed hash, so any replica
//! accepts them; a token works once; of concurrent completions, even with different tokens
//! on different replicas, exactly one creates an administrator (the claim row in
//! [`crate::storage::Storage::bootstrap_claim`]).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::admin::users::{check_policy, valid_display_name, valid_emails, valid_username};
use super::audit::{self, Context, Event, Outcome};
use super::{Caller, Error, Result};
use crate::authn::bootstrap;
use crate::authn::hashing_pool::PoolError;
use crate::authn::users_file::User;
use crate::clock::now;
use crate::server::App;
use crate::storage::BootstrapClaim;

/// Shortest password accepted, whatever the policy says (this account administers all).
const MIN_PASSWORD_CHARS: usize = 8;

/// Longest password accepted (hashing cost grows with length for some algorithms).
const MAX_PASSWORD_BYTES: usize = 1024;

/// Refused tokens one client address may present per window before it must wait.
pub const REFUSED_TOKENS_PER_ADDRESS: u32 = 10;

/// The first administrator.
pub struct FirstAdmin<'a> {
    /// The one-time token.
    pub token: &'a str,
    /// Login name.
    pub username: &'a str,
    /// Password (checked against the policy).
    pub password: &'a str,
    /// Address.
    pub email: &'a str,
    /// Name to show (the username when absent).
    pub display_name: Option<&'a str>,
}

/// Issues a token valid for `ttl` (`created_by`: `startup`, `cli` or an administrator's
/// name); returns it with its expiry (Unix seconds). The token is never stored.
pub async fn issue_token(app: &App, created_by: &str, ttl: Duration) -> Result<(String, i64)> {
    Ok(bootstrap::issue(&app.services.storage, created_by, ttl, now()).await?)
}

/// Issues a token for an administrator (their session or account token), audited.
pub async fn issue_token_as(app: &App, caller: &Caller<'_>, ttl: Option<Duration>) -> Result<(String, i64)> {
    if caller.data().is_none() {
        return Err(Error::Unauthenticated);
    }
    super::admin::require_admin(app, caller)?;
    let ttl = ttl.unwrap_or(bootstrap::DEFAULT_LIFETIME);
    if ttl > bootstrap::MAX_LIFETIME || ttl < Duration::from_secs(1) {
        return Err(Error::InvalidRequest("ttl: from 1s to 24h".into()));
    }
    let (token, expires_at) = issue_token(app, caller.username(), ttl).await?;
    let event = Event {
        name: "bootstrap.token_issued",
        outcome: Outcome::Success,
        actor: caller.username(),
        subject: "",
        detail: json!({"expires_at": expires_at}),
    };
    audit::record(app, caller.context(), event).await;
    Ok((token, expires_at))
}

/// Whether no user exists yet (the login page then offers to create the first
/// administrator). Once users are seen, the answer stays `false` for this process.
pub async fn setup_needed(app: &App) -> Result<bool> {
    let services = &app.services;
    if services.setup_complete.load(Ordering::Relaxed) {
        return Ok(false);
    }
    if services.users.writable().is_err() || services.users.any().await? {
        services.setup_complete.store(true, Ordering::Relaxed);
        return Ok(false);
    }
    Ok(true)
}

/// Creates the first administrator (in `admin.group`) with a valid, unused token, while no
/// user exists. Refused tokens count against the client address, so tokens cannot be
/// guessed at speed.
pub async fn create_first_admin(app: &App, context: &Context, admin: FirstAdmin<'_>) -> Result<()> {
    let services = &app.services;
    let client = context.ip_text();
    let limiter = &services.bootstrap_limiter;
    limiter
        .blocked(&services.sessions, &client, now())
        .await
        .map_err(|l| Error::limited(l, |retry_after| Error::BootstrapRateLimited { retry_after }))?;

    let username = admin.username.trim();
    valid_username(username)?;
    let email = admin.email.trim();
    valid_emails(&[email.to_string()], true)?;
    let display_name = admin.display_name.map(str::trim).filter(|d| !d.is_empty()).unwrap_or(username);
    valid_display_name(display_name)?;
    let mut user = User {
        username: username.to_string(),
        display_name: display_name.to_string(),
        password_hash: String::new(),
        emails: vec![email.to_string()],
        groups: vec![app.config.admin.group.clone()],
        disabled: false,
    };
    if admin.password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(Error::PasswordPolicy(format!("at least {MIN_PASSWORD_CHARS} characters")));
    }
    if admin.password.len() > MAX_PASSWORD_BYTES {
        return Err(Error::PasswordPolicy("the password is too long".into()));
    }
    check_policy(app, &user, admin.password)?;
    services.users.writable()?;
    if !setup_needed(app).await? {
        return Err(Error::UsersExist);
    }

    let storage = &services.storage;
    let token_id = match storage.bootstrap_claim(&bootstrap::token_hash(storage, admin.token.trim()), now()).await? {
        BootstrapClaim::Claimed(id) => id,
        BootstrapClaim::Taken => return Err(Error::UsersExist),
        refused => {
            // The refusal itself is the answer; the limiter only decides the next one.
            let _ = limiter.hit(&services.sessions, &client, now()).await;
            return Err(match refused {
                BootstrapClaim::Expired => Error::BootstrapTokenExpired,
                BootstrapClaim::Used => Error::BootstrapTokenUsed,
                _ => Error::BootstrapTokenInvalid,
            });
        }
    };
    // A claim left stale by a completion that died may have let this one through after
    // an administrator was made: look again, holding the claim.
    match services.users.any().await {
        Ok(false) => {}
        Ok(true) => {
            storage.bootstrap_release(token_id, false).await?;
            services.setup_complete.store(true, Ordering::Relaxed);
            return Err(Error::UsersExist);
        }
        Err(e) => {
            storage.bootstrap_release(token_id, true).await?;
            return Err(e.into());
        }
    }
    let hashed =
        match services.hashing.hash(admin.password, &app.config.authentication_backend.password_hashing()).await {
            Ok(hash) => Ok(hash),
            Err(PoolError::Busy) => Err(Error::Busy),
            Err(e) => Err(Error::Internal(format!("cannot hash the bootstrap password: {e}"))),
        };
    let created = match hashed {
        Ok(hash) => {
            user.password_hash = hash;
            services.users.create(user.clone(), now()).await.map_err(Error::from)
        }
        Err(e) => Err(e),
    };
    if let Err(e) = created {
        // Nobody was made: the claim goes, and the token may be presented again.
        storage.bootstrap_release(token_id, true).await?;
        return Err(e);
    }
    services.setup_complete.store(true, Ordering::Relaxed);
    tracing::info!(username = %user.username, "first administrator created; bootstrap is over");
    let event = Event {
        name: "bootstrap.admin_created",
        outcome: Outcome::Success,
        actor: &user.username,
        subject: &user.username,
        detail: json!({"groups": user.groups}),
    };
    audit::record(app, context, event).await;
    Ok(())
}
