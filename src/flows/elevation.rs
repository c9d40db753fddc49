//! Elevation: proving identity again, by a code sent by mail, before sensitive changes
//! (adding or removing second factors, new recovery codes, and, when configured, a new
//! password). An elevated session carries `elevated_until`; proving it is a privilege
//! change, so the session gets a new ID.

use serde::Serialize;

use super::{Caller, Error, Result, mailed_code};
use crate::clock::now;
use crate::notifier::CodePurpose;
use crate::server::App;
use crate::session::{AuthLevel, SessionData};

/// What `GET /api/user/session/elevation` reports (Authelia's fields).
#[derive(Debug, Serialize)]
pub struct Status {
    /// Elevating needs the second factor first.
    pub require_second_factor: bool,
    /// A fresh second factor counts as elevated.
    pub skip_second_factor: bool,
    /// This user could skip the code by using their second factor.
    pub can_skip_second_factor: bool,
    /// The session knows the user's password.
    pub factor_knowledge: bool,
    /// Elevated now.
    pub elevated: bool,
    /// Seconds of elevation left.
    pub expires: i64,
}

/// Whether `data` may make sensitive changes now: it proved identity by an emailed code
/// recently, or, when the operator allows it, by a second factor.
pub fn is_elevated(app: &App, data: &SessionData, now: i64) -> bool {
    let es = &app.config.identity_validation.elevated_session;
    data.elevated_until.is_some_and(|until| until > now)
        || (es.skip_second_factor && data.level() == AuthLevel::TwoFactor)
}

/// [`Error::ElevationRequired`] unless `data` is elevated.
pub fn require_elevation(app: &App, data: &SessionData) -> Result<()> {
    if is_elevated(app, data, now()) { Ok(()) } else { Err(Error::ElevationRequired) }
}

/// Whether the user has any second factor registered.
pub async fn has_second_factor(app: &App, username: &str) -> Result<bool> {
    let storage = &app.services.storage;
    Ok(storage.totp_exists(username).await? || storage.webauthn_count(username).await? > 0)
}

/// The session's elevation state.
pub async fn status(app: &App, caller: &Caller<'_>) -> Result<Status> {
    let es = &app.config.identity_validation.elevated_session;
    let data = caller.require(AuthLevel::OneFactor)?;
    let now = now();
    let can_skip = es.skip_second_factor && has_second_factor(app, &data.username).await?;
    Ok(Status {
        require_second_factor: es.require_second_factor,
        skip_second_factor: es.skip_second_factor,
        can_skip_second_factor: can_skip,
        factor_knowledge: data.first_factor_at.is_some(),
        elevated: is_elevated(app, data, now),
        expires: data.elevated_until.map_or(0, |until| (until - now).max(0)),
    })
}

/// Mails an elevation code; returns its public ID (which cancels it).
pub async fn start(app: &App, caller: &mut Caller<'_>) -> Result<String> {
    let es = &app.config.identity_validation.elevated_session;
    let data = caller.require(AuthLevel::OneFactor)?;
    if es.require_second_factor && data.level() < AuthLevel::TwoFactor && has_second_factor(app, &data.username).await?
    {
        return Err(Error::SecondFactorFirst);
    }
    let portal = caller.settings().portal_url.clone();
    // Authelia's frontend route, which the portal serves as well.
    let revoke = |id: &str| {
        let mut url = portal.join("revoke/one-time-code").ok()?;
        url.query_pairs_mut().append_pair("id", id);
        Some(url.to_string())
    };
    let id =
        mailed_code::send(app, caller, CodePurpose::Elevation, es.characters, es.code_lifespan.get(), revoke).await?;
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.elevation_code = Some(id.clone());
    caller.save(app, data).await?;
    Ok(id)
}

/// Checks the mailed code and elevates the session for `elevation_lifespan`, under a new ID.
pub async fn verify(app: &App, caller: &mut Caller<'_>, code: &str) -> Result<()> {
    mailed_code::check(app, caller, CodePurpose::Elevation, code, None).await?;
    let lifespan = i64::try_from(app.config.identity_validation.elevated_session.elevation_lifespan.get().as_secs())
        .unwrap_or(600);
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.elevation_code = None;
    data.elevated_until = Some(now() + lifespan);
    let username = data.username.clone();
    caller.replace(app, data).await?;
    tracing::info!(username = %username, "session elevated");
    Ok(())
}

/// Cancels a pending code by its public ID (also from the mail's link, without a session:
/// the ID is an unguessable UUID and cancelling is harmless).
pub async fn revoke(app: &App, id: &str) -> Result<()> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Error::InvalidRequest("Invalid code ID".into()));
    }
    match app.services.codes.revoke(id, now()).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NoSuchCode),
        Err(crate::identity::codes::CodeError::Storage(e)) => Err(e.into()),
        Err(e) => Err(Error::Internal(e.to_string())),
    }
}
