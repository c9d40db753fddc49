//! The OpenID Connect provider (`identity_providers.oidc`): its clients, signing keys,
//! opaque tokens, PKCE, claims and client authentication. Pure logic over the
//! configuration and storage records; the operations are in `flows::oidc`, the HTTP
//! adapters in `handlers::oidc`.

pub mod claims;
pub mod client_auth;
pub mod clients;
pub mod device;
pub mod keys;
pub mod pkce;
pub mod request;
pub mod tokens;

use crate::config::schema::Oidc;
use crate::storage::{Storage, StorageError};

pub use clients::{Client, Clients, ConsentMode};
pub use keys::{KeySet, SigningKey};
pub use tokens::{Kind, Minter};

/// The paths of the provider's endpoints (relative to the base path). Discovery names
/// these; the seed's `/oauth/*` paths are aliases of the same handlers.
pub mod paths {
    /// Discovery.
    pub const DISCOVERY: &str = "/.well-known/openid-configuration";
    /// OAuth 2.0 authorization server metadata (RFC 8414).
    pub const METADATA: &str = "/.well-known/oauth-authorization-server";
    /// The key set.
    pub const JWKS: &str = "/jwks.json";
    /// Authorization.
    pub const AUTHORIZATION: &str = "/api/oidc/authorization";
    /// Pushed authorization requests (RFC 9126).
    pub const PAR: &str = "/api/oidc/pushed-authorization-request";
    /// Token.
    pub const TOKEN: &str = "/api/oidc/token";
    /// UserInfo.
    pub const USERINFO: &str = "/api/oidc/userinfo";
    /// Introspection (RFC 7662).
    pub const INTROSPECTION: &str = "/api/oidc/introspection";
    /// Revocation (RFC 7009).
    pub const REVOCATION: &str = "/api/oidc/revocation";
    /// RP-initiated logout.
    pub const END_SESSION: &str = "/api/oidc/logout";
    /// The consent page.
    pub const CONSENT: &str = "/consent";
    /// Device authorization (RFC 8628 §3.1): where a device asks for a device and user code.
    pub const DEVICE_AUTHORIZATION: &str = "/api/oidc/device-authorization";
    /// The portal page where the user enters a device's user code and decides (the
    /// `verification_uri`; Authelia's frontend route, so links and docs written for
    /// Authelia work).
    pub const DEVICE_VERIFICATION: &str = "/consent/openid/device-authorization";
}

/// Lifespan kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lifespan {
    /// Access tokens.
    AccessToken,
    /// Authorization codes.
    AuthorizeCode,
    /// ID tokens.
    IdToken,
    /// Refresh tokens.
    RefreshToken,
    /// Device codes (RFC 8628).
    DeviceCode,
}

/// Authelia's device code lifespan when none (or zero) is configured.
pub const DEVICE_CODE_DEFAULT_SECS: i64 = 600;

/// How long a pending authorization (login or consent in progress) waits.
pub const FLOW_LIFESPAN_SECS: i64 = 3600;

/// Pending authorizations one client address may start per ten minutes.
pub const FLOWS_PER_ADDRESS: u32 = 120;

/// The provider, built once at startup.
pub struct Provider {
    /// Its configuration.
    pub config: Oidc,
    /// The relying parties.
    pub clients: Clients,
    /// Signing keys.
    pub keys: KeySet,
    /// Opaque codes and tokens.
    pub minter: Minter,
}

impl Provider {
    /// Builds the provider; without configured keys, loads the generated RS256 key from
    /// storage, generating it on first start.
    pub async fn open(config: &Oidc, storage: &Storage) -> Result<Self, String> {
        let mut keys = KeySet::from_config(&config.jwks).map_err(|e| e.to_string())?;
        if keys.is_empty() {
            let pem = storage
                .sealed_value_or_create(keys::GENERATED_KEY_ROW, || {
                    tracing::info!("generating the OpenID Connect provider's RS256 signing key");
                    keys::generate_rsa_pem().map(String::into_bytes).map_err(|e| StorageError::Crypto(e.0))
                })
                .await
                .map_err(|e| format!("OpenID Connect signing key: {e}"))?;
            let pem = String::from_utf8(pem).map_err(|_| "OpenID Connect signing key: not UTF-8".to_string())?;
            keys = KeySet::single(SigningKey::from_pem(&pem, "RS256", "", "").map_err(|e| e.to_string())?);
        }
        Ok(Self {
            clients: Clients::from_config(config),
            keys,
            minter: Minter::new(config.hmac_secret.expose()),
            config: config.clone(),
        })
    }

