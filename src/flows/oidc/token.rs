//! The token endpoint: client authentication, then the authorization code grant (single
//! use, bound to its client, redirect URI and PKCE challenge; a replayed code revokes
//! everything issued from it), the refresh token grant (rotation; a rotated-out refresh
//! token presented again revokes the whole chain), the client credentials grant, and the
//! device code grant (its polling in `device`).
//! Pushed authorization requests are stored here too (they authenticate the same way).

use std::collections::HashMap;

use serde::Serialize;
use subtle::ConstantTimeEq;

use super::{Grant, Issuing, OAuthError, grant_of, issue_access_token, issue_refresh_token, provider, server_error};
use crate::clock::now;
use crate::oidc::client_auth::{self, Presented};
use crate::oidc::device::DEVICE_CODE_GRANT;
use crate::oidc::request::{self, PAR_URN_PREFIX, Refusal};
use crate::oidc::{Client, Kind, Provider, paths, pkce};
use crate::server::App;
use crate::storage::{Consumed, OidcRecord, StorageError};

/// How long a pushed request's `request_uri` lives.
pub const PAR_LIFESPAN_SECS: i64 = 90;

/// The token endpoint's answer.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// Scopes granted.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub scope: String,
    /// The refresh token, when one is issued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// The ID token, for `openid` grants.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
}

/// The audiences a client assertion may name: the token endpoint (and its alias) and the
/// issuer.
fn assertion_audiences(issuer: &str) -> Vec<String> {
    vec![
        format!("{issuer}{}", paths::TOKEN),
        format!("{issuer}/oauth/token"),
        format!("{issuer}{}", paths::PAR),
        format!("{issuer}{}", paths::DEVICE_AUTHORIZATION),
        format!("{issuer}{}", paths::INTROSPECTION),
        format!("{issuer}{}", paths::REVOCATION),
        issuer.to_string(),
    ]
}

/// Authenticates the client of a request with `authorization` header and `form`.
pub async fn authenticate<'p>(
    app: &App,
    provider: &'p Provider,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<&'p Client, OAuthError> {
    let presented = client_auth::presented(authorization, form)?;
    let refused = |why: &str| {
        tracing::info!(client_id = presented.client_id(), reason = why, "OpenID Connect client authentication failed");
        OAuthError::new("invalid_client", "client authentication failed")
    };
    let Some(client) = provider.clients.get(presented.client_id()) else { return Err(refused("unknown client")) };
    let method = presented.method(client);
    if method != client.auth_method {
        return Err(refused("the client used another authentication method than registered"));
    }
    match &presented {
        Presented::Basic { secret, .. } | Presented::Post { secret, .. } => {
            let stored = client.config.client_secret.expose();
            let ok = if stored.starts_with('$') {
                app.services.hashing.verify(secret, stored).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot check a client secret");
                    OAuthError::new("server_error", "cannot check the client secret now")
                })?
            } else {
                !stored.is_empty() && bool::from(stored.as_bytes().ct_eq(secret.as_bytes()))
            };
            if !ok {
                return Err(refused("wrong secret"));
            }
        }
        Presented::Assertion { assertion, .. } => {
            let verified = client_auth::verify_assertion(client, assertion, &assertion_audiences(issuer))
                .map_err(|e| refused(&e.description))?;
            // Each assertion is accepted once (RFC 7523 §3): its jti is recorded until it expires.
            let signature = provider.minter.jwt_signature(&format!("assertion:{}:{}", client.id(), verified.jti));
            let record = OidcRecord {
                signature,
                kind: "jti".into(),
                chain_id: String::new(),
                client_id: client.id().to_string(),
                subject: String::new(),
                data: String::new(),
                created_at: now(),
                expires_at: verified.exp.max(now() + 60),
                consumed_at: None,
                revoked_at: None,
            };
            match app.services.storage.oidc_insert(record).await {
                Ok(()) => {}
                Err(StorageError::Duplicate) => return Err(refused("replayed client assertion")),
                Err(e) => return Err(server_error(&e)),
            }
        }
        Presented::IdOnly { .. } => {}
    }
    Ok(client)
}

/// Answers a token request.
pub async fn exchange(
    app: &App,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    let provider = provider(app)?;
    let client = authenticate(app, provider, authorization, form, issuer).await?;
    let grant_type = form.get("grant_type").map(String::as_str).unwrap_or_default();
    let result = match grant_type {
        "" => Err(OAuthError::new("invalid_request", "grant_type is required")),
        g if !client.grant_allowed(g) || g == "implicit" => {
            Err(OAuthError::new("unauthorized_client", "the client may not use this grant type"))
        }
        "authorization_code" => authorization_code(app, provider, client, form, issuer).await,
        "refresh_token" => refresh(app, provider, client, form, issuer).await,
        "client_credentials" => client_credentials(app, provider, client, form, issuer).await,
        DEVICE_CODE_GRANT => super::device::exchange(app, provider, client, form, issuer).await,
        _ => Err(OAuthError::new("unsupported_grant_type", "unsupported grant_type")),
    };
    match &result {
        Ok(_) => tracing::info!(client_id = client.id(), grant_type, "OpenID Connect tokens issued"),
        Err(e) => tracing::info!(
            client_id = client.id(),
            grant_type,
            error = e.code,
            description = %e.description,
            "OpenID Connect token request refused"
        ),
    }
    result
}

