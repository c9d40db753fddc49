//! Seed 004's account API under `/auth/api/` (the paths its passkey-first frontends call),
//! as thin adapters over the operations the portal and Authelia's API use: validate the
//! session, forward-auth answering 204, sign out, who am I (with credentials and
//! sessions), end one or every session, remove a credential, change the display name.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::Request;
use super::security_keys::CredentialView;
use crate::flows::{Error, account_api, device_links, own_sessions, security_keys};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;

/// `POST /auth/api/validate`: the session is valid (and its inactivity clock renewed), or 401.
pub async fn validate(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        if caller.level() < AuthLevel::OneFactor {
            return Err(Error::Unauthenticated);
        }
        let data = caller.require(AuthLevel::OneFactor)?.clone();
        let answer = json!({
            "valid": true,
            "username": data.username,
            "authentication_level": data.level() as u8,
        });
        // Renewed: its last activity is now (the store throttles the write).
        caller.save(app, data).await?;
        Ok(response::ok_data(&answer))
    })
}

/// `POST /auth/api/logout`.
pub async fn logout(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        caller.end(app).await?;
        Ok(response::ok_data(&json!({})))
    })
}

#[derive(Deserialize, Default)]
struct UserInfoBody {
    /// A device-addition link's token to describe instead of the signed-in user.
    #[serde(default)]
    token: Option<String>,
}

/// `POST /auth/api/user-info`: the user, their credentials and their sessions; with
/// `{"token": ...}`, the device-addition link it names (whose account, until when; 404
/// when it is not a live link), no session needed.
pub async fn user_info(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: UserInfoBody = request.json_or_default()?;
        if let Some(token) = body.token.filter(|t| !t.is_empty()) {
            let link = device_links::describe(app, &token).await?;
            return Ok(response::ok_data(&json!({
                "device_link": {"username": link.username, "display_name": link.display_name, "expires_at": link.expires_at},
            })));
        }
        if caller.level() < AuthLevel::OneFactor {
            return Err(Error::Unauthenticated);
        }
        let data = caller.require(AuthLevel::OneFactor)?.clone();
        let credentials: Vec<CredentialView> =
            security_keys::list(app, caller).await?.into_iter().map(CredentialView::from).collect();
        let sessions = own_sessions::list(app, caller).await?;
        Ok(response::ok_data(&json!({
            "user": {
                "username": data.username,
                "display_name": data.display_name,
                "emails": data.emails,
                "groups": data.groups,
                "authentication_level": data.level() as u8,
            },
            "credentials": credentials,
            "sessions": sessions,
        })))
    })
}

/// `DELETE /auth/api/credential/{id}` (an elevated session, as every credential change).
/// The credential is named by the ID user-info lists, or by its WebAuthn credential ID
/// (base64url), which is what seed 004's frontends hold.
pub async fn delete_credential(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let named = request.segment(4);
        let id = match named.parse::<i32>() {
            Ok(id) => id,
            Err(_) => security_keys::list(app, caller)
                .await?
                .into_iter()
                .find(|c| c.kid == named)
                .map(|c| c.id)
                .ok_or(Error::NoSuchCredential)?,
        };
        security_keys::delete(app, caller, id).await?;
        Ok(super::ok_with(StatusCode::OK))
    })
}

/// `DELETE /auth/api/session/{id}`.
pub async fn delete_session(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        own_sessions::end_one(app, caller, &request.segment(4)).await?;
        Ok(super::ok_with(StatusCode::OK))
    })
}

/// `POST /auth/api/user/logout-all`.
pub async fn logout_all(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let ended = own_sessions::end_all(app, caller).await?;
        Ok(response::ok_data(&json!({ "sessions_ended": ended })))
    })
}

#[derive(Deserialize)]
struct DisplayName {
    display_name: String,
}

/// `PUT /auth/api/user/display-name`.
pub async fn display_name(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: DisplayName = request.json()?;
        account_api::set_name(app, caller, &body.display_name).await?;
        Ok(super::ok_with(StatusCode::OK))
    })
}
