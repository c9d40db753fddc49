//! Renders `api/openapi.yml`, a minijinja template, for the features this server has on.
//! The template is compiled into the binary and rendered once at startup.

use std::collections::BTreeMap;

use minijinja::Environment;
use serde::Serialize;

use crate::config::Configuration;

/// The OpenAPI template source.
pub const TEMPLATE: &str = include_str!("../api/openapi.yml");

/// Template variables, named as in Authelia's template.
#[derive(Clone, Debug, Default, Serialize)]
#[allow(non_snake_case)]
pub struct Features {
    /// Portal URL of the first cookie domain.
    pub BaseURL: Option<String>,
    /// The first cookie domain.
    pub Domain: Option<String>,
    /// Password reset is available.
    pub PasswordReset: bool,
    /// Password change is available.
    pub PasswordChange: bool,
    /// TOTP is enabled.
    pub TOTP: bool,
    /// WebAuthn is enabled.
    pub WebAuthn: bool,
    /// Passkey login is enabled.
    pub Passkeys: bool,
    /// The password may follow a one-factor passkey login as the second factor.
    pub PasskeyUpgrade: bool,
    /// Emailed sign-in codes are enabled.
    pub EmailOtp: bool,
    /// The OpenID Connect provider is enabled.
    pub OpenIDConnect: bool,
    /// The admin API is served (always, for now: it needs no configuration).
    pub Admin: bool,
    /// The account API (`/api/auth`) is served.
    pub AccountApi: bool,
    /// Registration by referral is open (within the account API).
    pub Signup: bool,
    /// Personal API tokens are enabled.
    pub ApiTokens: bool,
    /// Authorization endpoints by name.
    pub EndpointsAuthz: BTreeMap<String, AuthzEndpointFeature>,
}

/// One authorization endpoint, as the template sees it.
#[derive(Clone, Debug, Serialize)]
#[allow(non_snake_case)]
pub struct AuthzEndpointFeature {
    /// ForwardAuth, AuthRequest, ExtAuthz or Legacy.
    pub Implementation: String,
}

impl Features {
    /// The features `config` enables.
    pub fn from_config(config: &Configuration) -> Self {
        let first = config.session.cookies.first();
        let backend = &config.authentication_backend;
        Self {
            BaseURL: first.and_then(|c| c.authelia_url.as_ref()).map(|u| u.url().to_string()),
            Domain: first.and_then(|c| c.domain.clone()),
            PasswordReset: !backend.password_reset.disable && backend.password_reset.custom_url.is_none(),
            PasswordChange: !backend.password_change.disable,
            TOTP: !config.totp.disable,
            WebAuthn: !config.webauthn.disable,
            Passkeys: !config.webauthn.disable && config.webauthn.enable_passkey_login,
            PasskeyUpgrade: !config.webauthn.disable
                && config.webauthn.enable_passkey_login
                && config.webauthn.experimental_enable_passkey_upgrade,
            EmailOtp: config.email_otp.enable,
            OpenIDConnect: config.identity_providers.oidc.is_some(),
            Admin: true,
            AccountApi: config.account_api.enabled,
            Signup: config.account_api.enabled && config.signup.enabled,
            ApiTokens: config.api_tokens.enabled,
            EndpointsAuthz: config
                .server
                .endpoints
                .authz
                .iter()
                .filter_map(|(name, e)| {
                    let implementation = e.implementation?.as_str().to_string();
                    Some((name.clone(), AuthzEndpointFeature { Implementation: implementation }))
                })
                .collect(),
        }
    }
}

/// Renders the OpenAPI document for `features`.
pub fn render(features: &Features) -> Result<String, minijinja::Error> {
    let mut env = Environment::new();
    let syntax = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()?;
    env.set_syntax(syntax);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.add_template("openapi.yml", TEMPLATE)?;
    env.get_template("openapi.yml")?.render(minijinja::value::Serde(features))
}

/// The paths (and their lower-case methods) a rendered document declares.
/// One operation of the rendered document, for the reference page.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Operation {
    /// Upper-case method.
    pub method: String,
    /// The path template.
    pub path: String,
    /// The operation's summary.
    pub summary: String,
    /// Its description.
    pub description: String,
}

/// The operations of `document` grouped by their first tag, groups and operations in
/// document order: what the API reference page at `/api/` lists.
pub fn reference(document: &str) -> Result<Vec<(String, Vec<Operation>)>, serde_yaml::Error> {
    let value: serde_yaml::Value = serde_yaml::from_str(document)?;
    let mut groups: Vec<(String, Vec<Operation>)> = Vec::new();
    let text =
        |v: &serde_yaml::Value, key: &str| v.get(key).and_then(|s| s.as_str()).unwrap_or_default().trim().to_string();
    let Some(paths) = value.get("paths").and_then(|p| p.as_mapping()) else { return Ok(groups) };
    for (path, item) in paths {
        let (Some(path), Some(item)) = (path.as_str(), item.as_mapping()) else { continue };
        for (method, op) in item {
            let Some(method) = method.as_str() else { continue };
            if matches!(method, "parameters" | "summary" | "description" | "servers") {
                continue;
            }
            let tag = op.get("tags").and_then(|t| t.get(0)).and_then(|t| t.as_str()).unwrap_or("Other").to_string();
            let operation = Operation {
                method: method.to_ascii_uppercase(),
                path: path.to_string(),
                summary: text(op, "summary"),
                description: text(op, "description"),
            };
            match groups.iter_mut().find(|(t, _)| *t == tag) {
                Some((_, ops)) => ops.push(operation),
                None => groups.push((tag, vec![operation])),
            }
        }
    }
    Ok(groups)
}

pub fn declared_operations(document: &str) -> Result<BTreeMap<String, Vec<String>>, serde_yaml::Error> {
    let value: serde_yaml::Value = serde_yaml::from_str(document)?;
    let mut out = BTreeMap::new();
    if let Some(paths) = value.get("paths").and_then(|p| p.as_mapping()) {
        for (path, item) in paths {
            let Some(path) = path.as_str() else { continue };
            let mut methods: Vec<String> = item
                .as_mapping()
                .map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_string)).collect())
                .unwrap_or_default();
            methods.retain(|m| !matches!(m.as_str(), "parameters" | "summary" | "description" | "servers"));
            methods.sort();
            out.insert(path.to_string(), methods);
        }
    }
    Ok(out)
}