pub(super) fn invalid_grant(description: &str) -> OAuthError {
    OAuthError::new("invalid_grant", description)
}

async fn authorization_code(
    app: &App,
    provider: &Provider,
    client: &Client,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    let get = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let now = now();
    let signature = provider.minter.verify(Kind::Code, get("code")).ok_or_else(|| invalid_grant("unknown code"))?;
    let record = match app.services.storage.oidc_consume(Kind::Code.as_str(), &signature, now).await {
        Ok(Consumed::Taken(record)) => record,
        Ok(Consumed::Spent(record)) => {
            if record.consumed_at.is_some() && record.client_id == client.id() {
                // A code used twice: someone has a copy; everything issued from it goes.
                let revoked = app
                    .services
                    .storage
                    .oidc_revoke_chain(&record.chain_id, &[], now)
                    .await
                    .map_err(|e| server_error(&e))?;
                tracing::warn!(client_id = client.id(), revoked, "authorization code replayed: its tokens are revoked");
                return Err(invalid_grant("the code was used already"));
            }
            return Err(invalid_grant("the code expired"));
        }
        Ok(Consumed::Missing) => return Err(invalid_grant("unknown code")),
        Err(e) => return Err(server_error(&e)),
    };
    if record.client_id != client.id() {
        return Err(invalid_grant("the code was issued to another client"));
    }
    let grant = grant_of(&record)?;
    let request = &grant.request;
    // Named in the authorization request: required and equal; not named: equal if given.
    let given = get("redirect_uri");
    if (request.redirect_uri_given || !given.is_empty()) && given != request.redirect_uri {
        return Err(invalid_grant("redirect_uri does not match the authorization request"));
    }
    let verifier = get("code_verifier");
    match (request.code_challenge.is_empty(), verifier.is_empty()) {
        (true, true) => {}
        (true, false) => return Err(invalid_grant("code_verifier without a code_challenge")),
        (false, true) => return Err(invalid_grant("code_verifier is required")),
        (false, false) => {
            if !pkce::verify(&request.code_challenge_method, &request.code_challenge, verifier) {
                return Err(invalid_grant("code_verifier does not match the code_challenge"));
            }
        }
    }
    let at = Issuing { app, provider, client, issuer, now };
    tokens_for(&at, &grant, "authorization_code", &record.chain_id).await
}

/// The access token, refresh token (with `offline_access` and the refresh grant) and ID
/// token (with `openid`) of a user grant: the authorization code and device code grants
/// both end here.
pub(super) async fn tokens_for(
    at: &Issuing<'_>,
    grant: &Grant,
    grant_type: &str,
    chain_id: &str,
) -> Result<TokenResponse, OAuthError> {
    let (app, client, now) = (at.app, at.client, at.now);
    let Some(profile) = super::profile(app, &grant.auth.username).await? else {
        app.services.storage.oidc_revoke_chain(chain_id, &[], now).await.map_err(|e| server_error(&e))?;
        return Err(invalid_grant("the user no longer exists or is disabled"));
    };
    let access = issue_access_token(at, grant, grant_type, chain_id).await?;
    let has = |s: &str| grant.scopes.iter().any(|x| x == s);
    let refresh_token = if has("offline_access") && client.grant_allowed("refresh_token") {
        Some(issue_refresh_token(at, grant, grant_type, chain_id).await?)
    } else {
        None
    };
    let id_token =
        if has("openid") { Some(super::id_token(at, grant, &profile, (&access.value, ""), grant_type)?) } else { None };
    Ok(TokenResponse {
        access_token: access.value,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope: grant.scopes.join(" "),
        refresh_token,
        id_token,
    })
}

