//! The authorization endpoint's operation: a checked request goes on to the portal's
//! login while the session's factor level is below what the client's policy asks of this
//! user, to the consent page while consent is needed, and ends with a code (or, for the
//! implicit and hybrid flows a client lists, tokens) sent to the registered redirect URI.
//! A pending request waits in storage under an opaque flow value (single use), so that
//! login and consent can come back to it.

use std::collections::HashMap;

use super::{Grant, Issuing, OAuthError, issue_access_token, provider, server_error};
use crate::clock::now;
use crate::flows::Caller;
use crate::oidc::claims::{Authentication, FirstFactor, acr, amr};
use crate::oidc::request::{self, AuthRequest, Refusal, Reply};
use crate::oidc::{Client, ConsentMode, FLOW_LIFESPAN_SECS, Kind, Lifespan, Provider, paths};
use crate::second_factor::Method;
use crate::server::App;
use crate::session::{AuthLevel, SessionData};
use crate::storage::{Consumed, OidcConsent, OidcRecord};

/// Where the browser goes next.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A redirect (to the client with its answer, or to the portal).
    Redirect(String),
    /// The answer posted to the client (`response_mode=form_post`).
    FormPost {
        /// The redirect URI.
        action: String,
        /// The fields.
        fields: Vec<(String, String)>,
    },
    /// An error page (the client or its redirect URI cannot be trusted, or the pending
    /// request is gone): never a redirect.
    ErrorPage(String),
    /// The client asks for a fresh sign-in (`prompt=login`, or `max_age` passed): the
    /// session ends and the browser goes to this login URL, coming back to the request.
    SignInAgain(String),
}

/// What the consent page shows.
#[derive(Debug)]
pub struct ConsentView {
    /// The client's name.
    pub client_name: String,
    /// The client's ID.
    pub client_id: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// Whether the user may have the decision remembered (pre-configured consent).
    pub can_remember: bool,
    /// How long it would be remembered, in seconds.
    pub remember_secs: u64,
}

/// A pending request found by its flow value.
struct Pending {
    request: AuthRequest,
    flow: String,
    signature: String,
}

/// Handles an authorization request (its parameters from the query or the form), or its
/// continuation (`flow`) after login.
pub async fn start(app: &App, caller: &Caller<'_>, params: &HashMap<String, String>, issuer: &str) -> Outcome {
    let provider = match provider(app) {
        Ok(p) => p,
        Err(e) => return Outcome::ErrorPage(e.description),
    };
    let now = now();
    if let Some(flow) = params.get("flow") {
        return match pending(app, provider, flow, now).await {
            Ok(Some(p)) => decide(app, provider, caller, p.request, Some((p.flow, p.signature)), issuer, now).await,
            Ok(None) => {
                Outcome::ErrorPage("This sign-in request expired. Go back to the application and try again.".into())
            }
            Err(e) => Outcome::ErrorPage(e.description),
        };
    }
    let parsed = match params.get("request_uri") {
        Some(uri) => {
            pushed(app, provider, uri, params.get("client_id").map(String::as_str).unwrap_or_default(), now).await
        }
        None => request::parse(provider, params, false, now),
    };
    match parsed {
        Ok(request) => decide(app, provider, caller, request, None, issuer, now).await,
        Err(Refusal::Page(message)) => {
            let client_id = params.get("client_id").map(String::as_str).unwrap_or_default();
            tracing::info!(client_id, reason = %message, "OpenID Connect authorization request refused");
            Outcome::ErrorPage(message)
        }
        Err(Refusal::Redirect { to, error }) => refuse(&to, &error, params.get("client_id"), issuer),
    }
}

/// The request a pushed authorization request stored (RFC 9126), used once.
async fn pushed(
    app: &App,
    provider: &Provider,
    request_uri: &str,
    client_id: &str,
    now: i64,
) -> Result<AuthRequest, Refusal> {
    let expired = || Refusal::Page("The pushed authorization request is unknown or expired.".into());
    let value = request_uri.strip_prefix(crate::oidc::request::PAR_URN_PREFIX).ok_or_else(expired)?;
    let signature = provider.minter.verify(Kind::Par, value).ok_or_else(expired)?;
    let record = match app.services.storage.oidc_consume(Kind::Par.as_str(), &signature, now).await {
        Ok(Consumed::Taken(record)) => record,
        Ok(_) => return Err(expired()),
        Err(e) => return Err(Refusal::Page(server_error(&e).description)),
    };
    if record.client_id != client_id {
        return Err(Refusal::Page("The pushed authorization request belongs to another client.".into()));
    }
    serde_json::from_str(&record.data).map_err(|_| expired())
}

