//! `POST /api/checks/safe-redirection`: may the portal send the user to this URL?

use serde::{Deserialize, Serialize};

use super::Request;
use crate::flows::Error;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

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
pub async fn post(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: Body = request.json()?;
        if caller.session().is_none() {
            return Err(Error::Unauthenticated);
        }
        Ok(response::ok_data(&Answer { ok: app.services.sessions.is_safe_redirect(&body.uri) }))
    })
}
