//! Signing in through the upstream OpenID provider, and its settings
//! (`/auth/provider/oidc`, seed 003).
//!
//! The sign-in has two requests. `start` sends the browser to the provider with a fresh
//! state, nonce and PKCE verifier, which travel in a sealed cookie (nothing is stored for
//! an anonymous request). `finish`, at the callback, takes the cookie (once, on any
//! instance), checks the state, has the provider's answer checked
//! ([`crate::upstream_oidc`]), finds the local user — through a stored link, by verified
//! address when allowed, or by creating one when allowed —, lets regulation refuse a
//! banned user or address, and starts a session under a new ID like any other login.

use rand::Rng as _;
use rand::distr::Alphanumeric;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use super::audit::{self, Event, Outcome};
use super::credentials::{self, Origin};
use super::login::{redirect_after_first_factor, redirect_after_second_factor, session_for};
use super::sealed_cookie::SealedCookie;
use super::{Caller, Error, Result};
use crate::authn::hashing_pool::PoolError;
use crate::authn::users_file::User;
use crate::clock::now;
use crate::config::schema::{UpstreamClaims, UpstreamOidc};
use crate::config::types::Secret;
use crate::server::App;
use crate::session::{CookieSettings, SessionData};
use crate::storage::{AuthType, StorageError};
use crate::upstream_oidc::settings::{self, Source, Stored};
use crate::upstream_oidc::{Identity, UpstreamError};

/// The portal path of the callback (below the portal URL); registered at the provider
/// as the redirect URI.
pub const CALLBACK_PATH: &str = "login/oidc/callback";

/// The sign-in's state between the two requests.
const SIGN_IN: SealedCookie = SealedCookie {
    name: "portcullis_upstream",
    purpose: "upstream-oidc-v1",
    lifetime_secs: 600,
    // The provider's redirect back is a navigation from another site.
    same_site: cookie::SameSite::Lax,
};

#[derive(Serialize, Deserialize)]
struct Pending {
    issuer: String,
    state: String,
    nonce: String,
    pkce_verifier: String,
    target: Option<String>,
    method: Option<String>,
}

/// The redirect URI for the portal of `settings`.
pub fn redirect_uri(settings: &CookieSettings) -> String {
    format!("{}/{CALLBACK_PATH}", settings.portal_url.as_str().trim_end_matches('/'))
}

fn upstream_error(e: UpstreamError) -> Error {
    match e {
        UpstreamError::Unavailable(cause) => Error::UpstreamUnavailable(cause),
        UpstreamError::Refused(why) => {
            tracing::info!(reason = %why, "upstream sign-in refused");
            Error::UpstreamRefused(why)
        }
    }
}

/// The label of the portal's "Sign in with ..." button, when a provider is set up (and
/// storage answers: the login form must show even when it does not).
pub async fn button(app: &App) -> Option<String> {
    match app.services.upstream.effective(&app.services.storage).await {
        Ok(found) => found.map(|e| e.settings.display_name.clone()),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the upstream provider's settings");
            None
        }
    }
}

/// Starts a sign-in: sets the sealed cookie and returns the provider's URL to send the
/// browser to. `target` (where the user was heading) is kept only when it is a safe
/// redirection.
pub async fn start(app: &App, caller: &mut Caller<'_>, target: Option<&str>, method: Option<&str>) -> Result<String> {
    let effective =
        app.services.upstream.effective(&app.services.storage).await?.ok_or(Error::UpstreamNotConfigured)?;
    let settings = caller.settings();
    let s = &effective.settings;
    let request = app.services.upstream.authorization(s, &redirect_uri(settings)).await.map_err(upstream_error)?;
    let target = target.filter(|t| !t.is_empty() && app.services.sessions.is_safe_redirect(t));
    let pending = Pending {
        issuer: s.issuer.clone(),
        state: request.state,
        nonce: request.nonce,
        pkce_verifier: request.pkce_verifier,
        target: target.map(str::to_string),
        method: method.filter(|m| !m.is_empty()).map(str::to_string),
    };
    caller.set_cookie(SIGN_IN.seal(app, settings, pending)?);
    Ok(request.url)
}

/// The provider's answer at the callback.
pub struct Callback<'a> {
    /// `code`.
    pub code: Option<&'a str>,
    /// `state`.
    pub state: Option<&'a str>,
    /// `error`, when the provider refused.
    pub error: Option<&'a str>,
    /// `error_description`.
    pub error_description: Option<&'a str>,
}

