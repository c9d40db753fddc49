//! What a token is worth: UserInfo (the user's claims by the token's scopes),
//! introspection (RFC 7662), revocation (RFC 7009), and the identity a bearer token
//! stands for at the authorization endpoints.

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::{Grant, OAuthError, grant_of, provider, server_error};
use crate::clock::now;
use crate::oidc::{Kind, Provider};
use crate::server::App;
use crate::storage::OidcRecord;

/// A usable access token's record and grant.
pub struct ActiveToken {
    /// The stored record.
    pub record: OidcRecord,
    /// What it grants.
    pub grant: Grant,
}

/// The signature an access token is recorded under: the HMAC of an opaque token, or the
/// `jti` of a JWT access token signed by one of the provider's keys.
fn access_signature(provider: &Provider, token: &str) -> Option<String> {
    if let Some(signature) = provider.minter.verify(Kind::Access, token) {
        return Some(signature);
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = provider.keys.select(header.kid.as_deref().unwrap_or_default(), "")?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(key.alg);
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "jti"]);
    let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation).ok()?;
    let jti = data.claims.get("jti")?.as_str()?;
    Some(provider.minter.jwt_signature(jti))
}

/// The access token's record while it is usable (not expired, not revoked).
pub async fn active_access_token(app: &App, token: &str) -> Result<Option<ActiveToken>, OAuthError> {
    let provider = provider(app)?;
    let Some(signature) = access_signature(provider, token) else { return Ok(None) };
    let record =
        app.services.storage.oidc_get(Kind::Access.as_str(), &signature).await.map_err(|e| server_error(&e))?;
    let Some(record) = record.filter(|r| r.revoked_at.is_none() && now() < r.expires_at) else { return Ok(None) };
    let grant = grant_of(&record)?;
    Ok(Some(ActiveToken { record, grant }))
}

/// Why UserInfo refused a token.
#[derive(Debug)]
pub enum UserInfoError {
    /// Missing, unknown, expired or revoked token, or one without a user (RFC 6750).
    InvalidToken,
    /// The token lacks the `openid` scope.
    InsufficientScope,
    /// A fault.
    Server(OAuthError),
}

/// The claims UserInfo answers for `token`, and the client the token was issued to.
pub async fn userinfo(app: &App, token: &str) -> Result<(Map<String, Value>, String), UserInfoError> {
    let active = active_access_token(app, token).await.map_err(UserInfoError::Server)?;
    let Some(active) = active.filter(|a| !a.grant.auth.username.is_empty()) else {
        return Err(UserInfoError::InvalidToken);
    };
    if !active.grant.scopes.iter().any(|s| s == "openid") {
        return Err(UserInfoError::InsufficientScope);
    }
    let profile = super::profile(app, &active.grant.auth.username).await.map_err(UserInfoError::Server)?;
    let Some(profile) = profile else { return Err(UserInfoError::InvalidToken) };
    let mut claims = crate::oidc::claims::scoped_claims(&profile, &active.grant.scopes);
    claims.insert("sub".into(), json!(active.grant.auth.subject));
    Ok((claims, active.grant.client_id))
}

/// The UserInfo answer as a signed JWT (`application/jwt`) when the client registered a
/// `userinfo_signed_response_alg`; `None` for plain JSON.
pub fn signed_userinfo(
    app: &App,
    client_id: &str,
    claims: &Map<String, Value>,
    issuer: &str,
) -> Result<Option<String>, OAuthError> {
    let provider = provider(app)?;
    let Some(client) = provider.clients.get(client_id) else { return Ok(None) };
    let alg = client.config.userinfo_signed_response_alg.as_str();
    if alg.is_empty() || alg == "none" {
        return Ok(None);
    }
    let key = provider
        .keys
        .select(&client.config.userinfo_signed_response_key_id, alg)
        .ok_or_else(|| OAuthError::new("server_error", "no signing key for UserInfo"))?;
    let mut signed = claims.clone();
    signed.insert("iss".into(), json!(issuer));
    signed.insert("aud".into(), json!([client_id]));
    signed.insert("iat".into(), json!(now()));
    // Short-lived: it answers this request only.
    signed.insert("exp".into(), json!(now() + 300));
    key.sign(&Value::Object(signed), None).map(Some).map_err(|e| {
        tracing::error!(error = %e, "cannot sign a UserInfo answer");
        OAuthError::new("server_error", "cannot sign the UserInfo answer")
    })
}

