//! Handing a session to a browser that could not receive its cookie: a passkey login over
//! a WebSocket creates its session in the store, but a WebSocket cannot set a cookie. It
//! answers a session token instead: short-lived, sealed (AES-256-GCM under
//! `storage.encryption_key`) together with its purpose and the cookie domain, naming the
//! new session. `POST /auth/api/set-session` with the token as a bearer credential claims
//! it once, on any instance, and answers the session's cookie under a new ID.
//!
//! An account API access token can be exchanged the same way, for a new session of its
//! user at the token's level: the token already stands for that session on every `/api`
//! endpoint, so the cookie grants nothing the token does not.

use serde::{Deserialize, Serialize};

use super::audit::{self, Event, Outcome};
use super::sealed_cookie::SealedCookie;
use super::{Caller, Error, Result};
use crate::clock::now;
use crate::server::App;
use crate::session::SessionId;

/// The session token's sealing (never sent as a cookie: only its purpose, domain binding
/// and lifetime are used).
pub const SESSION_TOKEN: SealedCookie = SealedCookie {
    name: "portcullis_session_token",
    purpose: "session-handoff-v1",
    lifetime_secs: 60,
    same_site: cookie::SameSite::Strict,
};

#[derive(Serialize, Deserialize)]
struct Handoff {
    /// The session's ID.
    session: String,
}

/// The session token naming the caller's session (just created by a login), and how long
/// it is valid in seconds.
pub fn issue(app: &App, caller: &Caller<'_>) -> Result<(String, i64)> {
    let session = caller.session().ok_or(Error::Forbidden)?;
    let token =
        SESSION_TOKEN.seal_value(app, caller.settings(), Handoff { session: session.id.as_str().to_string() })?;
    Ok((token, SESSION_TOKEN.lifetime_secs))
}

/// `POST /auth/api/set-session`: makes the session `token` stands for the caller's, under
/// a new ID whose cookie the caller's answer carries (the caller's previous session, if
/// any, ends). `token` is a session token of this cookie domain, valid and not used
/// before, or (with the account API on) an account API access token. Anything else is
/// [`Error::TokenInvalid`].
pub async fn set_session(app: &App, caller: &mut Caller<'_>, token: &str) -> Result<()> {
    let from_access_token =
        app.services.account_tokens.is_some() && crate::identity::account_token::looks_like_jwt(token);
    let (data, kind) = if from_access_token {
        (super::account_api::access_session(app, token).await?, "access_token")
    } else {
        (claim(app, caller, token).await?, "session_token")
    };
    let username = data.username.clone();
    caller.replace(app, data).await?;
    tracing::info!(username = %username, kind, "session handed to the browser");
    let detail = serde_json::json!({"from": kind});
    let event =
        Event { name: "session.handoff", outcome: Outcome::Success, actor: &username, subject: &username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// The session a session token names, claimed once and taken out of the store (it lives on
/// under the new ID).
async fn claim(app: &App, caller: &Caller<'_>, token: &str) -> Result<crate::session::SessionData> {
    let settings = caller.settings();
    let sessions = &app.services.sessions;
    let handoff: Handoff = SESSION_TOKEN.open(app, settings, token).ok_or(Error::TokenInvalid)?;
    let id = SessionId::parse(&handoff.session).ok_or(Error::TokenInvalid)?;
    if !sessions.claim_once(&SESSION_TOKEN.claim_key(token), SESSION_TOKEN.claim_ttl()).await? {
        return Err(Error::TokenInvalid);
    }
    let session = sessions.load_id(settings, id, now()).await?.ok_or(Error::TokenInvalid)?;
    sessions.end(settings, &session.id).await?;
    Ok((*session.data).clone())
}
