//! The device authorization grant (RFC 8628): a device without a browser (a television,
//! a command-line tool, a PAM module) asks for a device code and a user code; the user
//! signs in at the portal on another device, types the user code, sees which client asks
//! for what and decides; meanwhile the device polls the token endpoint, which answers
//! `authorization_pending` / `slow_down` until the decision, then the tokens once
//! (`access_denied` or `expired_token` otherwise).
//!
//! Consent is always asked, whatever the client's consent mode (as Authelia does): the
//! user code is the only link between the device and the user, and a user tricked into
//! typing someone else's code must see what they are approving. Wrong codes are counted
//! per user and per address ([`crate::oidc::device::USER_CODE_FAILURES`]), and entering
//! codes is locked at the limit.

use std::collections::HashMap;

use serde::Serialize;

use super::token::{TokenResponse, authenticate, invalid_grant, tokens_for};
use super::{Grant, Issuing, OAuthError, provider, server_error};
use crate::clock::now;
use crate::flows::Caller;
use crate::oidc::device::{self, DEVICE_CODE_GRANT, LIFESPAN_GRANT, Poll, Status};
use crate::oidc::request::AuthRequest;
use crate::oidc::{Client, Kind, Lifespan, Provider, paths};
use crate::server::App;
use crate::session::AuthLevel;
use crate::storage::{DeviceCodeRecord, OidcConsent, StorageError};

/// The device authorization endpoint's answer (RFC 8628 §3.2).
#[derive(Debug, Serialize)]
pub struct DeviceAuthorization {
    /// What the device polls the token endpoint with.
    pub device_code: String,
    /// What the user types, `BCDF-GHJK`.
    pub user_code: String,
    /// The portal page where the user types it.
    pub verification_uri: String,
    /// The same page with the code filled in (for a QR code or a link).
    pub verification_uri_complete: String,
    /// Seconds until both codes expire.
    pub expires_in: i64,
    /// Seconds the device waits between polls.
    pub interval: i64,
}

/// Starts a device authorization for the client authenticating with `authorization` and
/// `form` (as at the token endpoint), from client address `ip`.
pub async fn start(
    app: &App,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
    ip: &str,
) -> Result<DeviceAuthorization, OAuthError> {
    let provider = provider(app)?;
    let client = authenticate(app, provider, authorization, form, issuer).await?;
    let refused = |e: OAuthError| {
        tracing::info!(client_id = client.id(), error = e.code, description = %e.description, "OpenID Connect device authorization refused");
        e
    };
    if !client.grant_allowed(DEVICE_CODE_GRANT) {
        return Err(refused(OAuthError::new("unauthorized_client", "the client may not use the device code grant")));
    }
    let now = now();
    // Each device authorization is a row, as each pending browser authorization is.
    if app.services.oidc_flow_limiter.hit(&app.services.sessions, ip, now).await.is_err() {
        tracing::warn!(client_id = client.id(), ip, "too many pending OpenID Connect authorizations from one address");
        return Err(OAuthError::new(
            "temporarily_unavailable",
            "too many device authorization requests; try again later",
        ));
    }
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    if let Err(scope) = client.scopes_allowed(scopes.iter().map(String::as_str)) {
        return Err(refused(OAuthError::new(
            "invalid_scope",
            format!("scope '{scope}' is not allowed for this client"),
        )));
    }
    let mut audience = vec![client.id().to_string()];
    for a in form.get("audience").map(|s| s.split(' ').filter(|s| !s.is_empty())).into_iter().flatten() {
        if !client.config.audience.iter().any(|allowed| allowed == a) {
            return Err(refused(OAuthError::new("invalid_request", "audience not allowed for this client")));
        }
        if !audience.iter().any(|x| x == a) {
            audience.push(a.to_string());
        }
    }
    let request = AuthRequest {
        client_id: client.id().to_string(),
        scopes: scopes.clone(),
        requested_at: now,
        ..AuthRequest::default()
    };
    // While pending, the grant has no user; the decision fills it in.
    let pending = Grant { request, scopes, audience, client_id: client.id().to_string(), ..Grant::default() };
    let data =
        serde_json::to_string(&pending).map_err(|_| OAuthError::new("server_error", "cannot keep the request"))?;
    let lifespan = provider.lifespan(client, LIFESPAN_GRANT, Lifespan::DeviceCode);
    // A user code drawn twice (one in 2^34 per waiting session) is drawn again.
    for _ in 0..3 {
        let user_code = device::new_user_code();
        let (device_code, device_signature) = provider.minter.mint(Kind::Device);
        let record = DeviceCodeRecord {
            device_signature,
            user_code_signature: provider.minter.user_code_signature(&user_code),
            client_id: client.id().to_string(),
            chain_id: crate::oidc::tokens::random_id(),
            status: Status::Pending.as_str().to_string(),
            subject: String::new(),
            data: data.clone(),
            poll_interval: device::POLL_INTERVAL_SECS,
            last_polled_at: None,
            created_at: now,
            expires_at: now.saturating_add(lifespan),
            decided_at: None,
            consumed_at: None,
        };
        match app.services.storage.oidc_device_insert(record).await {
            Ok(()) => {}
            Err(StorageError::Duplicate) => continue,
            Err(e) => return Err(server_error(&e)),
        }
        let shown = device::display(&user_code);
        let verification_uri = format!("{issuer}{}", paths::DEVICE_VERIFICATION);
        let q: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("user_code", &shown).finish();
        tracing::info!(client_id = client.id(), "OpenID Connect device authorization started");
        return Ok(DeviceAuthorization {
            device_code,
            user_code: shown,
            verification_uri_complete: format!("{verification_uri}?{q}"),
            verification_uri,
            expires_in: lifespan,
            interval: device::POLL_INTERVAL_SECS,
        });
    }
    Err(OAuthError::new("server_error", "could not draw a unique user code"))
}