async fn refresh(
    app: &App,
    provider: &Provider,
    client: &Client,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    let now = now();
    let token = form.get("refresh_token").map(String::as_str).unwrap_or_default();
    let signature =
        provider.minter.verify(Kind::Refresh, token).ok_or_else(|| invalid_grant("unknown refresh token"))?;
    let storage = &app.services.storage;
    let record = match storage.oidc_consume(Kind::Refresh.as_str(), &signature, now).await {
        Ok(Consumed::Taken(record)) => record,
        Ok(Consumed::Spent(record)) => {
            if record.consumed_at.is_some() && record.revoked_at.is_none() {
                // A rotated-out refresh token: it was copied; the whole chain goes.
                let revoked =
                    storage.oidc_revoke_chain(&record.chain_id, &[], now).await.map_err(|e| server_error(&e))?;
                tracing::warn!(client_id = %record.client_id, revoked, "refresh token reused: its chain is revoked");
            }
            return Err(invalid_grant("the refresh token is no longer valid"));
        }
        Ok(Consumed::Missing) => return Err(invalid_grant("unknown refresh token")),
        Err(e) => return Err(server_error(&e)),
    };
    if record.client_id != client.id() {
        return Err(invalid_grant("the refresh token was issued to another client"));
    }
    let mut grant = grant_of(&record)?;
    if let Some(scope) = form.get("scope").filter(|s| !s.is_empty()) {
        let asked: Vec<String> = scope.split(' ').filter(|s| !s.is_empty()).map(String::from).collect();
        if asked.iter().any(|s| !grant.scopes.contains(s)) {
            return Err(OAuthError::new("invalid_scope", "a refresh cannot widen the scopes"));
        }
        grant.scopes = asked;
    }
    // The access tokens of the rotated refresh token end with it.
    storage.oidc_revoke_chain(&record.chain_id, &[Kind::Access.as_str()], now).await.map_err(|e| server_error(&e))?;
    let at = Issuing { app, provider, client, issuer, now };
    tokens_for(&at, &grant, "refresh_token", &record.chain_id).await
}

async fn client_credentials(
    app: &App,
    provider: &Provider,
    client: &Client,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<TokenResponse, OAuthError> {
    if client.is_public() {
        return Err(OAuthError::new("unauthorized_client", "public clients cannot use client credentials"));
    }
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    if scopes.iter().any(|s| s == "openid" || s == "offline_access") {
        return Err(OAuthError::new("invalid_scope", "openid and offline_access need a user"));
    }
    if let Err(scope) = client.scopes_allowed(scopes.iter().map(String::as_str)) {
        return Err(OAuthError::new("invalid_scope", format!("scope '{scope}' is not allowed for this client")));
    }
    let mut audience: Vec<String> = form
        .get("audience")
        .map(|s| s.split(' ').filter(|s| !s.is_empty()).map(String::from).collect())
        .unwrap_or_default();
    if audience.iter().any(|a| !client.config.audience.contains(a)) {
        return Err(OAuthError::new("invalid_request", "audience not allowed for this client"));
    }
    if audience.is_empty() {
        audience.push(client.id().to_string());
    }
    let now = now();
    let grant = Grant { scopes, audience, client_id: client.id().to_string(), ..Grant::default() };
    let chain_id = crate::oidc::tokens::random_id();
    let at = Issuing { app, provider, client, issuer, now };
    let access = issue_access_token(&at, &grant, "client_credentials", &chain_id).await?;
    Ok(TokenResponse {
        access_token: access.value,
        token_type: "Bearer",
        expires_in: access.expires_in,
        scope: grant.scopes.join(" "),
        refresh_token: None,
        id_token: None,
    })
}

/// The answer of a pushed authorization request (RFC 9126).
#[derive(Debug, Serialize)]
pub struct PushedResponse {
    /// Use as `request_uri` at the authorization endpoint.
    pub request_uri: String,
    /// Seconds it stays valid.
    pub expires_in: i64,
}

/// Stores a pushed authorization request after authenticating its client.
pub async fn push(
    app: &App,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<PushedResponse, OAuthError> {
    let provider = provider(app)?;
    let client = authenticate(app, provider, authorization, form, issuer).await?;
    if form.contains_key("request_uri") {
        return Err(OAuthError::new("invalid_request", "request_uri cannot be pushed"));
    }
    let now = now();
    let mut params = form.clone();
    params.insert("client_id".into(), client.id().to_string());
    let request = match request::parse(provider, &params, true, now) {
        Ok(r) => r,
        Err(Refusal::Page(why)) => return Err(OAuthError::new("invalid_request", why)),
        Err(Refusal::Redirect { error, .. }) => return Err(error),
    };
    let (value, signature) = provider.minter.mint(Kind::Par);
    let data =
        serde_json::to_string(&request).map_err(|_| OAuthError::new("server_error", "cannot keep the request"))?;
    let record = OidcRecord {
        signature,
        kind: Kind::Par.as_str().into(),
        chain_id: String::new(),
        client_id: client.id().to_string(),
        subject: String::new(),
        data,
        created_at: now,
        expires_at: now + PAR_LIFESPAN_SECS,
        consumed_at: None,
        revoked_at: None,
    };
    app.services.storage.oidc_insert(record).await.map_err(|e| server_error(&e))?;
    tracing::info!(client_id = client.id(), "OpenID Connect authorization request pushed");
    Ok(PushedResponse { request_uri: format!("{PAR_URN_PREFIX}{value}"), expires_in: PAR_LIFESPAN_SECS })
}