/// The pending request of `flow`, while usable.
async fn pending(app: &App, provider: &Provider, flow: &str, now: i64) -> Result<Option<Pending>, OAuthError> {
    let Some(signature) = provider.minter.verify(Kind::Flow, flow) else { return Ok(None) };
    let record = app.services.storage.oidc_get(Kind::Flow.as_str(), &signature).await.map_err(|e| server_error(&e))?;
    let Some(record) = record.filter(|r| r.usable(now)) else { return Ok(None) };
    let request: AuthRequest =
        serde_json::from_str(&record.data).map_err(|_| OAuthError::new("server_error", "bad flow"))?;
    Ok(Some(Pending { request, flow: flow.to_string(), signature }))
}

fn refuse(to: &Reply, error: &OAuthError, client_id: Option<&String>, issuer: &str) -> Outcome {
    tracing::info!(
        client_id = client_id.map(String::as_str).unwrap_or_default(),
        error = error.code,
        description = %error.description,
        "OpenID Connect authorization request refused"
    );
    answer(to, to.error_params(error, issuer))
}

fn answer(to: &Reply, params: Vec<(String, String)>) -> Outcome {
    match to.location(&params) {
        Some(location) => Outcome::Redirect(location),
        None => Outcome::FormPost { action: to.redirect_uri.clone(), fields: params },
    }
}

/// The level `client` requires of the session's user (`None`: denied), and whether the
/// session has it.
fn level_check(client: &Client, data: Option<&SessionData>) -> (Option<AuthLevel>, bool) {
    match data.filter(|d| !d.username.is_empty()) {
        None => (Some(client.required_level("", &[]).unwrap_or(AuthLevel::OneFactor)), false),
        Some(d) => {
            let required = client.required_level(&d.username, &d.groups);
            (required, required.is_some_and(|r| d.level() >= r))
        }
    }
}

async fn decide(
    app: &App,
    provider: &Provider,
    caller: &Caller<'_>,
    request: AuthRequest,
    flow: Option<(String, String)>,
    issuer: &str,
    now: i64,
) -> Outcome {
    let Some(client) = provider.clients.get(&request.client_id) else {
        return Outcome::ErrorPage("The client is not registered with this provider.".into());
    };
    let to = Reply::of(&request);
    let prompt_none = request.prompt.iter().any(|p| p == "none");
    let client_id = Some(&request.client_id);
    let data = caller.data();
    match level_check(client, data) {
        (None, _) if data.is_some_and(|d| !d.username.is_empty()) => {
            return refuse(
                &to,
                &OAuthError::new("access_denied", "the user may not use this client"),
                client_id,
                issuer,
            );
        }
        (_, false) if prompt_none => {
            return refuse(&to, &OAuthError::new("login_required", "the user must sign in"), client_id, issuer);
        }
        (_, false) => {
            let flow = match keep(app, provider, caller, &request, flow, now).await {
                Ok(flow) => flow,
                Err(e) => return refuse(&to, &e, client_id, issuer),
            };
            return Outcome::Redirect(login_url(issuer, &flow.0, client.id()));
        }
        (_, true) => {}
    }
    let Some(data) = data else { return Outcome::ErrorPage("The session is gone.".into()) };
    if needs_fresh_sign_in(&request, data, now) {
        if prompt_none {
            return refuse(&to, &OAuthError::new("login_required", "the user must sign in again"), client_id, issuer);
        }
        return match keep(app, provider, caller, &request, flow, now).await {
            Ok(flow) => Outcome::SignInAgain(login_url(issuer, &flow.0, client.id())),
            Err(e) => refuse(&to, &e, client_id, issuer),
        };
    }
    let consent_needed = match consent_needed(app, client, &request, &data.username, now).await {
        Ok(needed) => needed,
        Err(e) => return refuse(&to, &e, client_id, issuer),
    };
    if consent_needed {
        if prompt_none {
            return refuse(&to, &OAuthError::new("consent_required", "the user must consent"), client_id, issuer);
        }
        return match keep(app, provider, caller, &request, flow, now).await {
            Ok((flow, _)) => {
                let q: String =
                    url::form_urlencoded::Serializer::new(String::new()).append_pair("flow", &flow).finish();
                Outcome::Redirect(format!("{issuer}{}?{q}", paths::CONSENT))
            }
            Err(e) => refuse(&to, &e, client_id, issuer),
        };
    }
    if let Some((_, signature)) = &flow {
        match app.services.storage.oidc_consume(Kind::Flow.as_str(), signature, now).await {
            Ok(Consumed::Taken(_)) => {}
            Ok(_) => return Outcome::ErrorPage("This sign-in request was used already.".into()),
            Err(e) => return Outcome::ErrorPage(server_error(&e).description),
        }
    }
    issue(app, provider, client, &request, data, issuer, now).await
}

