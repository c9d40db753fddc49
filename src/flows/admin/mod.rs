//! Administration: users (list, create, change, delete, passwords), their second factors
//! and sessions, bans, the audit trail and session statistics. For members of
//! `admin.group` with a two-factor session (unless `admin.require_two_factor: false`).
//!
//! Every action is audited with the acting administrator. An administrator cannot lock
//! themselves out (disable, delete or remove themselves from the admin group).

mod security;
pub(super) mod users;

pub use security::{
    Ban, BanKind, SessionStats, UserSessions, list_bans, remove_totp, remove_webauthn, revoke_all_sessions,
    revoke_sessions, session_stats, unban,
};
pub use users::{
    NewUser, UserDetail, UserOverview, UserPage, UserPatch, UserQuery, UserView, create_user, delete_user, get_user,
    list_users, send_reset_email, set_password, set_passwordless, update_user, user_overview,
};

use serde_json::Value;

use super::audit::{self, Event, Outcome};
use super::{Caller, Error, Result};
use crate::server::App;
use crate::session::{AuthLevel, SessionData};
use crate::storage::{AuditFilter, AuditRecord};

/// The caller's session when they may administer; [`Error::Unauthenticated`] when nobody
/// is signed in, [`Error::Forbidden`] otherwise.
pub fn require_admin<'c>(app: &App, caller: &'c Caller<'_>) -> Result<&'c SessionData> {
    let admin = &app.config.admin;
    let level = if admin.require_two_factor { AuthLevel::TwoFactor } else { AuthLevel::OneFactor };
    // Nobody signed in: 401 (who are you?); signed in without the rights: 403.
    if caller.level() == AuthLevel::Anonymous {
        return Err(Error::Unauthenticated);
    }
    let data = caller.require(level)?;
    if data.groups.iter().any(|g| g == &admin.group) { Ok(data) } else { Err(Error::Forbidden) }
}

/// Whether `url` is a page of the admin console at this portal, which an administrator
/// reaches with two factors: signing in for it goes on to the second factor, as for a
/// two-factor access rule.
pub fn console_needs_two_factors(app: &App, portal_url: &url::Url, url: &url::Url) -> bool {
    let Ok(console) = portal_url.join("admin") else { return false };
    app.config.admin.require_two_factor
        && url.origin() == console.origin()
        && (url.path() == console.path() || url.path().starts_with(&format!("{}/", console.path())))
}

/// Audits an admin action on `subject` by the caller.
async fn audit_action(app: &App, caller: &Caller<'_>, name: &'static str, subject: &str, detail: Value) {
    let event = Event { name, outcome: Outcome::Success, actor: caller.username(), subject, detail };
    audit::record(app, caller.context(), event).await;
}

/// A page of audit events, newest first.
#[derive(Debug, serde::Serialize)]
pub struct AuditPage {
    /// The events.
    pub events: Vec<AuditRecord>,
    /// The cursor of the next page, when there may be one.
    pub next_cursor: Option<String>,
}

/// Most items a page holds.
pub const MAX_PAGE: i64 = 500;

/// Audit events per `filter` (its `before` is the cursor).
pub async fn audit_events(app: &App, caller: &Caller<'_>, mut filter: AuditFilter) -> Result<AuditPage> {
    require_admin(app, caller)?;
    filter.limit = filter.limit.clamp(1, MAX_PAGE);
    let events = app.services.storage.audit_list(filter.clone()).await?;
    let detail = serde_json::json!({"user": filter.user, "event": filter.event});
    audit_action(app, caller, "admin.audit.viewed", "", detail).await;
    let full = i64::try_from(events.len()).unwrap_or(0) == filter.limit;
    let next_cursor = full.then(|| events.last().map(|e| e.id.to_string())).flatten();
    Ok(AuditPage { events, next_cursor })
}
