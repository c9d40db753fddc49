//! A user's security standing, as administrators change it: their sessions, second
//! factors and bans; and the sessions and bans of everyone.

use serde::Serialize;
use serde_json::json;

use super::{audit_action, require_admin};
use crate::clock::now;
use crate::flows::{Caller, Error, Result};
use crate::server::App;
pub use crate::session::UserSessions;
use crate::storage::{AuthAttempt, AuthType};

/// Ends every session of a user: the next proxied request is refused. Returns how many.
pub async fn revoke_sessions(app: &App, caller: &Caller<'_>, username: &str) -> Result<usize> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    let ended = app.services.sessions.end_all_for(&user.username, None).await?;
    audit_action(app, caller, "admin.sessions.revoked", &user.username, json!({"sessions": ended})).await;
    Ok(ended)
}

/// Removes a user's TOTP device and recovery codes.
pub async fn remove_totp(app: &App, caller: &Caller<'_>, username: &str) -> Result<()> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    let storage = &app.services.storage;
    if !storage.totp_delete(&user.username).await? {
        return Err(Error::NoTotp);
    }
    storage.recovery_replace(&user.username, Vec::new(), now()).await?;
    audit_action(app, caller, "admin.totp.removed", &user.username, serde_json::Value::Null).await;
    Ok(())
}

/// Removes one of a user's security keys or passkeys.
pub async fn remove_webauthn(app: &App, caller: &Caller<'_>, username: &str, id: i32) -> Result<()> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    if !app.services.storage.webauthn_delete(&user.username, id).await? {
        return Err(Error::NoSuchCredential);
    }
    audit_action(app, caller, "admin.webauthn.removed", &user.username, json!({"id": id})).await;
    Ok(())
}

/// What is banned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BanKind {
    /// A user.
    User,
    /// A client address.
    Ip,
}

/// A ban in force.
#[derive(Debug, Serialize)]
pub struct Ban {
    /// A user or an address.
    pub kind: BanKind,
    /// The username or the address.
    pub value: String,
    /// Until when (Unix seconds).
    pub until: i64,
}

/// Most candidates of each kind examined for a ban listing.
const BAN_CANDIDATES: i64 = 1000;

/// The bans in force now.
pub async fn list_bans(app: &App, caller: &Caller<'_>) -> Result<Vec<Ban>> {
    require_admin(app, caller)?;
    let regulation = &app.config.regulation;
    let window = regulation.find_time.get().saturating_add(regulation.ban_time.get());
    let now = now();
    let since = now.saturating_sub(i64::try_from(window.as_secs()).unwrap_or(i64::MAX));
    let (users, ips) = app.services.storage.failed_subjects(since, BAN_CANDIDATES).await?;
    let regulator = &app.services.regulator;
    let mut bans = Vec::new();
    for user in users {
        if let Some(until) = regulator.banned_until(&user, "", now).await? {
            bans.push(Ban { kind: BanKind::User, value: user, until });
        }
    }
    for ip in ips {
        if let Some(until) = regulator.banned_until("", &ip, now).await? {
            bans.push(Ban { kind: BanKind::Ip, value: ip, until });
        }
    }
    audit_action(app, caller, "admin.bans.listed", "", serde_json::Value::Null).await;
    Ok(bans)
}

/// Lifts the ban on a user or an address (a success of both kinds in the log, which also
/// clears the failures that led to it). Lifting what is not banned is harmless.
pub async fn unban(app: &App, caller: &Caller<'_>, kind: BanKind, value: &str) -> Result<()> {
    require_admin(app, caller)?;
    let (username, remote_ip) = match kind {
        BanKind::User => (value.to_string(), String::new()),
        BanKind::Ip => {
            let ip: std::net::IpAddr =
                value.parse().map_err(|_| Error::InvalidRequest(format!("'{value}' is not an IP address")))?;
            (String::new(), ip.to_string())
        }
    };
    let marker = AuthAttempt {
        time: now(),
        successful: true,
        banned: false,
        username: username.clone(),
        auth_type: AuthType::Unban,
        remote_ip: remote_ip.clone(),
        request_uri: String::new(),
        request_method: String::new(),
    };
    app.services.storage.log_attempt(marker).await?;
    let subject = if username.is_empty() { remote_ip.as_str() } else { username.as_str() };
    audit_action(app, caller, "admin.ban.lifted", subject, json!({"kind": kind})).await;
    Ok(())
}

/// Live sessions by user and level.
#[derive(Debug, Serialize)]
pub struct SessionStats {
    /// Sessions in all.
    pub total: usize,
    /// At one factor.
    pub one_factor: usize,
    /// At two factors.
    pub two_factor: usize,
    /// Per user.
    pub users: Vec<UserSessions>,
}

/// Session statistics.
pub async fn session_stats(app: &App, caller: &Caller<'_>) -> Result<SessionStats> {
    require_admin(app, caller)?;
    let users = app.services.sessions.stats().await?;
    audit_action(app, caller, "admin.sessions.stats", "", serde_json::Value::Null).await;
    let one_factor = users.iter().map(|u| u.one_factor).sum();
    let two_factor = users.iter().map(|u| u.two_factor).sum();
    Ok(SessionStats { total: one_factor + two_factor, one_factor, two_factor, users })
}
