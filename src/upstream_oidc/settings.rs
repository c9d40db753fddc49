//! The provider's settings: what makes them valid (shared by the configuration's
//! validation and `PUT /auth/provider/oidc`), and their stored form, one value sealed
//! under the storage key (the client secret included) so a copy of the database yields
//! nothing usable and `storage encryption change-key` re-seals it with the rest.

use serde::{Deserialize, Serialize};

use crate::config::schema::{UpstreamClaims, UpstreamOidc};
use crate::config::types::Secret;

/// The name of the sealed value in the encryption table.
pub const SEALED_NAME: &str = "upstream_oidc_provider";

/// Where the settings in force come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// `PUT /auth/provider/oidc` stored them.
    Database,
    /// The configuration file.
    Configuration,
}

/// The settings in force.
#[derive(Clone, Debug)]
pub struct Effective {
    /// The settings.
    pub settings: UpstreamOidc,
    /// Their origin.
    pub source: Source,
    /// When they were stored (Unix seconds; stored settings only).
    pub updated_at: Option<i64>,
    /// Who stored them.
    pub updated_by: Option<String>,
}

/// The stored form: the settings with the secret in clear (the whole is sealed).
#[derive(Serialize, Deserialize)]
pub struct Stored {
    issuer: String,
    client_id: String,
    client_secret: String,
    display_name: String,
    scopes: Vec<String>,
    claims: UpstreamClaims,
    allowed_email_domains: Vec<String>,
    create_users: bool,
    link_by_email: bool,
    trust_upstream_mfa: bool,
    updated_at: i64,
    updated_by: String,
}

impl Stored {
    /// The stored form of `s`, written by `by` at `now`.
    pub fn new(s: &UpstreamOidc, by: &str, now: i64) -> Self {
        Self {
            issuer: s.issuer.clone(),
            client_id: s.client_id.clone(),
            client_secret: s.client_secret.expose().to_string(),
            display_name: s.display_name.clone(),
            scopes: s.scopes.clone(),
            claims: s.claims.clone(),
            allowed_email_domains: s.allowed_email_domains.clone(),
            create_users: s.create_users,
            link_by_email: s.link_by_email,
            trust_upstream_mfa: s.trust_upstream_mfa,
            updated_at: now,
            updated_by: by.to_string(),
        }
    }

    /// The settings it holds.
    pub fn effective(self) -> Effective {
        Effective {
            settings: UpstreamOidc {
                issuer: self.issuer,
                client_id: self.client_id,
                client_secret: Secret::new(self.client_secret),
                display_name: self.display_name,
                scopes: self.scopes,
                claims: self.claims,
                allowed_email_domains: self.allowed_email_domains,
                create_users: self.create_users,
                link_by_email: self.link_by_email,
                trust_upstream_mfa: self.trust_upstream_mfa,
            },
            source: Source::Database,
            updated_at: Some(self.updated_at),
            updated_by: Some(self.updated_by),
        }
    }
}

/// Settings put in canonical form: `openid` first among unique scopes, domains lower case
/// without a leading `@`, the button's label defaulting to the issuer's host.
pub fn normalized(mut s: UpstreamOidc) -> UpstreamOidc {
    s.issuer = s.issuer.trim().to_string();
    s.client_id = s.client_id.trim().to_string();
    let mut scopes = vec!["openid".to_string()];
    for scope in s.scopes.iter().flat_map(|s| s.split_ascii_whitespace()) {
        if !scopes.iter().any(|known| known == scope) {
            scopes.push(scope.to_string());
        }
    }
    s.scopes = scopes;
    s.allowed_email_domains = s
        .allowed_email_domains
        .iter()
        .map(|d| d.trim().trim_start_matches('@').to_ascii_lowercase())
        .filter(|d| !d.is_empty())
        .collect();
    s.display_name = s.display_name.trim().to_string();
    if s.display_name.is_empty() {
        s.display_name =
            url::Url::parse(&s.issuer).ok().and_then(|u| u.host_str().map(str::to_string)).unwrap_or_default();
    }
    s
}

