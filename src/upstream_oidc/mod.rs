//! Sign-in through an upstream OpenID provider ("Sign in with ..."): Portcullis as a
//! relying party. This module speaks to the provider — discovery, the authorization
//! request (code flow with PKCE S256, state and nonce), the code exchange, the ID token's
//! checks (signature against the provider's keys, fetched again when it signs with a key
//! not seen yet, issuer, audience, expiry, nonce, `at_hash`) and userinfo. Which local user
//! the upstream account is, and the session, are the flow's business
//! ([`crate::flows::upstream_oidc`]).

pub mod http;
pub mod settings;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreClientAuthMethod, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreProviderMetadata,
};
use openidconnect::{
    AccessTokenHash, AuthType, AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    IssuerUrl, Nonce, OAuth2TokenResponse as _, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
    SignatureVerificationError, TokenResponse as _,
};
use serde_json::{Map, Value};
use tokio::sync::Mutex;

use crate::config::schema::UpstreamOidc;
use settings::{Effective, Source, Stored};

/// How long discovered metadata is used before it is read again.
const METADATA_LIFETIME: Duration = Duration::from_secs(3600);

/// How long the settings in force are remembered by each instance: a change stored on
/// another instance is seen within this time.
const SETTINGS_LIFETIME: Duration = Duration::from_secs(5);

/// Keys are fetched again for an unknown key ID at most this often.
const KEYS_REFETCH_INTERVAL: Duration = Duration::from_secs(1);

/// Why talking to the upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// It could not be reached, or answered with an error or nonsense.
    #[error("{0}")]
    Unavailable(String),
    /// Its answer did not pass the checks (signature, nonce, issuer, audience, expiry).
    #[error("{0}")]
    Refused(String),
}

/// An authorization request about to be sent, and what its answer will be checked with.
pub struct Authorization {
    /// Where to send the browser.
    pub url: String,
    /// The `state` parameter.
    pub state: String,
    /// The `nonce` the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
}

/// A verified upstream account.
#[derive(Clone, Debug)]
pub struct Identity {
    /// The provider's issuer.
    pub issuer: String,
    /// The account's `sub`.
    pub subject: String,
    /// The ID token's claims, completed by userinfo's.
    pub claims: Map<String, Value>,
}

struct Discovered {
    metadata: CoreProviderMetadata,
    fetched_at: Instant,
    keys_fetched_at: Instant,
}

/// The upstream provider service: settings in force, discovery and keys per issuer.
pub struct Upstream {
    http: reqwest::Client,
    configured: Option<UpstreamOidc>,
    settings: Mutex<Option<(Instant, Option<Arc<Effective>>)>>,
    providers: Mutex<HashMap<String, Arc<Discovered>>>,
}

impl Upstream {
    /// The service with the configuration's provider, if any.
    pub fn new(configured: &UpstreamOidc, certificates_directory: Option<&std::path::Path>) -> Result<Self, String> {
        Ok(Self {
            http: http::client(certificates_directory)?,
            configured: configured.is_configured().then(|| settings::normalized(configured.clone())),
            settings: Mutex::new(None),
            providers: Mutex::new(HashMap::new()),
        })
    }

    /// The settings in force: the stored ones when any, else the configuration's.
    pub async fn effective(
        &self,
        storage: &crate::storage::Storage,
    ) -> Result<Option<Arc<Effective>>, crate::storage::StorageError> {
        let mut cached = self.settings.lock().await;
        if let Some((at, value)) = cached.as_ref()
            && at.elapsed() < SETTINGS_LIFETIME
        {
            return Ok(value.clone());
        }
        let stored = storage.sealed_value(settings::SEALED_NAME).await?;
        let value = match stored {
            Some(bytes) => {
                let stored: Stored = serde_json::from_slice(&bytes)
                    .map_err(|e| crate::storage::StorageError::Crypto(format!("upstream_oidc_provider: {e}")))?;
                Some(Arc::new(stored.effective()))
            }
            None => self.configured.clone().map(|settings| {
                Arc::new(Effective { settings, source: Source::Configuration, updated_at: None, updated_by: None })
            }),
        };
        *cached = Some((Instant::now(), value.clone()));
        Ok(value)
    }

    /// Forgets the settings in force (after a change here).
    pub async fn forget_settings(&self) {
        *self.settings.lock().await = None;
    }

