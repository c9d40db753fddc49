//! First run: while no user exists, the login page is the "create the first
//! administrator" form (bootstrap token, username, email, password twice), posted to
//! `/setup` and handled by the same operation as `POST /auth/bootstrap/complete`.

use http::StatusCode;
use minijinja::{Value, context};

use super::visit::{Visit, field, link};
use crate::flows::Error;
use crate::flows::bootstrap::{self, FirstAdmin};
use crate::server::response::HttpResponse;

/// A form field showing `value` (kept when the form comes back with an error).
fn filled(name: &str, label: &str, kind: &str, autocomplete: &str, value: String) -> Value {
    context! { value, ..field(name, label, kind, autocomplete) }
}

/// The form; `error` re-renders it with the message, the username and email kept.
pub fn form(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        title_key => "setup.title",
        intro => "setup.intro",
        action => "/setup",
        fields => vec![
            field("token", "setup.token", "text", "off"),
            filled("username", "setup.username", "text", "username", v.field("username")),
            filled("email", "setup.email", "email", "email", v.field("email")),
            field("password", "setup.password", "password", "new-password"),
            field("password_repeat", "setup.confirm", "password", "new-password"),
        ],
        hidden => Vec::<Value>::new(),
        submit => "setup.submit",
        links => Vec::<Value>::new(),
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "form.html", ctx)
}

/// `GET /setup`: the form while no user exists, else on to the login page.
pub async fn show(v: &mut Visit<'_>) -> HttpResponse {
    match bootstrap::setup_needed(v.app).await {
        Ok(true) => form(v, None),
        Ok(false) => v.redirect(&v.local("/login")),
        Err(e) => v.error_page(&e),
    }
}

/// `POST /setup`: creates the administrator, then says so with a link to sign in.
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let (password, repeat) = (v.field("password"), v.field("password_repeat"));
    if password != repeat {
        return form(v, Some(&Error::PasswordMismatch));
    }
    let (token, username, email) = (v.field("token"), v.field("username"), v.field("email"));
    let admin =
        FirstAdmin { token: &token, username: &username, password: &password, email: &email, display_name: None };
    let context = v.caller.context().clone();
    match bootstrap::create_first_admin(v.app, &context, admin).await {
        Ok(()) => {
            let ctx = context! {
                title_key => "setup.title",
                notice => v.text("setup.done"),
                links => vec![link("/login", "login.title")],
            };
            v.render(StatusCode::OK, "message.html", ctx)
        }
        Err(e) => {
            e.log();
            form(v, Some(&e))
        }
    }
}
