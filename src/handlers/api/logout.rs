//! `POST /api/logout`: ends the session and says whether the requested target is safe.

use serde::{Deserialize, Serialize};

use super::{ApiRequest, current, store_unavailable, with_cookie};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize, Default)]
#[serde(default)]
struct LogoutBody {
    #[serde(rename = "targetURL")]
    target_url: String,
}

#[derive(Serialize)]
struct LogoutResponse {
    #[serde(rename = "safeTargetURL")]
    safe_target_url: bool,
}

/// Destroys the session (if any), clears its cookie, and reports whether `targetURL` is a
/// place the portal may send the user next.
pub async fn post(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let body: LogoutBody = if request.body.is_empty() {
        LogoutBody::default()
    } else {
        match request.json() {
            Ok(body) => body,
            Err(response) => return response,
        }
    };
    let safe_target_url = !body.target_url.is_empty() && app.services.sessions.is_safe_redirect(&body.target_url);
    let answer = response::ok_data(&LogoutResponse { safe_target_url });
    let current = match current(app, request).await {
        Ok(Some(current)) => current,
        Ok(None) => return answer,
        Err(response) => return response,
    };
    let Some(session) = current.session else { return with_cookie(answer, &current.settings.clear_cookie()) };
    match app.services.sessions.end(current.settings, &session.id).await {
        Ok(clear) => with_cookie(answer, &clear),
        Err(e) => store_unavailable(&e),
    }
}
