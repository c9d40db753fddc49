//! `GET /api/state`: who the caller is and where the portal sends them by default.

use http::header;
use serde::Serialize;

use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// Authelia's `StateResponse`.
#[derive(Serialize)]
struct State<'a> {
    username: &'a str,
    authentication_level: u8,
    factor_knowledge: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_redirection_url: Option<&'a str>,
}

/// Anonymous state until sessions exist: level 0, no user, and the default redirection URL
/// of the cookie domain the request came in on.
pub fn get(app: &App, parts: &http::request::Parts) -> HttpResponse {
    let host = parts
        .headers
        .get("x-forwarded-host")
        .or_else(|| parts.headers.get(header::HOST))
        .and_then(|v| v.to_str().ok())
        .or_else(|| parts.uri.host())
        .unwrap_or_default();
    let default_redirection_url = app
        .config
        .session
        .cookie_for_host(host)
        .and_then(|c| c.default_redirection_url.as_ref())
        .map(|u| u.url().as_str());
    response::ok_data(&State {
        username: "",
        authentication_level: 0,
        factor_knowledge: false,
        default_redirection_url,
    })
}
