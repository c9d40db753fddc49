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

/// The texts of one kind of cancel link.
struct Texts {
    title: &'static str,
    confirm: &'static str,
    submit: &'static str,
    done: &'static str,
}

const CODE: Texts =
    Texts { title: "revoke.title", confirm: "revoke.confirm", submit: "revoke.submit", done: "revoke.done" };

const RESET: Texts = Texts {
    title: "revoke_reset.title",
    confirm: "revoke_reset.confirm",
    submit: "revoke_reset.submit",
    done: "revoke_reset.done",
};

/// The confirmation page, posting to `action`.
fn confirmation(v: &mut Visit<'_>, texts: &Texts, action: String) -> HttpResponse {
    let ctx = context! {
        title_key => texts.title,
        confirm_action => action,
        confirm_text => texts.confirm,
        confirm_button => texts.submit,
        confirm_class => "danger",
        links => vec![link("/login", "login.title")],
    };
    v.render(StatusCode::OK, "message.html", ctx)
}

/// The page after cancelling: done, also when `gone` says there was nothing left to
/// cancel (used, expired or cancelled already: it cannot be used any more, which is the
/// goal).
fn cancelled(
    v: &mut Visit<'_>,
    texts: &Texts,
    outcome: Result<(), Error>,
    gone: impl Fn(&Error) -> bool,
    links: Vec<minijinja::Value>,
) -> HttpResponse {
    let status = match outcome {
        Ok(()) => StatusCode::OK,
        Err(e) if gone(&e) => StatusCode::OK,
        Err(e) if e.status().is_server_error() => return v.error_page(&e),
        Err(e) => e.status(),
    };
    let ctx = context! { title_key => texts.title, notice => v.text(texts.done), links };
    v.render(status, "message.html", ctx)
}

/// The code's confirmation.
pub fn form(v: &mut Visit<'_>) -> HttpResponse {
    let action = with_param("/revoke/one-time-code", "id", &code_id(v));
    confirmation(v, &CODE, action)
}

/// Cancels the code (no session needed: the ID is an unguessable UUID).
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let outcome = elevation::revoke(v.app, &code_id(v)).await;
    let links = vec![link("/forgot-password", "revoke.reset"), link("/login", "login.title")];
    cancelled(v, &CODE, outcome, |e| matches!(e, Error::NoSuchCode), links)
}

/// The reset link's confirmation.
pub fn reset_form(v: &mut Visit<'_>) -> HttpResponse {
    let action = with_param("/revoke/reset-password", "token", &v.param("token"));
    confirmation(v, &RESET, action)
}

/// Cancels the reset link (no session needed: the token is the proof).
pub async fn reset_submit(v: &mut Visit<'_>) -> HttpResponse {
    let outcome = password::reset_revoke(v.app, &v.param("token")).await;
    cancelled(v, &RESET, outcome, |e| matches!(e, Error::ResetLinkInvalid), vec![link("/login", "login.title")])
}
