//! The registered relying parties: lookup by `client_id`, exact redirect URI matching,
//! allowed scopes, grants and response types, the factor level each requires of a user,
//! and their consent mode.

use std::collections::HashMap;

use crate::config::schema::{AuthorizationPolicy, Client as ClientConfig, Oidc};
use crate::config::validate::oidc::effective_auth_method;
use crate::session::AuthLevel;

/// How consent is obtained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsentMode {
    /// Asked every time.
    Explicit,
    /// Never asked.
    Implicit,
    /// Asked, and remembered for a while when the user says so.
    PreConfigured,
}

/// One registered client.
pub struct Client {
    /// Its configuration.
    pub config: ClientConfig,
    /// The authentication method at the token endpoint.
    pub auth_method: String,
    /// Its consent mode (`auto` resolved).
    pub consent: ConsentMode,
    policy: Policy,
}

/// The factor level a client requires.
#[derive(Clone, Debug)]
enum Policy {
    Level(AuthLevel),
    Named(AuthorizationPolicy),
}

fn level(name: &str) -> Option<AuthLevel> {
    match name {
        "one_factor" => Some(AuthLevel::OneFactor),
        "two_factor" => Some(AuthLevel::TwoFactor),
        _ => None,
    }
}

impl Client {
    fn new(config: ClientConfig, provider: &Oidc) -> Self {
        let consent = match config.consent_mode.as_str() {
            "explicit" => ConsentMode::Explicit,
            "implicit" => ConsentMode::Implicit,
            "pre-configured" => ConsentMode::PreConfigured,
            _ if config.pre_configured_consent_duration.is_some() => ConsentMode::PreConfigured,
            _ => ConsentMode::Explicit,
        };
        let policy = match provider.authorization_policies.get(&config.authorization_policy) {
            Some(named) => Policy::Named(named.clone()),
            None => Policy::Level(level(&config.authorization_policy).unwrap_or(AuthLevel::TwoFactor)),
        };
        let auth_method = effective_auth_method(&config).to_string();
        Self { config, auth_method, consent, policy }
    }

    /// The client's ID.
    pub fn id(&self) -> &str {
        &self.config.client_id
    }

    /// The name shown to users (the ID when no name is set).
    pub fn name(&self) -> &str {
        if self.config.client_name.is_empty() { &self.config.client_id } else { &self.config.client_name }
    }

    /// True for a registered redirect URI (compared exactly, as RFC 6749 §3.1.2.3 and
    /// OAuth 2.1 require).
    pub fn redirect_uri_allowed(&self, uri: &str) -> bool {
        self.config.redirect_uris.as_slice().iter().any(|r| r == uri)
    }

    /// True when the client may use `grant`.
    pub fn grant_allowed(&self, grant: &str) -> bool {
        self.config.grant_types.iter().any(|g| g == grant)
    }

    /// True when the client may ask for `response_type` (its values in any order).
    pub fn response_type_allowed(&self, response_type: &str) -> bool {
        let mut asked: Vec<&str> = response_type.split(' ').filter(|s| !s.is_empty()).collect();
        asked.sort_unstable();
        self.config.response_types.iter().any(|r| {
            let mut have: Vec<&str> = r.split(' ').collect();
            have.sort_unstable();
            have == asked
        })
    }

    /// True when the client may use `mode` (any of the usual ones when none is listed).
    pub fn response_mode_allowed(&self, mode: &str) -> bool {
        self.config.response_modes.is_empty() || self.config.response_modes.iter().any(|m| m == mode)
    }

