//! Semantic validation: what types cannot say (required keys, allowed values, URLs under
//! their cookie domain, regexes that compile, ...). Every problem is collected, with its
//! key path. One file per section of the configuration, each with its tests.

mod access_control;
mod api_tokens;
mod authentication;
mod notifier;
pub mod oidc;
mod second_factor;
mod server;
mod session;
mod storage;
pub mod telemetry;

pub(super) use std::collections::{BTreeSet, HashSet};
pub(super) use std::net::IpAddr;

pub(super) use super::load::Problem;
pub(super) use super::schema::*;
pub(super) use super::types::{AbsoluteUrl, Duration};

/// Checks `config` and returns every problem found (empty when valid).
pub fn validate(config: &Configuration) -> Vec<Problem> {
    let mut v = Validator::default();
    v.general(config);
    v.server(&config.server);
    v.log(&config.log);
    v.authentication(&config.authentication_backend, &config.identity_validation);
    v.password_policy(&config.password_policy);
    v.session(&config.session);
    v.regulation(&config.regulation);
    v.storage(&config.storage);
    v.notifier(&config.notifier);
    v.totp(&config.totp);
    v.webauthn(&config.webauthn);
    v.identity_validation(&config.identity_validation);
    v.email_otp(&config.email_otp);
    let networks = v.network_definitions(config);
    v.access_control(&config.access_control, &networks);
    v.oidc(&config.identity_providers);
    v.telemetry(&config.telemetry, &config.server);
    v.account_api(config);
    v.api_tokens(&config.api_tokens);
    if let Err(problem) = crate::server::host_mode::HostMode::new(config.server.auth_host.as_deref()) {
        v.err("server.auth_host", problem);
    }
    if config.upstream_oidc.is_configured() {
        let normalized = crate::upstream_oidc::settings::normalized(config.upstream_oidc.clone());
        for (key, problem) in crate::upstream_oidc::settings::problems(&normalized) {
            v.err(format!("upstream_oidc.{key}"), problem);
        }
    }
    v.problems
}

/// Settings that are valid but do not do what an Authelia user may expect; reported as
/// warnings.
pub fn notes(config: &Configuration) -> Vec<Problem> {
    let mut notes = Vec::new();
    let w = &config.webauthn;
    if !w.disable && w.selection_criteria.user_verification != "required" {
        notes.push(Problem::new(
            "webauthn.selection_criteria.user_verification",
            "Portcullis always requires user verification (PIN or biometrics) for security keys and passkeys",
        ));
    }
    if w.experimental_enable_passkey_upgrade && !w.enable_passkey_login {
        notes.push(Problem::new(
            "webauthn.experimental_enable_passkey_upgrade",
            "has no effect without webauthn.enable_passkey_login",
        ));
    }
    let redis_tls = config.session.redis.as_ref().is_some_and(|r| r.tls.is_some());
    if config.certificates_directory.is_some() && (redis_tls || config.notifier.smtp.is_some()) {
        notes.push(Problem::new(
            "certificates_directory",
            "trusted for the database and LDAP connections only; TLS to Redis and to the SMTP server trusts the \
             system's certificate authorities",
        ));
    }
    if let Some(ha) = config.session.redis.as_ref().and_then(|r| r.high_availability.as_ref()) {
        for (set, key) in [(ha.route_by_latency, "route_by_latency"), (ha.route_randomly, "route_randomly")] {
            if set {
                notes.push(Problem::new(
                    format!("session.redis.high_availability.{key}"),
                    "sessions are always read from the master: a replica may not have the latest write yet \
                     (the local session cache spares most reads instead)",
                ));
            }
        }
    }
    if let Some(oidc) = &config.identity_providers.oidc {
        for (i, client) in oidc.clients.iter().enumerate() {
            let secret = client.client_secret.expose();
            if !secret.is_empty()
                && !secret.starts_with('$')
                && client.token_endpoint_auth_method != "client_secret_jwt"
            {
                notes.push(Problem::new(
                    format!("identity_providers.oidc.clients[{i}].client_secret"),
                    "stored in plaintext; store a hash instead (portcullis crypto hash generate pbkdf2 --variant sha512)",
                ));
            }
        }
    }
    notes
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.contains(&value)
}

