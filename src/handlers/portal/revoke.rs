//! The cancel links of the mails: an elevation code's (`/revoke/one-time-code?id=`, or
//! `/revoke/elevation/{id}` in older mails) and a reset link's
//! (`/revoke/reset-password?token=`). Each shows a confirmation first (so that a mail
//! scanner following links cancels nothing), then cancels and tells the user what a
//! message they did not ask for means.

use http::StatusCode;
use minijinja::context;

use super::visit::{Visit, link};
use crate::flows::{Error, elevation, password};
use crate::server::response::HttpResponse;

/// The code's ID: the `id` parameter, or the last path segment of an older link.
fn code_id(v: &Visit<'_>) -> String {
    let id = v.param("id");
    if !id.is_empty() {
        return id;
    }
    match v.request.path.strip_prefix("/revoke/elevation/") {
        Some(id) => id.to_string(),
        None => String::new(),
    }
}

/// `path` with `name=value` as its query.
fn with_param(path: &str, name: &str, value: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new()).append_pair(name, value).finish();
    format!("{path}?{query}")
}

/// The confirmation.
pub fn form(v: &mut Visit<'_>) -> HttpResponse {
    let ctx = context! {
        title_key => "revoke.title",
        confirm_action => with_param("/revoke/one-time-code", "id", &code_id(v)),
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

/// The reset link's confirmation.
pub fn reset_form(v: &mut Visit<'_>) -> HttpResponse {
    let ctx = context! {
        title_key => "revoke_reset.title",
        confirm_action => with_param("/revoke/reset-password", "token", &v.param("token")),
        confirm_text => "revoke_reset.confirm",
        confirm_button => "revoke_reset.submit",
        confirm_class => "danger",
        links => vec![link("/login", "login.title")],
    };
    v.render(StatusCode::OK, "message.html", ctx)
}

/// Cancels the reset link (no session needed: the token is the proof).
pub async fn reset_submit(v: &mut Visit<'_>) -> HttpResponse {
    let status = match password::reset_revoke(v.app, &v.param("token")).await {
        // Already used, expired or cancelled: it cannot be used any more, which is the goal.
        Ok(()) | Err(Error::ResetLinkInvalid) => StatusCode::OK,
        Err(e) if e.status().is_server_error() => return v.error_page(&e),
        Err(e) => e.status(),
    };
    let ctx = context! {
        title_key => "revoke_reset.title",
        notice => v.text("revoke_reset.done"),
        links => vec![link("/login", "login.title")],
    };
    v.render(status, "message.html", ctx)
}
