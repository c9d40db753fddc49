//! Passwords: reset by a mailed single-use link, and change by the logged-in user (the old
//! password is checked by the one regulated credential check, as it is a guess too).
//!
//! The reset start answers the same, at the same speed, whether or not the user exists:
//! the lookup and mail happen after the answer, so neither body nor timing enumerates
//! accounts. A per-client limit keeps it from being used to flood mailboxes.

use super::audit::{self, Event, Outcome};
use super::credentials::{self, Origin};
use super::elevation::require_elevation;
use super::{Caller, Error, Result, notify};
use crate::authn::hashing_pool::PoolError;
use crate::authn::password_policy;
use crate::authn::users_file::User;
use crate::clock::now;
use crate::identity::reset_token::TokenError;
use crate::notifier::{Message, Recipient};
use crate::server::App;
use crate::session::{AuthLevel, SessionData, SessionId};
use crate::storage::AuthType;
use serde_json::Value;

/// Mails a reset link to `username`'s account if it exists and has an address. Answers the
/// same either way, at once: the lookup, token and mail happen after the answer.
pub async fn reset_start(app: &App, caller: &Caller<'_>, username: &str) -> Result<()> {
    let client = caller.ip_text();
    app.services
        .reset_limiter
        .hit(&app.services.sessions, &client, now())
        .await
        .map_err(|l| Error::limited(l, |retry_after| Error::ResetRateLimited { retry_after }))?;
    let users = app.services.users.clone();
    let tokens = app.services.reset_tokens.clone();
    let notifier = app.services.notifier.clone();
    let portal = caller.settings().portal_url.clone();
    let login = username.trim().to_string();
    tokio::spawn(async move {
        let user = match users.find_login(&login).await {
            Ok(user) => user.filter(|u| !u.disabled && !u.emails.is_empty()),
            Err(e) => {
                tracing::error!(error = %e, "cannot look up the user of a password reset request");
                return;
            }
        };
        let Some(user) = user else {
            tracing::info!("password reset requested for an unknown or disabled user");
            return;
        };
        if let Err(e) = mail_reset_link(&tokens, &notifier, &portal, &user, client).await {
            tracing::error!(username = %user.username, error = %e, "cannot send the password reset link");
        }
    });
    Ok(())
}

/// Mails `user` a reset link now (an administrator's request): errors are the caller's.
pub async fn send_reset_link(
    app: &App,
    settings: &crate::session::CookieSettings,
    user: &User,
    client: String,
) -> Result<()> {
    let services = &app.services;
    mail_reset_link(&services.reset_tokens, &services.notifier, &settings.portal_url, user, client).await
}

/// Issues a reset token for `user` and mails the link to their first address.
async fn mail_reset_link(
    tokens: &crate::identity::reset_token::ResetTokens,
    notifier: &crate::notifier::Notifier,
    portal: &url::Url,
    user: &User,
    client: String,
) -> Result<()> {
    let address = user.emails.first().cloned().ok_or(Error::NoEmailAddress)?;
    let token = match tokens.issue(&user.username, now()).await? {
        Some(token) => token,
        None => {
            tracing::info!(username = %user.username, "password reset link not sent: too many recently");
            return Err(Error::ResetRateLimited { retry_after: tokens.lifespan() });
        }
    };
    // Authelia's frontend routes: the portal serves both its own and these, so the links
    // work whichever frontend an operator runs.
    let with_token = |path: &str| -> Result<String> {
        let mut url = portal.join(path).map_err(|e| Error::Internal(e.to_string()))?;
        url.query_pairs_mut().append_pair("token", &token);
        Ok(url.to_string())
    };
    let message = Message::ResetPassword {
        display_name: user.display_name.clone(),
        link: with_token("reset-password/step2")?,
        revoke_link: Some(with_token("revoke/reset-password")?),
        expires_in: std::time::Duration::from_secs(u64::try_from(tokens.lifespan()).unwrap_or(300)),
        remote_ip: client,
    };
    let to = Recipient { name: user.display_name.clone(), address };
    notifier.send(&to, &message).await.map_err(|e| {
        tracing::error!(error = %e, "cannot send the password reset link");
        Error::MailFailed
    })?;
    tracing::info!(username = %user.username, "password reset link sent");
    Ok(())
}

