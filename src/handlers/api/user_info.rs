//! `GET /api/user/info`: the logged-in user's name, addresses and second-factor setup.

use serde::Serialize;

use super::{ApiRequest, current, forbidden};
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
    has_duo: bool,
}

/// Requires a first-factor session (403 otherwise, as Authelia).
pub async fn get(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let session = match current(app, request).await {
        Ok(Some(current)) => current.session,
        Ok(None) => None,
        Err(response) => return response,
    };
    let Some(session) = session.filter(|s| s.data.level() >= AuthLevel::OneFactor) else { return forbidden() };
    let data = &session.data;
    let preferred = match app.services.storage.preferred_method(&data.username).await {
        Ok(method) => method,
        Err(e) => {
            tracing::error!(error = %e, "cannot read user preferences");
            None
        }
    };
    let method = preferred
        .or_else(|| Some(app.config.default_2fa_method.clone()).filter(|m| !m.is_empty()))
        .unwrap_or_else(|| if app.config.totp.disable { "webauthn" } else { "totp" }.to_string());
    response::ok_data(&UserInfo {
        display_name: &data.display_name,
        emails: &data.emails,
        groups: &data.groups,
        method,
        has_totp: false,
        has_webauthn: false,
        has_duo: false,
    })
}