/// The token endpoint's device code grant: a poll by `client` (authenticated already).
pub(super) async fn exchange(
    app: &App,
    provider: &Provider,
    client: &Client,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    let value = form.get("device_code").map(String::as_str).unwrap_or_default();
    if value.is_empty() {
        return Err(OAuthError::new("invalid_request", "device_code is required"));
    }
    let signature = provider.minter.verify(Kind::Device, value).ok_or_else(|| invalid_grant("unknown device code"))?;
    let storage = &app.services.storage;
    let record = storage
        .oidc_device_by_device_code(&signature)
        .await
        .map_err(|e| server_error(&e))?
        .ok_or_else(|| invalid_grant("unknown device code"))?;
    if record.client_id != client.id() {
        return Err(invalid_grant("the device code was issued to another client"));
    }
    let now = now();
    let status = Status::parse(&record.status);
    match device::poll(status, record.expires_at, record.last_polled_at, record.poll_interval, now) {
        Poll::Pending => {
            storage.oidc_device_polled(&signature, now, false, 0).await.map_err(|e| server_error(&e))?;
            Err(OAuthError::new("authorization_pending", "the user has not decided yet"))
        }
        Poll::SlowDown => {
            storage
                .oidc_device_polled(&signature, now, true, device::SLOW_DOWN_STEP_SECS)
                .await
                .map_err(|e| server_error(&e))?;
            let interval = record.poll_interval.saturating_add(device::SLOW_DOWN_STEP_SECS);
            Err(OAuthError::new("slow_down", format!("polled too fast; wait {interval} seconds between polls")))
        }
        Poll::Denied => Err(OAuthError::new("access_denied", "the user refused the request")),
        Poll::Expired => Err(OAuthError::new("expired_token", "the device code expired")),
        Poll::Replayed => Err(replayed(app, client, &record, now).await),
        Poll::Take => {
            if !storage.oidc_device_take(&signature, now).await.map_err(|e| server_error(&e))? {
                // Another poll took it a moment ago: this one is a copy.
                return Err(replayed(app, client, &record, now).await);
            }
            let grant: Grant =
                serde_json::from_str(&record.data).map_err(|_| OAuthError::new("server_error", "unreadable grant"))?;
            let at = Issuing { app, provider, client, issuer, now };
            tokens_for(&at, &grant, LIFESPAN_GRANT, &record.chain_id).await
        }
    }
}

/// A device code used twice: someone has a copy, so what it produced is revoked.
async fn replayed(app: &App, client: &Client, record: &DeviceCodeRecord, now: i64) -> OAuthError {
    match app.services.storage.oidc_revoke_chain(&record.chain_id, &[], now).await {
        Ok(revoked) => {
            tracing::warn!(client_id = client.id(), revoked, "device code replayed: its tokens are revoked");
            invalid_grant("the device code was used already")
        }
        Err(e) => server_error(&e),
    }
}

