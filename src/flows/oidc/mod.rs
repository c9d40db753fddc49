//! The OpenID Connect provider's operations: the authorization request through login and
//! consent to the code or tokens ([`authorize`]), the token endpoint's grants and client
//! authentication ([`token`]), the device authorization grant from the device's request
//! through the user's decision at the portal to the device's polls ([`device`]), and what
//! a token is worth ([`inspect`]: UserInfo, introspection, revocation, bearer tokens at
//! the authorization endpoints).
//!
//! Protocol errors are RFC 6749 error codes ([`OAuthError`]), not [`crate::flows::Error`]:
//! clients read them, not users. Each refusal is logged with the client ID.

pub mod authorize;
pub mod device;
pub mod inspect;
pub mod token;

use serde::{Deserialize, Serialize};

use crate::oidc::claims::Authentication;
use crate::oidc::request::AuthRequest;
pub use crate::oidc::request::OAuthError;
use crate::oidc::{Client, Kind, Lifespan, Provider};
use crate::server::App;
use crate::storage::{OidcRecord, StorageError};

/// What a code or token stands for: the request it came from, who authenticated, and
/// what was granted.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Grant {
    /// The authorization request (empty for client credentials).
    pub request: AuthRequest,
    /// The user's authentication (empty username for client credentials).
    pub auth: Authentication,
    /// Scopes granted.
    pub scopes: Vec<String>,
    /// Audiences.
    pub audience: Vec<String>,
    /// The client.
    pub client_id: String,
}

/// The provider, or the refusal every endpoint gives when it is off.
pub fn provider(app: &App) -> Result<&Provider, OAuthError> {
    app.services.oidc.as_deref().ok_or_else(|| OAuthError::new("server_error", "the provider is not enabled"))
}

/// The issuer for requests addressed to `host`: the portal URL of its cookie domain.
pub fn issuer(app: &App, host: &str) -> Option<String> {
    app.services
        .sessions
        .cookie_for_host(host)
        .map(|settings| settings.portal_url.as_str().trim_end_matches('/').to_string())
}

/// A storage fault as the protocol reports it (logged here).
pub fn server_error(e: &StorageError) -> OAuthError {
    tracing::error!(error = %e, "OpenID Connect provider: storage failed");
    OAuthError::new("server_error", "the server could not complete the request")
}

/// Who issues what to whom, and when: what every token minted for one request shares.
pub struct Issuing<'a> {
    /// The application.
    pub app: &'a App,
    /// The provider.
    pub provider: &'a Provider,
    /// The client the tokens are for.
    pub client: &'a Client,
    /// The issuer URL.
    pub issuer: &'a str,
    /// Now (Unix seconds).
    pub now: i64,
}