/// Where the browser goes after a completed sign-in.
pub struct Finished {
    /// The target, when the session's level reaches it.
    pub redirect: Option<String>,
    /// Where the user was heading (for the second factor's page).
    pub target: Option<String>,
}

/// Completes a sign-in at the callback.
pub async fn finish(app: &App, caller: &mut Caller<'_>, answer: Callback<'_>) -> Result<Finished> {
    let settings = caller.settings();
    let not_started = || Error::UpstreamRefused("this sign-in was not started here, or took too long".into());
    let sealed = caller.cookie(SIGN_IN.name).ok_or_else(not_started)?;
    // The cookie is taken whatever happens next.
    caller.set_cookie(SIGN_IN.clear(app, settings));
    let pending: Pending = SIGN_IN.open(app, settings, &sealed).ok_or_else(not_started)?;
    if let Some(error) = answer.error {
        let description = answer.error_description.unwrap_or_default();
        let why = format!("the provider answered {error} {description}");
        return Err(upstream_error(UpstreamError::Refused(why.trim().to_string())));
    }
    let state = answer.state.unwrap_or_default();
    if !bool::from(state.as_bytes().ct_eq(pending.state.as_bytes())) {
        return Err(upstream_error(UpstreamError::Refused("the state does not match this browser's sign-in".into())));
    }
    let code = answer.code.filter(|c| !c.is_empty()).ok_or_else(|| Error::InvalidRequest("code is missing".into()))?;
    if !app.services.sessions.claim_once(&SIGN_IN.claim_key(&sealed), SIGN_IN.claim_ttl()).await? {
        return Err(upstream_error(UpstreamError::Refused("this sign-in was completed already".into())));
    }
    let effective =
        app.services.upstream.effective(&app.services.storage).await?.ok_or(Error::UpstreamNotConfigured)?;
    let s = &effective.settings;
    if s.issuer != pending.issuer {
        return Err(upstream_error(UpstreamError::Refused("the provider changed during the sign-in".into())));
    }
    let identity = app
        .services
        .upstream
        .exchange(s, &redirect_uri(settings), code, &pending.pkce_verifier, &pending.nonce)
        .await
        .map_err(upstream_error)?;
    let user = match account_for(app, caller, s, &identity).await {
        Ok(user) => user,
        Err(e) => {
            let detail = json!({"issuer": identity.issuer, "subject": identity.subject, "reason": e.message()});
            let event =
                Event { name: "upstream_oidc.refused", outcome: Outcome::Refused, actor: "", subject: "", detail };
            audit::record(app, caller.context(), event).await;
            return Err(e);
        }
    };
    let target = pending.target.as_deref();
    let origin = Origin {
        auth_type: AuthType::UpstreamOidc,
        context: caller.context(),
        target_url: target.unwrap_or_default(),
        request_method: pending.method.as_deref().unwrap_or_default(),
    };
    // Nothing to verify here (the provider did), but bans hold and the sign-in is logged.
    credentials::check_secret(app, &user.username, origin, async { Ok(true) }).await?;

    let now = now();
    let two_factors = s.trust_upstream_mfa && upstream_mfa(&identity);
    let data = SessionData { second_factor_at: two_factors.then_some(now), ..session_for(&user, now, false) };
    caller.replace(app, data).await?;
    app.services.storage.upstream_link_used(&identity.issuer, &identity.subject, now).await?;
    tracing::info!(username = %user.username, issuer = %identity.issuer, two_factors, "upstream sign-in succeeded");
    let settings = caller.settings();
    let redirect = if two_factors {
        redirect_after_second_factor(app, settings, target)
    } else {
        redirect_after_first_factor(app, settings, target, pending.method.as_deref(), &user)
    };
    Ok(Finished { redirect, target: pending.target })
}

/// Whether the provider says the user passed more than one factor (RFC 8176 `mfa`).
fn upstream_mfa(identity: &Identity) -> bool {
    identity.claims.get("amr").and_then(Value::as_array).is_some_and(|amr| amr.iter().any(|m| m == "mfa"))
}

fn claim_text<'a>(identity: &'a Identity, name: &str) -> Option<&'a str> {
    identity.claims.get(name).and_then(Value::as_str).map(str::trim).filter(|v| !v.is_empty())
}

/// Whether the provider vouches for the address (`email_verified` true, as a boolean or,
/// as some providers send it, a string).
fn email_verified(identity: &Identity) -> bool {
    match identity.claims.get("email_verified") {
        Some(Value::Bool(v)) => *v,
        Some(Value::String(v)) => v.eq_ignore_ascii_case("true"),
        _ => false,
    }
}

