//! `GET /api/state`: who the caller is and where the portal sends them by default.

use serde::Serialize;

use super::{Request, error_response};
use crate::flows::Error;
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

/// The session's user and level (level 0 and no user when anonymous, also on a host under
/// no cookie domain), and the default redirection URL of the request's cookie domain.
pub async fn get(app: &App, request: &Request<'_>) -> HttpResponse {
    let caller = match request.caller(app).await {
        Ok(caller) => Some(caller),
        Err(Error::NoCookieDomain) => None,
        Err(e) => return error_response(&e),
    };
    let data = caller.as_ref().and_then(|c| c.data());
    let default_redirection_url =
        caller.as_ref().and_then(|c| c.settings().default_redirection_url.as_ref()).map(url::Url::as_str);
    response::ok_data(&State {
        username: data.map_or("", |d| d.username.as_str()),
        authentication_level: data.map_or(AuthLevel::Anonymous, |d| d.level()) as u8,
        factor_knowledge: data.is_some_and(|d| d.first_factor_at.is_some()),
        default_redirection_url,
    })
}
