//! The console's users: the list (filters, paging, bans, the create form), one user's
//! page, and the actions on them.

use http::StatusCode;
use minijinja::{Value, context};

use super::{failed, render};
use crate::clock::rfc3339;
use crate::flows::Error;
use crate::flows::admin::{self, BanKind, NewUser, UserPatch, UserQuery};
use crate::handlers::portal::visit::Visit;
use crate::server::response::HttpResponse;

/// A comma- or newline-separated list, trimmed, without empty entries.
fn list_of(text: &str) -> Vec<String> {
    text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

fn user_path(v: &Visit<'_>, username: &str) -> String {
    let name: String = url::form_urlencoded::byte_serialize(username.as_bytes()).collect();
    v.local(&format!("/admin/users/{name}"))
}

/// The list, with the notice or error of the last action.
pub async fn list(v: &mut Visit<'_>, notice: Option<String>, error: Option<&Error>) -> HttpResponse {
    let disabled = match v.param("disabled").as_str() {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    let query = UserQuery {
        search: Some(v.param("search")),
        group: Some(v.param("group")),
        disabled,
        limit: Some(50),
        cursor: Some(v.param("cursor")),
    };
    let (page, bans) =
        match (admin::list_users(v.app, &v.caller, query).await, admin::list_bans(v.app, &v.caller).await) {
            (Ok(page), Ok(bans)) => (page, bans),
            (Err(e), _) | (_, Err(e)) => return v.error_page(&e),
        };
    let next = page.next_cursor.map(|cursor| {
        let q: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("search", &v.param("search"))
            .append_pair("group", &v.param("group"))
            .append_pair("disabled", &v.param("disabled"))
            .append_pair("cursor", &cursor)
            .finish();
        format!("{}?{q}", v.local("/admin/users"))
    });
    let users: Vec<Value> = page
        .users
        .into_iter()
        .map(|u| {
            let href = user_path(v, &u.username);
            context! {
                href, username => u.username, display_name => u.display_name,
                email => u.email, groups => u.groups.join(", "), disabled => u.disabled,
            }
        })
        .collect();
    let bans: Vec<Value> = bans
        .into_iter()
        .map(|b| {
            let href = (b.kind == BanKind::User).then(|| user_path(v, &b.value));
            let is_ip = b.kind == BanKind::Ip;
            context! { is_ip, value => b.value, until => rfc3339(b.until), href }
        })
        .collect();
    let notice = notice.or_else(|| done_notice(v));
    let status = error.map_or(StatusCode::OK, Error::status);
    let ctx = context! {
        users, bans, next,
        search => v.param("search"), group => v.param("group"), disabled => v.param("disabled"),
        form_username => v.field("username"), form_display_name => v.field("display_name"),
        form_email => v.field("email"), form_groups => v.field("groups"),
        notice, error => error.map(|e| e.text(v.lang)),
    };
    render(v, status, "admin_users.html", ctx)
}

/// The notice for `?done=<action>` after a redirect.
fn done_notice(v: &Visit<'_>) -> Option<String> {
    let done = v.param("done");
    let known = [
        "created",
        "updated",
        "deleted",
        "password",
        "reset_email",
        "disabled",
        "enabled",
        "sessions",
        "totp",
        "webauthn",
        "passwordless_on",
        "passwordless_off",
        "unbanned",
    ];
    known.contains(&done.as_str()).then(|| v.text(&format!("admin.done_{done}")))
}

/// Creating a user from the list page's form.
pub async fn create(v: &mut Visit<'_>) -> HttpResponse {
    let new = NewUser {
        username: v.field("username").trim().to_string(),
        display_name: Some(v.field("display_name")),
        emails: list_of(&v.field("email")),
        groups: list_of(&v.field("groups")),
        disabled: v.field("disabled") == "1",
        password: v.field("password"),
    };
    match admin::create_user(v.app, &v.caller, new).await {
        Ok(user) => v.redirect(&format!("{}?done=created", user_path(v, &user.username))),
        Err(e) => match failed(v, &e) {
            Some(page) => page,
            None => list(v, None, Some(&e)).await,
        },
    }
}

/// One user's page.
pub async fn detail(v: &mut Visit<'_>, notice: Option<String>, error: Option<&Error>) -> HttpResponse {
    let username = v.request.segment(3);
    let overview = match admin::user_overview(v.app, &v.caller, &username).await {
        Ok(overview) => overview,
        Err(Error::UnknownUser) => {
            let e = Error::UnknownUser;
            return v.error_page(&e);
        }
        Err(e) => return v.error_page(&e),
    };
    let events: Vec<Value> = overview
        .recent_events
        .into_iter()
        .map(|e| context! { time => rfc3339(e.time), event => e.event, outcome => e.outcome, actor => e.actor, ip => e.remote_ip })
        .collect();
    let notice = notice.or_else(|| done_notice(v));
    let status = error.map_or(StatusCode::OK, Error::status);
    let d = overview.detail;
    let ctx = context! {
        action => user_path(v, &d.user.username),
        emails => d.user.emails.join(", "), groups => d.user.groups.join(", "), disabled => d.user.disabled,
        username => d.user.username, display_name => d.user.display_name,
        has_totp => d.has_totp, recovery_left => d.recovery_codes_remaining,
        keys => minijinja::value::Serde(d.webauthn),
        passwordless => d.passwordless, banned_until => d.banned_until.map(rfc3339),
        sessions_one_factor => overview.sessions_one_factor, sessions_two_factor => overview.sessions_two_factor,
        events, notice, error => error.map(|e| e.text(v.lang)),
    };
    render(v, status, "admin_user.html", ctx)
}

/// Actions that need a confirmation step.
const DESTRUCTIVE: [&str; 5] = ["delete", "disable", "revoke_sessions", "remove_totp", "remove_webauthn"];

/// An action on one user; destructive ones first show a confirmation.
pub async fn action(v: &mut Visit<'_>) -> HttpResponse {
    let username = v.request.segment(3);
    let action = v.field("action");
    if DESTRUCTIVE.contains(&action.as_str()) && v.field("confirmed") != "1" {
        return confirm(v, &username, &action);
    }
    let (app, caller) = (v.app, &v.caller);
    let outcome = match action.as_str() {
        "update" => {
            let patch = UserPatch {
                display_name: Some(v.field("display_name")),
                emails: Some(list_of(&v.field("emails"))),
                groups: Some(list_of(&v.field("groups"))),
                disabled: None,
            };
            admin::update_user(app, caller, &username, patch).await.map(|_| "updated")
        }
        "set_password" if v.field("password") != v.field("password_repeat") => Err(Error::PasswordMismatch),
        "set_password" => admin::set_password(app, caller, &username, &v.field("password")).await.map(|()| "password"),
        "reset_email" => admin::send_reset_email(app, caller, &username).await.map(|()| "reset_email"),
        "disable" | "enable" => {
            let on = action == "disable";
            let patch = UserPatch { disabled: Some(on), ..Default::default() };
            admin::update_user(app, caller, &username, patch).await.map(|_| if on { "disabled" } else { "enabled" })
        }
        "delete" => admin::delete_user(app, caller, &username).await.map(|()| "deleted"),
        "revoke_sessions" => admin::revoke_sessions(app, caller, &username).await.map(|_| "sessions"),
        "remove_totp" => admin::remove_totp(app, caller, &username).await.map(|()| "totp"),
        "remove_webauthn" => match v.field("id").parse() {
            Ok(id) => admin::remove_webauthn(app, caller, &username, id).await.map(|()| "webauthn"),
            Err(_) => Err(Error::InvalidRequest("The credential ID must be a number".into())),
        },
        "passwordless_on" | "passwordless_off" => {
            let on = action == "passwordless_on";
            admin::set_passwordless(app, caller, &username, on).await.map(|()| action_name(on))
        }
        "unban" => admin::unban(app, caller, BanKind::User, &username).await.map(|()| "unbanned"),
        _ => Err(Error::InvalidRequest(format!("unknown action '{action}'"))),
    };
    match outcome {
        Ok("deleted") => v.redirect(&format!("{}?done=deleted", v.local("/admin/users"))),
        Ok(done) => v.redirect(&format!("{}?done={done}", user_path(v, &username))),
        Err(e) => match failed(v, &e) {
            Some(page) => page,
            None => detail(v, None, Some(&e)).await,
        },
    }
}

fn action_name(passwordless: bool) -> &'static str {
    if passwordless { "passwordless_on" } else { "passwordless_off" }
}

/// The confirmation step of a destructive action.
fn confirm(v: &mut Visit<'_>, username: &str, action: &str) -> HttpResponse {
    let ctx = context! {
        title_key => "admin.confirm_title",
        question => v.text(&format!("admin.confirm_{action}")),
        username,
        action => user_path(v, username),
        fields => vec![
            context! { name => "action", value => action },
            context! { name => "id", value => v.field("id") },
            context! { name => "confirmed", value => "1" },
        ],
        cancel => user_path(v, username),
    };
    render(v, StatusCode::OK, "admin_confirm.html", ctx)
}

/// Lifting the ban on an address (from the list page).
pub async fn unban_ip(v: &mut Visit<'_>) -> HttpResponse {
    match admin::unban(v.app, &v.caller, BanKind::Ip, &v.field("ip")).await {
        Ok(()) => v.redirect(&format!("{}?done=unbanned", v.local("/admin/users"))),
        Err(e) => match failed(v, &e) {
            Some(page) => page,
            None => list(v, None, Some(&e)).await,
        },
    }
}