    /// True when every scope of `scopes` is allowed to the client.
    pub fn scopes_allowed<'s>(&self, scopes: impl IntoIterator<Item = &'s str>) -> Result<(), String> {
        for s in scopes {
            if !self.config.scopes.iter().any(|allowed| allowed == s) {
                return Err(s.to_string());
            }
        }
        Ok(())
    }

    /// The level the client requires of `username` in `groups`; `None` when the user is
    /// denied.
    pub fn required_level(&self, username: &str, groups: &[String]) -> Option<AuthLevel> {
        let named = match &self.policy {
            Policy::Level(l) => return Some(*l),
            Policy::Named(named) => named,
        };
        let matches = |subject: &str| match subject.split_once(':') {
            Some(("user", u)) => u == username,
            Some(("group", g)) => groups.iter().any(|x| x == g),
            _ => false,
        };
        let policy = named
            .rules
            .iter()
            .find(|rule| rule.subject.as_slice().iter().any(|all| all.as_slice().iter().all(|s| matches(s))))
            .map_or(named.default_policy.as_str(), |rule| rule.policy.as_str());
        level(policy)
    }

    /// True for a public client (no secret).
    pub fn is_public(&self) -> bool {
        self.config.public
    }

    /// The `oauth2:client:<id>` subject its client-credentials tokens stand for.
    pub fn subject(&self) -> String {
        format!("oauth2:client:{}", self.config.client_id)
    }
}

/// Every registered client.
pub struct Clients {
    by_id: HashMap<String, Client>,
    order: Vec<String>,
}

impl Clients {
    /// The clients of the configuration.
    pub fn from_config(provider: &Oidc) -> Self {
        let mut by_id = HashMap::new();
        let mut order = Vec::new();
        for c in &provider.clients {
            order.push(c.client_id.clone());
            by_id.insert(c.client_id.clone(), Client::new(c.clone(), provider));
        }
        Self { by_id, order }
    }

    /// The client with `id`.
    pub fn get(&self, id: &str) -> Option<&Client> {
        self.by_id.get(id)
    }

    /// Every client, in configuration order.
    pub fn all(&self) -> impl Iterator<Item = &Client> {
        self.order.iter().filter_map(|id| self.by_id.get(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(yaml: &str) -> Oidc {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn redirect_uris_match_exactly() {
        let p = provider("clients: [{client_id: a, redirect_uris: ['https://app.example.com/cb']}]");
        let clients = Clients::from_config(&p);
        let c = clients.get("a").unwrap();
        assert!(c.redirect_uri_allowed("https://app.example.com/cb"));
        for other in ["https://app.example.com/cb/", "https://app.example.com/cb?x=1", "https://APP.example.com/cb"] {
            assert!(!c.redirect_uri_allowed(other), "{other}");
        }
        assert_eq!(c.consent, ConsentMode::Explicit);
        assert_eq!(c.auth_method, "client_secret_basic");
        assert!(c.response_type_allowed("code") && !c.response_type_allowed("token"));
        assert_eq!(c.scopes_allowed(["openid", "email"]), Ok(()));
        assert_eq!(c.scopes_allowed(["openid", "offline_access"]), Err("offline_access".into()));
    }

    #[test]
    fn named_policies_follow_their_rules() {
        let p = provider(
            "authorization_policies:\n  ops:\n    default_policy: deny\n    rules:\n      - {policy: one_factor, subject: 'group:ops'}\n      - {policy: two_factor, subject: [['user:bob', 'group:dev']]}\n\
             clients: [{client_id: a, authorization_policy: ops}, {client_id: b, authorization_policy: one_factor, pre_configured_consent_duration: 1w}]",
        );
        let clients = Clients::from_config(&p);
        let a = clients.get("a").unwrap();
        assert_eq!(a.required_level("amy", &["ops".into()]), Some(AuthLevel::OneFactor));
        assert_eq!(a.required_level("bob", &["dev".into()]), Some(AuthLevel::TwoFactor));
        assert_eq!(a.required_level("bob", &[]), None, "both subjects of a nested list are needed");
        let b = clients.get("b").unwrap();
        assert_eq!(b.required_level("x", &[]), Some(AuthLevel::OneFactor));
        assert_eq!(b.consent, ConsentMode::PreConfigured);
    }
}
