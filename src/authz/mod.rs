//! Authorization endpoints for reverse proxies: the five implementations (ForwardAuth,
//! AuthRequest, ExtAuthz, Legacy over HTTP; ExtAuthzGRPC over gRPC) share one check
//! ([`check`]) and one decision table ([`decision`]); each only says where its proxy puts
//! the target URL and method, and how the proxy wants "log in first".

pub mod check;
pub mod decision;
pub mod extract;
pub mod grpc;

use crate::config::Configuration;

/// Which proxy protocol an endpoint speaks (`implementation`, by Authelia's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum Implementation {
    /// Traefik, Caddy: X-Forwarded-* headers; redirects to the portal.
    ForwardAuth,
    /// NGINX, HAProxy: X-Original-URL/Method; 401 with the portal URL in Location.
    AuthRequest,
    /// Envoy: Host + X-Forwarded-Proto + the request's own path after the endpoint.
    ExtAuthz,
    /// Envoy's `grpc_service` and Istio's CUSTOM action: the gRPC
    /// `envoy.service.auth.v3.Authorization/Check` on the same listener (h2c); the target
    /// comes from the request's attributes. At most one endpoint has it.
    ExtAuthzGRPC,
    /// `/api/verify`: X-Original-URL or X-Forwarded-*; when both are present they must
    /// name the same target (and X-Original-Method and X-Forwarded-Method the same
    /// method), or the request is refused, so a client cannot add the other source.
    Legacy,
}

/// How a request may prove who it is (`authn_strategies[].name`, by Authelia's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize)]
pub enum Strategy {
    /// The portal's session cookie.
    CookieSession,
    /// `Authorization: Basic`; failures answer 401 + WWW-Authenticate.
    HeaderAuthorization,
    /// `Proxy-Authorization: Basic`; failures answer 407 + Proxy-Authenticate.
    HeaderProxyAuthorization,
    /// `Proxy-Authorization: Basic`; failures answer 401 + WWW-Authenticate (NGINX cannot
    /// pass a 407 on).
    HeaderAuthRequestProxyAuthorization,
    /// Legacy: `Proxy-Authorization: Basic`, 401 + WWW-Authenticate.
    HeaderLegacy,
}

impl Implementation {
    /// The strategies an endpoint of this implementation has when it names none
    /// (Authelia's defaults).
    /// Basic credentials go in `Proxy-Authorization` here, not `Authorization`: the
    /// application behind the proxy may use `Authorization` itself. (The endpoints of an
    /// empty `server.endpoints.authz` are another matter: they name their strategies.)
    pub fn default_strategies(self) -> [Strategy; 2] {
        match self {
            Self::Legacy => [Strategy::HeaderLegacy, Strategy::CookieSession],
            Self::AuthRequest => [Strategy::HeaderAuthRequestProxyAuthorization, Strategy::CookieSession],
            Self::ForwardAuth | Self::ExtAuthz | Self::ExtAuthzGRPC => {
                [Strategy::HeaderProxyAuthorization, Strategy::CookieSession]
            }
        }
    }

    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ForwardAuth => "ForwardAuth",
            Self::AuthRequest => "AuthRequest",
            Self::ExtAuthz => "ExtAuthz",
            Self::ExtAuthzGRPC => "ExtAuthzGRPC",
            Self::Legacy => "Legacy",
        }
    }

    /// Every implementation, by configuration name.
    pub const ALL: [Self; 5] = [Self::ForwardAuth, Self::AuthRequest, Self::ExtAuthz, Self::ExtAuthzGRPC, Self::Legacy];

    /// Whether it is served over gRPC rather than as an HTTP route.
    pub fn is_grpc(self) -> bool {
        self == Self::ExtAuthzGRPC
    }
}

impl Strategy {
    /// The configuration name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CookieSession => "CookieSession",
            Self::HeaderAuthorization => "HeaderAuthorization",
            Self::HeaderProxyAuthorization => "HeaderProxyAuthorization",
            Self::HeaderAuthRequestProxyAuthorization => "HeaderAuthRequestProxyAuthorization",
            Self::HeaderLegacy => "HeaderLegacy",
        }
    }

    /// The request header carrying credentials, for header strategies.
    pub fn header(self) -> Option<http::HeaderName> {
        match self {
            Self::CookieSession => None,
            Self::HeaderAuthorization => Some(http::header::AUTHORIZATION),
            _ => Some(http::header::PROXY_AUTHORIZATION),
        }
    }
}

