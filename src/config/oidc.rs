//! `identity_providers.oidc`: the OpenID Connect provider, with Authelia's key names and
//! defaults so that a relying party configured from Authelia's documentation works as is.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::types::{Duration, OneOrMany, Secret};

/// `identity_providers`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct IdentityProviders {
    /// The OpenID Connect provider; absent means off.
    pub oidc: Option<Oidc>,
}

/// `identity_providers.oidc`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Oidc {
    /// Key for the HMAC of opaque codes and tokens.
    pub hmac_secret: Secret,
    /// Signing keys; when empty an RS256 key is generated on first start and kept
    /// encrypted in storage.
    pub jwks: Vec<JwkConfig>,
    /// `never`, `public_clients_only` or `always`.
    pub enforce_pkce: String,
    /// Accept the `plain` PKCE method.
    pub enable_pkce_plain_challenge: bool,
    /// Every client must use pushed authorization requests.
    pub require_pushed_authorization_requests: bool,
    /// Named policies clients refer to by `authorization_policy`.
    pub authorization_policies: BTreeMap<String, AuthorizationPolicy>,
    /// Token lifespans.
    pub lifespans: Lifespans,
    /// Cross-origin requests to the provider's endpoints.
    pub cors: Cors,
    /// The relying parties.
    pub clients: Vec<Client>,
}

impl Default for Oidc {
    fn default() -> Self {
        Self {
            hmac_secret: Secret::default(),
            jwks: Vec::new(),
            enforce_pkce: "public_clients_only".into(),
            enable_pkce_plain_challenge: false,
            require_pushed_authorization_requests: false,
            authorization_policies: BTreeMap::new(),
            lifespans: Lifespans::default(),
            cors: Cors::default(),
            clients: Vec::new(),
        }
    }
}

/// One signing key (`jwks[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct JwkConfig {
    /// The `kid`; derived from the key when empty.
    pub key_id: String,
    /// RS256, RS384, RS512, PS256, PS384, PS512, ES256 or ES384; from the key when empty.
    pub algorithm: String,
    /// Only `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: Secret,
    /// Certificates for the key, PEM, leaf first (published as `x5c`).
    pub certificate_chain: String,
}

/// A named authorization policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthorizationPolicy {
    /// `one_factor` or `two_factor` (or `deny`) when no rule matches.
    pub default_policy: String,
    /// Rules, first match wins.
    pub rules: Vec<AuthorizationPolicyRule>,
}

/// One rule of a named authorization policy.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct AuthorizationPolicyRule {
    /// `one_factor`, `two_factor` or `deny`.
    pub policy: String,
    /// `user:<name>` or `group:<name>`; a nested list means all of them.
    pub subject: OneOrMany<OneOrMany<String>>,
}

/// Lifespans of codes and tokens.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Lifespans {
    /// Access tokens.
    pub access_token: Duration,
    /// Authorization codes.
    pub authorize_code: Duration,
    /// ID tokens.
    pub id_token: Duration,
    /// Refresh tokens.
    pub refresh_token: Duration,
    /// Device codes (RFC 8628): how long a device may wait for the user's decision.
    pub device_code: Duration,
    /// Named lifespans clients refer to by `lifespan`.
    pub custom: BTreeMap<String, CustomLifespan>,
}

impl Default for Lifespans {
    fn default() -> Self {
        Self {
            access_token: Duration::from_secs(3600),
            authorize_code: Duration::from_secs(60),
            id_token: Duration::from_secs(3600),
            refresh_token: Duration::from_secs(5400),
            device_code: Duration::from_secs(600),
            custom: BTreeMap::new(),
        }
    }
}

/// A named lifespan: the token lifespans, optionally per grant.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct CustomLifespan {
    /// Access tokens.
    pub access_token: Option<Duration>,
    /// Authorization codes.
    pub authorize_code: Option<Duration>,
    /// ID tokens.
    pub id_token: Option<Duration>,
    /// Refresh tokens.
    pub refresh_token: Option<Duration>,
    /// Device codes.
    pub device_code: Option<Duration>,
    /// By grant, under Authelia's names (`authorize_code` for the authorization code
    /// grant); an unknown name is reported rather than silently ignored.
    pub grants: GrantLifespans,
}

/// `lifespans.custom.<name>.grants`: the token lifespans of each grant.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GrantLifespans {
    /// The authorization code grant.
    pub authorize_code: Option<GrantLifespan>,
    /// The device authorization grant.
    pub device_code: Option<GrantLifespan>,
    /// The implicit flow.
    pub implicit: Option<GrantLifespan>,
    /// The client credentials grant.
    pub client_credentials: Option<GrantLifespan>,
    /// The refresh token grant.
    pub refresh_token: Option<GrantLifespan>,
    /// The JWT bearer grant.
    pub jwt_bearer: Option<GrantLifespan>,
}

impl GrantLifespans {
    /// The lifespans of `grant`, named as the token endpoint names it
    /// (`authorization_code`, `urn:ietf:params:oauth:grant-type:device_code`...) or as
    /// Authelia's configuration does.
    pub fn get(&self, grant: &str) -> Option<&GrantLifespan> {
        match grant {
            "authorization_code" | "authorize_code" => self.authorize_code.as_ref(),
            "device_code" | "urn:ietf:params:oauth:grant-type:device_code" => self.device_code.as_ref(),
            "implicit" => self.implicit.as_ref(),
            "client_credentials" => self.client_credentials.as_ref(),
            "refresh_token" => self.refresh_token.as_ref(),
            "jwt_bearer" | "urn:ietf:params:oauth:grant-type:jwt-bearer" => self.jwt_bearer.as_ref(),
            _ => None,
        }
    }
}