/// The portal's login page, coming back to the pending request `flow` afterwards.
fn login_url(issuer: &str, flow: &str, client_id: &str) -> String {
    let resume = format!(
        "{issuer}{}?{}",
        paths::AUTHORIZATION,
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("flow", flow)
            .append_pair("client_id", client_id)
            .finish()
    );
    let rd: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", &resume).finish();
    format!("{issuer}/login?{rd}")
}

/// Whether the request wants a sign-in newer than the session's: `prompt=login` (a
/// sign-in after the request was made) or `max_age` (one no older than that). A sign-in
/// made after the request satisfies both, so coming back from the login page never loops.
fn needs_fresh_sign_in(request: &AuthRequest, data: &SessionData, now: i64) -> bool {
    let signed_in_at = data.first_factor_at.unwrap_or(0);
    if signed_in_at >= request.requested_at {
        return false;
    }
    request.prompt.iter().any(|p| p == "login")
        || request.max_age.is_some_and(|max| now.saturating_sub(signed_in_at) > max)
}

/// Stores the request under a new flow value unless it has one (at most
/// [`crate::oidc::FLOWS_PER_ADDRESS`] per client address and ten minutes: each is a row).
async fn keep(
    app: &App,
    provider: &Provider,
    caller: &Caller<'_>,
    request: &AuthRequest,
    flow: Option<(String, String)>,
    now: i64,
) -> Result<(String, String), OAuthError> {
    if let Some(flow) = flow {
        return Ok(flow);
    }
    let limited = app.services.oidc_flow_limiter.hit(&app.services.sessions, &caller.ip_text(), now).await;
    if limited.is_err() {
        tracing::warn!(client_id = %request.client_id, ip = %caller.ip_text(), "too many pending OpenID Connect authorizations from one address");
        return Err(OAuthError::new("temporarily_unavailable", "too many authorization requests; try again later"));
    }
    let (value, signature) = provider.minter.mint(Kind::Flow);
    let data =
        serde_json::to_string(request).map_err(|_| OAuthError::new("server_error", "cannot keep the request"))?;
    let record = OidcRecord {
        signature: signature.clone(),
        kind: Kind::Flow.as_str().into(),
        chain_id: String::new(),
        client_id: request.client_id.clone(),
        subject: String::new(),
        data,
        created_at: now,
        expires_at: now + FLOW_LIFESPAN_SECS,
        consumed_at: None,
        revoked_at: None,
    };
    app.services.storage.oidc_insert(record).await.map_err(|e| server_error(&e))?;
    Ok((value, signature))
}

async fn consent_needed(
    app: &App,
    client: &Client,
    request: &AuthRequest,
    username: &str,
    now: i64,
) -> Result<bool, OAuthError> {
    let asked = request.prompt.iter().any(|p| p == "consent");
    match client.consent {
        ConsentMode::Implicit => Ok(false),
        ConsentMode::Explicit => Ok(true),
        ConsentMode::PreConfigured if asked => Ok(true),
        ConsentMode::PreConfigured => {
            let stored = app
                .services
                .storage
                .oidc_consents_valid(username, client.id(), now)
                .await
                .map_err(|e| server_error(&e))?;
            let covered = |c: &OidcConsent| request.scopes.iter().all(|s| c.scopes.split(' ').any(|g| g == s));
            Ok(!stored.iter().any(covered))
        }
    }
}

