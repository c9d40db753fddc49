//! WebAuthn security keys as a second factor: assertion (`/api/secondfactor/webauthn`),
//! the credential list, registration and rename/delete (`.../credential/...`).
//!
//! Each ceremony's state is put in the session by its first request and taken out by the
//! second before anything is checked, so a challenge can be answered once only.

use http::{Method, StatusCode};
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::{Passkey, PublicKeyCredential, RegisterPublicKeyCredential, Uuid};

use super::guard::{self, Authed, authed, require_elevation, storage_failed};
use super::totp::rfc3339;
use super::{ApiRequest, now};
use crate::second_factor::webauthn::CeremonyError;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::{AuthLevel, PENDING_LIFETIME_SECS, PendingWebAuthn, SessionData};
use crate::storage::{AuthType, StorageError, WebAuthnCredential};

/// Longest description accepted for a credential.
const MAX_DESCRIPTION: usize = 64;

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterBody {
    description: String,
    /// Ask for a discoverable credential usable for passwordless login.
    passkey: bool,
}

#[derive(Deserialize)]
struct AssertionBody {
    response: PublicKeyCredential,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

#[derive(Serialize)]
struct CredentialView {
    id: i32,
    created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_used_at: Option<String>,
    rpid: String,
    username: String,
    description: String,
    kid: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    aaguid: String,
    attestation_type: String,
    sign_count: i64,
    clone_warning: bool,
    discoverable: bool,
}

impl From<WebAuthnCredential> for CredentialView {
    fn from(c: WebAuthnCredential) -> Self {
        Self {
            id: c.id,
            created_at: rfc3339(c.created_at),
            last_used_at: c.last_used_at.map(rfc3339),
            rpid: c.rp_id,
            username: c.username,
            description: c.description,
            kid: c.kid,
            aaguid: c.aaguid,
            attestation_type: c.attestation_type,
            sign_count: c.sign_count,
            clone_warning: c.clone_warning,
            discoverable: c.discoverable,
        }
    }
}

/// The credential as the WebAuthn library reads it.
pub fn passkey_of(c: &WebAuthnCredential) -> Option<Passkey> {
    serde_json::from_slice(&c.credential).ok()
}

/// The 400 answer for a failed ceremony (details in the log only).
pub fn ceremony_failed(e: &CeremonyError) -> HttpResponse {
    tracing::info!(error = %e, "WebAuthn ceremony failed");
    response::ko(StatusCode::BAD_REQUEST, "The security key response was not accepted")
}

/// Puts a ceremony's state in the session.
pub fn pending(kind: &str, state: String, description: String) -> PendingWebAuthn {
    PendingWebAuthn { kind: kind.into(), state, description, expires_at: now() + PENDING_LIFETIME_SECS }
}

/// Takes the ceremony of `kind` out of `data` (so it cannot be answered twice); `None` when
/// there is none or it expired.
pub fn take_pending(data: &mut SessionData, kind: &str) -> Option<PendingWebAuthn> {
    let pending = data.webauthn.take()?;
    (pending.kind == kind && pending.expires_at > now()).then_some(pending)
}

/// `/api/secondfactor/webauthn`: GET starts an assertion, POST finishes it (2FA).
pub async fn assertion(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = if request.parts.method == Method::GET {
        start_assertion(app, &authed).await
    } else {
        finish_assertion(app, request, &authed).await
    };
    result.unwrap_or_else(|r| r)
}

async fn start_assertion(app: &App, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let stored =
        app.services.storage.webauthn_credentials(&authed.data().username).await.map_err(|e| storage_failed(&e))?;
    let domain = &authed.settings.domain;
    let keys: Vec<Passkey> = stored.iter().filter(|c| &c.rp_id == domain).filter_map(passkey_of).collect();
    if keys.is_empty() {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No security key is registered for this domain"));
    }
    let (options, state) =
        app.services.webauthn.start_authentication(domain, &keys).map_err(|e| ceremony_failed(&e))?;
    let mut data = authed.data().clone();
    data.webauthn = Some(pending("authenticate", state, String::new()));
    guard::save(app, authed, data).await?;
    Ok(response::ok_data(&options))
}

async fn finish_assertion(
    app: &App,
    request: &ApiRequest<'_>,
    authed: &Authed<'_>,
) -> Result<HttpResponse, HttpResponse> {
    let body: AssertionBody = request.json()?;
    let username = authed.data().username.clone();
    guard::check_ban(app, request, &username).await?;
    let mut data = authed.data().clone();
    let Some(state) = take_pending(&mut data, "authenticate") else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No security key challenge is pending; start again"));
    };
    guard::save(app, authed, data).await?;
    let target = body.target_url.as_deref();
    let verified = verify_assertion(app, &authed.settings.domain, &username, &body.response, &state.state).await;
    let ok = verified.as_ref().is_ok_and(|v| *v);
    guard::record_attempt(app, request, &username, AuthType::WebAuthn, ok, target).await?;
    match verified {
        Ok(true) => Ok(guard::complete_second_factor(app, authed, "webauthn", target).await),
        Ok(false) => Err(response::ko(StatusCode::UNAUTHORIZED, "The security key response was not accepted")),
        Err(r) => Err(r),
    }
}

