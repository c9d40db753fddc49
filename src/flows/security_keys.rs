//! The user's security keys and passkeys: listing, registering (elevated), renaming and
//! deleting them, and recording each use (new signature counter, last use, clone flag).
//!
//! A ceremony's state waits in the session between its two requests and is taken out by
//! the second before anything is checked, so a challenge can be answered once only.

use webauthn_rs::prelude::{AuthenticationResult, Passkey, RegisterPublicKeyCredential, Uuid};

use super::audit::{self, Event, Outcome};
use super::elevation::require_elevation;
use super::login::ceremony_failed;
use super::{Caller, Error, Pending, Result, notify};
use crate::clock::now;
use crate::second_factor::webauthn::{CeremonyError, Registered};
use crate::server::App;
use crate::session::{AuthLevel, Ceremony, PENDING_LIFETIME_SECS, PendingWebAuthn};
use crate::storage::{StorageError, WebAuthnCredential};

/// Longest description accepted for a credential.
pub const MAX_DESCRIPTION: usize = 64;

/// The credential as the WebAuthn library reads it.
pub fn passkey_of(c: &WebAuthnCredential) -> Option<Passkey> {
    serde_json::from_slice(&c.credential).ok()
}

/// A ceremony's state, to keep in the session until its second half.
pub(super) fn pending(kind: Ceremony, state: String, description: String) -> PendingWebAuthn {
    PendingWebAuthn { kind, state, description, expires_at: now() + PENDING_LIFETIME_SECS }
}

/// The user's keys and passkeys.
pub async fn list(app: &App, caller: &Caller<'_>) -> Result<Vec<WebAuthnCredential>> {
    let username = &caller.require(AuthLevel::OneFactor)?.username;
    Ok(app.services.storage.webauthn_credentials(username).await?)
}

/// Applies a ceremony's outcome to the stored credential it used. `Ok(false)` when the
/// assertion did not verify.
pub(super) async fn record_use(
    app: &App,
    stored: Vec<WebAuthnCredential>,
    claimed_id: &[u8],
    result: std::result::Result<AuthenticationResult, CeremonyError>,
) -> Result<bool> {
    let storage = &app.services.storage;
    match result {
        Ok(result) => {
            let Some((row, mut key)) = stored
                .into_iter()
                .filter_map(|c| passkey_of(&c).map(|k| (c, k)))
                .find(|(_, k)| k.cred_id() == result.cred_id())
            else {
                return Ok(false);
            };
            key.update_credential(&result);
            let json = serde_json::to_vec(&key).map_err(|e| Error::Internal(e.to_string()))?;
            storage.webauthn_used(row.id, json, i64::from(result.counter()), now()).await?;
            Ok(true)
        }
        Err(CeremonyError::PossibleClone) => {
            // The signature verified but the counter went backwards: the library refuses the
            // assertion; flag the key in the user's device list so they can revoke it.
            tracing::warn!("a security key's signature counter went backwards: possible clone");
            let cloned = stored
                .iter()
                .filter_map(|c| passkey_of(c).map(|k| (c.id, k)))
                .find(|(_, k)| AsRef::<[u8]>::as_ref(k.cred_id()) == claimed_id);
            if let Some((id, _)) = cloned {
                storage.webauthn_flag_clone(id).await?;
            }
            Ok(false)
        }
        Err(e) => {
            tracing::info!(error = %e, "WebAuthn assertion refused");
            Ok(false)
        }
    }
}

pub(super) fn valid_description(description: &str) -> Result<String> {
    let description = description.trim();
    if description.is_empty()
        || description.chars().count() > MAX_DESCRIPTION
        || description.chars().any(char::is_control)
    {
        return Err(Error::InvalidDescription);
    }
    Ok(description.to_string())
}

/// Starts registering a key (or, with `passkey`, a discoverable credential usable for
/// passwordless login) named `description`. Needs an elevated session. The ceremony's
/// state waits in the session.
pub async fn register_begin(
    app: &App,
    caller: &mut Caller<'_>,
    description: &str,
    passkey: bool,
) -> Result<serde_json::Value> {
    require_elevation(app, caller.require(AuthLevel::OneFactor)?)?;
    let description = valid_description(description)?;
    let (options, pending) = registration_start(app, caller, passkey, description).await?;
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.webauthn = Some(pending);
    caller.save(app, data).await?;
    Ok(options)
}

/// Starts a registration for the caller (one factor, elevated): the creation options for
/// the browser, and the ceremony's state for the adapter to keep until the answer (the
/// session over HTTP, the connection's memory over a WebSocket). An empty `description`
/// is chosen later, before [`registration_store`].
pub async fn registration_start(
    app: &App,
    caller: &Caller<'_>,
    passkey: bool,
    description: String,
) -> Result<(serde_json::Value, PendingWebAuthn)> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let storage = &app.services.storage;
    let username = &data.username;
    let existing = storage.webauthn_credentials(username).await?;
    if existing.iter().any(|c| c.description.eq_ignore_ascii_case(&description)) {
        return Err(Error::DescriptionTaken);
    }
    let user_id = storage
        .webauthn_user_id(username, true)
        .await?
        .and_then(|id| Uuid::parse_str(&id).ok())
        .ok_or_else(|| Error::Internal("no WebAuthn user handle".into()))?;
    let exclude = existing.iter().filter_map(passkey_of).map(|k| k.cred_id().clone()).collect();
    let display_name = if data.display_name.is_empty() { username } else { &data.display_name };
    let (options, state) = app
        .services
        .webauthn
        .start_registration(&caller.settings().domain, user_id, username, display_name, exclude, passkey)
        .map_err(|e| ceremony_failed(&e))?;
    let kind = if passkey { Ceremony::RegisterPasskey } else { Ceremony::Register };
    Ok((options, pending(kind, state, description)))
}

