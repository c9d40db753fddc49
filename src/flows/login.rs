//! Logging in: by password (the first factor) or by a passkey (passwordless; both factors
//! when the passkey verified the user and the operator allows it). Success always issues a
//! new session ID (no session fixation); the answer says where the portal sends the user.

use base64::Engine as _;
use webauthn_rs::prelude::PublicKeyCredential;

use super::credentials::{self, Origin};
use super::passkey_state::PASSKEY_CHALLENGE;
use super::security_keys::{passkey_of, record_use};
use super::{Caller, Error, Pending, Result};
use crate::access_control::{Object, Policy, Subject};
use crate::authn::users_file::User;
use crate::clock::now;
use crate::server::App;
use crate::session::{CookieSettings, SessionData};
use crate::storage::AuthType;

/// A login by password.
pub struct PasswordLogin<'a> {
    /// Username (or email address, when allowed).
    pub username: &'a str,
    /// The password.
    pub password: &'a str,
    /// Keep the session past inactivity, for `remember_me`.
    pub remember_me: bool,
    /// Where the user was heading.
    pub target_url: Option<&'a str>,
    /// That request's method.
    pub request_method: Option<&'a str>,
}

/// Checks the password and starts a first-factor session. Returns where to send the
/// user now, if one factor is enough to go there.
pub async fn with_password(app: &App, caller: &mut Caller<'_>, login: PasswordLogin<'_>) -> Result<Option<String>> {
    let origin = Origin {
        auth_type: AuthType::FirstFactor,
        context: caller.context(),
        target_url: login.target_url.unwrap_or_default(),
        request_method: login.request_method.unwrap_or_default(),
    };
    let user = credentials::check_password(app, login.username, login.password, origin).await?;
    let remember = login.remember_me && !caller.settings().remember_me.is_zero();
    caller.replace(app, session_for(&user, now(), remember)).await?;
    tracing::info!(username = %user.username, "login succeeded");
    Ok(redirect_after_first_factor(app, caller.settings(), login.target_url, login.request_method, &user))
}

/// Checks the password of the session's own user again (Authelia's
/// `/api/firstfactor/reauthenticate`, for a session whose first factor is too old or was
/// not a password) and renews the first factor under a new session ID, keeping the second
/// factor. Returns where to send the user, as after a first login.
pub async fn reauthenticate(
    app: &App,
    caller: &mut Caller<'_>,
    password: &str,
    target_url: Option<&str>,
    request_method: Option<&str>,
) -> Result<Option<String>> {
    let mut data = caller.require(crate::session::AuthLevel::OneFactor)?.clone();
    let origin = Origin {
        auth_type: AuthType::FirstFactor,
        context: caller.context(),
        target_url: target_url.unwrap_or_default(),
        request_method: request_method.unwrap_or_default(),
    };
    let user = credentials::check_password(app, &data.username, password, origin).await?;
    if user.username != data.username {
        return Err(Error::AccountUnavailable);
    }
    data.first_factor_at = Some(now());
    data.passkey_login = false;
    caller.replace(app, data.clone()).await?;
    tracing::info!(username = %user.username, "reauthentication succeeded");
    Ok(if data.second_factor_at.is_some() {
        redirect_after_second_factor(app, caller.settings(), target_url)
    } else {
        redirect_after_first_factor(app, caller.settings(), target_url, request_method, &user)
    })
}

/// Starts a passwordless login: a challenge naming no user (the browser offers the
/// passkeys it holds for this domain, also as autofill). The challenge's state goes to
/// the browser in a sealed cookie: nothing is stored for an anonymous request.
pub async fn passkey_begin(app: &App, caller: &mut Caller<'_>) -> Result<serde_json::Value> {
    let settings = caller.settings();
    let (options, state) = passkey_challenge(app, caller)?;
    caller.set_cookie(PASSKEY_CHALLENGE.seal(app, settings, state)?);
    Ok(options)
}

/// A passwordless challenge for the caller's cookie domain: the request options for the
/// browser, and the state the answer is checked against, for the adapter to keep (a
/// sealed cookie over HTTP, the connection's memory over a WebSocket).
pub fn passkey_challenge(app: &App, caller: &Caller<'_>) -> Result<(serde_json::Value, String)> {
    app.services.webauthn.start_discoverable(&caller.settings().domain).map_err(|e| ceremony_failed(&e))
}