fn list(allowed: &[&str]) -> String {
    allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn choice(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !one_of(value, allowed) {
            self.err(path, format!("'{value}' is not allowed; use one of {}", list(allowed)));
        }
    }

    fn positive(&mut self, path: &str, d: Duration) {
        if d.is_zero() {
            self.err(path, "must be longer than zero");
        }
    }

    fn range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            self.err(path, format!("{value} is out of range; must be between {min} and {max}"));
        }
    }

    fn general(&mut self, c: &Configuration) {
        if c.certificates_directory.as_deref().is_some_and(|d| d.trim().is_empty()) {
            self.err("certificates_directory", "must name a directory of PEM certificates when set");
        }
        if c.admin.group.trim().is_empty() {
            self.err("admin.group", "must name a group");
        }
        if !c.theme.is_empty() {
            self.choice("theme", &c.theme, &["light", "dark", "grey", "auto"]);
        }
        match c.default_2fa_method.as_str() {
            "" => {}
            "totp" if c.totp.disable => self.err("default_2fa_method", "'totp' is disabled by totp.disable"),
            "webauthn" if c.webauthn.disable => {
                self.err("default_2fa_method", "'webauthn' is disabled by webauthn.disable")
            }
            "email" if !c.email_otp.enable => self.err("default_2fa_method", "'email' needs email_otp.enable"),
            "totp" | "webauthn" | "email" => {}
            other => {
                self.err("default_2fa_method", format!("'{other}' is not allowed; use 'totp', 'webauthn' or 'email'"))
            }
        }
    }

    fn account_api(&mut self, c: &Configuration) {
        let api = &c.account_api;
        if api.enabled {
            self.positive("account_api.token_lifespan", api.token_lifespan);
            if api.token_lifespan.as_secs() > 86_400 {
                self.err(
                    "account_api.token_lifespan",
                    "at most 1 day: long-lived access is what personal API tokens are for",
                );
            }
        }
        if !api.jwt_secret.is_empty() && api.jwt_secret.expose().chars().count() < 32 {
            self.err("account_api.jwt_secret", "at least 32 characters");
        }
        let signup = &c.signup;
        if signup.enabled {
            if !api.enabled {
                self.err("signup.enabled", "registration is part of the account API: set account_api.enabled");
            }
            if c.authentication_backend.database.is_none() {
                self.err(
                    "signup.enabled",
                    "new accounts need the database users backend (authentication_backend.database)",
                );
            }
            self.positive("signup.referral_lifespan", signup.referral_lifespan);
            self.range("signup.referral_uses", signup.referral_uses.into(), 1, 1000);
            self.range("signup.referrals_per_user", signup.referrals_per_user.into(), 1, 1000);
        }
    }

    fn tls(&mut self, path: &str, t: &Tls) {
        for (key, value) in [("minimum_version", &t.minimum_version), ("maximum_version", &t.maximum_version)] {
            if !value.is_empty() {
                self.choice(&format!("{path}.{key}"), value, &["TLS1.2", "TLS1.3"]);
            }
        }
        if t.minimum_version == "TLS1.3" && t.maximum_version == "TLS1.2" {
            self.err(format!("{path}.minimum_version"), format!("must not be above {path}.maximum_version"));
        }
    }

    /// Refuses client certificates where they are not implemented rather than silently
    /// connecting without them.
    fn no_client_certificate(&mut self, path: &str, t: &Tls) {
        if !t.certificate_chain.is_empty() || !t.private_key.is_empty() {
            self.err(path, "client certificates (certificate_chain, private_key) are not supported here yet");
        }
    }
}

