//! Claims about the user: the ID token's (RFC 7519 registered claims, `nonce`, `at_hash`,
//! `auth_time`, `amr`, `azp`) and, by scope, `profile` (name, preferred_username),
//! `email` (email, email_verified) and `groups`, in the ID token and at UserInfo.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// What a grant records about the user's authentication.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Authentication {
    /// The user's login name (empty for client credentials).
    pub username: String,
    /// The `sub` the client sees.
    pub subject: String,
    /// When the user last authenticated (Unix seconds).
    pub auth_time: i64,
    /// Authentication methods (RFC 8176 values).
    pub amr: Vec<String>,
    /// `acr` (empty: none).
    pub acr: String,
}

/// The user's attributes the scopes may reveal.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Profile {
    /// Login name.
    pub username: String,
    /// Display name.
    pub display_name: String,
    /// Emails, primary first.
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
}

/// The scope-dependent claims for `scopes`.
pub fn scoped_claims(profile: &Profile, scopes: &[String]) -> Map<String, Value> {
    let mut m = Map::new();
    let has = |s: &str| scopes.iter().any(|x| x == s);
    if has("profile") {
        m.insert("name".into(), json!(profile.display_name));
        m.insert("preferred_username".into(), json!(profile.username));
    }
    if has("email")
        && let Some(primary) = profile.emails.first()
    {
        m.insert("email".into(), json!(primary));
        // The users backends hold only addresses their administrator entered.
        m.insert("email_verified".into(), json!(true));
        if profile.emails.len() > 1 {
            m.insert("alt_emails".into(), json!(profile.emails[1..]));
        }
    }
    if has("groups") {
        m.insert("groups".into(), json!(profile.groups));
    }
    m
}

/// Inputs of an ID token.
pub struct IdToken<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// The client.
    pub client_id: &'a str,
    /// Who authenticated, when and how.
    pub auth: &'a Authentication,
    /// The client's nonce (empty: none).
    pub nonce: &'a str,
    /// `at_hash` (empty: none).
    pub at_hash: &'a str,
    /// `c_hash` (empty: none).
    pub c_hash: &'a str,
    /// Issued at.
    pub now: i64,
    /// Lifespan in seconds.
    pub lifespan: i64,
    /// Scope-dependent claims to include.
    pub extra: Map<String, Value>,
}

impl IdToken<'_> {
    /// The claims, as signed.
    pub fn claims(self) -> Value {
        let mut m = self.extra;
        m.insert("iss".into(), json!(self.issuer));
        m.insert("sub".into(), json!(self.auth.subject));
        m.insert("aud".into(), json!([self.client_id]));
        m.insert("azp".into(), json!(self.client_id));
        m.insert("exp".into(), json!(self.now + self.lifespan));
        m.insert("iat".into(), json!(self.now));
        m.insert("auth_time".into(), json!(self.auth.auth_time));
        m.insert("jti".into(), json!(super::tokens::random_id()));
        if !self.auth.amr.is_empty() {
            m.insert("amr".into(), json!(self.auth.amr));
        }
        if !self.auth.acr.is_empty() {
            m.insert("acr".into(), json!(self.auth.acr));
        }
        for (k, v) in [("nonce", self.nonce), ("at_hash", self.at_hash), ("c_hash", self.c_hash)] {
            if !v.is_empty() {
                m.insert(k.into(), json!(v));
            }
        }
        Value::Object(m)
    }
}

/// How the session's first factor was proven.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirstFactor {
    /// No first factor.
    None,
    /// A password.
    Password,
    /// A passkey (counted as one factor).
    Passkey,
}

/// RFC 8176 `amr` values for a session: `pwd` for a password, `hwk` for a security key
/// or passkey, `otp` for a TOTP, recovery or emailed code, `mfa` with two factors.
pub fn amr(second: Option<crate::second_factor::Method>, first: FirstFactor) -> Vec<String> {
    use crate::second_factor::Method;
    let mut amr = Vec::new();
    match first {
        FirstFactor::Password => amr.push("pwd".to_string()),
        FirstFactor::Passkey => amr.push("hwk".to_string()),
        FirstFactor::None => {}
    }
    let second = match second {
        Some(Method::WebAuthn | Method::Passkey) => Some("hwk"),
        Some(Method::Password) => Some("pwd"),
        Some(_) => Some("otp"),
        None => None,
    };
    if let Some(method) = second {
        if !amr.iter().any(|m| m == method) {
            amr.push(method.into());
        }
        if first != FirstFactor::None {
            amr.push("mfa".into());
        }
    }
    amr
}

/// The `acr` for `amr`: OpenID's Extended Authentication Profile value `phr` (phishing
/// resistant) when a security key or passkey took part; otherwise none is claimed.
pub fn acr(amr: &[String]) -> String {
    if amr.iter().any(|m| m == "hwk") { "phr".into() } else { String::new() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_select_claims() {
        let p = Profile {
            username: "john".into(),
            display_name: "John Doe".into(),
            emails: vec!["john@example.com".into()],
            groups: vec!["dev".into()],
        };
        let none = scoped_claims(&p, &["openid".into()]);
        assert!(none.is_empty());
        let all = scoped_claims(&p, &["openid".into(), "profile".into(), "email".into(), "groups".into()]);
        assert_eq!(all["preferred_username"], "john");
        assert_eq!(all["name"], "John Doe");
        assert_eq!(all["email"], "john@example.com");
        assert_eq!(all["email_verified"], true);
        assert_eq!(all["groups"], json!(["dev"]));
    }

    #[test]
    fn id_token_claims() {
        let auth = Authentication {
            username: "john".into(),
            subject: "s-1".into(),
            auth_time: 5,
            amr: amr(Some(crate::second_factor::Method::Totp), FirstFactor::Password),
            acr: String::new(),
        };
        let claims = IdToken {
            issuer: "https://auth.example.com",
            client_id: "app",
            auth: &auth,
            nonce: "n",
            at_hash: "",
            c_hash: "",
            now: 10,
            lifespan: 60,
            extra: Map::new(),
        }
        .claims();
        assert_eq!(claims["sub"], "s-1");
        assert_eq!(claims["aud"], json!(["app"]));
        assert_eq!(claims["exp"], 70);
        assert_eq!(claims["nonce"], "n");
        assert_eq!(claims["amr"], json!(["pwd", "otp", "mfa"]));
        assert!(claims.get("at_hash").is_none());
    }

    #[test]
    fn amr_and_acr_follow_the_factors() {
        use crate::second_factor::Method;
        let s = |v: &[&str]| v.iter().map(|m| m.to_string()).collect::<Vec<_>>();
        assert_eq!(amr(None, FirstFactor::Password), s(&["pwd"]));
        assert_eq!(amr(Some(Method::Totp), FirstFactor::Password), s(&["pwd", "otp", "mfa"]));
        assert_eq!(amr(Some(Method::WebAuthn), FirstFactor::Password), s(&["pwd", "hwk", "mfa"]));
        assert_eq!(amr(None, FirstFactor::Passkey), s(&["hwk"]));
        assert_eq!(amr(Some(Method::Password), FirstFactor::Passkey), s(&["hwk", "pwd", "mfa"]));
        assert_eq!(acr(&amr(Some(Method::Totp), FirstFactor::Password)), "");
        assert_eq!(acr(&amr(Some(Method::WebAuthn), FirstFactor::Password)), "phr");
        assert_eq!(acr(&amr(None, FirstFactor::Passkey)), "phr");
    }
}