/// The local user the upstream account is: its link, or a user with its verified address
/// (`link_by_email`), or a new user (`create_users`).
async fn account_for(
    app: &App,
    caller: &Caller<'_>,
    s: &UpstreamOidc,
    identity: &Identity,
) -> Result<std::sync::Arc<User>> {
    let users = &app.services.users;
    let storage = &app.services.storage;
    let email = claim_text(identity, &s.claims.email).map(str::to_ascii_lowercase);
    if !s.allowed_email_domains.is_empty() {
        let domain = email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
        if !domain.is_some_and(|d| s.allowed_email_domains.iter().any(|allowed| allowed == d)) {
            return Err(Error::UpstreamNoAccount(format!(
                "the address {} is not in a domain allowed to sign in here",
                email.as_deref().unwrap_or("(none)")
            )));
        }
    }
    if let Some(username) = storage.upstream_link(&identity.issuer, &identity.subject).await? {
        let user = users
            .get(&username)
            .await?
            .ok_or_else(|| Error::UpstreamNoAccount("the account linked to this sign-in no longer exists".into()))?;
        return if user.disabled { Err(Error::AccountUnavailable) } else { Ok(user) };
    }
    let verified = email.as_ref().filter(|_| email_verified(identity));
    if s.link_by_email
        && let Some(address) = verified
        && let Some(user) = users.find_by_email(address).await?
    {
        if user.disabled {
            return Err(Error::AccountUnavailable);
        }
        link(app, caller, identity, &user.username, "upstream_oidc.linked").await?;
        return Ok(user);
    }
    if s.create_users {
        return create_user(app, caller, s, identity, email.as_deref()).await;
    }
    let why = match (&email, verified.is_some(), s.link_by_email) {
        (None, _, _) => "the provider sent no address, and no account here is linked to this sign-in".to_string(),
        (Some(e), false, true) => format!("the provider has not verified the address {e}"),
        (Some(e), _, true) => format!("no account here has the address {e}"),
        (Some(_), _, false) => "no account here is linked to this sign-in; ask an administrator".to_string(),
    };
    Err(Error::UpstreamNoAccount(why))
}

async fn link(app: &App, caller: &Caller<'_>, identity: &Identity, username: &str, event: &'static str) -> Result<()> {
    match app.services.storage.upstream_link_add(&identity.issuer, &identity.subject, username, now()).await {
        Ok(()) => {}
        // The same account completing two sign-ins at once: the first linked it.
        Err(StorageError::Duplicate) => {
            let linked = app.services.storage.upstream_link(&identity.issuer, &identity.subject).await?;
            if linked.as_deref() != Some(username) {
                return Err(Error::UpstreamNoAccount("this sign-in is linked to another account".into()));
            }
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    }
    let detail = json!({"issuer": identity.issuer, "subject": identity.subject});
    audit::record(
        app,
        caller.context(),
        Event { name: event, outcome: Outcome::Success, actor: username, subject: username, detail },
    )
    .await;
    Ok(())
}

/// A new user for the upstream account, named by its username claim, in the groups its
/// groups claim lists, with a random password nobody knows (a reset link sets one).
async fn create_user(
    app: &App,
    caller: &Caller<'_>,
    s: &UpstreamOidc,
    identity: &Identity,
    email: Option<&str>,
) -> Result<std::sync::Arc<User>> {
    let users = &app.services.users;
    users.writable()?;
    let username = claim_text(identity, &s.claims.username)
        .ok_or_else(|| Error::UpstreamNoAccount(format!("the provider sent no {} claim", s.claims.username)))?;
    if username.len() > 100 || username.chars().any(|c| c.is_whitespace() || c.is_control() || c == ':') {
        return Err(Error::UpstreamNoAccount(format!("{username} cannot be a username here")));
    }
    if users.get(username).await?.is_some() {
        return Err(Error::UpstreamNoAccount(format!(
            "an account named {username} exists here and is not linked to this sign-in"
        )));
    }
    let groups: Vec<String> = match identity.claims.get(&s.claims.groups) {
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).map(str::to_string).collect(),
        Some(Value::String(one)) => vec![one.clone()],
        _ => Vec::new(),
    };
    let password: String = rand::rng().sample_iter(Alphanumeric).take(40).map(char::from).collect();
    let params = app.config.authentication_backend.password_hashing();
    let password_hash = match app.services.hashing.hash(&password, &params).await {
        Ok(hash) => hash,
        Err(PoolError::Busy) => return Err(Error::Busy),
        Err(e) => return Err(Error::Internal(format!("cannot hash a password: {e}"))),
    };
    let display_name = claim_text(identity, "name").unwrap_or(username).to_string();
    let user = User {
        username: username.to_string(),
        display_name,
        password_hash,
        emails: email.map(|e| vec![e.to_string()]).unwrap_or_default(),
        groups,
        disabled: false,
    };
    users.create(user, now()).await?;
    link(app, caller, identity, username, "upstream_oidc.user_created").await?;
    tracing::info!(username = %username, issuer = %identity.issuer, "user created at first upstream sign-in");
    users.get(username).await?.ok_or(Error::UnknownUser)
}

