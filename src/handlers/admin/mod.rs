//! The admin console: server-rendered pages in the portal's look over the same typed
//! operations as the admin API ([`crate::flows::admin`]): users (list, filters, paging,
//! create), one user (factors, keys, sessions, recent events, and every action, with a
//! confirmation step for destructive ones), bans, the audit trail (filters, paging, CSV
//! and JSON export) and the effective configuration with secrets redacted.
//!
//! Works without JavaScript; every POST carries the portal's CSRF token. Someone not
//! signed in is sent to the portal's sign-in and back; a signed-in user who is not an
//! administrator with two factors gets a 403 page and never admin data.

mod audit;
mod clients;
mod settings;
mod users;

use http::StatusCode;
use minijinja::{Value, context};

use crate::flows::Error;
use crate::handlers::portal::visit::{Visit, link};
use crate::server::response::HttpResponse;
use crate::server::router::Page;
use crate::session::AuthLevel;

/// Answers an admin page.
pub async fn show(v: &mut Visit<'_>, page: Page) -> HttpResponse {
    match page {
        Page::AdminHome => return v.redirect(&v.local("/admin/users")),
        Page::AdminLogout => return v.redirect(&v.local("/logout")),
        Page::AdminLogin if v.level() >= AuthLevel::OneFactor => return v.redirect(&v.local("/admin/users")),
        _ => {}
    }
    if v.level() < AuthLevel::OneFactor {
        return to_sign_in(v);
    }
    if let Err(e) = crate::flows::admin::require_admin(v.app, &v.caller) {
        return forbidden(v, &e);
    }
    match page {
        Page::AdminUsers => users::list(v, None, None).await,
        Page::AdminCreateUser => users::create(v).await,
        Page::AdminUser => users::detail(v, None, None).await,
        Page::AdminUserAction => users::action(v).await,
        Page::AdminUnbanIp => users::unban_ip(v).await,
        Page::AdminAudit => audit::page(v).await,
        Page::AdminAuditCsv => audit::export(v, audit::Format::Csv).await,
        Page::AdminAuditJson => audit::export(v, audit::Format::Json).await,
        Page::AdminSettings => settings::page(v),
        Page::AdminClients => clients::page(v),
        _ => v.redirect(&v.local("/admin/users")),
    }
}

/// The portal's sign-in, coming back to the console.
fn to_sign_in(v: &Visit<'_>) -> HttpResponse {
    v.redirect(&format!("{}?{}", v.local("/login"), back_to_console(v)))
}

/// The query `rd=<the console's users page>`.
fn back_to_console(v: &Visit<'_>) -> String {
    let back = v.caller.settings().portal_url.join("admin/users").map(|u| u.to_string()).unwrap_or_default();
    url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &back).finish()
}

/// The 403 page: no admin data, and for an administrator with one factor, the way on.
fn forbidden(v: &mut Visit<'_>, error: &Error) -> HttpResponse {
    let is_admin_group = v.caller.data().is_some_and(|d| d.groups.contains(&v.app.config.admin.group));
    let mut links = vec![link("/profile", "common.back_to_profile")];
    if is_admin_group && v.level() < AuthLevel::TwoFactor {
        let second_factor = format!("/login/totp?{}", back_to_console(v));
        links.insert(0, link(&second_factor, "admin.second_factor"));
    }
    let text = if is_admin_group { v.text("admin.two_factors_required") } else { error.text(v.lang) };
    let ctx = context! { title_key => "admin.forbidden_title", error => text, links };
    v.render(StatusCode::FORBIDDEN, "message.html", ctx)
}

/// Renders an admin template with the console's navigation and a wide layout.
fn render(v: &mut Visit<'_>, status: StatusCode, template: &str, ctx: Value) -> HttpResponse {
    let oidc_enabled = v.app.services.oidc.is_some();
    let ctx = context! { wide => true, admin_user => v.caller.username().to_string(), oidc_enabled, ..ctx };
    v.render(status, template, ctx)
}

/// The error of an action: a fault shows the error page, a refusal comes back inline.
fn failed(v: &mut Visit<'_>, e: &Error) -> Option<HttpResponse> {
    e.status().is_server_error().then(|| v.error_page(e))
}