/// Checks an assertion against the user's stored credential it names and records the use
/// (new counter, last use). `Ok(false)` when it does not verify.
pub async fn verify_assertion(
    app: &App,
    domain: &str,
    username: &str,
    response: &PublicKeyCredential,
    state: &str,
) -> Result<bool, HttpResponse> {
    let storage = &app.services.storage;
    let stored = storage.webauthn_credentials(username).await.map_err(|e| storage_failed(&e))?;
    let result = app.services.webauthn.finish_authentication(domain, response, state);
    record_use(app, stored, response.get_credential_id(), result).await
}

/// Applies a ceremony's outcome to the stored credential it used.
pub async fn record_use(
    app: &App,
    stored: Vec<WebAuthnCredential>,
    claimed_id: &[u8],
    result: Result<webauthn_rs::prelude::AuthenticationResult, CeremonyError>,
) -> Result<bool, HttpResponse> {
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
            let json = serde_json::to_vec(&key).map_err(|e| storage_failed(&e))?;
            storage
                .webauthn_used(row.id, json, i64::from(result.counter()), now())
                .await
                .map_err(|e| storage_failed(&e))?;
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
                storage.webauthn_flag_clone(id).await.map_err(|e| storage_failed(&e))?;
            }
            Ok(false)
        }
        Err(e) => {
            tracing::info!(error = %e, "WebAuthn assertion refused");
            Ok(false)
        }
    }
}

/// `GET /api/secondfactor/webauthn/credentials`: the user's keys and passkeys.
pub async fn credentials(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    match app.services.storage.webauthn_credentials(&authed.data().username).await {
        Ok(list) => response::ok_data(&list.into_iter().map(CredentialView::from).collect::<Vec<_>>()),
        Err(e) => storage_failed(&e),
    }
}

/// `/api/secondfactor/webauthn/credential/register`: PUT starts, POST finishes, DELETE
/// cancels a registration.
pub async fn register(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = match request.parts.method {
        Method::PUT => start_registration(app, request, &authed).await,
        Method::POST => finish_registration(app, request, &authed).await,
        _ => {
            let mut data = authed.data().clone();
            data.webauthn = None;
            guard::save(app, &authed, data).await.map(|()| response::ok())
        }
    };
    result.unwrap_or_else(|r| r)
}

fn valid_description(description: &str) -> Result<String, HttpResponse> {
    let description = description.trim();
    if description.is_empty()
        || description.chars().count() > MAX_DESCRIPTION
        || description.chars().any(char::is_control)
    {
        return Err(response::ko(
            StatusCode::BAD_REQUEST,
            &format!("The description must be 1 to {MAX_DESCRIPTION} printable characters"),
        ));
    }
    Ok(description.to_string())
}

async fn start_registration(
    app: &App,
    request: &ApiRequest<'_>,
    authed: &Authed<'_>,
) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let body: RegisterBody = if request.body.is_empty() { RegisterBody::default() } else { request.json()? };
    let description = valid_description(&body.description)?;
    let storage = &app.services.storage;
    let username = &authed.data().username;
    let existing = storage.webauthn_credentials(username).await.map_err(|e| storage_failed(&e))?;
    if existing.iter().any(|c| c.description.eq_ignore_ascii_case(&description)) {
        return Err(response::ko(StatusCode::CONFLICT, "Another credential already has that description"));
    }
    let user_id = storage
        .webauthn_user_id(username, true)
        .await
        .map_err(|e| storage_failed(&e))?
        .and_then(|id| Uuid::parse_str(&id).ok())
        .ok_or_else(|| storage_failed(&"no WebAuthn user handle"))?;
    let exclude = existing.iter().filter_map(passkey_of).map(|k| k.cred_id().clone()).collect();
    let display_name = if authed.data().display_name.is_empty() { username } else { &authed.data().display_name };
    let (options, state) = app
        .services
        .webauthn
        .start_registration(&authed.settings.domain, user_id, username, display_name, exclude, body.passkey)
        .map_err(|e| ceremony_failed(&e))?;
    let kind = if body.passkey { "register_passkey" } else { "register" };
    let mut data = authed.data().clone();
    data.webauthn = Some(pending(kind, state, description));
    guard::save(app, authed, data).await?;
    Ok(response::ok_data(&options))
}