/// How long entering codes stays locked after a limiter's refusal (a minute when the
/// shared counts cannot be read: locked, not open).
fn lock_time(limited: crate::identity::rate_limit::Limited) -> i64 {
    match limited {
        crate::identity::rate_limit::Limited::Over { retry_after } => retry_after,
        crate::identity::rate_limit::Limited::Unavailable(e) => {
            tracing::warn!(error = %e, "user code limits cannot be read; entering codes is refused");
            60
        }
    }
}

/// What the verification page shows next.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Sign in (again, at a higher level) first: the portal's login, coming back here.
    SignIn(String),
    /// The consent question for the device's client.
    Consent(DeviceConsent),
    /// A wrong, expired or used code: the form again, with a message.
    Unknown,
    /// Too many wrong codes: entering codes is locked for this many seconds.
    Locked(i64),
    /// The decision is recorded; the device gets its answer at its next poll.
    Decided {
        /// Approved (or denied).
        approved: bool,
        /// The client's name.
        client_name: String,
    },
    /// The user may not use this client: the device is told `access_denied`.
    Forbidden {
        /// The client's name.
        client_name: String,
    },
    /// The operation could not be done (storage, users backend).
    Failed(String),
}

/// What the consent question shows: who asks, for what, with which code.
#[derive(Debug, PartialEq, Eq)]
pub struct DeviceConsent {
    /// The client's name.
    pub client_name: String,
    /// The client's ID.
    pub client_id: String,
    /// Scopes asked for.
    pub scopes: Vec<String>,
    /// The user code, as the device shows it.
    pub user_code: String,
}

/// The verification page's URL, with the code and (once known) the client, so that the
/// login coming back to it asks for the client's level.
fn verification_url(issuer: &str, user_code: &str, client_id: Option<&str>) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    if !user_code.is_empty() {
        q.append_pair("user_code", user_code);
    }
    if let Some(id) = client_id {
        q.append_pair("client_id", id);
    }
    let q = q.finish();
    let base = format!("{issuer}{}", paths::DEVICE_VERIFICATION);
    if q.is_empty() { base } else { format!("{base}?{q}") }
}

/// The portal's login page, coming back to `target` afterwards.
fn login_url(issuer: &str, target: &str) -> String {
    let rd: String = url::form_urlencoded::Serializer::new(String::new()).append_pair("rd", target).finish();
    format!("{issuer}/login?{rd}")
}

/// Where a visitor of the verification page who is not signed in goes: the login,
/// coming back here with what was typed.
pub fn sign_in_first(caller: &Caller<'_>, typed: &str, issuer: &str) -> Option<String> {
    (caller.level() < AuthLevel::OneFactor).then(|| login_url(issuer, &verification_url(issuer, typed, None)))
}

/// The limiter keys of this caller.
fn limiter_keys(caller: &Caller<'_>) -> [String; 2] {
    [format!("user:{}", caller.username()), format!("ip:{}", caller.ip_text())]
}

/// A pending session found by the user code the caller typed, with its client, once the
/// caller is signed in at the client's level; or what to show instead.
struct Found<'p> {
    record: DeviceCodeRecord,
    user_code_signature: String,
    client: &'p Client,
    shown: String,
}

