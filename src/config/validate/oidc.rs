//! `identity_providers.oidc`: the HMAC secret, keys, PKCE enforcement, policies and each
//! client's identifiers, redirect URIs, grants and authentication method.

use super::*;

/// The device authorization grant's type (RFC 8628 §3.4).
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Grant types Portcullis implements.
pub const GRANT_TYPES: &[&str] =
    &["authorization_code", "refresh_token", "client_credentials", "implicit", DEVICE_CODE_GRANT];
/// Client authentication methods at the token endpoint.
pub const AUTH_METHODS: &[&str] =
    &["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"];
/// Signing algorithms for ID tokens and JWT access tokens.
pub const SIGNING_ALGS: &[&str] = &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"];
/// Response types.
pub const RESPONSE_TYPES: &[&str] =
    &["code", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"];

/// True for redirect URIs that may use plain http: loopback addresses and `localhost`.
pub fn is_loopback_host(host: &str) -> bool {
    host == "localhost"
        || host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

impl Validator {
    pub(super) fn oidc(&mut self, providers: &IdentityProviders) {
        let Some(o) = &providers.oidc else { return };
        let p = "identity_providers.oidc";
        if o.hmac_secret.is_empty() {
            self.err(format!("{p}.hmac_secret"), "required (at least 32 characters)");
        } else if o.hmac_secret.expose().chars().count() < 32 {
            self.err(format!("{p}.hmac_secret"), "must be at least 32 characters long");
        }
        self.choice(&format!("{p}.enforce_pkce"), &o.enforce_pkce, &["never", "public_clients_only", "always"]);
        let mut kids = HashSet::new();
        for (i, k) in o.jwks.iter().enumerate() {
            let kp = format!("{p}.jwks[{i}]");
            if k.key.is_empty() {
                self.err(format!("{kp}.key"), "required");
            }
            if !k.algorithm.is_empty() {
                self.choice(&format!("{kp}.algorithm"), &k.algorithm, SIGNING_ALGS);
            }
            if !k.key_use.is_empty() {
                self.choice(&format!("{kp}.use"), &k.key_use, &["sig"]);
            }
            if !k.key_id.is_empty() && !kids.insert(k.key_id.clone()) {
                self.err(format!("{kp}.key_id"), format!("'{}' is used by another key", k.key_id));
            }
        }
        for (name, policy) in &o.authorization_policies {
            let pp = format!("{p}.authorization_policies.{name}");
            if matches!(name.as_str(), "one_factor" | "two_factor") {
                self.err(&pp, "the names one_factor and two_factor are reserved");
            }
            let levels = ["one_factor", "two_factor", "deny"];
            self.choice(&format!("{pp}.default_policy"), &policy.default_policy, &levels);
            for (j, rule) in policy.rules.iter().enumerate() {
                self.choice(&format!("{pp}.rules[{j}].policy"), &rule.policy, &levels);
                if rule.subject.is_empty() {
                    self.err(format!("{pp}.rules[{j}].subject"), "required");
                }
                for s in rule.subject.as_slice().iter().flat_map(|all| all.as_slice()) {
                    if !(s.starts_with("user:") || s.starts_with("group:")) {
                        self.err(format!("{pp}.rules[{j}].subject"), format!("'{s}' must start with user: or group:"));
                    }
                }
            }
        }
        for (i, e) in o.cors.endpoints.iter().enumerate() {
            let allowed = [
                "authorization",
                "device-authorization",
                "pushed-authorization-request",
                "token",
                "revocation",
                "introspection",
                "userinfo",
            ];
            self.choice(&format!("{p}.cors.endpoints[{i}]"), e, &allowed);
        }
        if o.clients.is_empty() {
            self.err(format!("{p}.clients"), "at least one client is required");
        }
        let mut ids = HashSet::new();
        for (i, c) in o.clients.iter().enumerate() {
            self.oidc_client(&format!("{p}.clients[{i}]"), c, o);
            if !c.client_id.is_empty() && !ids.insert(c.client_id.clone()) {
                self.err(format!("{p}.clients[{i}].client_id"), format!("'{}' is used by another client", c.client_id));
            }
        }
    }

    fn oidc_client(&mut self, p: &str, c: &Client, o: &Oidc) {
        if c.client_id.is_empty() {
            self.err(format!("{p}.client_id"), "required");
        } else if c.client_id.len() > 100 || c.client_id.chars().any(|ch| ch.is_control() || ch == ' ') {
            self.err(format!("{p}.client_id"), "must be at most 100 characters, without spaces");
        }
        let method = effective_auth_method(c);
        if !c.token_endpoint_auth_method.is_empty() {
            self.choice(&format!("{p}.token_endpoint_auth_method"), &c.token_endpoint_auth_method, AUTH_METHODS);
        }
        if c.public {
            if !c.client_secret.is_empty() {
                self.err(format!("{p}.client_secret"), "a public client has no secret");
            }
            if method != "none" {
                self.err(format!("{p}.token_endpoint_auth_method"), "a public client authenticates with 'none'");
            }
        } else {
            match method {
                "none" => self.err(format!("{p}.token_endpoint_auth_method"), "'none' is for public clients"),
                "private_key_jwt" if c.jwks.is_empty() => {
                    self.err(format!("{p}.jwks"), "private_key_jwt needs the client's public keys")
                }
                "private_key_jwt" => {}
                "client_secret_jwt" if c.client_secret.expose().starts_with('$') => self.err(
                    format!("{p}.client_secret"),
                    "client_secret_jwt needs the secret in plaintext (the assertion is an HMAC)",
                ),
                _ if c.client_secret.is_empty() => {
                    self.err(format!("{p}.client_secret"), "required for a confidential client")
                }
                _ => {}
            }
        }
        let needs_redirect = c.grant_types.iter().any(|g| g == "authorization_code" || g == "implicit");
        if needs_redirect && c.redirect_uris.is_empty() {
            self.err(format!("{p}.redirect_uris"), "at least one redirect URI is required");
        }
        for (j, uri) in c.redirect_uris.as_slice().iter().enumerate() {
            if let Err(e) = check_redirect_uri(uri) {
                self.err(format!("{p}.redirect_uris[{j}]"), e);
            }
        }
        for (j, uri) in c.post_logout_redirect_uris.iter().enumerate() {
            if let Err(e) = check_redirect_uri(uri) {
                self.err(format!("{p}.post_logout_redirect_uris[{j}]"), e);
            }
        }
        for (j, g) in c.grant_types.iter().enumerate() {
            self.choice(&format!("{p}.grant_types[{j}]"), g, GRANT_TYPES);
            if g == "client_credentials" && c.public {
                self.err(format!("{p}.grant_types[{j}]"), "client_credentials needs a confidential client");
            }
        }
        for (j, r) in c.response_types.iter().enumerate() {
            self.choice(&format!("{p}.response_types[{j}]"), r, RESPONSE_TYPES);
            if r != "code" && !c.grant_types.iter().any(|g| g == "implicit") {
                self.err(
                    format!("{p}.response_types[{j}]"),
                    "implicit and hybrid responses need grant type 'implicit'",
                );
            }
        }
        for (j, m) in c.response_modes.iter().enumerate() {
            self.choice(&format!("{p}.response_modes[{j}]"), m, &["query", "fragment", "form_post"]);
        }
        match c.authorization_policy.as_str() {
            "one_factor" | "two_factor" => {}
            name if o.authorization_policies.contains_key(name) => {}
            other => self.err(
                format!("{p}.authorization_policy"),
                format!("'{other}' is neither one_factor, two_factor nor a policy under authorization_policies"),
            ),
        }
        if !c.lifespan.is_empty() && !o.lifespans.custom.contains_key(&c.lifespan) {
            self.err(format!("{p}.lifespan"), format!("'{}' is not under lifespans.custom", c.lifespan));
        }
        self.choice(&format!("{p}.consent_mode"), &c.consent_mode, &["auto", "explicit", "implicit", "pre-configured"]);
        if c.consent_mode == "pre-configured" && c.pre_configured_consent_duration.is_none_or(|d| d.is_zero()) {
            self.err(format!("{p}.pre_configured_consent_duration"), "required for consent_mode pre-configured");
        }
        if !c.pkce_challenge_method.is_empty() {
            self.choice(&format!("{p}.pkce_challenge_method"), &c.pkce_challenge_method, &["S256", "plain"]);
            if c.pkce_challenge_method == "plain" && !o.enable_pkce_plain_challenge {
                self.err(format!("{p}.pkce_challenge_method"), "'plain' needs enable_pkce_plain_challenge");
            }
        }
        self.choice(&format!("{p}.id_token_signed_response_alg"), &c.id_token_signed_response_alg, SIGNING_ALGS);
        if c.access_token_signed_response_alg != "none" {
            let path = format!("{p}.access_token_signed_response_alg");
            self.choice(&path, &c.access_token_signed_response_alg, SIGNING_ALGS);
        }
        if c.userinfo_signed_response_alg != "none" {
            let path = format!("{p}.userinfo_signed_response_alg");
            self.choice(&path, &c.userinfo_signed_response_alg, SIGNING_ALGS);
        }
        for (j, k) in c.jwks.iter().enumerate() {
            if k.key.trim().is_empty() {
                self.err(format!("{p}.jwks[{j}].key"), "required");
            }
            if !k.algorithm.is_empty() {
                self.choice(&format!("{p}.jwks[{j}].algorithm"), &k.algorithm, SIGNING_ALGS);
            }
        }
        if let Some(uri) = &c.sector_identifier_uri
            && url::Url::parse(uri).map_or(true, |u| u.scheme() != "https")
        {
            self.err(format!("{p}.sector_identifier_uri"), "must be an https URL");
        }
    }
}

/// The client's token endpoint authentication method, with Authelia's default.
pub fn effective_auth_method(c: &Client) -> &str {
    match c.token_endpoint_auth_method.as_str() {
        "" if c.public => "none",
        "" => "client_secret_basic",
        m => m,
    }
}

/// A redirect URI must be absolute, without fragment, and https unless it is a loopback
/// address (or a custom scheme of a native application).
pub fn check_redirect_uri(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri).map_err(|e| format!("'{uri}' is not an absolute URL: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("'{uri}' must not have a fragment"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if url.host_str().is_some_and(is_loopback_host) => Ok(()),
        "http" => Err(format!("'{uri}' must use https (http only for loopback addresses)")),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    const BASE: &str =
        "identity_providers:\n  oidc:\n    hmac_secret: 'a-very-long-hmac-secret-for-tests-0123456789'\n";

    fn paths(clients: &str) -> Vec<String> {
        problem_paths(&format!("{BASE}    clients:\n{clients}"))
            .into_iter()
            .filter(|p| p.starts_with("identity_providers"))
            .collect()
    }

    #[test]
    fn a_valid_client_passes() {
        let c = "      - client_id: app\n        client_secret: '$pbkdf2-sha512$310000$c8p78n7pUMln0jzvd4aK4Q$JNRBzwAo0ek5qKn50cFzzvE9RXV88h1wJn5KGiHrD0YKtZaR/nCb2CJPOsKaPK0hjf.9yHxzQGZziziccp6Yng'\n        redirect_uris: ['https://app.example.com/cb', 'http://127.0.0.1:8080/cb']\n";
        assert_eq!(paths(c), Vec::<String>::new());
    }

    #[test]
    fn device_code_clients_need_no_redirect_uri() {
        // As in Authelia's own suite files: confidential and public clients alike.
        let c = "      - client_id: tv\n        client_secret: 'a-plaintext-secret-for-tests'\n        grant_types: ['urn:ietf:params:oauth:grant-type:device_code']\n        token_endpoint_auth_method: client_secret_post\n      - client_id: cli\n        public: true\n        grant_types: ['urn:ietf:params:oauth:grant-type:device_code', refresh_token]\n        scopes: [openid, offline_access]\n";
        assert_eq!(paths(c), Vec::<String>::new());
        let p = problem_paths(&format!(
            "{BASE}    lifespans:\n      device_code: 5m\n      custom:\n        tv:\n          device_code: 1m\n          grants:\n            device_code: {{access_token: 10m}}\n    cors:\n      endpoints: [device-authorization, sideways]\n    clients:\n{c}"
        ));
        let p: Vec<&String> = p.iter().filter(|p| p.starts_with("identity_providers")).collect();
        assert_eq!(
            p,
            ["identity_providers.oidc.cors.endpoints[1]"],
            "device_code lifespans and the CORS name are known"
        );
    }

    #[test]
    fn bad_clients_are_reported_by_key() {
        let c = "      - client_id: app\n        redirect_uris: ['http://app.example.com/cb', 'https://x#f']\n        consent_mode: sometimes\n        authorization_policy: three_factor\n        grant_types: [password]\n      - client_id: app\n        public: true\n        client_secret: s\n        redirect_uris: [https://a.example.com]\n";
        let p = paths(c);
        for key in [
            "identity_providers.oidc.clients[0].client_secret",
            "identity_providers.oidc.clients[0].redirect_uris[0]",
            "identity_providers.oidc.clients[0].redirect_uris[1]",
            "identity_providers.oidc.clients[0].consent_mode",
            "identity_providers.oidc.clients[0].authorization_policy",
            "identity_providers.oidc.clients[0].grant_types[0]",
            "identity_providers.oidc.clients[1].client_secret",
            "identity_providers.oidc.clients[1].client_id",
        ] {
            assert!(p.contains(&key.to_string()), "{key} in {p:?}");
        }
    }

    #[test]
    fn provider_keys() {
        let p = problem_paths(
            "identity_providers:\n  oidc:\n    hmac_secret: short\n    enforce_pkce: sometimes\n    clients: []\n",
        );
        for key in ["hmac_secret", "enforce_pkce", "clients"] {
            assert!(p.contains(&format!("identity_providers.oidc.{key}")), "{key} in {p:?}");
        }
    }

    #[test]
    fn plaintext_secrets_are_noted() {
        let config: crate::config::Configuration = serde_yaml::from_str(&format!(
            "{BASE}    clients:\n      - {{client_id: a, client_secret: plain}}\n      - {{client_id: b, client_secret: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA'}}\n"
        ))
        .unwrap();
        let noted: Vec<String> = super::super::notes(&config).into_iter().map(|n| n.path).collect();
        assert_eq!(noted, ["identity_providers.oidc.clients[0].client_secret"]);
    }

    #[test]
    fn loopback_hosts() {
        assert!(super::is_loopback_host("127.0.0.1"));
        assert!(super::is_loopback_host("[::1]"));
        assert!(super::is_loopback_host("localhost"));
        assert!(!super::is_loopback_host("example.com"));
    }
}
