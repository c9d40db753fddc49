//! The account's authenticator app pages: setting it up, the recovery codes, removing it.

use http::StatusCode;
use minijinja::context;

use super::account::{elevated, need_elevation, profile};
use super::visit::{Visit, link};
use crate::flows::totp::{self, OfferOptions};
use crate::flows::{Error, Pending};
use crate::server::response::HttpResponse;

/// The setup page with a fresh secret (elevated).
pub async fn enroll_form(v: &mut Visit<'_>) -> HttpResponse {
    if !elevated(v) {
        return need_elevation(v, "/profile/totp/enroll");
    }
    match totp::offer(v.app, &mut v.caller, OfferOptions::default()).await {
        Ok(offer) => {
            let ctx = context! { secret => offer.base32_secret, qr_code => offer.qr_code };
            v.render(StatusCode::OK, "totp_enroll.html", ctx)
        }
        Err(e) if e.status().is_server_error() => v.error_page(&e),
        Err(e) => profile(v, None, Some(&e)).await,
    }
}

/// Confirming the setup with a code: the recovery codes are shown once.
pub async fn enroll(v: &mut Visit<'_>) -> HttpResponse {
    let code = v.field("code");
    match totp::confirm(v.app, &mut v.caller, &code).await {
        Ok(codes) => show_codes(v, codes),
        Err(e) if e.status().is_server_error() => v.error_page(&e),
        Err(Error::NothingPending(Pending::TotpSetup)) => enroll_form(v).await,
        Err(e) => match totp::pending_offer(v.app, &v.caller) {
            // Show the same secret again: it waits in the session until confirmed.
            Ok(offer) => {
                let ctx = context! { secret => offer.base32_secret, qr_code => offer.qr_code, error => e.text(v.lang) };
                v.render(e.status(), "totp_enroll.html", ctx)
            }
            Err(_) => profile(v, None, Some(&e)).await,
        },
    }
}

fn show_codes(v: &mut Visit<'_>, codes: Vec<String>) -> HttpResponse {
    let download = format!("Portcullis recovery codes\n\n{}\n", codes.join("\n"));
    v.render(StatusCode::OK, "recovery_codes.html", context! { codes, download })
}

/// How many recovery codes are left, and a way to renew them.
pub async fn recovery_codes(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    let left = match totp::recovery_remaining(v.app, &v.caller).await {
        Ok(left) => left,
        Err(e) => return v.error_page(&e),
    };
    let status = error.map_or(StatusCode::OK, Error::status);
    v.render(status, "recovery_codes.html", context! { left, error => error.map(|e| e.text(v.lang)) })
}

/// New recovery codes (elevated).
pub async fn renew_recovery_codes(v: &mut Visit<'_>) -> HttpResponse {
    if !elevated(v) {
        return need_elevation(v, "/profile/totp/recovery-codes");
    }
    match totp::regenerate_recovery_codes(v.app, &v.caller).await {
        Ok(codes) => show_codes(v, codes),
        Err(e) if e.status().is_server_error() => v.error_page(&e),
        Err(e) => recovery_codes(v, Some(&e)).await,
    }
}

/// The removal confirmation (elevated).
pub fn disable_form(v: &mut Visit<'_>, error: Option<&Error>) -> HttpResponse {
    if !elevated(v) {
        return need_elevation(v, "/profile/totp/disable");
    }
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        title_key => "totp.disable_title",
        confirm_action => "/profile/totp/disable",
        confirm_text => "totp.disable_confirm",
        confirm_button => "totp.disable_submit",
        confirm_class => "danger",
        links => vec![link("/profile", "common.cancel")],
        error => error.map(|e| e.text(v.lang)),
    };
    v.render(status, "message.html", ctx)
}

/// Removing TOTP.
pub async fn disable(v: &mut Visit<'_>) -> HttpResponse {
    match totp::remove(v.app, &v.caller).await {
        Ok(()) => v.redirect(&v.local("/profile")),
        Err(Error::ElevationRequired) => need_elevation(v, "/profile/totp/disable"),
        Err(e) if e.status().is_server_error() => v.error_page(&e),
        Err(e) => disable_form(v, Some(&e)),
    }
}
