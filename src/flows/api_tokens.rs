//! Personal API tokens (seed 001, decision 0024): users create long-lived tokens for
//! scripts, list and revoke them; a token then stands for its owner at the authorization
//! endpoints (`Authorization: Bearer`, or Basic with the token as the password) and at
//! `GET /api/auth/verify-token`.
//!
//! A token is shown once, at creation; storage keeps only its keyed hash. Creating one
//! needs the strongest sign-in the account has (two factors when a second factor is
//! registered), since the token outlives the session and counts as a credential of its
//! own; it is audited and the owner is told by mail. Verifying costs an HMAC and, when
//! the token was seen recently, no query ([`ApiTokenCache`]).
//!
//! [`ApiTokenCache`]: crate::authn::api_token_cache::ApiTokenCache

use std::sync::Arc;

use serde_json::json;
use subtle::ConstantTimeEq;

use super::audit::{self, Context, Event, Outcome};
use super::elevation::has_second_factor;
use super::{Caller, Error, Result, notify};
use crate::authn::api_token::{self, display_prefix};
use crate::authn::api_token_cache::{USE_RECORD_INTERVAL, VerifiedToken};
use crate::authn::users::Users;
use crate::authn::users_file::User;
use crate::clock::now;
use crate::server::App;
use crate::session::{AuthLevel, SessionData};
use crate::storage::{ApiTokenRecord, StorageError};

/// The keyed-hash purpose of tokens (separates them from other hashed secrets).
const HASH_PURPOSE: &str = "api-token";
/// Longest token name.
pub const MAX_NAME: usize = 64;
/// Most scopes on one token.
pub const MAX_SCOPES: usize = 16;
/// Longest scope label.
pub const MAX_SCOPE_LEN: usize = 64;
/// Token checks one client address may make per window at `GET /api/auth/verify-token`.
pub const CHECKS_PER_ADDRESS: u32 = 60;
/// The name of a token created without one.
const DEFAULT_NAME: &str = "API token";

/// What the user asks for.
#[derive(Clone, Debug, Default)]
pub struct NewToken {
    /// A label (defaults to "API token").
    pub name: Option<String>,
    /// How long it lives (defaults to `api_tokens.max_lifespan`, or forever when that is 0).
    pub expires_in: Option<std::time::Duration>,
    /// Scope labels.
    pub scopes: Vec<String>,
}

/// A token just created: the only time its value is seen.
#[derive(Clone, Debug)]
pub struct Created {
    /// Its ID (to revoke it).
    pub id: i32,
    /// The token.
    pub token: String,
    /// Its name.
    pub name: String,
    /// Its first characters, as lists show them.
    pub prefix: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Ends (Unix seconds), if ever.
    pub expires_at: Option<i64>,
    /// Its scopes.
    pub scopes: Vec<String>,
}

/// The session of a signed-in user allowed to manage tokens: anonymous callers are
/// [`Error::Unauthenticated`]; `strongest` asks for two factors of users who have a second
/// factor ([`Error::SecondFactorFirst`]).
async fn signed_in<'c>(app: &App, caller: &'c Caller<'_>, strongest: bool) -> Result<&'c SessionData> {
    if caller.level() == AuthLevel::Anonymous {
        return Err(Error::Unauthenticated);
    }
    let data = caller.require(AuthLevel::OneFactor)?;
    if strongest && data.level() < AuthLevel::TwoFactor && has_second_factor(app, &data.username).await? {
        return Err(Error::SecondFactorFirst);
    }
    Ok(data)
}

fn valid_name(name: Option<&str>) -> Result<String> {
    let name = name.map(str::trim).unwrap_or_default();
    if name.is_empty() {
        return Ok(DEFAULT_NAME.to_string());
    }
    if name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::InvalidRequest(format!("name: at most {MAX_NAME} characters, no control characters")));
    }
    Ok(name.to_string())
}

fn valid_scopes(scopes: &[String]) -> Result<Vec<String>> {
    if scopes.len() > MAX_SCOPES {
        return Err(Error::InvalidRequest(format!("scopes: at most {MAX_SCOPES}")));
    }
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        let ok = !scope.is_empty()
            && scope.len() <= MAX_SCOPE_LEN
            && scope.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-' | b'/'));
        if !ok {
            return Err(Error::InvalidRequest(format!(
                "scopes: each 1 to {MAX_SCOPE_LEN} characters of letters, digits and : . _ - /"
            )));
        }
        if !out.contains(scope) {
            out.push(scope.clone());
        }
    }
    Ok(out)
}

