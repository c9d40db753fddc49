//! The second-factor pages: TOTP, recovery code, emailed code, security key (the key's
//! ceremony runs in script against the JSON API), and the page for users with none.

use http::StatusCode;
use minijinja::context;

use super::login::go_to_target;
use super::visit::{Visit, link};
use crate::flows::{Error, account, second_factor};
use crate::server::response::HttpResponse;
use crate::session::AuthLevel;

/// Which form the page shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// A code from the authenticator app.
    Totp,
    /// A recovery code.
    Recovery,
    /// An emailed code.
    Email,
    /// A security key.
    SecurityKey,
    /// None set up: a pointer to the account page.
    None,
}

impl Form {
    /// The template's name for it.
    fn mode(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::Recovery => "recovery",
            Self::Email => "email",
            Self::SecurityKey => "webauthn",
            Self::None => "none",
        }
    }
}

/// The form, with links to the user's other methods.
pub async fn form(v: &mut Visit<'_>, shown: Form, error: Option<&Error>, notice: Option<String>) -> HttpResponse {
    if v.level() < AuthLevel::OneFactor {
        return v.redirect(&v.with_rd("/login"));
    }
    let facts = match account::facts(v.app, &v.caller).await {
        Ok(facts) => facts,
        Err(e) => return v.error_page(&e),
    };
    let choices = [
        (Form::Totp, facts.has_totp, "/login/totp", "second.use_totp"),
        (Form::Recovery, facts.recovery_codes_remaining > 0, "/login/totp/recovery", "second.use_recovery"),
        (Form::SecurityKey, facts.has_webauthn, "/login/webauthn", "second.use_webauthn"),
        (Form::Email, facts.has_email, "/login/otp", "second.use_email"),
    ];
    let others: Vec<_> = choices
        .iter()
        .filter(|(form, has, _, _)| *form != shown && *has)
        .map(|(_, _, path, label)| link(&v.with_rd(path).replacen(v.base(), "", 1), label))
        .collect();
    let sent = v.caller.data().is_some_and(|d| d.email_code.is_some());
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! { mode => shown.mode(), rd => v.target(), others, sent, error => error.map(|e| e.text(v.lang)), notice };
    v.render(status, "second_factor.html", ctx)
}

/// A form's submission: a code is checked (and on success the user goes on), or, on the
/// email form, a code is sent.
pub async fn submit(v: &mut Visit<'_>, shown: Form) -> HttpResponse {
    let code = v.field("code");
    let target = v.target_opt();
    let target = target.as_deref();
    let app = v.app;
    let outcome = match shown {
        Form::Email if v.field("action") == "send" => {
            return match second_factor::send_email_code(app, &mut v.caller).await {
                Ok(_) => {
                    let notice = v.text("second.otp_sent");
                    form(v, shown, None, Some(notice)).await
                }
                Err(e) => form(v, shown, Some(&e), None).await,
            };
        }
        Form::Email => second_factor::email_code(app, &mut v.caller, &code, target).await,
        Form::Recovery => second_factor::recovery_code(app, &mut v.caller, &code, target).await,
        _ => second_factor::totp(app, &mut v.caller, &code, target).await,
    };
    match outcome {
        Ok(redirect) => go_to_target(v, redirect),
        Err(e) if e.status().is_server_error() => v.error_page(&e),
        Err(e) => form(v, shown, Some(&e), None).await,
    }
}