/// An issued access token.
pub struct IssuedToken {
    /// The token.
    pub value: String,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// Issues an access token for `grant` (opaque, or an RFC 9068 JWT when the client asks)
/// and records it under `chain_id`.
pub async fn issue_access_token(
    at: &Issuing<'_>,
    grant: &Grant,
    grant_type: &str,
    chain_id: &str,
) -> Result<IssuedToken, OAuthError> {
    let (app, provider, client, issuer, now) = (at.app, at.provider, at.client, at.issuer, at.now);
    let lifespan = provider.lifespan(client, grant_type, Lifespan::AccessToken);
    let (value, signature) = match client.config.access_token_signed_response_alg.as_str() {
        "none" | "" => provider.minter.mint(Kind::Access),
        alg => {
            let key = provider
                .keys
                .select(&client.config.access_token_signed_response_key_id, alg)
                .ok_or_else(|| OAuthError::new("server_error", "no signing key for the access token"))?;
            let jti = crate::oidc::tokens::random_id();
            let subject = if grant.auth.username.is_empty() { client.subject() } else { grant.auth.subject.clone() };
            let claims = serde_json::json!({
                "iss": issuer,
                "sub": subject,
                "aud": grant.audience,
                "exp": now + lifespan,
                "iat": now,
                "nbf": now,
                "jti": jti,
                "client_id": client.id(),
                "scope": grant.scopes.join(" "),
            });
            let token = key.sign(&claims, Some("at+jwt")).map_err(|e| {
                tracing::error!(error = %e, "cannot sign an access token");
                OAuthError::new("server_error", "cannot sign the access token")
            })?;
            (token, provider.minter.jwt_signature(&jti))
        }
    };
    let record = record(Kind::Access, signature, chain_id, grant, now, lifespan)?;
    app.services.storage.oidc_insert(record).await.map_err(|e| server_error(&e))?;
    Ok(IssuedToken { value, expires_in: lifespan })
}

/// Issues a refresh token for `grant` under `chain_id`.
pub async fn issue_refresh_token(
    at: &Issuing<'_>,
    grant: &Grant,
    grant_type: &str,
    chain_id: &str,
) -> Result<String, OAuthError> {
    let (app, provider, client, now) = (at.app, at.provider, at.client, at.now);
    let lifespan = provider.lifespan(client, grant_type, Lifespan::RefreshToken);
    let (value, signature) = provider.minter.mint(Kind::Refresh);
    let record = record(Kind::Refresh, signature, chain_id, grant, now, lifespan)?;
    app.services.storage.oidc_insert(record).await.map_err(|e| server_error(&e))?;
    Ok(value)
}

/// Signs an ID token for `grant`.
pub fn id_token(
    at: &Issuing<'_>,
    grant: &Grant,
    profile: &crate::oidc::claims::Profile,
    hashes: (&str, &str),
    grant_type: &str,
) -> Result<String, OAuthError> {
    let (provider, client, issuer, now) = (at.provider, at.client, at.issuer, at.now);
    let key = provider
        .keys
        .select(&client.config.id_token_signed_response_key_id, &client.config.id_token_signed_response_alg)
        .ok_or_else(|| OAuthError::new("server_error", "no signing key for the ID token"))?;
    let half = |v: &str| if v.is_empty() { String::new() } else { crate::oidc::tokens::half_hash(v, key.alg) };
    let (at_hash, c_hash) = (half(hashes.0), half(hashes.1));
    let claims = crate::oidc::claims::IdToken {
        issuer,
        client_id: client.id(),
        auth: &grant.auth,
        nonce: &grant.request.nonce,
        at_hash: &at_hash,
        c_hash: &c_hash,
        now,
        lifespan: provider.lifespan(client, grant_type, Lifespan::IdToken),
        extra: crate::oidc::claims::scoped_claims(profile, &grant.scopes),
    }
    .claims();
    key.sign(&claims, None).map_err(|e| {
        tracing::error!(error = %e, "cannot sign an ID token");
        OAuthError::new("server_error", "cannot sign the ID token")
    })
}

/// The record of a code or token.
pub fn record(
    kind: Kind,
    signature: String,
    chain_id: &str,
    grant: &Grant,
    now: i64,
    lifespan: i64,
) -> Result<OidcRecord, OAuthError> {
    let data = serde_json::to_string(grant).map_err(|_| OAuthError::new("server_error", "cannot record the grant"))?;
    Ok(OidcRecord {
        signature,
        kind: kind.as_str().to_string(),
        chain_id: chain_id.to_string(),
        client_id: grant.client_id.clone(),
        subject: grant.auth.username.clone(),
        data,
        created_at: now,
        expires_at: now.saturating_add(lifespan),
        consumed_at: None,
        revoked_at: None,
    })
}

/// The grant a record stands for.
pub fn grant_of(record: &OidcRecord) -> Result<Grant, OAuthError> {
    serde_json::from_str(&record.data).map_err(|_| OAuthError::new("server_error", "unreadable grant"))
}

/// The user's current attributes, or `None` when the user is gone or disabled.
pub async fn profile(app: &App, username: &str) -> Result<Option<crate::oidc::claims::Profile>, OAuthError> {
    let user = app.services.users.get(username).await.map_err(|e| {
        tracing::error!(error = %e, "OpenID Connect provider: users backend failed");
        OAuthError::new("server_error", "the users backend failed")
    })?;
    Ok(user.filter(|u| !u.disabled).map(|u| crate::oidc::claims::Profile {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        emails: u.emails.clone(),
        groups: u.groups.clone(),
    }))
}

/// The user's stable opaque `sub` towards `client`: one per sector (the host of the
/// client's `sector_identifier_uri`, pairwise), else the provider-wide one.
pub async fn subject(app: &App, client: &Client, username: &str) -> Result<String, OAuthError> {
    let sector = client
        .config
        .sector_identifier_uri
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    app.services.storage.oidc_subject(&sector, username).await.map_err(|e| server_error(&e))
}

/// How long spent and expired codes and tokens are kept after they expire: a replayed
/// code or refresh token still finds its chain to revoke during this time.
pub const EXPIRED_RECORDS_KEPT_SECS: i64 = 86_400;

/// Removes the provider's records that expired more than a day ago, every hour.
pub fn purge_periodically(app: std::sync::Arc<App>) -> Option<tokio::task::JoinHandle<()>> {
    app.services.oidc.as_ref()?;
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(3600));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let before = crate::clock::now().saturating_sub(EXPIRED_RECORDS_KEPT_SECS);
            match app.services.storage.oidc_purge_expired(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired OpenID Connect codes and tokens removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove expired OpenID Connect codes and tokens"),
            }
            match app.services.storage.oidc_device_purge_expired(before).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "expired OpenID Connect device sessions removed"),
                Err(e) => tracing::warn!(error = %e, "cannot remove expired OpenID Connect device sessions"),
            }
        }
    }))
}
