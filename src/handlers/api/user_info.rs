//! `/api/user/info` (GET, POST): the logged-in user's name, addresses, second-factor setup
//! and preferred method; `POST /api/user/info/2fa_method` records the preference.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiRequest;
use super::configuration::enabled_methods;
use super::guard::{authed, storage_failed};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;

#[derive(Serialize)]
struct UserInfo<'a> {
    display_name: &'a str,
    emails: &'a [String],
    groups: &'a [String],
    method: String,
    has_totp: bool,
    has_webauthn: bool,
    has_email: bool,
    has_duo: bool,
    recovery_codes_remaining: i64,
}

#[derive(Deserialize)]
struct MethodBody {
    method: String,
}

/// Requires a first-factor session (403 otherwise, as Authelia). The method reported is
/// the user's preference when still enabled, else the configured default, else one the
/// user has set up, else the first enabled one.
pub async fn get(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let data = authed.data();
    let storage = &app.services.storage;
    let facts = async {
        Ok::<_, crate::storage::StorageError>((
            storage.preferred_method(&data.username).await?,
            storage.totp_exists(&data.username).await?,
            storage.webauthn_count(&data.username).await? > 0,
            storage.recovery_remaining(&data.username).await?,
        ))
    };
    let (preferred, has_totp, has_webauthn, recovery_codes_remaining) = match facts.await {
        Ok(f) => f,
        Err(e) => return storage_failed(&e),
    };
    let enabled = enabled_methods(&app.config);
    let has_email = app.config.email_otp.enable && !data.emails.is_empty();
    let usable = |m: &str| enabled.contains(&m);
    let method = preferred
        .filter(|m| usable(m))
        .or_else(|| Some(app.config.default_2fa_method.clone()).filter(|m| usable(m)))
        .or_else(|| {
            [("totp", has_totp), ("webauthn", has_webauthn), ("email", has_email)]
                .into_iter()
                .find(|(m, has)| *has && usable(m))
                .map(|(m, _)| m.to_string())
        })
        .or_else(|| enabled.first().map(|m| m.to_string()))
        .unwrap_or_default();
    response::ok_data(&UserInfo {
        display_name: &data.display_name,
        emails: &data.emails,
        groups: &data.groups,
        method,
        has_totp,
        has_webauthn,
        has_email,
        has_duo: false,
        recovery_codes_remaining,
    })
}

/// Records the preferred second-factor method (one the operator enabled).
pub async fn set_method(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: MethodBody = match request.json() {
        Ok(b) => b,
        Err(r) => return r,
    };
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let enabled = enabled_methods(&app.config);
    if !enabled.contains(&body.method.as_str()) {
        return response::ko(
            StatusCode::BAD_REQUEST,
            &format!("Unknown or disabled method '{}'; use one of: {}", body.method, enabled.join(", ")),
        );
    }
    match app.services.storage.set_preferred_method(&authed.data().username, &body.method).await {
        Ok(()) => response::ok(),
        Err(e) => storage_failed(&e),
    }
}