/// When a token asked to live `expires_in` ends, created at `now`, under `max` (zero: no
/// limit).
fn expiry(expires_in: Option<std::time::Duration>, max: std::time::Duration, now: i64) -> Result<Option<i64>> {
    let lifespan = match expires_in {
        None if max.is_zero() => return Ok(None),
        None => max,
        Some(d) if d.is_zero() => return Err(Error::InvalidRequest("expires_in: must be longer than zero".into())),
        Some(d) if !max.is_zero() && d > max => {
            return Err(Error::InvalidRequest(format!(
                "expires_in: at most {} (api_tokens.max_lifespan)",
                humantime::format_duration(max)
            )));
        }
        Some(d) => d,
    };
    let secs = i64::try_from(lifespan.as_secs()).unwrap_or(i64::MAX).max(1);
    Ok(Some(now.saturating_add(secs)))
}

/// The keyed hash a token is stored and cached under.
fn hash_of(app: &App, token: &str) -> String {
    app.services.storage.cipher().keyed_hash(HASH_PURPOSE, token)
}

/// Creates a token for the signed-in user; its value is in the answer and nowhere else.
pub async fn create(app: &App, caller: &Caller<'_>, new: NewToken) -> Result<Created> {
    let data = signed_in(app, caller, true).await?;
    let name = valid_name(new.name.as_deref())?;
    let scopes = valid_scopes(&new.scopes)?;
    let settings = &app.config.api_tokens;
    let now = now();
    let expires_at = expiry(new.expires_in, settings.max_lifespan.get(), now)?;
    let storage = &app.services.storage;
    let username = data.username.as_str();
    if storage.api_tokens_in_force(username, now).await? >= i64::from(settings.max_per_user) {
        return Err(Error::TooManyTokens);
    }
    let mut attempt = 0;
    let (id, token) = loop {
        let token = api_token::generate();
        let record = ApiTokenRecord {
            id: 0,
            username: username.to_string(),
            name: name.clone(),
            prefix: display_prefix(&token).to_string(),
            token_hash: hash_of(app, &token),
            scopes: scopes.join(" "),
            created_at: now,
            last_used_at: None,
            expires_at,
            revoked_at: None,
        };
        match storage.api_token_insert(record).await {
            Ok(id) => break (id, token),
            // 190 random bits: a collision means a broken generator, but costs nothing to retry.
            Err(StorageError::Duplicate) if attempt < 2 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let prefix = display_prefix(&token).to_string();
    tracing::info!(username = %username, id, "API token created");
    let detail = format!("A personal API token named '{name}' ({prefix}…) was created for your account.");
    notify::security_event(app, &data.display_name, &data.emails, caller.ip_text(), detail);
    let detail = json!({"id": id, "name": name, "prefix": prefix, "expires_at": expires_at, "scopes": scopes});
    let event =
        Event { name: "api_token.created", outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(Created { id, token, name, prefix, created_at: now, expires_at, scopes })
}

/// The signed-in user's tokens that are not revoked, oldest first.
pub async fn list(app: &App, caller: &Caller<'_>) -> Result<Vec<ApiTokenRecord>> {
    let data = signed_in(app, caller, false).await?;
    Ok(app.services.storage.api_tokens_of(&data.username).await?)
}

/// Revokes the signed-in user's token `id`: refused from the next request on, on this
/// instance at once. Another user's token is [`Error::NoSuchToken`], as a missing one.
pub async fn revoke(app: &App, caller: &Caller<'_>, id: i32) -> Result<()> {
    let data = signed_in(app, caller, false).await?;
    let username = data.username.as_str();
    if !app.services.storage.api_token_revoke(username, id, now()).await? {
        return Err(Error::NoSuchToken);
    }
    app.services.api_token_cache.forget_token(id);
    // Other replicas drop the user's cached tokens, so the revoked one is checked again.
    crate::invalidation::user_changed(app, username).await;
    tracing::info!(username = %username, id, "API token revoked");
    let detail = json!({"id": id});
    let event =
        Event { name: "api_token.revoked", outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// `GET /api/auth/verify-token`: whether `token` is in force and its owner active.
/// Counted per client address ([`CHECKS_PER_ADDRESS`] per window), so that it cannot be
/// used to test tokens at speed.
pub async fn check(app: &App, context: &Context, token: &str) -> Result<bool> {
    let limiter = &app.services.api_token_check_limiter;
    limiter
        .hit(&app.services.sessions, &context.ip_text(), now())
        .await
        .map_err(|l| Error::limited(l, |retry_after| Error::TokenChecksRateLimited { retry_after }))?;
    Ok(verify(app, token).await?.is_some())
}

/// The token's record and its owner as of now, if `token` is a token in force of an
/// enabled user (and tokens are enabled). Cached: see [`ApiTokenCache`]. A database or
/// users backend that cannot be read is an error (the proxy fails closed).
///
/// [`ApiTokenCache`]: crate::authn::api_token_cache::ApiTokenCache
pub async fn verify(app: &App, token: &str) -> Result<Option<(Arc<VerifiedToken>, Arc<User>)>> {
    if !app.config.api_tokens.enabled || !api_token::is_well_formed(token) {
        return Ok(None);
    }
    let now = now();
    let hash = hash_of(app, token);
    let cache = &app.services.api_token_cache;
    if let Some((verified, record_use)) = cache.get(&hash, now) {
        if verified.expires_at.is_some_and(|at| at <= now) {
            return Ok(None);
        }
        let Some(user) = current_owner(app, &verified.user).await? else { return Ok(None) };
        if record_use {
            record_use_later(app, verified.id, now);
        }
        return Ok(Some((verified, user)));
    }
    let Some(row) = app.services.storage.api_token_by_hash(&hash).await? else { return Ok(None) };
    // The lookup matched on the hash already; compared again in constant time so that no
    // path decides on a secret-derived value by an early-exit comparison.
    if !bool::from(row.token_hash.as_bytes().ct_eq(hash.as_bytes())) || !row.in_force(now) {
        return Ok(None);
    }
    let user = match app.services.users.get(&row.username).await? {
        Some(user) if !user.disabled => user,
        _ => return Ok(None),
    };
    let due = row.last_used_at.is_none_or(|at| now - at >= USE_RECORD_INTERVAL);
    if due {
        record_use_later(app, row.id, now);
    }
    let scopes = row.scope_list();
    let verified =
        Arc::new(VerifiedToken { id: row.id, name: row.name, expires_at: row.expires_at, scopes, user: user.clone() });
    let recorded = if due { now } else { row.last_used_at.unwrap_or(0) };
    cache.insert(&hash, verified.clone(), recorded);
    Ok(Some((verified, user)))
}

/// The token's owner as of now: from the cache entry for database users (whose changes
/// all go through the flows that forget the entry), or asked again of the users file
/// (in memory, and changed by hand) and the directory (which has its own short cache).
async fn current_owner(app: &App, cached: &Arc<User>) -> Result<Option<Arc<User>>> {
    let users = &app.services.users;
    let user = match users {
        Users::Database { .. } => Some(cached.clone()),
        Users::File(_) | Users::Ldap(_) => users.get(&cached.username).await?,
    };
    Ok(user.filter(|u| !u.disabled))
}

/// Writes the token's last use in the background: the request does not wait for it.
fn record_use_later(app: &App, id: i32, now: i64) {
    let storage = app.services.storage.clone();
    tokio::spawn(async move {
        if let Err(e) = storage.api_token_used(id, now).await {
            tracing::warn!(error = %e, id, "cannot record an API token's use");
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn names_scopes_and_expiry_are_checked() {
        assert_eq!(valid_name(None).unwrap(), DEFAULT_NAME);
        assert_eq!(valid_name(Some("  ci  ")).unwrap(), "ci");
        assert!(valid_name(Some("a\nb")).is_err());
        assert!(valid_name(Some(&"x".repeat(MAX_NAME + 1))).is_err());
        assert_eq!(valid_scopes(&["read".into(), "read".into(), "repo:write".into()]).unwrap(), ["read", "repo:write"]);
        assert!(valid_scopes(&["".into()]).is_err());
        assert!(valid_scopes(&["a b".into()]).is_err(), "a space would split the stored list");
        assert!(valid_scopes(&vec!["a".to_string(); MAX_SCOPES + 1]).is_err());

        let day = Duration::from_secs(86_400);
        assert_eq!(expiry(None, Duration::ZERO, 100).unwrap(), None, "no limit: no expiry");
        assert_eq!(expiry(None, day, 100).unwrap(), Some(86_500), "the limit is the default");
        assert_eq!(expiry(Some(Duration::from_secs(60)), day, 100).unwrap(), Some(160));
        assert!(expiry(Some(day * 2), day, 100).is_err(), "beyond the limit");
        assert!(expiry(Some(Duration::ZERO), Duration::ZERO, 100).is_err());
        assert_eq!(expiry(Some(Duration::MAX), Duration::ZERO, 100).unwrap(), Some(i64::MAX), "saturates");
    }
}
