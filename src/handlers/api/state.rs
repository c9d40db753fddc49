//! `GET /api/state`: who the caller is and where the portal sends them by default.

use serde::Serialize;

use super::{ApiRequest, current};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;

/// Authelia's `StateResponse`.
#[derive(Serialize)]
struct State<'a> {
    username: &'a str,
    authentication_level: u8,
    factor_knowledge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_redirection_url: Option<&'a str>,
}

/// The session's user and level (level 0 and no user when anonymous), and the default
/// redirection URL of the cookie domain the request came in on.
pub async fn get(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let current = match current(app, request).await {
        Ok(current) => current,
        Err(response) => return response,
    };
    let session = current.as_ref().and_then(|c| c.session.as_ref());
    let default_redirection_url =
        current.as_ref().and_then(|c| c.settings.default_redirection_url.as_ref()).map(url::Url::as_str);
    response::ok_data(&State {
        username: session.map_or("", |s| s.data.username.as_str()),
        authentication_level: session.map_or(AuthLevel::Anonymous, |s| s.data.level()) as u8,
        factor_knowledge: session.is_some_and(|s| s.data.first_factor_at.is_some()),
        default_redirection_url,
    })
}
