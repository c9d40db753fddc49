//! The "cancel this code" link of an elevation mail: a confirmation (so that a mail
//! scanner following links cancels nothing), then the code is cancelled and the user is
//! told what a code they did not ask for means.

use http::StatusCode;
use minijinja::context;

use super::visit::{Visit, link};
use crate::flows::{Error, elevation};
use crate::server::response::HttpResponse;

fn code_id(v: &Visit<'_>) -> String {
    v.request.path.rsplit('/').next().unwrap_or_default().to_string()
}

/// The confirmation.
pub fn form(v: &mut Visit<'_>) -> HttpResponse {
    let ctx = context! {
        title_key => "revoke.title",
        confirm_action => format!("/revoke/elevation/{}", code_id(v)),
        confirm_text => "revoke.confirm",
        confirm_button => "revoke.submit",
        confirm_class => "danger",
        links => vec![link("/login", "login.title")],
    };
    v.render(StatusCode::OK, "message.html", ctx)
}

/// Cancels the code (no session needed: the ID is an unguessable UUID).
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let status = match elevation::revoke(v.app, &code_id(v)).await {
        // Already used, expired or cancelled: nothing is left to cancel, which is the goal.
        Ok(()) | Err(Error::NoSuchCode) => StatusCode::OK,
        Err(e) if e.status().is_server_error() => return v.error_page(&e),
        Err(e) => e.status(),
    };
    let ctx = context! {
        title_key => "revoke.title",
        notice => v.text("revoke.done"),
        links => vec![link("/forgot-password", "revoke.reset"), link("/login", "login.title")],
    };
    v.render(status, "message.html", ctx)
}