    /// The lifespan of `what` for `client` under `grant`, in seconds: the client's named
    /// lifespan for the grant, else the named lifespan, else the provider's.
    pub fn lifespan(&self, client: &Client, grant: &str, what: Lifespan) -> i64 {
        let l = &self.config.lifespans;
        let secs = |d: crate::config::types::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        if what == Lifespan::DeviceCode {
            // Per named lifespan or provider-wide only (no per-grant value); zero means
            // Authelia's default, as in its validator.
            let custom = l.custom.get(&client.config.lifespan).and_then(|c| c.device_code);
            return match custom.or(Some(l.device_code)).map(secs) {
                Some(s) if s > 0 => s,
                _ => DEVICE_CODE_DEFAULT_SECS,
            };
        }
        let pick = |a: Option<crate::config::types::Duration>,
                    b: Option<crate::config::types::Duration>,
                    c: Option<crate::config::types::Duration>,
                    d: Option<crate::config::types::Duration>| match what {
            Lifespan::AccessToken => a,
            Lifespan::AuthorizeCode => b,
            Lifespan::IdToken => c,
            Lifespan::RefreshToken => d,
            Lifespan::DeviceCode => None,
        };
        let default = pick(Some(l.access_token), Some(l.authorize_code), Some(l.id_token), Some(l.refresh_token));
        let custom = l.custom.get(&client.config.lifespan);
        let by_grant = custom
            .and_then(|c| c.grants.get(grant))
            .and_then(|g| pick(g.access_token, g.authorize_code, g.id_token, g.refresh_token));
        let named = custom.and_then(|c| pick(c.access_token, c.authorize_code, c.id_token, c.refresh_token));
        by_grant.or(named).or(default).map_or(0, secs)
    }

    /// Whether `client` must use PKCE (`enforce_pkce`, or the client's own settings).
    pub fn pkce_required(&self, client: &Client) -> bool {
        client.config.require_pkce
            || !client.config.pkce_challenge_method.is_empty()
            || match self.config.enforce_pkce.as_str() {
                "always" => true,
                "never" => false,
                _ => client.is_public(),
            }
    }

    /// Whether `method` may be used by `client`.
    pub fn pkce_method_allowed(&self, client: &Client, method: &str) -> bool {
        match client.config.pkce_challenge_method.as_str() {
            "" => pkce::valid_method(method, self.config.enable_pkce_plain_challenge),
            only => only == method,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(yaml: &str) -> Provider {
        let config: Oidc = serde_yaml::from_str(yaml).unwrap();
        Provider {
            clients: Clients::from_config(&config),
            keys: KeySet::from_config(&[]).unwrap(),
            minter: Minter::new("x"),
            config,
        }
    }

    #[test]
    fn lifespans_by_client_and_grant() {
        let p = provider(
            "lifespans:\n  access_token: 2h\n  custom:\n    short:\n      access_token: 10m\n      grants:\n        client_credentials: {access_token: 1m}\n        authorize_code: {access_token: 5m}\n\
             clients: [{client_id: a, lifespan: short}, {client_id: b}]",
        );
        let (a, b) = (p.clients.get("a").unwrap(), p.clients.get("b").unwrap());
        assert_eq!(p.lifespan(a, "client_credentials", Lifespan::AccessToken), 60);
        assert_eq!(p.lifespan(a, "authorization_code", Lifespan::AccessToken), 300, "Authelia's authorize_code key");
        assert_eq!(p.lifespan(a, "refresh_token", Lifespan::AccessToken), 600, "the named lifespan");
        assert_eq!(p.lifespan(a, "authorization_code", Lifespan::RefreshToken), 5400);
        assert_eq!(p.lifespan(b, "authorization_code", Lifespan::AccessToken), 7200);
        assert_eq!(p.lifespan(b, "authorization_code", Lifespan::AuthorizeCode), 60);
        assert_eq!(p.lifespan(a, "device_code", Lifespan::DeviceCode), 600, "Authelia's default");
    }

    #[test]
    fn device_code_lifespans() {
        let p = provider(
            "lifespans:\n  device_code: 5m\n  custom:\n    tv:\n      device_code: 1m\n      grants:\n        device_code: {access_token: 2m}\n\
             clients: [{client_id: a, lifespan: tv}, {client_id: b}]",
        );
        let (a, b) = (p.clients.get("a").unwrap(), p.clients.get("b").unwrap());
        assert_eq!(p.lifespan(a, "device_code", Lifespan::DeviceCode), 60);
        assert_eq!(p.lifespan(b, "device_code", Lifespan::DeviceCode), 300);
        assert_eq!(p.lifespan(a, "device_code", Lifespan::AccessToken), 120, "the device_code grant's tokens");
        let zero = provider("lifespans:\n  device_code: 0s\nclients: [{client_id: a}]");
        assert_eq!(zero.lifespan(zero.clients.get("a").unwrap(), "device_code", Lifespan::DeviceCode), 600);
    }

    #[test]
    fn pkce_enforcement_follows_authelia() {
        let p = provider("clients: [{client_id: a, public: true}, {client_id: b}, {client_id: c, require_pkce: true}]");
        let get = |id| p.clients.get(id).unwrap();
        assert!(p.pkce_required(get("a")), "public_clients_only is the default");
        assert!(!p.pkce_required(get("b")));
        assert!(p.pkce_required(get("c")));
        assert!(p.pkce_method_allowed(get("a"), "S256") && !p.pkce_method_allowed(get("a"), "plain"));
        let p = provider("enforce_pkce: always\nenable_pkce_plain_challenge: true\nclients: [{client_id: b}]");
        assert!(p.pkce_required(p.clients.get("b").unwrap()));
        assert!(p.pkce_method_allowed(p.clients.get("b").unwrap(), "plain"));
    }
}