/// The token lifespans of one grant.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct GrantLifespan {
    /// Access tokens.
    pub access_token: Option<Duration>,
    /// Authorization codes.
    pub authorize_code: Option<Duration>,
    /// ID tokens.
    pub id_token: Option<Duration>,
    /// Refresh tokens.
    pub refresh_token: Option<Duration>,
}

/// `cors`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Cors {
    /// `authorization`, `device-authorization`, `pushed-authorization-request`, `token`,
    /// `revocation`, `introspection`, `userinfo`.
    pub endpoints: Vec<String>,
    /// Origins allowed (`*` for any).
    pub allowed_origins: Vec<String>,
    /// Also allow the origins of every client's redirect URIs.
    pub allowed_origins_from_client_redirect_uris: bool,
}

/// One relying party (`clients[]`).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default)]
pub struct Client {
    /// The `client_id`.
    pub client_id: String,
    /// Name shown on the consent page.
    pub client_name: String,
    /// Secret, plaintext or hashed (`$pbkdf2-sha512$...`, `$argon2id$...`).
    pub client_secret: Secret,
    /// Pairwise subjects for the hosts listed at this URL.
    pub sector_identifier_uri: Option<String>,
    /// A public client (no secret).
    pub public: bool,
    /// Exact redirect URIs.
    pub redirect_uris: OneOrMany<String>,
    /// Where RP-initiated logout may send the browser afterwards (exact match).
    pub post_logout_redirect_uris: Vec<String>,
    /// Audiences the client may request.
    pub audience: Vec<String>,
    /// Scopes the client may request.
    pub scopes: Vec<String>,
    /// Grant types allowed.
    pub grant_types: Vec<String>,
    /// Response types allowed.
    pub response_types: Vec<String>,
    /// Response modes allowed.
    pub response_modes: Vec<String>,
    /// `one_factor`, `two_factor` or a named policy.
    pub authorization_policy: String,
    /// A named lifespan.
    pub lifespan: String,
    /// `auto`, `explicit`, `implicit` or `pre-configured`.
    pub consent_mode: String,
    /// How long a remembered consent lasts (pre-configured mode).
    pub pre_configured_consent_duration: Option<Duration>,
    /// Must use pushed authorization requests.
    pub require_pushed_authorization_requests: bool,
    /// Must use PKCE.
    pub require_pkce: bool,
    /// `S256` or `plain` when set: the only method accepted.
    pub pkce_challenge_method: String,
    /// ID token signing algorithm.
    pub id_token_signed_response_alg: String,
    /// ID token signing key.
    pub id_token_signed_response_key_id: String,
    /// `none` (opaque) or a JWS algorithm (RFC 9068 JWT access tokens).
    pub access_token_signed_response_alg: String,
    /// Access token signing key.
    pub access_token_signed_response_key_id: String,
    /// `none` (JSON) or a JWS algorithm.
    pub userinfo_signed_response_alg: String,
    /// UserInfo signing key.
    pub userinfo_signed_response_key_id: String,
    /// `client_secret_basic`, `client_secret_post`, `client_secret_jwt`,
    /// `private_key_jwt` or `none`.
    pub token_endpoint_auth_method: String,
    /// Algorithm of client assertions.
    pub token_endpoint_auth_signing_alg: String,
    /// The client's public keys (private_key_jwt).
    pub jwks: Vec<ClientJwk>,
}

impl Default for Client {
    fn default() -> Self {
        Self {
            client_id: String::new(),
            client_name: String::new(),
            client_secret: Secret::default(),
            sector_identifier_uri: None,
            public: false,
            redirect_uris: OneOrMany::default(),
            post_logout_redirect_uris: Vec::new(),
            audience: Vec::new(),
            scopes: vec!["openid".into(), "groups".into(), "profile".into(), "email".into()],
            grant_types: vec!["authorization_code".into()],
            response_types: vec!["code".into()],
            response_modes: Vec::new(),
            authorization_policy: "two_factor".into(),
            lifespan: String::new(),
            consent_mode: "auto".into(),
            pre_configured_consent_duration: None,
            require_pushed_authorization_requests: false,
            require_pkce: false,
            pkce_challenge_method: String::new(),
            id_token_signed_response_alg: "RS256".into(),
            id_token_signed_response_key_id: String::new(),
            access_token_signed_response_alg: "none".into(),
            access_token_signed_response_key_id: String::new(),
            userinfo_signed_response_alg: "none".into(),
            userinfo_signed_response_key_id: String::new(),
            token_endpoint_auth_method: String::new(),
            token_endpoint_auth_signing_alg: String::new(),
            jwks: Vec::new(),
        }
    }
}

/// A public key of a client (`clients[].jwks[]`).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct ClientJwk {
    /// The `kid` assertions name.
    pub key_id: String,
    /// RS256, ES256, ...
    pub algorithm: String,
    /// Only `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
    /// The public key, PEM.
    pub key: String,
}