/// What the consent page shows for `flow`, or where to go instead (login, when the
/// session is not strong enough for the client any more).
pub async fn consent_view(app: &App, caller: &Caller<'_>, flow: &str, issuer: &str) -> Result<ConsentView, Outcome> {
    let provider = provider(app).map_err(|e| Outcome::ErrorPage(e.description))?;
    let (pending, client) = pending_for_consent(app, provider, caller, flow, issuer).await?;
    Ok(ConsentView {
        client_name: client.name().to_string(),
        client_id: client.id().to_string(),
        scopes: pending.request.scopes,
        can_remember: client.consent == ConsentMode::PreConfigured,
        remember_secs: client.config.pre_configured_consent_duration.map_or(0, |d| d.as_secs()),
    })
}

async fn pending_for_consent<'p>(
    app: &App,
    provider: &'p Provider,
    caller: &Caller<'_>,
    flow: &str,
    issuer: &str,
) -> Result<(Pending, &'p Client), Outcome> {
    let gone = || Outcome::ErrorPage("This sign-in request expired. Go back to the application and try again.".into());
    let pending = pending(app, provider, flow, now()).await.map_err(|e| Outcome::ErrorPage(e.description))?;
    let pending = pending.ok_or_else(gone)?;
    let client = provider.clients.get(&pending.request.client_id).ok_or_else(gone)?;
    if !level_check(client, caller.data()).1 {
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("flow", flow).finish();
        return Err(Outcome::Redirect(format!("{issuer}{}?{q}", paths::AUTHORIZATION)));
    }
    Ok((pending, client))
}

/// The user's decision on the consent page: recorded, then the answer goes to the client.
pub async fn consent_decide(
    app: &App,
    caller: &Caller<'_>,
    flow: &str,
    accept: bool,
    remember: bool,
    issuer: &str,
) -> Outcome {
    let provider = match provider(app) {
        Ok(p) => p,
        Err(e) => return Outcome::ErrorPage(e.description),
    };
    let (pending, client) = match pending_for_consent(app, provider, caller, flow, issuer).await {
        Ok(found) => found,
        Err(outcome) => return outcome,
    };
    let now = now();
    match app.services.storage.oidc_consume(Kind::Flow.as_str(), &pending.signature, now).await {
        Ok(Consumed::Taken(_)) => {}
        Ok(_) => return Outcome::ErrorPage("This sign-in request was used already.".into()),
        Err(e) => return Outcome::ErrorPage(server_error(&e).description),
    }
    let Some(data) = caller.data() else { return Outcome::ErrorPage("The session is gone.".into()) };
    let remember_for = client.config.pre_configured_consent_duration.map(|d| d.as_secs()).unwrap_or_default();
    let expires_at = (accept && remember && client.consent == ConsentMode::PreConfigured && remember_for > 0)
        .then(|| now.saturating_add(i64::try_from(remember_for).unwrap_or(i64::MAX)));
    let consent = OidcConsent {
        username: data.username.clone(),
        client_id: client.id().to_string(),
        scopes: pending.request.scopes.join(" "),
        granted: accept,
        created_at: now,
        expires_at,
    };
    if let Err(e) = app.services.storage.oidc_consent_insert(consent).await {
        return Outcome::ErrorPage(server_error(&e).description);
    }
    tracing::info!(client_id = client.id(), username = %data.username, accept, remember = expires_at.is_some(), "OpenID Connect consent decision");
    let to = Reply::of(&pending.request);
    if !accept {
        let error = OAuthError::new("access_denied", "the user refused consent");
        return refuse(&to, &error, Some(&pending.request.client_id), issuer);
    }
    issue(app, provider, client, &pending.request, data, issuer, now).await
}

