//! Managing users: list (search, group, disabled, cursor), one user's details, create,
//! change, delete, set a password, send a reset link, passkey-only login.

use serde::Serialize;
use serde_json::json;

use super::{MAX_PAGE, audit_action, require_admin};
use crate::authn::hashing_pool::PoolError;
use crate::authn::password_policy;
use crate::authn::users_file::User;
use crate::clock::{now, rfc3339};
use crate::flows::{Caller, Error, Result, password};
use crate::server::App;
use crate::storage::{UserChanges, UserFilter};

/// Which users to list.
#[derive(Debug, Default)]
pub struct UserQuery {
    /// A substring of the name, display name or an address.
    pub search: Option<String>,
    /// Members of this group.
    pub group: Option<String>,
    /// Only disabled or only enabled users.
    pub disabled: Option<bool>,
    /// Page size (1 to 500; default 50).
    pub limit: Option<i64>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

/// A user as the admin API shows it (never the password hash).
#[derive(Debug, Serialize)]
pub struct UserView {
    /// Login name.
    pub username: String,
    /// Name to show.
    pub display_name: String,
    /// The primary address.
    pub email: Option<String>,
    /// Every address, primary first.
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Cannot log in.
    pub disabled: bool,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            username: u.username.clone(),
            display_name: u.display_name.clone(),
            email: u.emails.first().cloned(),
            emails: u.emails.clone(),
            groups: u.groups.clone(),
            disabled: u.disabled,
        }
    }
}

/// A page of users.
#[derive(Debug, Serialize)]
pub struct UserPage {
    /// The users, ordered by username.
    pub users: Vec<UserView>,
    /// The cursor of the next page, when there may be one.
    pub next_cursor: Option<String>,
}

/// One user with their second factors, sessions and standing.
#[derive(Debug, Serialize)]
pub struct UserDetail {
    /// The user.
    #[serde(flatten)]
    pub user: UserView,
    /// A TOTP device is registered.
    pub has_totp: bool,
    /// Unused recovery codes.
    pub recovery_codes_remaining: i64,
    /// Security keys and passkeys.
    pub webauthn: Vec<serde_json::Value>,
    /// Logs in by passkey only.
    pub passwordless: bool,
    /// Banned until this Unix time, if banned now.
    pub banned_until: Option<i64>,
}

/// A user to create.
#[derive(Debug, Default)]
pub struct NewUser {
    /// Login name.
    pub username: String,
    /// Name to show (the username when absent).
    pub display_name: Option<String>,
    /// Addresses, primary first (at least one).
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// Created disabled.
    pub disabled: bool,
    /// The password (checked against the policy).
    pub password: String,
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct UserPatch {
    /// New display name.
    pub display_name: Option<String>,
    /// New addresses, primary first.
    pub emails: Option<Vec<String>>,
    /// New groups.
    pub groups: Option<Vec<String>>,
    /// Disable or enable.
    pub disabled: Option<bool>,
}

/// A page of users.
pub async fn list_users(app: &App, caller: &Caller<'_>, query: UserQuery) -> Result<UserPage> {
    require_admin(app, caller)?;
    let limit = query.limit.unwrap_or(50).clamp(1, MAX_PAGE);
    let filter = UserFilter {
        search: query.search.filter(|s| !s.is_empty()),
        group: query.group.filter(|g| !g.is_empty()),
        disabled: query.disabled,
        after: query.cursor.filter(|c| !c.is_empty()),
        limit,
    };
    let detail = json!({"search": filter.search, "group": filter.group, "disabled": filter.disabled});
    let users = app.services.users.list(filter).await?;
    audit_action(app, caller, "admin.users.listed", "", detail).await;
    let full = i64::try_from(users.len()).unwrap_or(0) == limit;
    let next_cursor = full.then(|| users.last().map(|u| u.username.clone())).flatten();
    Ok(UserPage { users: users.iter().map(|u| UserView::from(&**u)).collect(), next_cursor })
}

/// One user's details.
pub async fn get_user(app: &App, caller: &Caller<'_>, username: &str) -> Result<UserDetail> {
    require_admin(app, caller)?;
    let detail = detail_of(app, username).await?;
    audit_action(app, caller, "admin.user.viewed", &detail.user.username, serde_json::Value::Null).await;
    Ok(detail)
}

/// One user as the console's page shows them: details, live sessions, recent events.
#[derive(Debug, Serialize)]
pub struct UserOverview {
    /// The details.
    pub detail: UserDetail,
    /// Live sessions at one factor.
    pub sessions_one_factor: usize,
    /// Live sessions at two factors.
    pub sessions_two_factor: usize,
    /// The newest events about the user.
    pub recent_events: Vec<crate::storage::AuditRecord>,
}

/// One user with their sessions and recent events (one audited view).
pub async fn user_overview(app: &App, caller: &Caller<'_>, username: &str) -> Result<UserOverview> {
    require_admin(app, caller)?;
    let detail = detail_of(app, username).await?;
    let name = detail.user.username.clone();
    let sessions = app.services.sessions.stats().await?.into_iter().find(|s| s.username == name).unwrap_or_default();
    let filter = crate::storage::AuditFilter { user: Some(name.clone()), limit: 20, ..Default::default() };
    let recent_events = app.services.storage.audit_list(filter).await?;
    audit_action(app, caller, "admin.user.viewed", &name, serde_json::Value::Null).await;
    Ok(UserOverview {
        detail,
        sessions_one_factor: sessions.one_factor,
        sessions_two_factor: sessions.two_factor,
        recent_events,
    })
}

async fn detail_of(app: &App, username: &str) -> Result<UserDetail> {
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    let storage = &app.services.storage;
    let name = &user.username;
    let webauthn = storage
        .webauthn_credentials(name)
        .await?
        .into_iter()
        .map(|c| {
            json!({
                "id": c.id, "description": c.description, "rpid": c.rp_id, "discoverable": c.discoverable,
                "created_at": rfc3339(c.created_at), "last_used_at": c.last_used_at.map(rfc3339),
                "clone_warning": c.clone_warning,
            })
        })
        .collect();
    Ok(UserDetail {
        has_totp: storage.totp_exists(name).await?,
        recovery_codes_remaining: storage.recovery_remaining(name).await?,
        webauthn,
        passwordless: storage.passwordless(name).await?,
        banned_until: app.services.regulator.banned_until(name, "", now()).await?,
        user: UserView::from(&*user),
    })
}

/// Checks a username: 1 to 100 characters, no white space, control characters or `:`.
pub(in crate::flows) fn valid_username(name: &str) -> Result<()> {
    if name.is_empty()
        || name.chars().count() > 100
        || name.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':')
    {
        return Err(Error::InvalidUser(
            "username: 1 to 100 characters without spaces, control characters or ':'".into(),
        ));
    }
    Ok(())
}