    /// Reads the provider's metadata and keys now (a check that the settings work).
    pub async fn probe(&self, s: &UpstreamOidc) -> Result<(), UpstreamError> {
        self.providers.lock().await.remove(&s.issuer);
        self.discovered(s).await.map(|_| ())
    }

    /// The authorization request for `s`, answered at `redirect_uri`.
    pub async fn authorization(&self, s: &UpstreamOidc, redirect_uri: &str) -> Result<Authorization, UpstreamError> {
        let discovered = self.discovered(s).await?;
        let client = self.client(s, &discovered.metadata, redirect_uri)?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request =
            client.authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random);
        for scope in s.scopes.iter().filter(|scope| *scope != "openid") {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
        Ok(Authorization {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Exchanges `code` and returns the account its ID token (checked against `nonce`)
    /// names, with userinfo's claims added.
    pub async fn exchange(
        &self,
        s: &UpstreamOidc,
        redirect_uri: &str,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Identity, UpstreamError> {
        let mut discovered = self.discovered(s).await?;
        let client = self.client(s, &discovered.metadata, redirect_uri)?;
        let http = http::Http(&self.http);
        let exchange = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| UpstreamError::Unavailable(format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()));
        let tokens = exchange
            .request_async(&http)
            .await
            .map_err(|e| UpstreamError::Refused(format!("the code exchange failed: {}", describe(&e))))?;
        let id_token = tokens
            .id_token()
            .ok_or_else(|| UpstreamError::Refused("the provider answered without an ID token".into()))?;
        let nonce = Nonce::new(nonce.to_string());
        let mut refetched = false;
        let claims = loop {
            let client = self.client(s, &discovered.metadata, redirect_uri)?;
            let verifier = client.id_token_verifier().set_allowed_algs(asymmetric_algorithms());
            match id_token.claims(&verifier, &nonce) {
                Ok(claims) => {
                    if let Some(expected) = claims.access_token_hash() {
                        let alg = id_token.signing_alg().map_err(|e| UpstreamError::Refused(e.to_string()))?;
                        let key = id_token.signing_key(&verifier).map_err(|e| UpstreamError::Refused(e.to_string()))?;
                        let actual = AccessTokenHash::from_token(tokens.access_token(), alg, key)
                            .map_err(|e| UpstreamError::Refused(e.to_string()))?;
                        if actual != *expected {
                            return Err(UpstreamError::Refused("the ID token's at_hash does not match".into()));
                        }
                    }
                    break claims.clone();
                }
                // Keys rotated: the token names a key published since the last fetch.
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                    if !refetched =>
                {
                    refetched = true;
                    discovered = self.refetch_keys(s, &discovered).await?;
                }
                Err(e) => return Err(UpstreamError::Refused(format!("the ID token was refused: {e}"))),
            }
        };
        let mut raw = payload(&id_token.to_string())?;
        let subject = claims.subject().as_str().to_string();
        if let Some(endpoint) = discovered.metadata.userinfo_endpoint() {
            let info = self.userinfo(endpoint.url().as_str(), tokens.access_token().secret()).await?;
            if info.get("sub").and_then(Value::as_str) != Some(subject.as_str()) {
                return Err(UpstreamError::Refused("userinfo names another subject than the ID token".into()));
            }
            for (name, value) in info {
                raw.entry(name).or_insert(value);
            }
        }
        Ok(Identity { issuer: s.issuer.clone(), subject, claims: raw })
    }

    fn client(
        &self,
        s: &UpstreamOidc,
        metadata: &CoreProviderMetadata,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        UpstreamError,
    > {
        let redirect = RedirectUrl::new(redirect_uri.to_string())
            .map_err(|e| UpstreamError::Unavailable(format!("redirect URI {redirect_uri}: {e}")))?;
        let secret = ClientSecret::new(s.client_secret.expose().to_string());
        let client =
            CoreClient::from_provider_metadata(metadata.clone(), ClientId::new(s.client_id.clone()), Some(secret))
                .set_redirect_uri(redirect);
        // client_secret_basic unless the provider only takes the secret in the body.
        let methods = metadata.token_endpoint_auth_methods_supported();
        let post_only = methods.is_some_and(|m| {
            m.contains(&CoreClientAuthMethod::ClientSecretPost) && !m.contains(&CoreClientAuthMethod::ClientSecretBasic)
        });
        Ok(if post_only { client.set_auth_type(AuthType::RequestBody) } else { client })
    }

    /// The issuer's metadata and keys, discovered at most once an hour.
    async fn discovered(&self, s: &UpstreamOidc) -> Result<Arc<Discovered>, UpstreamError> {
        if let Some(found) = self.providers.lock().await.get(&s.issuer)
            && found.fetched_at.elapsed() < METADATA_LIFETIME
        {
            return Ok(found.clone());
        }
        let issuer =
            IssuerUrl::new(s.issuer.clone()).map_err(|e| UpstreamError::Unavailable(format!("issuer: {e}")))?;
        let http = http::Http(&self.http);
        let metadata = CoreProviderMetadata::discover_async(issuer, &http)
            .await
            .map_err(|e| UpstreamError::Unavailable(format!("discovery at {} failed: {}", s.issuer, describe(&e))))?;
        let now = Instant::now();
        let discovered = Arc::new(Discovered { metadata, fetched_at: now, keys_fetched_at: now });
        self.providers.lock().await.insert(s.issuer.clone(), discovered.clone());
        Ok(discovered)
    }

    /// The metadata with the provider's keys read again (not more than once a second).
    async fn refetch_keys(&self, s: &UpstreamOidc, old: &Arc<Discovered>) -> Result<Arc<Discovered>, UpstreamError> {
        if old.keys_fetched_at.elapsed() < KEYS_REFETCH_INTERVAL {
            tokio::time::sleep(KEYS_REFETCH_INTERVAL.saturating_sub(old.keys_fetched_at.elapsed())).await;
        }
        let http = http::Http(&self.http);
        let keys = CoreJsonWebKeySet::fetch_async(old.metadata.jwks_uri(), &http)
            .await
            .map_err(|e| UpstreamError::Unavailable(format!("the provider's keys cannot be read: {}", describe(&e))))?;
        let metadata = old.metadata.clone().set_jwks(keys);
        let refreshed = Arc::new(Discovered { metadata, fetched_at: old.fetched_at, keys_fetched_at: Instant::now() });
        self.providers.lock().await.insert(s.issuer.clone(), refreshed.clone());
        tracing::info!(issuer = %s.issuer, "upstream provider keys fetched again for a key not seen before");
        Ok(refreshed)
    }

    /// Userinfo's claims (JSON answers only; a signed answer adds nothing).
    async fn userinfo(&self, endpoint: &str, access_token: &str) -> Result<Map<String, Value>, UpstreamError> {
        let request = ::http::Request::get(endpoint)
            .header(::http::header::AUTHORIZATION, format!("Bearer {access_token}"))
            .header(::http::header::ACCEPT, "application/json")
            .body(Vec::new())
            .map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        let answer = http::send(&self.http, request).await.map_err(|e| UpstreamError::Unavailable(e.to_string()))?;
        if !answer.status().is_success() {
            return Err(UpstreamError::Unavailable(format!("userinfo answered {}", answer.status())));
        }
        let json = answer
            .headers()
            .get(::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| t.starts_with("application/json"));
        if !json {
            return Ok(Map::new());
        }
        serde_json::from_slice(answer.body())
            .map_err(|e| UpstreamError::Unavailable(format!("userinfo is not a JSON object: {e}")))
    }
}

/// Signature algorithms accepted on ID tokens: the asymmetric ones (a token signed with
/// the client secret would prove only that someone knows our secret).
fn asymmetric_algorithms() -> Vec<CoreJwsSigningAlgorithm> {
    use CoreJwsSigningAlgorithm as A;
    vec![
        A::RsaSsaPkcs1V15Sha256,
        A::RsaSsaPkcs1V15Sha384,
        A::RsaSsaPkcs1V15Sha512,
        A::RsaSsaPssSha256,
        A::RsaSsaPssSha384,
        A::RsaSsaPssSha512,
        A::EcdsaP256Sha256,
        A::EcdsaP384Sha384,
        A::EdDsa,
    ]
}

/// The claims of a JWT whose signature was checked already.
fn payload(jwt: &str) -> Result<Map<String, Value>, UpstreamError> {
    let part = jwt.split('.').nth(1).ok_or_else(|| UpstreamError::Refused("the ID token is not a JWT".into()))?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| UpstreamError::Refused(format!("the ID token's claims are not base64url: {e}")))?;
    serde_json::from_slice(&bytes).map_err(|e| UpstreamError::Refused(format!("the ID token's claims: {e}")))
}

/// An error with its causes, on one line.
fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