async fn find<'p>(
    app: &App,
    provider: &'p Provider,
    caller: &Caller<'_>,
    typed: &str,
    issuer: &str,
    now: i64,
) -> Result<Found<'p>, Verification> {
    if let Some(login) = sign_in_first(caller, typed, issuer) {
        return Err(Verification::SignIn(login));
    }
    let limiter = &app.services.oidc_user_code_limiter;
    let keys = limiter_keys(caller);
    let sessions = &app.services.sessions;
    for key in &keys {
        if let Err(limited) = limiter.blocked(sessions, key, now).await {
            return Err(Verification::Locked(lock_time(limited)));
        }
    }
    let wrong = async || {
        let mut locked = None;
        for key in &keys {
            if let Err(limited) = limiter.hit(sessions, key, now).await {
                locked = Some(lock_time(limited));
            }
        }
        tracing::info!(username = caller.username(), ip = %caller.ip_text(), locked = locked.is_some(), "OpenID Connect device user code not recognised");
        locked.map_or(Verification::Unknown, Verification::Locked)
    };
    let Some(normalized) = device::normalize(typed) else { return Err(wrong().await) };
    let user_code_signature = provider.minter.user_code_signature(&normalized);
    let record = app.services.storage.oidc_device_by_user_code(&user_code_signature).await;
    let record = record.map_err(|e| Verification::Failed(server_error(&e).description))?;
    let Some(record) = record.filter(|r| Status::parse(&r.status) == Status::Pending && now < r.expires_at) else {
        return Err(wrong().await);
    };
    let Some(client) = provider.clients.get(&record.client_id) else { return Err(wrong().await) };
    let shown = device::display(&normalized);
    let data = caller.data().filter(|d| !d.username.is_empty());
    let (username, groups) = data.map(|d| (d.username.as_str(), d.groups.as_slice())).unwrap_or_default();
    match client.required_level(username, groups) {
        None => {
            // The user may not use this client: the device learns it at once.
            let decided = app
                .services
                .storage
                .oidc_device_decide(&user_code_signature, Status::Denied.as_str(), username, "{}", now)
                .await;
            decided.map_err(|e| Verification::Failed(server_error(&e).description))?;
            tracing::info!(
                client_id = client.id(),
                username,
                "OpenID Connect device authorization denied by the client's policy"
            );
            return Err(Verification::Forbidden { client_name: client.name().to_string() });
        }
        Some(required) if caller.level() < required => {
            return Err(Verification::SignIn(login_url(issuer, &verification_url(issuer, &shown, Some(client.id())))));
        }
        Some(_) => {}
    }
    Ok(Found { record, user_code_signature, client, shown })
}

/// The user typed (or confirmed) a user code: the consent question for its device.
pub async fn lookup(app: &App, caller: &Caller<'_>, typed: &str, issuer: &str) -> Verification {
    let provider = match provider(app) {
        Ok(p) => p,
        Err(e) => return Verification::Failed(e.description),
    };
    match find(app, provider, caller, typed, issuer, now()).await {
        Ok(found) => {
            let pending: Grant = serde_json::from_str(&found.record.data).unwrap_or_default();
            Verification::Consent(DeviceConsent {
                client_name: found.client.name().to_string(),
                client_id: found.client.id().to_string(),
                scopes: pending.scopes,
                user_code: found.shown,
            })
        }
        Err(v) => v,
    }
}

/// The user's decision on the device of a user code: recorded (with the grant, when
/// allowed) for the device's next poll, and as a consent decision.
pub async fn decide(app: &App, caller: &Caller<'_>, typed: &str, accept: bool, issuer: &str) -> Verification {
    let provider = match provider(app) {
        Ok(p) => p,
        Err(e) => return Verification::Failed(e.description),
    };
    let now = now();
    let found = match find(app, provider, caller, typed, issuer, now).await {
        Ok(found) => found,
        Err(v) => return v,
    };
    let Some(data) = caller.data() else { return Verification::Failed("The session is gone.".into()) };
    let client = found.client;
    let Ok(mut grant) = serde_json::from_str::<Grant>(&found.record.data) else {
        return Verification::Failed("The device's request is unreadable.".into());
    };
    let (status, stored) = if accept {
        grant.auth = match super::authorize::authentication(app, client, data, now).await {
            Ok(auth) => auth,
            Err(e) => return Verification::Failed(e.description),
        };
        match serde_json::to_string(&grant) {
            Ok(json) => (Status::Approved, json),
            Err(_) => return Verification::Failed("The grant cannot be recorded.".into()),
        }
    } else {
        (Status::Denied, "{}".to_string())
    };
    let storage = &app.services.storage;
    match storage.oidc_device_decide(&found.user_code_signature, status.as_str(), &data.username, &stored, now).await {
        Ok(true) => {}
        Ok(false) => return Verification::Unknown,
        Err(e) => return Verification::Failed(server_error(&e).description),
    }
    let consent = OidcConsent {
        username: data.username.clone(),
        client_id: client.id().to_string(),
        scopes: grant.scopes.join(" "),
        granted: accept,
        created_at: now,
        expires_at: None,
    };
    if let Err(e) = storage.oidc_consent_insert(consent).await {
        // The decision stands (the device gets it); only its record is missing.
        tracing::error!(error = %e, "cannot record an OpenID Connect device consent decision");
    }
    tracing::info!(client_id = client.id(), username = %data.username, accept, "OpenID Connect device authorization decided");
    Verification::Decided { approved: accept, client_name: client.name().to_string() }
}