/// Parses an IP address or CIDR.
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>().ok().or_else(|| t.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// True for domains whose portal may be served over plain http (developer machines).
pub fn is_local_domain(domain: &str) -> bool {
    domain == "localhost" || domain.ends_with(".localhost")
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Parses `scheme://host:port` service addresses (SMTP, SQL).
pub fn parse_service_address(text: &str, schemes: &[&str]) -> Result<url::Url, String> {
    let with_scheme = if text.contains("://") { text.to_string() } else { format!("{}://{text}", schemes[0]) };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("invalid address '{text}': {e}"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("scheme '{}' is not allowed; use one of {}", url.scheme(), list(schemes)));
    }
    if url.scheme() != "unix" && url.host_str().is_none_or(str::is_empty) {
        return Err(format!("address '{text}' has no host"));
    }
    Ok(url)
}

/// Problems of a configuration given as YAML (for the section tests).
#[cfg(test)]
pub(super) fn problem_paths(yaml: &str) -> Vec<String> {
    let config: Configuration = serde_yaml::from_str(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    validate(&config).into_iter().map(|p| p.path).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_directory_notes_what_it_does_not_cover() {
        let noted = |c: &Configuration| notes(c).iter().any(|n| n.path == "certificates_directory");
        let mut config = Configuration { certificates_directory: Some("/certs".into()), ..Configuration::default() };
        assert!(!noted(&config), "nothing else speaks TLS");
        config.notifier.smtp = Some(Default::default());
        assert!(noted(&config), "SMTP does not use it");
    }

    #[test]
    fn replica_routing_is_noted_as_not_applied() {
        let yaml = "session:\n  redis:\n    host: h\n    high_availability:\n      sentinel_name: m\n      route_by_latency: true\n";
        let config: Configuration = serde_yaml::from_str(yaml).unwrap();
        let paths: Vec<String> = notes(&config).into_iter().map(|n| n.path).collect();
        assert!(paths.contains(&"session.redis.high_availability.route_by_latency".to_string()), "{paths:?}");
        assert!(!paths.iter().any(|p| p.ends_with("route_randomly")), "{paths:?}");
    }

    #[test]
    fn account_api_and_signup_keys() {
        let has = |yaml: &str, path: &str| problem_paths(yaml).iter().any(|p| p == path);
        assert!(has("signup: {enabled: true}", "signup.enabled"), "needs the account API and the database");
        assert!(has("account_api: {enabled: true, token_lifespan: 2d}", "account_api.token_lifespan"));
        assert!(has("account_api: {jwt_secret: short}", "account_api.jwt_secret"));
        assert!(has(
            "account_api: {enabled: true}\nsignup: {enabled: true, referral_uses: 0}\nauthentication_backend: {database: {}}",
            "signup.referral_uses"
        ));
        let fine = "account_api: {enabled: true, jwt_secret: 'a-secret-of-at-least-32-characters!'}\n\
                    signup: {enabled: true}\nauthentication_backend: {database: {}}";
        let paths = problem_paths(fine);
        assert!(!paths.iter().any(|p| p.starts_with("account_api") || p.starts_with("signup")), "{paths:?}");
    }

    #[test]
    fn service_addresses() {
        assert!(parse_service_address("submission://smtp.example.com:587", &["smtp", "submission"]).is_ok());
        assert!(parse_service_address("smtp.example.com:25", &["smtp"]).is_ok());
        assert!(parse_service_address("http://x", &["smtp"]).is_err());
        assert!(parse_service_address("tcp://:5432", &["tcp"]).is_err(), "no host");
    }

    #[test]
    fn general_keys() {
        for (yaml, path) in [
            ("theme: pink", "theme"),
            ("default_2fa_method: duo", "default_2fa_method"),
            ("default_2fa_method: email", "default_2fa_method"),
            ("certificates_directory: ' '", "certificates_directory"),
        ] {
            assert!(problem_paths(yaml).contains(&path.to_string()), "{yaml}");
        }
        assert!(!problem_paths("theme: dark").contains(&"theme".to_string()));
    }
}