/// Redeems the link's token (once) into a fresh anonymous session that may set the user's
/// new password: whoever was logged in on this browser is logged out, and the permission
/// cannot leak into an existing session.
pub async fn reset_redeem(app: &App, caller: &mut Caller<'_>, token: &str) -> Result<()> {
    let username = match app.services.reset_tokens.redeem(token, now()).await {
        Ok(username) => username,
        Err(TokenError::Invalid) => return Err(Error::ResetLinkInvalid),
        Err(TokenError::Storage(e)) => return Err(e.into()),
    };
    let data = SessionData { password_reset_username: Some(username.clone()), ..Default::default() };
    caller.replace(app, data).await?;
    tracing::info!(username = %username, "password reset link redeemed");
    Ok(())
}

/// Sets the new password for the user whose link this session redeemed; the permission
/// is spent with the session, and every session of the user ends.
pub async fn reset_set(app: &App, caller: &mut Caller<'_>, password: &str) -> Result<()> {
    let username = caller.data().and_then(|d| d.password_reset_username.clone()).ok_or(Error::ResetLinkFirst)?;
    let user = app
        .services
        .users
        .get(&username)
        .await?
        .filter(|u| u.username == username && !u.disabled)
        .ok_or(Error::AccountUnavailable)?;
    set_password(app, &user, password, None).await?;
    caller.end(app).await?;
    notify::password_changed(app, &user.display_name, &user.emails, caller.ip_text());
    tracing::info!(username = %user.username, "password reset");
    let name = user.username.as_str();
    let event =
        Event { name: "password.reset", outcome: Outcome::Success, actor: name, subject: name, detail: Value::Null };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// Stores `password` (already checked against the policy) as `username`'s: hashed for the
/// file and the database; set in the directory for LDAP.
pub(super) async fn store_password(app: &App, username: &str, password: &str) -> Result<()> {
    if let Some(ldap) = app.services.users.ldap() {
        Box::pin(ldap.set_password(username, password)).await?;
        crate::invalidation::user_changed(app, username).await;
        return Ok(());
    }
    let params = app.config.authentication_backend.password_hashing();
    let hash = match app.services.hashing.hash(password, &params).await {
        Ok(hash) => hash,
        Err(PoolError::Busy) => return Err(Error::Busy),
        Err(e) => return Err(Error::Internal(format!("cannot hash the password: {e}"))),
    };
    app.services.users.set_password_hash(username, &hash, now()).await?;
    // Other replicas stop accepting the old password from their caches at once.
    crate::invalidation::user_changed(app, username).await;
    Ok(())
}

/// Revokes a reset link the user did not ask for.
pub async fn reset_revoke(app: &App, token: &str) -> Result<()> {
    match app.services.reset_tokens.revoke(token, now()).await {
        Ok(()) => Ok(()),
        Err(TokenError::Invalid) => Err(Error::ResetLinkInvalid),
        Err(TokenError::Storage(e)) => Err(e.into()),
    }
}

/// A logged-in user's change of password.
pub struct PasswordChange<'a> {
    /// The current password.
    pub old_password: &'a str,
    /// The new password.
    pub new_password: &'a str,
}

/// Checks the old password (regulated) and the policy, stores the new hash, and ends the
/// user's other sessions.
pub async fn change(app: &App, caller: &Caller<'_>, change: PasswordChange<'_>) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    if app.config.authentication_backend.password_change.require_elevation {
        require_elevation(app, data)?;
    }
    let username = &data.username;
    let origin =
        Origin { auth_type: AuthType::FirstFactor, context: caller.context(), target_url: "", request_method: "" };
    let user = credentials::check_password(app, username, change.old_password, origin).await?;
    if &user.username != username {
        return Err(Error::AccountUnavailable);
    }
    if change.new_password == change.old_password {
        return Err(Error::SamePassword);
    }
    let keep = caller.session().map(|s| &s.id);
    set_password(app, &user, change.new_password, keep).await?;
    notify::password_changed(app, &user.display_name, &user.emails, caller.ip_text());
    tracing::info!(username = %username, "password changed");
    let event = Event {
        name: "password.changed",
        outcome: Outcome::Success,
        actor: username,
        subject: username,
        detail: Value::Null,
    };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// Checks `password` against the policy, hashes it, stores it, and ends the user's
/// sessions other than `keep`.
async fn set_password(app: &App, user: &User, password: &str, keep: Option<&SessionId>) -> Result<()> {
    let mut context = vec![user.username.as_str(), user.display_name.as_str()];
    context.extend(user.emails.iter().map(String::as_str));
    password_policy::check(&app.config.password_policy, password, &context)
        .map_err(|violation| Error::PasswordPolicy(violation.0))?;
    store_password(app, &user.username, password).await?;
    let ended = app.services.sessions.end_all_for(&user.username, keep).await?;
    tracing::info!(username = %user.username, ended, "other sessions ended after a password change");
    Ok(())
}