/// The browser's answer to a passkey challenge.
pub struct PasskeyLogin<'a> {
    /// The assertion.
    pub response: &'a PublicKeyCredential,
    /// Keep the session past inactivity.
    pub remember_me: bool,
    /// Where the user was heading.
    pub target_url: Option<&'a str>,
    /// That request's method.
    pub request_method: Option<&'a str>,
}

/// Finishes a passwordless login: the user comes from the credential's user handle, the
/// assertion is checked against that user's stored passkey (regulated like any secret),
/// and the user is logged in under a new session ID.
pub async fn passkey_finish(app: &App, caller: &mut Caller<'_>, login: PasskeyLogin<'_>) -> Result<Option<String>> {
    let settings = caller.settings();
    let missing = || Error::NothingPending(Pending::PasskeyChallenge);
    let sealed = caller.cookie(PASSKEY_CHALLENGE.name).ok_or_else(missing)?;
    // The challenge is taken whatever happens next.
    caller.set_cookie(PASSKEY_CHALLENGE.clear(app, settings));
    let state: String = PASSKEY_CHALLENGE.open(app, settings, &sealed).ok_or_else(missing)?;
    let verified = passkey_verify(app, caller, &state, login.response, login.target_url, login.request_method).await?;
    // A challenge logs in once, on any instance: the same cookie and assertion again fail.
    let claim = PASSKEY_CHALLENGE.claim_key(&sealed);
    if !app.services.sessions.claim_once(&claim, PASSKEY_CHALLENGE.claim_ttl()).await? {
        return Err(Error::NothingPending(Pending::PasskeyChallenge));
    }
    let two_factors = verified.two_factors;
    let user = passkey_session(app, caller, verified, login.remember_me).await?;
    Ok(if two_factors {
        redirect_after_second_factor(app, settings, login.target_url)
    } else {
        redirect_after_first_factor(app, settings, login.target_url, login.request_method, &user)
    })
}

/// A passkey assertion that verified.
pub struct PasskeyVerified {
    /// Its owner.
    pub user: std::sync::Arc<User>,
    /// The passkey verified the user and the operator counts that as two factors.
    pub two_factors: bool,
}

/// Checks a passwordless assertion against `state` (the challenge it answers): the user
/// comes from the credential (the user handle beside it is not signed and, for passkeys
/// carried over from Authelia, not one of ours), the assertion is checked against that
/// user's stored passkey through the one regulated credential check (bans apply, the
/// attempt is logged), and the key's use is recorded. Every adapter of a passkey login
/// goes through here; each keeps the challenge its own way and takes it once.
pub async fn passkey_verify(
    app: &App,
    caller: &Caller<'_>,
    state: &str,
    response: &PublicKeyCredential,
    target_url: Option<&str>,
    request_method: Option<&str>,
) -> Result<PasskeyVerified> {
    let settings = caller.settings();
    let webauthn = &app.services.webauthn;
    let storage = &app.services.storage;
    let credential_id = response.get_credential_id().to_vec();
    let kid = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&credential_id);
    let username = storage.webauthn_owner(&settings.domain, &kid).await?.ok_or(Error::BadCredentials)?;
    let origin = Origin {
        auth_type: AuthType::Passkey,
        context: caller.context(),
        target_url: target_url.unwrap_or_default(),
        request_method: request_method.unwrap_or_default(),
    };
    let mut user_verified = false;
    let verify = async {
        let stored = storage.webauthn_credentials(&username).await?;
        let key = stored
            .iter()
            .filter(|c| c.rp_id == settings.domain)
            .filter_map(passkey_of)
            .find(|k| AsRef::<[u8]>::as_ref(k.cred_id()) == credential_id.as_slice());
        let Some(key) = key else { return Ok(false) };
        let result = webauthn.finish_discoverable(&settings.domain, response, state, &key);
        user_verified = result.as_ref().is_ok_and(|r| r.user_verified());
        let verified = record_use(app, stored, &credential_id, result).await?;
        let found = app.services.users.get(&username).await?;
        let active = found.is_some_and(|u| !u.disabled && u.username == username);
        Ok(verified && active)
    };
    if !credentials::check_secret(app, &username, origin, verify).await? {
        return Err(Error::BadCredentials);
    }
    let user = app.services.users.get(&username).await?.ok_or(Error::BadCredentials)?;
    let two_factors = user_verified && webauthn.passkey_counts_as_two_factors();
    Ok(PasskeyVerified { user, two_factors })
}

