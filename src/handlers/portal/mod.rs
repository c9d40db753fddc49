//! The login portal: server-rendered pages (minijinja templates in `web/templates`) for
//! login, second factors, password reset and the user's account, plus the static files.
//!
//! Pages work without JavaScript (forms post back, the server answers with a redirect or
//! the page again with the error inline); only WebAuthn ceremonies need script
//! (`/static/js/passkey.js`, which talks to the JSON API). Every form post must carry a
//! CSRF token bound to the session and come from the portal's own origin.
//!
//! Each page group is an adapter over the typed operations in [`crate::flows`], as the
//! JSON API is: regulation, elevation, single-use codes and session ID changes are
//! enforced there, once, for both.

mod account;
mod assets;
mod consent;
mod csrf;
mod device;
mod device_link;
mod login;
mod render;
mod reset;
mod revoke;
mod second_factor;
mod setup;
mod summary;
mod totp;
pub(crate) mod visit;

use http::header;
use http::{Method, StatusCode};

use crate::handlers::Request;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Page;
use crate::session::AuthLevel;

pub use render::Renderer;
use visit::Visit;

/// Answers a request for a static file under `/static/`.
pub fn static_file(app: &App, request: &Request<'_>) -> HttpResponse {
    let inm = request.parts.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok());
    app.portal
        .assets
        .serve(request.path, inm)
        .unwrap_or_else(|| response::bytes(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 Not Found\n"))
}

/// Answers a portal page.
pub async fn page(app: &App, page: Page, request: Request<'_>) -> HttpResponse {
    let mut visit = match Visit::open(app, &request).await {
        Ok(visit) => visit,
        Err(response) => return response,
    };
    let response = if request.parts.method == Method::POST && !visit.post_allowed() {
        visit.refused()
    } else if page.is_account_page() && visit.level() < AuthLevel::OneFactor {
        visit.redirect(&visit.local("/login"))
    } else {
        show(&mut visit, page).await
    };
    visit.finish(response)
}

async fn show(v: &mut Visit<'_>, page: Page) -> HttpResponse {
    use second_factor::Form;
    match page {
        Page::Root => login::root(v),
        Page::LoginForm => login::form(v, None).await,
        Page::UpstreamStart => login::upstream_start(v).await,
        Page::AccountSummary => summary::account_summary(v),
        Page::Restricted => summary::restricted(v),
        Page::UpstreamCallback => login::upstream_callback(v).await,
        Page::Login => login::submit(v).await,
        Page::TotpForm => second_factor::form(v, Form::Totp, None, None).await,
        Page::Totp => second_factor::submit(v, Form::Totp).await,
        Page::RecoveryForm => second_factor::form(v, Form::Recovery, None, None).await,
        Page::Recovery => second_factor::submit(v, Form::Recovery).await,
        Page::EmailCodeForm => second_factor::form(v, Form::Email, None, None).await,
        Page::EmailCode => second_factor::submit(v, Form::Email).await,
        Page::SecurityKeyForm => second_factor::form(v, Form::SecurityKey, None, None).await,
        Page::SetupForm => setup::show(v).await,
        Page::Setup => setup::submit(v).await,
        Page::LogoutForm => login::logout_form(v),
        Page::Logout => login::logout(v).await,
        Page::ForgotForm => reset::forgot_form(v, None, None),
        Page::Forgot => reset::forgot(v).await,
        Page::ResetForm => reset::form(v, None),
        Page::Reset => reset::submit(v).await,
        Page::Profile => account::profile(v, None, None).await,
        Page::PasswordForm => account::password_form(v, None),
        Page::Password => account::change_password(v).await,
        Page::ElevateForm => account::elevate_form(v, None, None),
        Page::Elevate => account::elevate(v).await,
        Page::TotpEnrollForm => totp::enroll_form(v).await,
        Page::TotpEnroll => totp::enroll(v).await,
        Page::RecoveryCodes => totp::recovery_codes(v, None).await,
        Page::RecoveryCodesRenew => totp::renew_recovery_codes(v).await,
        Page::TotpDisableForm => totp::disable_form(v, None),
        Page::TotpDisable => totp::disable(v).await,
        Page::SecurityKeyChange => account::change_security_key(v).await,
        Page::SignOutEverywhere => account::sign_out_everywhere(v).await,
        Page::RegisterPasskey => account::register_passkey(v),
        Page::RevokeCodeForm => revoke::form(v),
        Page::RevokeCode => revoke::submit(v).await,
        Page::RevokeResetForm => revoke::reset_form(v),
        Page::RevokeReset => revoke::reset_submit(v).await,
        Page::AdminHome
        | Page::AdminLogin
        | Page::AdminLogout
        | Page::AdminUsers
        | Page::AdminCreateUser
        | Page::AdminUser
        | Page::AdminUserAction
        | Page::AdminUnbanIp
        | Page::AdminAudit
        | Page::AdminAuditCsv
        | Page::AdminAuditJson
        | Page::AdminSettings
        | Page::AdminClients => crate::handlers::admin::show(v, page).await,
        Page::ConsentForm => consent::form(v).await,
        Page::Consent => consent::submit(v).await,
        Page::DeviceForm => device::form(v).await,
        Page::Device => device::submit(v).await,
        Page::DeviceLink => device_link::show(v).await,
    }
}