/// Checks addresses: each `local@domain.tld`, at most 254 characters.
pub(in crate::flows) fn valid_emails(emails: &[String], required: bool) -> Result<()> {
    if required && emails.is_empty() {
        return Err(Error::InvalidUser("email: required".into()));
    }
    for email in emails {
        let ok = email.len() <= 254
            && !email.chars().any(|c| c.is_whitespace() || c.is_control())
            && email.split_once('@').is_some_and(|(l, d)| !l.is_empty() && d.contains('.') && !d.starts_with('.'));
        if !ok {
            return Err(Error::InvalidUser(format!("email: '{email}' is not an address")));
        }
    }
    Ok(())
}

/// Checks group names: 1 to 100 printable characters.
fn valid_groups(groups: &[String]) -> Result<()> {
    for group in groups {
        if group.is_empty() || group.chars().count() > 100 || group.chars().any(char::is_control) {
            return Err(Error::InvalidUser(format!("groups: '{group}' is not a group name")));
        }
    }
    Ok(())
}

/// Checks a display name: at most 255 printable characters.
pub(in crate::flows) fn valid_display_name(name: &str) -> Result<()> {
    if name.chars().count() > 255 || name.chars().any(char::is_control) {
        return Err(Error::InvalidUser("display_name: at most 255 printable characters".into()));
    }
    Ok(())
}

/// Checks `password` for `user` against the policy.
pub(in crate::flows) fn check_policy(app: &App, user: &User, password: &str) -> Result<()> {
    let mut context = vec![user.username.as_str(), user.display_name.as_str()];
    context.extend(user.emails.iter().map(String::as_str));
    password_policy::check(&app.config.password_policy, password, &context)
        .map_err(|violation| Error::PasswordPolicy(violation.0))
}

/// A hash of `password` for `user`, after the policy check.
pub(in crate::flows) async fn new_hash(app: &App, user: &User, password: &str) -> Result<String> {
    check_policy(app, user, password)?;
    match app.services.hashing.hash(password, &app.config.authentication_backend.password_hashing()).await {
        Ok(hash) => Ok(hash),
        Err(PoolError::Busy) => Err(Error::Busy),
        Err(e) => Err(Error::Internal(format!("cannot hash the password: {e}"))),
    }
}

/// Creates a user.
pub async fn create_user(app: &App, caller: &Caller<'_>, new: NewUser) -> Result<UserView> {
    require_admin(app, caller)?;
    app.services.users.writable()?;
    valid_username(&new.username)?;
    valid_emails(&new.emails, true)?;
    valid_groups(&new.groups)?;
    let display_name = new.display_name.filter(|d| !d.trim().is_empty()).unwrap_or_else(|| new.username.clone());
    valid_display_name(&display_name)?;
    let mut user = User {
        username: new.username,
        display_name,
        password_hash: String::new(),
        emails: new.emails,
        groups: new.groups,
        disabled: new.disabled,
    };
    user.password_hash = new_hash(app, &user, &new.password).await?;
    app.services.users.create(user.clone(), now()).await?;
    tracing::info!(username = %user.username, by = %caller.username(), "user created");
    let detail = json!({"groups": user.groups, "disabled": user.disabled});
    audit_action(app, caller, "admin.user.created", &user.username, detail).await;
    Ok(UserView::from(&user))
}

