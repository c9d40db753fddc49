//! A user's own web sessions (seed 004): the list (device, address, last seen), ending one,
//! ending all. Sessions are named by a public ID derived from the session ID's storage key
//! (its SHA-256), never by the ID itself, which is the bearer secret in the cookie. Ending
//! a session deletes it from the store, so the proxy refuses it on its next request.

use serde::Serialize;
use serde_json::json;

use super::audit::{self, Event, Outcome};
use super::{Caller, Error, Result};
use crate::server::App;
use crate::session::AuthLevel;

/// How many bytes of the storage key the public ID shows (hex).
const PUBLIC_ID_BYTES: usize = 16;

/// One session as its user sees it.
#[derive(Debug, Serialize)]
pub struct SessionView {
    /// Its public ID (for `DELETE /auth/api/session/{id}`).
    pub id: String,
    /// Whether it is the session of this request.
    pub current: bool,
    /// The address it was signed in from.
    pub ip: String,
    /// Its User-Agent.
    pub user_agent: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Last seen (Unix seconds).
    pub last_seen: i64,
    /// 1: one factor, 2: two factors.
    pub level: u8,
}

fn public_id(key: &[u8; 32]) -> String {
    crate::hex::encode(&key[..PUBLIC_ID_BYTES])
}

fn current_key(caller: &Caller<'_>) -> Option<[u8; 32]> {
    caller.session().map(|s| s.id.storage_key())
}

/// The caller's live sessions, most recently active first.
pub async fn list(app: &App, caller: &Caller<'_>) -> Result<Vec<SessionView>> {
    let username = &caller.require(AuthLevel::OneFactor)?.username;
    let current = current_key(caller);
    let found = app.services.sessions.sessions_of(username).await?;
    Ok(found
        .into_iter()
        .map(|s| SessionView {
            id: public_id(&s.key),
            current: Some(s.key) == current,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_seen: s.last_activity_at,
            level: s.level,
        })
        .collect())
}

/// Ends the caller's session `id` (their current one too, which then signs them out).
pub async fn end_one(app: &App, caller: &mut Caller<'_>, id: &str) -> Result<()> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let sessions = &app.services.sessions;
    let key = sessions.sessions_of(&username).await?.into_iter().map(|s| s.key).find(|k| public_id(k) == id);
    let key = key.ok_or(Error::NoSuchSession)?;
    if Some(key) == current_key(caller) {
        caller.end(app).await?;
    } else if !sessions.end_key(&username, &key).await? {
        return Err(Error::NoSuchSession);
    }
    crate::invalidation::user_changed(app, &username).await;
    let event = Event {
        name: "session.ended",
        outcome: Outcome::Success,
        actor: &username,
        subject: &username,
        detail: json!({"session": id}),
    };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// Ends every session of the caller, this one included.
pub async fn end_all(app: &App, caller: &mut Caller<'_>) -> Result<usize> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let ended = app.services.sessions.end_all_for(&username, None).await?;
    caller.forget();
    crate::invalidation::user_changed(app, &username).await;
    let event = Event {
        name: "session.ended_all",
        outcome: Outcome::Success,
        actor: &username,
        subject: &username,
        detail: json!({"sessions": ended}),
    };
    audit::record(app, caller.context(), event).await;
    Ok(ended)
}
