//! A user's security standing, as administrators change it: their sessions, second
//! factors and bans; and the sessions and bans of everyone.

use serde::Serialize;
use serde_json::json;

use super::{audit_action, require_admin};
use crate::clock::now;
use crate::flows::{Caller, Error, Result};
use crate::server::App;
pub use crate::session::UserSessions;
use crate::storage::BanTarget;

/// Ends every session of a user: the next proxied request is refused. Returns how many.
pub async fn revoke_sessions(app: &App, caller: &Caller<'_>, username: &str) -> Result<usize> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    let ended = app.services.sessions.end_all_for(&user.username, None).await?;
    crate::invalidation::user_changed(app, &user.username).await;
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
    /// Until when (Unix seconds; year 9999 for a ban set without an end).
    pub until: i64,
    /// `regulation` (repeated failures), `cli`, `admin` or `authelia` (imported).
    pub source: String,
    /// Why, when whoever set it said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// Most candidates of each kind examined for a ban listing.
const BAN_CANDIDATES: i64 = 1000;

/// The bans in force now.
pub async fn list_bans(app: &App, caller: &Caller<'_>) -> Result<Vec<Ban>> {
    require_admin(app, caller)?;
    let bans = app.services.regulator.bans_in_force(now(), BAN_CANDIDATES).await?;
    audit_action(app, caller, "admin.bans.listed", "", serde_json::Value::Null).await;
    Ok(bans
        .into_iter()
        .map(|b| Ban {
            kind: match b.target {
                BanTarget::User => BanKind::User,
                BanTarget::Ip => BanKind::Ip,
            },
            value: b.subject,
            until: b.until,
            source: b.source,
            reason: b.reason,
        })
        .collect())
}

/// Lifts the ban on a user or an address: bans set by hand are revoked, and a success of
/// both kinds in the log clears the failures that led to a derived one. Lifting what is
/// not banned is harmless.
pub async fn unban(app: &App, caller: &Caller<'_>, kind: BanKind, value: &str) -> Result<()> {
    require_admin(app, caller)?;
    let (target, subject) = match kind {
        BanKind::User => (BanTarget::User, value.to_string()),
        BanKind::Ip => {
            let ip: std::net::IpAddr =
                value.parse().map_err(|_| Error::InvalidRequest(format!("'{value}' is not an IP address")))?;
            (BanTarget::Ip, ip.to_string())
        }
    };
    app.services.regulator.lift(target, &subject, now()).await?;
    audit_action(app, caller, "admin.ban.lifted", &subject, json!({"kind": kind})).await;
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
    /// Users with at least one session.
    pub user_count: usize,
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
    Ok(SessionStats { total: one_factor + two_factor, one_factor, two_factor, user_count: users.len(), users })
}

/// Ends every web session of every user (a suspected theft of cookies, a key rotation),
/// the caller's own too unless `keep_own`. Returns how many ended.
pub async fn revoke_all_sessions(app: &App, caller: &Caller<'_>, keep_own: bool) -> Result<usize> {
    require_admin(app, caller)?;
    let sessions = &app.services.sessions;
    let keep = if keep_own { caller.session().map(|s| &s.id) } else { None };
    let mut ended = 0;
    for user in sessions.stats().await? {
        ended += sessions.end_all_for(&user.username, keep).await?;
        crate::invalidation::user_changed(app, &user.username).await;
    }
    tracing::warn!(by = %caller.username(), ended, keep_own, "every web session revoked");
    audit_action(app, caller, "admin.sessions.revoked_all", "", json!({"sessions": ended, "kept_own": keep_own})).await;
    Ok(ended)
}