/// Changes a user. An administrator cannot disable themselves or leave the admin group.
pub async fn update_user(app: &App, caller: &Caller<'_>, username: &str, patch: UserPatch) -> Result<UserView> {
    let admin = require_admin(app, caller)?;
    app.services.users.writable()?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    if let Some(emails) = &patch.emails {
        valid_emails(emails, true)?;
    }
    if let Some(groups) = &patch.groups {
        valid_groups(groups)?;
    }
    if let Some(name) = &patch.display_name {
        valid_display_name(name)?;
    }
    if user.username == admin.username {
        let leaves_admin = patch.groups.as_ref().is_some_and(|g| !g.contains(&app.config.admin.group));
        if patch.disabled == Some(true) || leaves_admin {
            return Err(Error::SelfLockout);
        }
    }
    let changes = UserChanges {
        display_name: patch.display_name.clone(),
        emails: patch.emails.clone(),
        groups: patch.groups.clone(),
        disabled: patch.disabled,
        password_hash: None,
    };
    app.services.users.update(&user.username, changes, now()).await?;
    if patch.disabled == Some(true) {
        // Refused at the very next request: a disabled user's sessions end now.
        app.services.sessions.end_all_for(&user.username, None).await?;
    }
    crate::invalidation::user_changed(app, &user.username).await;
    let updated = app.services.users.get(&user.username).await?.ok_or(Error::UnknownUser)?;
    let detail = json!({
        "display_name": patch.display_name, "emails": patch.emails, "groups": patch.groups, "disabled": patch.disabled,
    });
    audit_action(app, caller, "admin.user.updated", &user.username, detail).await;
    Ok(UserView::from(&*updated))
}

/// Deletes a user, their sessions, second factors and settings. Not oneself.
pub async fn delete_user(app: &App, caller: &Caller<'_>, username: &str) -> Result<()> {
    let admin = require_admin(app, caller)?;
    app.services.users.writable()?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    if user.username == admin.username {
        return Err(Error::SelfLockout);
    }
    app.services.users.delete(&user.username).await?;
    let name = &user.username;
    app.services.sessions.end_all_for(name, None).await?;
    let storage = &app.services.storage;
    // Revoked, not only forgotten: a new account of the same name must not inherit them.
    storage.api_tokens_revoke_all(name, now()).await?;
    storage.device_links_end_all(name, now()).await?;
    storage.upstream_links_remove(name).await?;
    crate::invalidation::user_changed(app, name).await;
    storage.totp_delete(name).await?;
    storage.recovery_replace(name, Vec::new(), now()).await?;
    for key in storage.webauthn_credentials(name).await? {
        storage.webauthn_delete(name, key.id).await?;
    }
    storage.set_passwordless(name, false).await?;
    tracing::info!(username = %name, by = %caller.username(), "user deleted");
    audit_action(app, caller, "admin.user.deleted", name, serde_json::Value::Null).await;
    Ok(())
}

/// Sets a user's password (policy enforced); their sessions end.
pub async fn set_password(app: &App, caller: &Caller<'_>, username: &str, password: &str) -> Result<()> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    check_policy(app, &user, password)?;
    password::store_password(app, &user.username, password).await?;
    let keep = (user.username == caller.username()).then(|| caller.session().map(|s| &s.id)).flatten();
    app.services.sessions.end_all_for(&user.username, keep).await?;
    audit_action(app, caller, "admin.password.set", &user.username, serde_json::Value::Null).await;
    Ok(())
}

/// Mails the user a password reset link.
pub async fn send_reset_email(app: &App, caller: &Caller<'_>, username: &str) -> Result<()> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    if user.emails.is_empty() {
        return Err(Error::NoEmailAddress);
    }
    password::send_reset_link(app, caller.settings(), &user, caller.ip_text()).await?;
    audit_action(app, caller, "admin.reset_email.sent", &user.username, serde_json::Value::Null).await;
    Ok(())
}

/// Turns passkey-only login on or off for a user.
pub async fn set_passwordless(app: &App, caller: &Caller<'_>, username: &str, on: bool) -> Result<()> {
    require_admin(app, caller)?;
    let user = app.services.users.get(username).await?.ok_or(Error::UnknownUser)?;
    app.services.storage.set_passwordless(&user.username, on).await?;
    audit_action(app, caller, "admin.passwordless.set", &user.username, json!({"passwordless": on})).await;
    Ok(())
}
