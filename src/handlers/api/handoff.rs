//! `POST /auth/api/set-session`: the session cookie for a session token (answered by a
//! passkey login over a WebSocket, which cannot set cookies) or an account API access
//! token, sent as `Authorization: Bearer`.

use http::header;

use super::{Request, error_response, with_cookies};
use crate::flows::{Caller, Error, session_handoff};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// `POST /auth/api/set-session`: `{"status":"OK"}` with the session's `Set-Cookie`; 401
/// for a missing, invalid, expired, used or other domain's token.
///
/// The future is made and boxed here, not in the API's dispatch: unoptimized builds give
/// every arm of that dispatch its own stack slot for the arm's future, so a large one there
/// deepens the stack of every API call.
pub fn set_session<'a>(
    app: &'a App,
    request: &'a Request<'_>,
) -> std::pin::Pin<Box<dyn Future<Output = HttpResponse> + Send + 'a>> {
    Box::pin(set_session_inner(app, request))
}

async fn set_session_inner(app: &App, request: &Request<'_>) -> HttpResponse {
    let Some(token) = super::account_api::bearer(request) else { return refused(&Error::TokenInvalid) };
    // The cookie's caller: a session it already has ends when the new one starts.
    let mut caller = match Caller::open(app, request.host(), request.cookies().as_deref(), request.context(app)).await {
        Ok(caller) => caller,
        Err(e) => return error_response(&e),
    };
    match session_handoff::set_session(app, &mut caller, &token).await {
        Ok(()) => with_cookies(&mut caller, Ok(response::ok())),
        Err(e) => refused(&e),
    }
}

/// A refused token gets `WWW-Authenticate: Bearer` (RFC 6750).
fn refused(e: &Error) -> HttpResponse {
    let mut r = error_response(e);
    if matches!(e, Error::TokenInvalid) {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer error=\"invalid_token\""));
    }
    r
}
