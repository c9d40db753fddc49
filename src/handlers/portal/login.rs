//! Signing in and out: the login form (password, or passkey through script), the step
//! to the second factor, and logout.

use http::StatusCode;
use minijinja::context;

use super::visit::{Visit, link};
use crate::flows::login::PasswordLogin;
use crate::flows::upstream_oidc::{self, Finished};
use crate::flows::{Error, account, login};
use crate::second_factor::Method;
use crate::server::response::HttpResponse;
use crate::session::AuthLevel;

/// `/`: on to the login page, query kept.
pub fn root(v: &Visit<'_>) -> HttpResponse {
    let q = v.request.parts.uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    v.redirect(&format!("{}{q}", v.local("/login")))
}

/// The login form; a logged-in user goes on (to the target, or the second factor). While
/// no user exists, the form creating the first administrator instead.
pub async fn form(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    if v.level() == AuthLevel::Anonymous && matches!(crate::flows::bootstrap::setup_needed(v.app).await, Ok(true)) {
        return super::setup::form(v, None);
    }
    if error.is_none() {
        match v.level() {
            AuthLevel::TwoFactor => return go_to_target(v, None),
            AuthLevel::OneFactor if v.target_opt().is_some() => return next_second_factor(v).await,
            _ => {}
        }
    }
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        rd => v.target(),
        rm => v.param("rm"),
        username => v.field("username"),
        passkeys => v.app.services.webauthn.passkey_login(),
        upstream => upstream_oidc::button(v.app).await.map(|name| v.text("login.upstream").replace("{name}", &name)),
        upstream_url => v.with_rd("/login/oidc"),
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "login.html", ctx)
}

/// `/login/oidc`: off to the upstream provider (its address, or the error page).
pub async fn upstream_start(v: &mut Visit<'_>) -> HttpResponse {
    let (target, method) = (v.target_opt(), v.param("rm"));
    match upstream_oidc::start(v.app, &mut v.caller, target.as_deref(), Some(method.as_str())).await {
        Ok(url) => v.redirect(&url),
        Err(e) => v.error_page(&e),
    }
}

fn present(s: &str) -> Option<&str> {
    Some(s).filter(|s| !s.is_empty())
}

/// `/login/oidc/callback`: back from the upstream provider, signed in (on to the target or
/// the second factor) or refused with the reason.
pub async fn upstream_callback(v: &mut Visit<'_>) -> HttpResponse {
    let (code, state, error, description) =
        (v.param("code"), v.param("state"), v.param("error"), v.param("error_description"));
    let answer = upstream_oidc::Callback {
        code: present(&code),
        state: present(&state),
        error: present(&error),
        error_description: present(&description),
    };
    match upstream_oidc::finish(v.app, &mut v.caller, answer).await {
        Ok(Finished { redirect: Some(to), .. }) => v.redirect(&to),
        Ok(Finished { target, .. }) => {
            // The login page takes the session on: second factor, or the target.
            let query = target
                .map(|rd| url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &rd).finish())
                .map(|q| format!("?{q}"))
                .unwrap_or_default();
            v.redirect(&format!("{}{query}", v.local("/login")))
        }
        Err(e) => v.error_page(&e),
    }
}

/// The login form's submission.
pub async fn submit(v: &mut Visit<'_>) -> HttpResponse {
    let (username, password, rm, target) = (v.field("username"), v.field("password"), v.field("rm"), v.target());
    let input = PasswordLogin {
        username: &username,
        password: &password,
        remember_me: v.field("remember_me") == "1",
        target_url: Some(target.as_str()).filter(|t| !t.is_empty()),
        request_method: Some(rm.as_str()).filter(|m| !m.is_empty()),
    };
    match login::with_password(v.app, &mut v.caller, input).await {
        Ok(Some(to)) if !target.is_empty() => v.redirect(&to),
        Ok(_) => next_second_factor(v).await,
        Err(e) => form(v, Some(&e)).await,
    }
}

/// After the password: the second-factor page for the user's method, or the target when
/// the user has no second factor and none is required.
pub async fn next_second_factor(v: &mut Visit<'_>) -> HttpResponse {
    let facts = match account::facts(v.app, &v.caller).await {
        Ok(facts) => facts,
        Err(e) => return v.error_page(&e),
    };
    match facts.second_factor_to_ask() {
        Some(method) => {
            let page = match method {
                Method::WebAuthn => "/login/webauthn",
                Method::Email => "/login/otp",
                _ => "/login/totp",
            };
            v.redirect(&v.with_rd(page))
        }
        None if v.target_opt().is_none() => go_to_target(v, None),
        None => super::second_factor::form(v, super::second_factor::Form::None, None, None).await,
    }
}

/// On to where the user was heading (an operation's answer first, then `rd`), or the
/// account page.
pub fn go_to_target(v: &Visit<'_>, from_operation: Option<String>) -> HttpResponse {
    match from_operation.filter(|t| !t.is_empty()).or_else(|| v.target_opt()) {
        Some(t) => v.redirect(&t),
        None => v.redirect(&v.local("/profile")),
    }
}

/// The sign-out confirmation.
pub fn logout_form(v: &mut Visit<'_>) -> HttpResponse {
    let ctx = context! {
        title_key => "logout.title",
        confirm_action => "/logout",
        confirm_text => "logout.confirm",
        confirm_button => "logout.submit",
        confirm_class => "",
        links => vec![link("/profile", "common.cancel")],
    };
    v.render(StatusCode::OK, "message.html", ctx)
}

/// Signing out.
pub async fn logout(v: &mut Visit<'_>) -> HttpResponse {
    if let Err(e) = v.caller.end(v.app).await {
        return v.error_page(&e);
    }
    let ctx = context! { title_key => "logout.title", notice => v.text("logout.done"), links => vec![link("/login", "login.title")] };
    v.render(StatusCode::OK, "message.html", ctx)
}