/// RFC 7662: whether `token` is active, and what it is, for an authenticated client.
pub async fn introspect(
    app: &App,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<Value, OAuthError> {
    let provider = provider(app)?;
    let client = super::token::authenticate(app, provider, authorization, form, issuer).await?;
    if client.is_public() {
        return Err(OAuthError::new("invalid_client", "public clients cannot introspect"));
    }
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    if token.is_empty() {
        return Err(OAuthError::new("invalid_request", "token is required"));
    }
    let now = now();
    let found = match active_access_token(app, token).await? {
        Some(active) => Some((active.record, "access_token")),
        None => match provider.minter.verify(Kind::Refresh, token) {
            Some(signature) => app
                .services
                .storage
                .oidc_get(Kind::Refresh.as_str(), &signature)
                .await
                .map_err(|e| server_error(&e))?
                .filter(|r| r.usable(now))
                .map(|r| (r, "refresh_token")),
            None => None,
        },
    };
    tracing::info!(client_id = client.id(), active = found.is_some(), "OpenID Connect token introspected");
    let Some((record, token_type)) = found else { return Ok(json!({"active": false})) };
    let grant = grant_of(&record)?;
    let subject = if grant.auth.username.is_empty() {
        format!("oauth2:client:{}", grant.client_id)
    } else {
        grant.auth.subject.clone()
    };
    let mut out = json!({
        "active": true,
        "client_id": grant.client_id,
        "scope": grant.scopes.join(" "),
        "exp": record.expires_at,
        "iat": record.created_at,
        "sub": subject,
        "aud": grant.audience,
        "iss": issuer,
        "token_type": if token_type == "access_token" { "Bearer" } else { "refresh_token" },
    });
    if !grant.auth.username.is_empty() {
        out["username"] = json!(grant.auth.username);
    }
    Ok(out)
}

/// RFC 7009: revokes `token` if it was issued to the authenticated client (a refresh
/// token takes its whole chain along). Unknown tokens are not an error.
pub async fn revoke(
    app: &App,
    authorization: Option<&str>,
    form: &HashMap<String, String>,
    issuer: &str,
) -> Result<(), OAuthError> {
    let provider = provider(app)?;
    let client = super::token::authenticate(app, provider, authorization, form, issuer).await?;
    let token = form.get("token").map(String::as_str).unwrap_or_default();
    let storage = &app.services.storage;
    let now = now();
    if let Some(signature) = provider.minter.verify(Kind::Refresh, token) {
        let record = storage.oidc_get(Kind::Refresh.as_str(), &signature).await.map_err(|e| server_error(&e))?;
        if let Some(record) = record.filter(|r| r.client_id == client.id()) {
            storage.oidc_revoke_chain(&record.chain_id, &[], now).await.map_err(|e| server_error(&e))?;
            tracing::info!(client_id = client.id(), "OpenID Connect refresh token revoked with its chain");
        }
    } else if let Some(signature) = access_signature(provider, token) {
        let record = storage.oidc_get(Kind::Access.as_str(), &signature).await.map_err(|e| server_error(&e))?;
        if let Some(record) = record.filter(|r| r.client_id == client.id()) {
            storage.oidc_revoke_signature(&record.signature, now).await.map_err(|e| server_error(&e))?;
            tracing::info!(client_id = client.id(), "OpenID Connect access token revoked");
        }
    }
    Ok(())
}

/// Who a bearer access token stands for at the authorization endpoints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BearerSubject {
    /// A user's token: the user's name.
    User(String),
    /// A client credentials token: the client's ID (subject `oauth2:client:<id>`).
    Client(String),
}

/// The identity of a usable access token, if it is one.
pub async fn bearer(app: &App, token: &str) -> Result<Option<(BearerSubject, Vec<String>)>, OAuthError> {
    let Some(active) = active_access_token(app, token).await? else { return Ok(None) };
    let grant = active.grant;
    Ok(Some(if grant.auth.username.is_empty() {
        (BearerSubject::Client(grant.client_id), grant.scopes)
    } else {
        (BearerSubject::User(grant.auth.username), grant.scopes)
    }))
}

/// What a valid `id_token_hint` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdTokenHint {
    /// The client it was issued to.
    pub client_id: String,
    /// The user's `sub` towards that client.
    pub subject: String,
}

/// Reads an ID token this provider signed (expired ones too, as RP-initiated logout
/// allows); `None` for anything else.
pub fn id_token_hint(provider: &Provider, token: &str, issuer: &str) -> Option<IdTokenHint> {
    if token.is_empty() {
        return None;
    }
    let header = jsonwebtoken::decode_header(token).ok()?;
    let key = provider.keys.select(header.kid.as_deref().unwrap_or_default(), "")?;
    let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).ok()?;
    let mut validation = jsonwebtoken::Validation::new(key.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["iss", "sub", "aud"]);
    validation.set_issuer(&[issuer]);
    let data = jsonwebtoken::decode::<Value>(token, &decoding, &validation).ok()?;
    let client_id = match &data.claims["aud"] {
        Value::String(s) => s.clone(),
        Value::Array(a) => a.first()?.as_str()?.to_string(),
        _ => return None,
    };
    Some(IdTokenHint { client_id, subject: data.claims["sub"].as_str()?.to_string() })
}