/// What is wrong with `s`, as (key below `upstream_oidc`, problem).
pub fn problems(s: &UpstreamOidc) -> Vec<(&'static str, String)> {
    let mut found = Vec::new();
    match url::Url::parse(&s.issuer) {
        Err(e) => found.push(("issuer", format!("must be an absolute URL: {e}"))),
        Ok(url) => {
            if let Some(problem) = issuer_problem(&url) {
                found.push(("issuer", problem));
            }
        }
    }
    if s.client_id.is_empty() || s.client_id.len() > 255 {
        found.push(("client_id", "must be 1 to 255 characters".into()));
    }
    if s.client_secret.is_empty() {
        found.push(("client_secret", "must be set".into()));
    }
    if s.display_name.chars().count() > 64 {
        found.push(("display_name", "must be at most 64 characters".into()));
    }
    let scope_char = |c: char| c.is_ascii_graphic() && c != '"' && c != '\\';
    if s.scopes.iter().any(|scope| scope.is_empty() || !scope.chars().all(scope_char)) || s.scopes.len() > 20 {
        found.push(("scopes", "must be at most 20 scope names of printable characters".into()));
    }
    let claim_ok = |c: &str| !c.is_empty() && c.len() <= 64;
    for (key, claim) in [
        ("claims.username", &s.claims.username),
        ("claims.email", &s.claims.email),
        ("claims.groups", &s.claims.groups),
    ] {
        if !claim_ok(claim) {
            found.push((key, "must be a claim name of 1 to 64 characters".into()));
        }
    }
    if s.allowed_email_domains.iter().any(|d| d.contains('@') || d.contains(char::is_whitespace)) {
        found.push(("allowed_email_domains", "must be domain names (example.com)".into()));
    }
    found
}

/// Plain HTTP is only for an issuer on this machine (tests, a provider beside us); the
/// authorization code and client secret must not cross a network in clear.
fn issuer_problem(url: &url::Url) -> Option<String> {
    if url.query().is_some() || url.fragment().is_some() {
        return Some("must have no query or fragment".into());
    }
    match url.scheme() {
        "https" => None,
        "http" if is_loopback(url) => None,
        "http" => Some("must use https (plain http is accepted for loopback addresses only)".into()),
        other => Some(format!("scheme {other} is not http(s)")),
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> UpstreamOidc {
        UpstreamOidc {
            issuer: "https://id.example.com".into(),
            client_id: "portcullis".into(),
            client_secret: Secret::new("s3cret"),
            ..Default::default()
        }
    }

    #[test]
    fn a_complete_provider_is_valid_and_normalized() {
        assert!(problems(&valid()).is_empty());
        let s = normalized(UpstreamOidc {
            scopes: vec!["email openid".into(), "email".into()],
            allowed_email_domains: vec![" @Example.COM ".into()],
            ..valid()
        });
        assert_eq!(s.scopes, ["openid", "email"]);
        assert_eq!(s.allowed_email_domains, ["example.com"]);
        assert_eq!(s.display_name, "id.example.com");
    }

    #[test]
    fn plain_http_only_on_loopback() {
        for (issuer, ok) in [
            ("http://127.0.0.1:9091", true),
            ("http://[::1]:9091", true),
            ("http://localhost:9091", true),
            ("http://id.example.com", false),
            ("ftp://id.example.com", false),
            ("https://id.example.com/?x=1", false),
            ("id.example.com", false),
        ] {
            let s = UpstreamOidc { issuer: issuer.into(), ..valid() };
            assert_eq!(problems(&s).is_empty(), ok, "{issuer}");
        }
    }

    #[test]
    fn every_field_is_checked() {
        let s = UpstreamOidc {
            client_id: String::new(),
            client_secret: Secret::default(),
            scopes: vec!["bad\"scope".into()],
            claims: UpstreamClaims { username: String::new(), ..Default::default() },
            allowed_email_domains: vec!["a@b".into()],
            ..valid()
        };
        let keys: Vec<_> = problems(&s).into_iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["client_id", "client_secret", "scopes", "claims.username", "allowed_email_domains"]);
    }
}
