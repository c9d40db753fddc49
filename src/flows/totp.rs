//! The user's authenticator app (TOTP) and its recovery codes: setting it up in two steps
//! (a secret is stored only once the user proved their app computes the right codes; the
//! offered secret waits in the session), describing it, removing it, and renewing the
//! recovery codes. Changes need an elevated session.

use serde::Serialize;

use super::audit::{self, Event, Outcome};
use super::elevation::require_elevation;
use super::{Caller, Error, Pending, Result};
use crate::clock::now;
use crate::second_factor::recovery;
use crate::second_factor::totp::TotpError;
use crate::server::App;
use crate::session::{AuthLevel, PENDING_LIFETIME_SECS};
use crate::storage::TotpRecord;
use serde_json::json;

/// A secret offered for setup.
#[derive(Debug, Serialize)]
pub struct Offer {
    /// The secret, base32.
    pub base32_secret: String,
    /// The `otpauth://` URL authenticator apps read.
    pub otpauth_url: String,
    /// The same URL as a QR code, a PNG `data:` URI ready for an `<img>`.
    pub qr_code: String,
}

/// Parameters the user may ask for (defaults when absent).
#[derive(Debug, Default)]
pub struct OfferOptions<'a> {
    /// SHA1, SHA256 or SHA512.
    pub algorithm: Option<&'a str>,
    /// Digits per code.
    pub length: Option<u32>,
    /// Seconds per code.
    pub period: Option<u32>,
}

fn totp_error(e: TotpError) -> Error {
    match e {
        TotpError::NotAllowed(_) => Error::TotpOption(e.to_string()),
        TotpError::Invalid(_) => Error::TotpSetupFailed,
    }
}

/// Offers a fresh secret; it waits in the session until [`confirm`].
pub async fn offer(app: &App, caller: &mut Caller<'_>, options: OfferOptions<'_>) -> Result<Offer> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let totp = &app.services.totp;
    let pending = totp.offer(options.algorithm, options.length, options.period, now()).map_err(totp_error)?;
    let offer = offer_of(app, &pending, &data.username)?;
    let mut data = data.clone();
    data.pending_totp = Some(pending);
    caller.save(app, data).await?;
    Ok(offer)
}

/// The offer still waiting in the session, to show again after a wrong confirming code.
pub fn pending_offer(app: &App, caller: &Caller<'_>) -> Result<Offer> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let pending = data
        .pending_totp
        .as_ref()
        .filter(|p| now() - p.created_at < PENDING_LIFETIME_SECS)
        .ok_or(Error::NothingPending(Pending::TotpSetup))?;
    offer_of(app, pending, &data.username)
}

fn offer_of(app: &App, pending: &crate::session::PendingTotp, username: &str) -> Result<Offer> {
    let (otpauth_url, qr_code) = app.services.totp.enrollment_links(pending, username).map_err(totp_error)?;
    Ok(Offer { base32_secret: pending.secret.clone(), otpauth_url, qr_code })
}

/// Confirms the offered secret with a code from the app, stores it, and returns ten new
/// recovery codes (shown once).
pub async fn confirm(app: &App, caller: &mut Caller<'_>, code: &str) -> Result<Vec<String>> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let now = now();
    let pending = data
        .pending_totp
        .clone()
        .filter(|p| now - p.created_at < PENDING_LIFETIME_SECS)
        .ok_or(Error::NothingPending(Pending::TotpSetup))?;
    let username = data.username.clone();
    let totp = &app.services.totp;
    let record = totp.confirm(&pending, &username, now).map_err(|e| Error::TotpOption(e.to_string()))?;
    let step = totp.matching_step(&record, code, now).ok_or(Error::BadConfirmationCode)?;
    let storage = &app.services.storage;
    storage.totp_save(record).await?;
    // The confirming code is spent: it cannot also sign in.
    storage.totp_use_step(&username, step, now).await?;
    let codes = new_recovery_codes(app, &username).await?;
    let mut data = data.clone();
    data.pending_totp = None;
    let (display_name, emails) = (data.display_name.clone(), data.emails.clone());
    caller.save(app, data).await?;
    tracing::info!(username = %username, "TOTP registered");
    audit_factor(app, caller, "second_factor.added", &username).await;
    // Other frontends (Authelia's) show no recovery codes after setting up the app: the
    // mail says where to make ones the user can see.
    let renew = caller.settings().portal_url.join("profile/totp/recovery-codes").map(|u| u.to_string());
    let detail = format!(
        "An authenticator app was added to your account, with ten new recovery codes. If you did not \
         write them down, make new ones at {}",
        renew.unwrap_or_else(|_| "your profile".into())
    );
    super::notify::security_event(app, &display_name, &emails, caller.ip_text(), detail);
    Ok(codes)
}

/// Drops a setup in progress.
pub async fn cancel(app: &App, caller: &mut Caller<'_>) -> Result<()> {
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.pending_totp = None;
    caller.save(app, data).await
}

/// The user's TOTP setup.
pub async fn describe(app: &App, caller: &Caller<'_>) -> Result<TotpRecord> {
    let username = &caller.require(AuthLevel::OneFactor)?.username;
    app.services.storage.totp_get(username).await?.ok_or(Error::NoTotp)
}

/// Removes the user's TOTP setup and its recovery codes (elevated).
pub async fn remove(app: &App, caller: &Caller<'_>) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let storage = &app.services.storage;
    if !storage.totp_delete(&data.username).await? {
        return Err(Error::NoTotp);
    }
    // Recovery codes back up TOTP; without it they would be a password-strength factor.
    storage.recovery_replace(&data.username, Vec::new(), now()).await?;
    tracing::info!(username = %data.username, "TOTP removed");
    audit_factor(app, caller, "second_factor.removed", &data.username).await;
    Ok(())
}

/// How many unused recovery codes the user has.
pub async fn recovery_remaining(app: &App, caller: &Caller<'_>) -> Result<i64> {
    let username = &caller.require(AuthLevel::OneFactor)?.username;
    Ok(app.services.storage.recovery_remaining(username).await?)
}

/// Replaces the user's recovery codes with ten new ones (elevated; needs TOTP).
pub async fn regenerate_recovery_codes(app: &App, caller: &Caller<'_>) -> Result<Vec<String>> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    if !app.services.storage.totp_exists(&data.username).await? {
        return Err(Error::TotpRequired);
    }
    let codes = new_recovery_codes(app, &data.username).await?;
    tracing::info!(username = %data.username, "recovery codes regenerated");
    Ok(codes)
}

async fn audit_factor(app: &App, caller: &Caller<'_>, name: &'static str, username: &str) {
    let event = Event {
        name,
        outcome: Outcome::Success,
        actor: username,
        subject: username,
        detail: json!({"method": "totp"}),
    };
    audit::record(app, caller.context(), event).await;
}

async fn new_recovery_codes(app: &App, username: &str) -> Result<Vec<String>> {
    let storage = &app.services.storage;
    let codes = recovery::generate();
    let hashes = codes.iter().map(|c| recovery::hash(storage.cipher(), c)).collect();
    storage.recovery_replace(username, hashes, now()).await?;
    Ok(codes)
}