/// Finishes a registration with the browser's answer and stores the credential.
pub async fn register_finish(app: &App, caller: &mut Caller<'_>, answer: &RegisterPublicKeyCredential) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let mut data = data.clone();
    let pending = data
        .take_ceremony(&[Ceremony::Register, Ceremony::RegisterPasskey], now())
        .ok_or(Error::NothingPending(Pending::KeyRegistration))?;
    caller.save(app, data).await?;
    registration_store(app, caller, &pending, answer).await.map(|_| ())
}

/// Checks the browser's answer to the registration `pending` (already taken from wherever
/// the adapter kept it) and stores the credential for the caller, who must still be
/// signed in and elevated; tells the user by mail and records the event. Returns the new
/// credential's ID (`kid`, base64url).
pub async fn registration_store(
    app: &App,
    caller: &Caller<'_>,
    pending: &PendingWebAuthn,
    answer: &RegisterPublicKeyCredential,
) -> Result<String> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    if pending.expires_at <= now() || !matches!(pending.kind, Ceremony::Register | Ceremony::RegisterPasskey) {
        return Err(Error::NothingPending(Pending::KeyRegistration));
    }
    let description = valid_description(&pending.description)?;
    let existing = app.services.storage.webauthn_credentials(&data.username).await?;
    if existing.iter().any(|c| c.description.eq_ignore_ascii_case(&description)) {
        return Err(Error::DescriptionTaken);
    }
    let domain = &caller.settings().domain;
    let discoverable = pending.kind == Ceremony::RegisterPasskey;
    let registered = app
        .services
        .webauthn
        .finish_registration(domain, answer, &pending.state, discoverable)
        .map_err(|e| ceremony_failed(&e))?;
    let new = NewCredential {
        username: &data.username,
        display_name: &data.display_name,
        emails: &data.emails,
        description: &description,
        kid: &answer.id,
    };
    store_registered(app, caller, new, registered).await?;
    Ok(answer.id.clone())
}

/// Whose a credential just registered is, and what it is called.
pub(super) struct NewCredential<'a> {
    /// The owner.
    pub username: &'a str,
    /// The owner's display name (for the mail).
    pub display_name: &'a str,
    /// The owner's addresses (for the mail).
    pub emails: &'a [String],
    /// Its description.
    pub description: &'a str,
    /// The credential ID as the browser sent it (base64url).
    pub kid: &'a str,
}

/// Stores the credential a registration ceremony produced on the caller's cookie domain,
/// tells the owner by mail and records `second_factor.added`. A credential registered
/// already is [`Error::CredentialRegistered`].
pub(super) async fn store_registered(
    app: &App,
    caller: &Caller<'_>,
    new: NewCredential<'_>,
    registered: Registered,
) -> Result<()> {
    let credential = WebAuthnCredential {
        id: 0,
        username: new.username.to_string(),
        description: new.description.to_string(),
        kid: new.kid.to_string(),
        rp_id: caller.settings().domain.clone(),
        discoverable: registered.discoverable,
        aaguid: String::new(),
        attestation_type: registered.attestation_format,
        sign_count: 0,
        clone_warning: false,
        created_at: now(),
        last_used_at: None,
        credential: serde_json::to_vec(&registered.passkey).map_err(|e| Error::Internal(e.to_string()))?,
    };
    match app.services.storage.webauthn_insert(credential).await {
        Ok(()) => {}
        Err(StorageError::Duplicate) => return Err(Error::CredentialRegistered),
        Err(e) => return Err(e.into()),
    }
    tracing::info!(username = %new.username, discoverable = registered.discoverable, "WebAuthn credential registered");
    let detail = format!("A security key or passkey named '{}' was added to your account.", new.description);
    notify::security_event(app, new.display_name, new.emails, caller.ip_text(), detail);
    let detail = serde_json::json!({"method": "webauthn", "description": new.description, "discoverable": registered.discoverable});
    let username = new.username;
    let event =
        Event { name: "second_factor.added", outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(())
}

/// Drops a registration in progress.
pub async fn register_cancel(app: &App, caller: &mut Caller<'_>) -> Result<()> {
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.webauthn = None;
    caller.save(app, data).await
}

/// Renames the user's credential `id` (elevated).
pub async fn rename(app: &App, caller: &Caller<'_>, id: i32, description: &str) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    let description = valid_description(description)?;
    match app.services.storage.webauthn_rename(&data.username, id, &description).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(Error::NoSuchCredential),
        Err(StorageError::Duplicate) => Err(Error::DescriptionTaken),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the user's credential `id` (elevated) and tells the user by mail.
pub async fn delete(app: &App, caller: &Caller<'_>, id: i32) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    require_elevation(app, data)?;
    if !app.services.storage.webauthn_delete(&data.username, id).await? {
        return Err(Error::NoSuchCredential);
    }
    tracing::info!(username = %data.username, id, "WebAuthn credential removed");
    let detail = "A security key or passkey was removed from your account.".to_string();
    notify::security_event(app, &data.display_name, &data.emails, caller.ip_text(), detail);
    let username = data.username.as_str();
    let detail = serde_json::json!({"method": "webauthn", "id": id});
    let event =
        Event { name: "second_factor.removed", outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(())
}