/// Issues the code and, for implicit and hybrid responses, the tokens.
async fn issue(
    app: &App,
    provider: &Provider,
    client: &Client,
    request: &AuthRequest,
    data: &SessionData,
    issuer: &str,
    now: i64,
) -> Outcome {
    let to = Reply::of(request);
    let client_id = Some(&request.client_id);
    let auth = match authentication(app, client, data, now).await {
        Ok(auth) => auth,
        Err(e) => return refuse(&to, &e, client_id, issuer),
    };
    let grant = Grant {
        request: request.clone(),
        auth,
        scopes: request.scopes.clone(),
        audience: vec![client.id().to_string()],
        client_id: client.id().to_string(),
    };
    let chain_id = crate::oidc::tokens::random_id();
    let at = Issuing { app, provider, client, issuer, now };
    let mut params = Vec::new();
    let mut code = String::new();
    if request.has("code") {
        let (value, signature) = provider.minter.mint(Kind::Code);
        let lifespan = provider.lifespan(client, "authorization_code", Lifespan::AuthorizeCode);
        let record = match super::record(Kind::Code, signature, &chain_id, &grant, now, lifespan) {
            Ok(r) => r,
            Err(e) => return refuse(&to, &e, client_id, issuer),
        };
        if let Err(e) = app.services.storage.oidc_insert(record).await {
            return refuse(&to, &server_error(&e), client_id, issuer);
        }
        params.push(("code".to_string(), value.clone()));
        code = value;
    }
    let mut access = String::new();
    if request.has("token") {
        match issue_access_token(&at, &grant, "implicit", &chain_id).await {
            Ok(t) => {
                params.push(("access_token".into(), t.value.clone()));
                params.push(("token_type".into(), "Bearer".into()));
                params.push(("expires_in".into(), t.expires_in.to_string()));
                params.push(("scope".into(), grant.scopes.join(" ")));
                access = t.value;
            }
            Err(e) => return refuse(&to, &e, client_id, issuer),
        }
    }
    if request.has("id_token") {
        let profile = match super::profile(app, &data.username).await {
            Ok(Some(p)) => p,
            Ok(None) => return refuse(&to, &OAuthError::new("access_denied", "unknown user"), client_id, issuer),
            Err(e) => return refuse(&to, &e, client_id, issuer),
        };
        match super::id_token(&at, &grant, &profile, (&access, &code), "implicit") {
            Ok(t) => params.push(("id_token".into(), t)),
            Err(e) => return refuse(&to, &e, client_id, issuer),
        }
    }
    tracing::info!(client_id = client.id(), username = %data.username, response_type = %request.response_type, "OpenID Connect authorization granted");
    answer(&to, to.finish(params, issuer))
}

/// The session's authentication as the client sees it: the user's `sub` towards the
/// client, when and how the user signed in (`amr`, `acr`). Every grant made by a signed-in
/// user (authorization endpoint, device verification) records it this way.
pub async fn authentication(
    app: &App,
    client: &Client,
    data: &SessionData,
    now: i64,
) -> Result<Authentication, OAuthError> {
    let subject = super::subject(app, client, &data.username).await?;
    let auth_time = data.second_factor_at.into_iter().chain(data.first_factor_at).max().unwrap_or(now);
    let first = match (data.first_factor_at, data.passkey_login || data.second_factor_method == Some(Method::Passkey)) {
        (None, _) => FirstFactor::None,
        (Some(_), true) => FirstFactor::Passkey,
        (Some(_), false) => FirstFactor::Password,
    };
    let second = data.second_factor_method.filter(|m| data.second_factor_at.is_some() && *m != Method::Passkey);
    // A passkey that counted as both factors verified the user too (PIN or biometrics).
    let mut methods = amr(second, first);
    if data.second_factor_method == Some(Method::Passkey) && data.second_factor_at.is_some() {
        methods.push("mfa".to_string());
    }
    Ok(Authentication { username: data.username.clone(), subject, auth_time, acr: acr(&methods), amr: methods })
}

/// When `url` is this provider's authorization endpoint naming a client (or its device
/// verification page), the level that client requires of the user (`Some(None)`:
/// denied); `None` for any other URL. Only steers the portal after the first factor: the
/// endpoint checks again.
pub fn level_for_target(app: &App, url: &url::Url, username: &str, groups: &[String]) -> Option<Option<AuthLevel>> {
    let provider = app.services.oidc.as_deref()?;
    let path = url.path().strip_prefix(app.base_path.as_str()).unwrap_or(url.path());
    let client_id = url.query_pairs().find(|(k, _)| k == "client_id").map(|(_, v)| v.into_owned());
    if path == paths::DEVICE_VERIFICATION {
        // Entering a device's user code needs one factor; once the code named its
        // client, that client's policy.
        return match client_id.and_then(|id| provider.clients.get(&id)) {
            Some(client) => Some(client.required_level(username, groups)),
            None => Some(Some(AuthLevel::OneFactor)),
        };
    }
    if path != paths::AUTHORIZATION && path != "/oauth/authorize" {
        return None;
    }
    let client = provider.clients.get(&client_id?)?;
    Some(client.required_level(username, groups))
}