async fn finish_registration(
    app: &App,
    request: &ApiRequest<'_>,
    authed: &Authed<'_>,
) -> Result<HttpResponse, HttpResponse> {
    require_elevation(app, authed)?;
    let body: RegisterPublicKeyCredential = request.json()?;
    let mut data = authed.data().clone();
    let pending = take_pending(&mut data, "register").or_else(|| {
        data.webauthn = authed.data().webauthn.clone();
        take_pending(&mut data, "register_passkey")
    });
    let Some(pending) = pending else {
        return Err(response::ko(StatusCode::BAD_REQUEST, "No registration is in progress; start again"));
    };
    guard::save(app, authed, data).await?;
    let domain = &authed.settings.domain;
    let registered = app
        .services
        .webauthn
        .finish_registration(domain, &body, &pending.state, pending.kind == "register_passkey")
        .map_err(|e| ceremony_failed(&e))?;
    let username = authed.data().username.clone();
    let credential = WebAuthnCredential {
        id: 0,
        username: username.clone(),
        description: pending.description.clone(),
        kid: body.id.clone(),
        rp_id: domain.clone(),
        discoverable: registered.discoverable,
        aaguid: String::new(),
        attestation_type: registered.attestation_format,
        sign_count: 0,
        clone_warning: false,
        created_at: now(),
        last_used_at: None,
        credential: serde_json::to_vec(&registered.passkey).map_err(|e| storage_failed(&e))?,
    };
    match app.services.storage.webauthn_insert(credential).await {
        Ok(()) => {}
        Err(StorageError::Duplicate) => {
            return Err(response::ko(StatusCode::CONFLICT, "This credential or description is registered already"));
        }
        Err(e) => return Err(storage_failed(&e)),
    }
    tracing::info!(username = %username, discoverable = registered.discoverable, "WebAuthn credential registered");
    super::notify_security_event(
        app,
        request,
        authed.data(),
        format!("A security key or passkey named '{}' was added to your account.", pending.description),
    );
    let mut answer = response::ok();
    *answer.status_mut() = StatusCode::CREATED;
    Ok(answer)
}

#[derive(Deserialize)]
struct RenameBody {
    description: String,
}

/// `/api/secondfactor/webauthn/credential/{id}`: PUT renames, DELETE removes (elevated).
pub async fn credential(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    if let Err(r) = require_elevation(app, &authed) {
        return r;
    }
    let Some(id) = request.path.rsplit('/').next().and_then(|s| s.parse::<i32>().ok()) else {
        return response::ko(StatusCode::BAD_REQUEST, "The credential ID must be a number");
    };
    let storage = &app.services.storage;
    let username = &authed.data().username;
    let outcome = if request.parts.method == Method::PUT {
        let body: RenameBody = match request.json() {
            Ok(b) => b,
            Err(r) => return r,
        };
        let description = match valid_description(&body.description) {
            Ok(d) => d,
            Err(r) => return r,
        };
        storage.webauthn_rename(username, id, &description).await
    } else {
        storage.webauthn_delete(username, id).await
    };
    match outcome {
        Ok(true) => {
            if request.parts.method == Method::DELETE {
                tracing::info!(username = %username, id, "WebAuthn credential removed");
                super::notify_security_event(
                    app,
                    request,
                    authed.data(),
                    "A security key or passkey was removed from your account.".into(),
                );
            }
            response::ok()
        }
        Ok(false) => response::ko(StatusCode::NOT_FOUND, "No such credential"),
        Err(StorageError::Duplicate) => {
            response::ko(StatusCode::CONFLICT, "Another credential already has that description")
        }
        Err(e) => storage_failed(&e),
    }
}
