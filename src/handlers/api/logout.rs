//! `POST /api/logout`: ends the session and says whether the requested target is safe.

use serde::{Deserialize, Serialize};

use super::{Request, error_response};
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
/// place the portal may send the user next. A host under no cookie domain has nothing to
/// end.
pub async fn post(app: &App, request: &Request<'_>) -> HttpResponse {
    let body: LogoutBody = match request.json_or_default() {
        Ok(body) => body,
        Err(e) => return error_response(&e),
    };
    let safe_target_url = !body.target_url.is_empty() && app.services.sessions.is_safe_redirect(&body.target_url);
    let answer = response::ok_data(&LogoutResponse { safe_target_url });
    if app.services.sessions.cookie_for_host(request.host()).is_none() {
        return answer;
    }
    as_caller!(app, request, |caller| {
        caller.end(app).await?;
        Ok(answer)
    })
}