/// The settings as `GET /auth/provider/oidc` shows them: never the secret.
pub async fn provider(app: &App, caller: &Caller<'_>) -> Result<Value> {
    super::admin::require_admin(app, caller)?;
    let effective = app.services.upstream.effective(&app.services.storage).await?;
    let redirect_uri = redirect_uri(caller.settings());
    let Some(e) = effective else {
        return Ok(json!({"configured": false, "redirect_uri": redirect_uri}));
    };
    let s = &e.settings;
    Ok(json!({
        "configured": true,
        "source": e.source,
        "issuer": s.issuer,
        "client_id": s.client_id,
        "client_secret_set": !s.client_secret.is_empty(),
        "display_name": s.display_name,
        "scopes": s.scopes,
        "claims": s.claims,
        "allowed_email_domains": s.allowed_email_domains,
        "create_users": s.create_users,
        "link_by_email": s.link_by_email,
        "trust_upstream_mfa": s.trust_upstream_mfa,
        "updated_at": e.updated_at,
        "updated_by": e.updated_by,
        "redirect_uri": redirect_uri,
    }))
}

/// The body of `PUT /auth/provider/oidc`: the settings, the secret optional when one is
/// in force already (a GET never shows it, so a GET-edit-PUT round trip keeps it).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderChange {
    issuer: String,
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    scopes: Option<Vec<String>>,
    #[serde(default)]
    claims: Option<UpstreamClaims>,
    #[serde(default)]
    allowed_email_domains: Vec<String>,
    #[serde(default)]
    create_users: bool,
    #[serde(default)]
    link_by_email: bool,
    #[serde(default)]
    trust_upstream_mfa: bool,
}

/// Stores new settings after checking them and reading the provider's discovery with
/// them: settings that cannot work are refused, not stored.
pub async fn set_provider(app: &App, caller: &Caller<'_>, change: ProviderChange) -> Result<()> {
    let admin = super::admin::require_admin(app, caller)?.username.clone();
    let upstream = &app.services.upstream;
    let current = upstream.effective(&app.services.storage).await?;
    let secret = match change.client_secret.filter(|s| !s.is_empty()) {
        Some(secret) => Secret::new(secret),
        None => current.as_ref().map(|c| c.settings.client_secret.clone()).unwrap_or_default(),
    };
    let defaults = UpstreamOidc::default();
    let s = settings::normalized(UpstreamOidc {
        issuer: change.issuer,
        client_id: change.client_id,
        client_secret: secret,
        display_name: change.display_name,
        scopes: change.scopes.unwrap_or(defaults.scopes),
        claims: change.claims.unwrap_or(defaults.claims),
        allowed_email_domains: change.allowed_email_domains,
        create_users: change.create_users,
        link_by_email: change.link_by_email,
        trust_upstream_mfa: change.trust_upstream_mfa,
    });
    if let Some((key, problem)) = settings::problems(&s).into_iter().next() {
        return Err(Error::InvalidRequest(format!("{key}: {problem}")));
    }
    if s.create_users {
        app.services.users.writable()?;
    }
    upstream.probe(&s).await.map_err(|e| Error::InvalidRequest(format!("issuer: {e}")))?;
    let stored = serde_json::to_vec(&Stored::new(&s, &admin, now())).map_err(|e| Error::Internal(e.to_string()))?;
    app.services.storage.sealed_value_put(settings::SEALED_NAME, &stored).await?;
    upstream.forget_settings().await;
    let was = current.map(|c| c.source);
    let detail = json!({
        "issuer": s.issuer, "client_id": s.client_id, "create_users": s.create_users,
        "link_by_email": s.link_by_email, "trust_upstream_mfa": s.trust_upstream_mfa,
        "replaced": was.map(|w| w == Source::Database),
    });
    let event =
        Event { name: "admin.upstream_oidc.updated", outcome: Outcome::Success, actor: &admin, subject: "", detail };
    audit::record(app, caller.context(), event).await;
    tracing::info!(by = %admin, issuer = %s.issuer, "upstream provider settings stored");
    Ok(())
}