/// A strategy as configured for one endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfiguredStrategy {
    /// Which strategy.
    pub kind: Strategy,
    /// How long verified Basic credentials are remembered (zero: not at all).
    pub basic_cache_lifespan: std::time::Duration,
    /// The header strategy accepts `Bearer` access tokens of the OpenID Connect provider
    /// (`schemes` lists Bearer).
    pub bearer: bool,
}

/// One configured authorization endpoint.
#[derive(Clone, Debug)]
pub struct AuthzEndpoint {
    /// Its name in `server.endpoints.authz`.
    pub name: String,
    /// Where it is served: `/api/authz/<name>`, or `/api/verify` for `legacy`; the gRPC
    /// method's path for ExtAuthzGRPC.
    pub path: String,
    /// The proxy protocol.
    pub implementation: Implementation,
    /// Authentication strategies, in order.
    pub strategies: Vec<ConfiguredStrategy>,
}

impl AuthzEndpoint {
    /// Whether the endpoint answers every method and paths below it (Envoy sends the
    /// original request's method and path).
    pub fn any_method(&self) -> bool {
        matches!(self.implementation, Implementation::ExtAuthz | Implementation::Legacy)
    }
}

/// The endpoints `config` defines, by name.
pub fn endpoints(config: &Configuration) -> Vec<AuthzEndpoint> {
    config
        .server
        .endpoints
        .authz
        .iter()
        .filter_map(|(name, e)| {
            let implementation = e.implementation?;
            let path = if implementation.is_grpc() {
                grpc::CHECK_PATH.to_string()
            } else if name == "legacy" {
                "/api/verify".to_string()
            } else {
                format!("/api/authz/{name}")
            };
            let mut strategies: Vec<_> = e
                .authn_strategies
                .iter()
                .filter_map(|s| {
                    Some(ConfiguredStrategy {
                        kind: s.name?,
                        basic_cache_lifespan: s.scheme_basic_cache_lifespan.get(),
                        bearer: s.schemes.iter().any(|scheme| scheme.eq_ignore_ascii_case("bearer")),
                    })
                })
                .collect();
            if e.authn_strategies.is_empty() {
                // As Authelia: an endpoint that names no strategies gets its
                // implementation's (otherwise a valid session would never be seen).
                strategies = implementation
                    .default_strategies()
                    .into_iter()
                    .map(|kind| ConfiguredStrategy {
                        kind,
                        basic_cache_lifespan: std::time::Duration::ZERO,
                        bearer: false,
                    })
                    .collect();
            }
            Some(AuthzEndpoint { name: name.clone(), path, implementation, strategies })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_without_strategies_get_their_implementations_defaults() {
        let config: Configuration = serde_yaml::from_str(
            "server:\n  endpoints:\n    authz:\n      forward-auth: {implementation: ForwardAuth}\n      \
             legacy: {implementation: Legacy, authn_strategies: []}\n      \
             nginx: {implementation: AuthRequest}\n      \
             mine: {implementation: AuthRequest, authn_strategies: [{name: CookieSession}]}\n",
        )
        .unwrap();
        let kinds = |name: &str| -> Vec<Strategy> {
            endpoints(&config).into_iter().find(|e| e.name == name).unwrap().strategies.iter().map(|s| s.kind).collect()
        };
        assert_eq!(kinds("forward-auth"), [Strategy::HeaderProxyAuthorization, Strategy::CookieSession]);
        assert_eq!(kinds("legacy"), [Strategy::HeaderLegacy, Strategy::CookieSession]);
        assert_eq!(kinds("nginx"), [Strategy::HeaderAuthRequestProxyAuthorization, Strategy::CookieSession]);
        assert_eq!(kinds("mine"), [Strategy::CookieSession], "named strategies are kept as they are");
    }
}
