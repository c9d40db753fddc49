//! The admin API under `/api/admin/`: users, their factors and sessions, bans, the audit
//! trail and session statistics. Adapters over [`crate::flows::admin`], which checks the
//! caller is an administrator and audits every action.

use serde::Deserialize;
use serde_json::json;

use super::Request;
use crate::flows::Error;
use crate::flows::admin::{self, BanKind, NewUser, UserPatch, UserQuery};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::storage::AuditFilter;

/// `{username}` in `/api/admin/users/{username}...` and `/api/admin/bans/{username}`.
fn username(request: &Request<'_>) -> String {
    request.segment(4)
}

fn query_value(request: &Request<'_>, name: &str) -> Option<String> {
    request.query().into_iter().find(|(k, _)| k == name).map(|(_, v)| v).filter(|v| !v.is_empty())
}

fn parse<T: std::str::FromStr>(request: &Request<'_>, name: &str) -> Result<Option<T>, Error> {
    query_value(request, name)
        .map(|v| v.parse::<T>().map_err(|_| Error::InvalidRequest(format!("{name}: '{v}' is not valid"))))
        .transpose()
}

/// `GET /api/admin/users?search=&group=&disabled=&limit=&cursor=`.
pub async fn list_users(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let query = UserQuery {
            search: query_value(request, "search"),
            group: query_value(request, "group"),
            disabled: parse(request, "disabled")?,
            limit: parse(request, "limit")?,
            cursor: query_value(request, "cursor"),
        };
        Ok(response::ok_data(&admin::list_users(app, caller, query).await?))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    username: String,
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    emails: Option<Vec<String>>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
    password: String,
}

/// `email` and `emails` together: the primary address first.
fn addresses(email: Option<String>, emails: Option<Vec<String>>) -> Option<Vec<String>> {
    match (email, emails) {
        (None, None) => None,
        (Some(primary), None) => Some(vec![primary]),
        (None, Some(all)) => Some(all),
        (Some(primary), Some(all)) => {
            let mut list = vec![primary.clone()];
            list.extend(all.into_iter().filter(|e| *e != primary));
            Some(list)
        }
    }
}

/// `POST /api/admin/users`: 201 with the user.
pub async fn create_user(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CreateBody = request.json()?;
        let new = NewUser {
            username: body.username,
            display_name: body.display_name,
            emails: addresses(body.email, body.emails).unwrap_or_default(),
            groups: body.groups,
            disabled: body.disabled,
            password: body.password,
        };
        let mut answer = response::ok_data(&admin::create_user(app, caller, new).await?);
        *answer.status_mut() = http::StatusCode::CREATED;
        Ok(answer)
    })
}

/// `GET /api/admin/users/{username}`.
pub async fn get_user(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&admin::get_user(app, caller, &username(request)).await?)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    emails: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /api/admin/users/{username}`: any subset of the fields.
pub async fn update_user(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PatchBody = request.json()?;
        let patch = UserPatch {
            display_name: body.display_name,
            emails: addresses(body.email, body.emails),
            groups: body.groups,
            disabled: body.disabled,
        };
        Ok(response::ok_data(&admin::update_user(app, caller, &username(request), patch).await?))
    })
}

/// `DELETE /api/admin/users/{username}`.
pub async fn delete_user(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        admin::delete_user(app, caller, &username(request)).await?;
        Ok(response::ok())
    })
}

#[derive(Deserialize)]
struct PasswordBody {
    password: String,
}

/// `POST /api/admin/users/{username}/password`.
pub async fn set_password(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordBody = request.json()?;
        admin::set_password(app, caller, &username(request), &body.password).await?;
        Ok(response::ok())
    })
}

/// `POST /api/admin/users/{username}/reset-email`.
pub async fn send_reset_email(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        admin::send_reset_email(app, caller, &username(request)).await?;
        Ok(response::ok())
    })
}

/// `DELETE /api/admin/users/{username}/sessions`.
pub async fn revoke_sessions(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let ended = admin::revoke_sessions(app, caller, &username(request)).await?;
        Ok(response::ok_data(&json!({"sessions": ended})))
    })
}

/// `DELETE /api/admin/users/{username}/totp`.
pub async fn remove_totp(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        admin::remove_totp(app, caller, &username(request)).await?;
        Ok(response::ok())
    })
}

/// `DELETE /api/admin/users/{username}/webauthn/{id}`.
pub async fn remove_webauthn(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let id: i32 = request
            .segment(6)
            .parse()
            .map_err(|_| Error::InvalidRequest("The credential ID must be a number".into()))?;
        admin::remove_webauthn(app, caller, &username(request), id).await?;
        Ok(response::ok())
    })
}

#[derive(Deserialize)]
struct PasswordlessBody {
    passwordless: bool,
}

/// `PUT /api/admin/users/{username}/passwordless` `{"passwordless": true}`.
pub async fn set_passwordless(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: PasswordlessBody = request.json()?;
        admin::set_passwordless(app, caller, &username(request), body.passwordless).await?;
        Ok(response::ok())
    })
}

/// `GET /api/admin/bans`.
pub async fn list_bans(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&admin::list_bans(app, caller).await?)))
}

/// `DELETE /api/admin/bans/{username}`.
pub async fn unban_user(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        admin::unban(app, caller, BanKind::User, &username(request)).await?;
        Ok(response::ok())
    })
}

/// `DELETE /api/admin/bans/ip/{ip}`.
pub async fn unban_ip(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        admin::unban(app, caller, BanKind::Ip, &request.segment(5)).await?;
        Ok(response::ok())
    })
}

/// A time given as Unix seconds or RFC 3339.
fn time(request: &Request<'_>, name: &str) -> Result<Option<i64>, Error> {
    let Some(value) = query_value(request, name) else { return Ok(None) };
    if let Ok(secs) = value.parse::<i64>() {
        return Ok(Some(secs));
    }
    let at = humantime::parse_rfc3339_weak(&value)
        .map_err(|_| Error::InvalidRequest(format!("{name}: '{value}' is neither Unix seconds nor RFC 3339")))?;
    let secs = at.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    Ok(Some(i64::try_from(secs).unwrap_or(i64::MAX)))
}

/// `GET /api/admin/audit?user=&event=&since=&until=&limit=&cursor=`.
pub async fn audit(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let filter = AuditFilter {
            user: query_value(request, "user"),
            event: query_value(request, "event"),
            since: time(request, "since")?,
            until: time(request, "until")?,
            before: parse(request, "cursor")?,
            limit: parse(request, "limit")?.unwrap_or(100),
        };
        Ok(response::ok_data(&admin::audit_events(app, caller, filter).await?))
    })
}

/// `GET /api/admin/sessions/stats`.
pub async fn session_stats(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| Ok(response::ok_data(&admin::session_stats(app, caller).await?)))
}

#[derive(serde::Deserialize, Default)]
struct RevokeAllBody {
    /// Keep the calling administrator's own session.
    #[serde(default)]
    except_current: bool,
}

/// `POST /auth/sessions/revoke-all`: 204.
pub async fn revoke_all_sessions(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: RevokeAllBody = request.json_or_default()?;
        admin::revoke_all_sessions(app, caller, body.except_current).await?;
        Ok(super::ok_with(http::StatusCode::NO_CONTENT))
    })
}
