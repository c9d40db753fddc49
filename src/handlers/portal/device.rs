//! The device verification page (RFC 8628 `verification_uri`, at Authelia's path): the
//! signed-in user types the code a device shows (or confirms the one its link carried),
//! then sees which client asks for what, with the code again, and allows or refuses.
//! Each step calls `flows::oidc::device`, which checks the level the client demands and
//! counts wrong codes.

use http::StatusCode;
use http::header::{self, HeaderValue};
use minijinja::context;

use super::consent::{issuer, scope_items};
use super::visit::Visit;
use crate::flows::oidc::device::{self, Verification};
use crate::oidc::paths;
use crate::server::response::HttpResponse;

/// The code form, with the code of a `verification_uri_complete` link filled in; the
/// login first for a visitor who is not signed in.
pub async fn form(v: &mut Visit<'_>) -> HttpResponse {
    let typed = v.param("user_code");
    if let Some(login) = device::sign_in_first(&v.caller, &typed, &issuer(v)) {
        return v.redirect(&login);
    }
    code_form(v, StatusCode::OK, &typed, None)
}

/// A code typed (no `decision` yet: the consent question), or the decision on it.
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let typed = v.field("user_code");
    let issuer = issuer(v);
    let outcome = match v.field("decision").as_str() {
        "" => device::lookup(v.app, &v.caller, &typed, &issuer).await,
        decision => device::decide(v.app, &v.caller, &typed, decision == "accept", &issuer).await,
    };
    match outcome {
        Verification::SignIn(login) => v.redirect(&login),
        Verification::Consent(view) => {
            let ctx = context! {
                consent => true,
                client_name => view.client_name,
                client_id => view.client_id,
                scopes => scope_items(v, &view.scopes),
                user_code => view.user_code,
                username => v.caller.username().to_string(),
                action => paths::DEVICE_VERIFICATION,
            };
            v.render(StatusCode::OK, "device.html", ctx)
        }
        Verification::Unknown => {
            let error = v.text("device.unknown_code");
            code_form(v, StatusCode::BAD_REQUEST, &typed, Some(error))
        }
        Verification::Locked(retry_after) => {
            let error = v.text("device.locked");
            let mut r = code_form(v, StatusCode::TOO_MANY_REQUESTS, "", Some(error));
            if let Ok(value) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, value);
            }
            r
        }
        Verification::Decided { approved, client_name } => {
            let (title_key, text) = if approved {
                ("device.approved_title", "device.approved")
            } else {
                ("device.denied_title", "device.denied")
            };
            let notice = format!("{client_name}: {}", v.text(text));
            let ctx = context! { title_key, notice, links => Vec::<minijinja::Value>::new() };
            v.render(StatusCode::OK, "message.html", ctx)
        }
        Verification::Forbidden { client_name } => {
            let error = format!("{client_name}: {}", v.text("device.forbidden"));
            let ctx = context! { title_key => "device.denied_title", error, links => Vec::<minijinja::Value>::new() };
            v.render(StatusCode::FORBIDDEN, "message.html", ctx)
        }
        Verification::Failed(message) => {
            tracing::warn!(reason = %message, "OpenID Connect device verification failed");
            let ctx =
                context! { title_key => "oidc.error_title", error => message, links => Vec::<minijinja::Value>::new() };
            v.render(StatusCode::SERVICE_UNAVAILABLE, "message.html", ctx)
        }
    }
}

fn code_form(v: &mut Visit<'_>, status: StatusCode, typed: &str, error: Option<String>) -> HttpResponse {
    let ctx = context! { consent => false, user_code => typed, error, action => paths::DEVICE_VERIFICATION };
    v.render(status, "device.html", ctx)
}
