//! The account pages: the overview, changing the password, elevation (proving identity
//! again before sensitive changes), security keys, signing out everywhere.

use http::StatusCode;
use minijinja::{Value, context};

use super::visit::{Visit, field, link};
use crate::flows::password::PasswordChange;
use crate::flows::{Error, account, elevation, password, security_keys};
use crate::server::response::HttpResponse;

/// The overview: name, password, TOTP and recovery codes, keys, sessions.
pub async fn profile(v: &mut Visit<'_>, notice: Option<String>, error: Option<&Error>) -> HttpResponse {
    let facts = match account::facts(v.app, &v.caller).await {
        Ok(facts) => facts,
        Err(e) => return v.error_page(&e),
    };
    let keys = match security_keys::list(v.app, &v.caller).await {
        Ok(keys) => keys,
        Err(e) => return v.error_page(&e),
    };
    let keys: Vec<Value> = keys
        .iter()
        .map(|k| context! { id => k.id, description => k.description.clone(), clone_warning => k.clone_warning })
        .collect();
    let username = v.caller.data().map(|d| d.username.clone()).unwrap_or_default();
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        username,
        display_name => facts.display_name,
        has_totp => facts.has_totp,
        recovery_left => facts.recovery_codes_remaining,
        keys,
        notice,
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "profile.html", ctx)
}

/// The change-password form.
pub fn password_form(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        title_key => "password.title",
        action => "/profile/password",
        fields => vec![
            field("old_password", "password.old", "password", "current-password"),
            field("new_password", "password.new", "password", "new-password"),
            field("new_password_repeat", "password.repeat", "password", "new-password"),
        ],
        hidden => Vec::<Value>::new(),
        submit => "password.submit",
        links => vec![link("/profile", "common.cancel")],
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "form.html", ctx)
}

/// Changing the password.
pub async fn change_password(v: &mut Visit<'_>) -> HttpResponse {
    let (old, new, repeat) = (v.field("old_password"), v.field("new_password"), v.field("new_password_repeat"));
    if new != repeat {
        return password_form(v, Some(&Error::PasswordMismatch));
    }
    let change = PasswordChange { old_password: &old, new_password: &new };
    match password::change(v.app, &v.caller, change).await {
        Ok(()) => {
            let notice = v.text("password.done");
            profile(v, Some(notice), None).await
        }
        Err(e) => password_form(v, Some(&e)),
    }
}

/// The pages that send the user to elevation and back (and nothing else: `next` is never
/// echoed into a redirect, so it cannot point anywhere else).
const ELEVATION_RETURNS: [&str; 5] =
    ["/profile", "/profile/totp/enroll", "/profile/totp/recovery-codes", "/profile/totp/disable", "/register/passkey"];

/// Where elevation sends the user back to: a known account page, else the overview.
fn next_page(v: &Visit<'_>) -> &'static str {
    let next = v.param("next");
    ELEVATION_RETURNS.into_iter().find(|page| *page == next).unwrap_or("/profile")
}

/// The elevation form: a button that mails a code, then the field for it.
pub fn elevate_form(v: &mut Visit<'_>, notice: Option<String>, error: Option<&Error>) -> HttpResponse {
    let pending = v.caller.data().is_some_and(|d| d.elevation_code.is_some());
    let hidden = vec![context! { name => "next", value => v.param("next") }];
    let error = error.map(|e| e.text(v.lang));
    let ctx = if pending {
        context! {
            title_key => "elevate.title",
            action => "/profile/elevate",
            fields => vec![field("otc", "elevate.code", "text", "one-time-code")],
            hidden,
            submit => "elevate.submit",
            secondary_action => "/profile/elevate",
            secondary_submit => "elevate.send",
            links => vec![link("/profile", "common.cancel")],
            notice,
            error,
        }
    } else {
        context! {
            title_key => "elevate.title",
            intro => "elevate.intro",
            action => "/profile/elevate",
            fields => Vec::<Value>::new(),
            hidden,
            submit => "elevate.send",
            links => vec![link("/profile", "common.cancel")],
            notice,
            error,
        }
    };
    v.render(StatusCode::OK, "form.html", ctx)
}

/// Mails a code (no code given), or checks the code and goes back to the page that asked.
pub async fn elevate(v: &mut Visit<'_>) -> HttpResponse {
    let code = v.field("otc");
    if code.is_empty() {
        return match elevation::start(v.app, &mut v.caller).await {
            Ok(_) => {
                let notice = v.text("second.otp_sent");
                elevate_form(v, Some(notice), None)
            }
            Err(e) => elevate_form(v, None, Some(&e)),
        };
    }
    match elevation::verify(v.app, &mut v.caller, &code).await {
        Ok(()) => v.redirect(&v.local(next_page(v))),
        Err(e) => elevate_form(v, None, Some(&e)),
    }
}

/// Whether the session may make sensitive changes now.
pub fn elevated(v: &Visit<'_>) -> bool {
    v.caller.data().is_some_and(|d| elevation::is_elevated(v.app, d, crate::clock::now()))
}

/// On to the elevation form, which comes back to `next` afterwards.
pub fn need_elevation(v: &Visit<'_>, next: &str) -> HttpResponse {
    let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", next).finish();
    v.redirect(&format!("{}?{q}", v.local("/profile/elevate")))
}

/// Renaming or deleting a security key.
pub async fn change_security_key(v: &mut Visit<'_>) -> HttpResponse {
    if !elevated(v) {
        return need_elevation(v, "/profile");
    }
    let id: i32 = v.field("id").parse().unwrap_or(-1);
    let changed = if v.field("action") == "delete" {
        security_keys::delete(v.app, &v.caller, id).await
    } else {
        security_keys::rename(v.app, &v.caller, id, &v.field("description")).await
    };
    match changed {
        Ok(()) => v.redirect(&v.local("/profile")),
        Err(e) => profile(v, None, Some(&e)).await,
    }
}

/// Ending every session of the account.
pub async fn sign_out_everywhere(v: &mut Visit<'_>) -> HttpResponse {
    match account::sign_out_everywhere(v.app, &mut v.caller).await {
        Ok(()) => v.redirect(&v.local("/login")),
        Err(e) => v.error_page(&e),
    }
}

/// The passkey registration page (its ceremony runs in script).
pub fn register_passkey(v: &mut Visit<'_>) -> HttpResponse {
    if !elevated(v) {
        return need_elevation(v, "/register/passkey");
    }
    v.render(StatusCode::OK, "register_passkey.html", context! {})
}
