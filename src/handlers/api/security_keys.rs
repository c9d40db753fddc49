//! Managing security keys and passkeys: the list, registration
//! (`/api/secondfactor/webauthn/credential/register`: PUT begins, POST finishes, DELETE
//! cancels), and `/api/secondfactor/webauthn/credential/{id}` (PUT renames, DELETE removes).

use http::StatusCode;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::{Request, ok_with};
use crate::clock::rfc3339;
use crate::flows::{Error, security_keys};
use crate::second_factor::portable;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::storage::WebAuthnCredential;

/// A credential as Authelia's API lists it (its frontend reads every field), plus ours.
#[derive(Serialize)]
pub(super) struct CredentialView {
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
    attestation_format: String,
    /// Not recorded at registration (as Authelia when the browser does not say).
    attachment: String,
    transports: Vec<String>,
    sign_count: i64,
    clone_warning: bool,
    /// Authelia's mark for U2F-era registrations; none here.
    legacy: bool,
    discoverable: bool,
    /// User presence: every registration proves it.
    present: bool,
    verified: bool,
    backup_eligible: bool,
    backup_state: bool,
    /// The COSE public key, base64.
    public_key: String,
}

impl From<WebAuthnCredential> for CredentialView {
    fn from(c: WebAuthnCredential) -> Self {
        use base64::Engine;
        let facts = portable::portable_of(&c.credential);
        Self {
            id: c.id,
            created_at: rfc3339(c.created_at),
            last_used_at: c.last_used_at.map(rfc3339),
            rpid: c.rp_id,
            username: c.username,
            description: c.description,
            kid: c.kid,
            aaguid: c.aaguid,
            attestation_format: c.attestation_type.clone(),
            attestation_type: c.attestation_type,
            attachment: String::new(),
            transports: facts.transports,
            sign_count: c.sign_count,
            clone_warning: c.clone_warning,
            legacy: false,
            discoverable: c.discoverable,
            present: true,
            verified: facts.user_verified,
            backup_eligible: facts.backup_eligible,
            backup_state: facts.backup_state,
            public_key: base64::engine::general_purpose::STANDARD.encode(&facts.public_key),
        }
    }
}

/// `GET /api/secondfactor/webauthn/credentials`.
pub async fn list(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let list = security_keys::list(app, caller).await?;
        Ok(response::ok_data(&list.into_iter().map(CredentialView::from).collect::<Vec<_>>()))
    })
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RegisterBody {
    description: String,
    /// Ask for a discoverable credential usable for passwordless login.
    passkey: bool,
}

/// `PUT .../credential/register`.
pub async fn register_begin(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: RegisterBody = request.json_or_default()?;
        Ok(response::ok_data(&security_keys::register_begin(app, caller, &body.description, body.passkey).await?))
    })
}

/// `POST .../credential/register`: 201 when stored.
pub async fn register_finish(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: RegisterPublicKeyCredential = request.json()?;
        security_keys::register_finish(app, caller, &body).await?;
        Ok(ok_with(StatusCode::CREATED))
    })
}

/// `DELETE .../credential/register`.
pub async fn register_cancel(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        security_keys::register_cancel(app, caller).await?;
        Ok(response::ok())
    })
}

fn credential_id(request: &Request<'_>) -> Result<i32, Error> {
    request.last_segment().parse().map_err(|_| Error::InvalidRequest("The credential ID must be a number".into()))
}

#[derive(Deserialize)]
struct RenameBody {
    description: String,
}

/// `PUT .../credential/{id}`.
pub async fn rename(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let id = credential_id(request)?;
        let body: RenameBody = request.json()?;
        security_keys::rename(app, caller, id, &body.description).await?;
        Ok(response::ok())
    })
}

/// `DELETE .../credential/{id}`.
pub async fn delete(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        security_keys::delete(app, caller, credential_id(request)?).await?;
        Ok(response::ok())
    })
}
