//! Password reset: asking for a link, and the link's new-password form.

use http::StatusCode;
use minijinja::{Value, context};

use super::visit::{Visit, field, link};
use crate::flows::{Error, password};
use crate::server::response::HttpResponse;

/// The forgotten-password form.
pub fn forgot_form(v: &mut Visit<'_>, notice: Option<String>, error: Option<&Error>) -> HttpResponse {
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        title_key => "forgot.title",
        intro => "forgot.intro",
        action => "/forgot-password",
        fields => vec![field("username", "login.username", "text", "username")],
        hidden => Vec::<Value>::new(),
        submit => "forgot.submit",
        links => vec![link("/login", "login.title")],
        notice,
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "form.html", ctx)
}

/// Asking for a link (the answer is the same whether the account exists or not).
pub async fn forgot(v: &mut Visit<'_>) -> HttpResponse {
    match password::reset_start(v.app, &v.caller, &v.field("username")).await {
        Ok(()) => {
            let notice = v.text("forgot.sent");
            forgot_form(v, Some(notice), None)
        }
        Err(e) => forgot_form(v, None, Some(&e)),
    }
}

/// The new-password form of a link.
pub fn form(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        title_key => "reset.title",
        action => "/reset-password",
        fields => vec![
            field("password", "reset.password", "password", "new-password"),
            field("password_repeat", "reset.confirm", "password", "new-password"),
        ],
        hidden => vec![context! { name => "token", value => v.param("token") }],
        submit => "reset.submit",
        links => vec![link("/login", "login.title")],
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "form.html", ctx)
}

/// Redeems the link and sets the new password.
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let (new, repeat) = (v.field("password"), v.field("password_repeat"));
    if new != repeat {
        return form(v, Some(&Error::PasswordMismatch));
    }
    let token = v.field("token");
    if let Err(e) = password::reset_redeem(v.app, &mut v.caller, &token).await {
        return form(v, Some(&e));
    }
    if let Err(e) = password::reset_set(v.app, &mut v.caller, &new).await {
        // The link is spent; the user starts over with a new one.
        return forgot_form(v, None, Some(&e));
    }
    let ctx = context! { title_key => "reset.title", notice => v.text("reset.done"), links => vec![link("/login", "login.title")] };
    v.render(StatusCode::OK, "message.html", ctx)
}
