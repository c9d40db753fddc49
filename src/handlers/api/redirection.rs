//! `POST /api/checks/safe-redirection`: may the portal send the user to this URL?

use serde::{Deserialize, Serialize};

use super::{ApiRequest, current};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use http::StatusCode;

#[derive(Deserialize)]
struct Body {
    uri: String,
}

#[derive(Serialize)]
struct Answer {
    ok: bool,
}

/// Answers `{"ok": true}` only for URLs under a configured cookie domain (https, or http on
/// a local development domain). Requires a session, as Authelia.
pub async fn post(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: Body = match request.json() {
        Ok(body) => body,
        Err(response) => return response,
    };
    match current(app, request).await {
        Ok(Some(current)) if current.session.is_some() => {}
        Ok(_) => return response::ko(StatusCode::UNAUTHORIZED, "Unauthorized"),
        Err(response) => return response,
    }
    response::ok_data(&Answer { ok: app.services.sessions.is_safe_redirect(&body.uri) })
}