/// Logs in the owner of a verified passkey under a new session ID (one factor, or two
/// when the passkey counts as both). Returns the user.
pub async fn passkey_session(
    app: &App,
    caller: &mut Caller<'_>,
    verified: PasskeyVerified,
    remember_me: bool,
) -> Result<std::sync::Arc<User>> {
    let PasskeyVerified { user, two_factors } = verified;
    let now = now();
    let remember = remember_me && !caller.settings().remember_me.is_zero();
    let data = SessionData {
        second_factor_at: two_factors.then_some(now),
        second_factor_method: two_factors.then_some(crate::second_factor::Method::Passkey),
        passkey_login: !two_factors,
        ..session_for(&user, now, remember)
    };
    caller.replace(app, data).await?;
    tracing::info!(username = %user.username, two_factors, "passkey login succeeded");
    Ok(user)
}

/// A first-factor session for `user`.
pub(super) fn session_for(user: &User, now: i64, remember_me: bool) -> SessionData {
    SessionData {
        username: user.username.clone(),
        display_name: user.display_name.clone(),
        emails: user.emails.clone(),
        groups: user.groups.clone(),
        first_factor_at: Some(now),
        remember_me,
        ..Default::default()
    }
}

/// Where the portal sends the user after the first factor, if one factor is enough: the
/// safe target unless its access rule (evaluated for this user) needs two factors, or,
/// when no target was given and no rule asks for two factors, the domain's default
/// redirection URL.
pub fn redirect_after_first_factor(
    app: &App,
    settings: &CookieSettings,
    target: Option<&str>,
    method: Option<&str>,
    user: &User,
) -> Option<String> {
    match target.filter(|t| !t.is_empty()) {
        Some(t) if app.services.sessions.is_safe_redirect(t) => {
            let url = url::Url::parse(t).ok()?;
            if super::admin::console_needs_two_factors(app, &settings.portal_url, &url) {
                return None;
            }
            // Coming back to an OpenID Connect authorization: the client's policy decides.
            if let Some(required) = super::oidc::authorize::level_for_target(app, &url, &user.username, &user.groups) {
                return (required != Some(crate::session::AuthLevel::TwoFactor)).then(|| t.to_string());
            }
            let method = method.filter(|m| !m.is_empty()).unwrap_or("GET");
            let subject =
                Subject { username: &user.username, groups: &user.groups, client_id: "", ip: None, token: None };
            let decision = app.access_control.current().evaluate(&subject, &Object::new(&url, method));
            // As Authelia: only a two-factor target keeps the user at the portal; a denied
            // target is still redirected to, where the user sees why.
            (decision.policy != Policy::TwoFactor).then(|| t.to_string())
        }
        Some(_) => None,
        None if app.access_control.current().second_factor_required() => None,
        None => settings.default_redirection_url.as_ref().map(|u| u.to_string()),
    }
}

/// Where the portal sends the user after both factors: the target when it is safe, the
/// domain's default redirection URL when no target was given, nowhere otherwise.
pub fn redirect_after_second_factor(app: &App, settings: &CookieSettings, target: Option<&str>) -> Option<String> {
    match target.filter(|t| !t.is_empty()) {
        Some(t) if app.services.sessions.is_safe_redirect(t) => Some(t.to_string()),
        Some(_) => None,
        None => settings.default_redirection_url.as_ref().map(|u| u.to_string()),
    }
}

/// A ceremony that could not be started or whose answer was malformed (details logged).
pub(super) fn ceremony_failed(e: &crate::second_factor::webauthn::CeremonyError) -> Error {
    tracing::info!(error = %e, "WebAuthn ceremony failed");
    Error::CeremonyFailed
}
