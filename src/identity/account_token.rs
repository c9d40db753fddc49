//! The account API's bearer tokens: short-lived JWTs (HS256) naming the user and the
//! factor level reached. Three kinds, never accepted for one another: `access` (the API
//! itself), `pending` (a password accepted, a second factor still owed: good only to
//! finish the login) and `otp` (the email verification under way). The key is
//! `account_api.jwt_secret`, or a random one kept sealed in storage.
//!
//! A token is refused after its user's cutoff (the password changed or was reset), which
//! the flows check against storage with the user's current state; the signature and the
//! times are checked here. Only HS256 is accepted: an `alg: none` or RS256 header is a
//! forgery, not a choice.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

/// The name of the generated key in the storage's sealed values.
pub const GENERATED_KEY_ROW: &str = "account_api_jwt_key";
/// Issuer and audience claims.
const ISSUER: &str = "Portcullis";
const AUDIENCE: &str = "portcullis-account-api";
/// How long a login may wait for its second factor.
const PENDING_LIFESPAN_SECS: i64 = 300;

/// What a token is good for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The account API.
    Access,
    /// Finishing a login with the second factor.
    Pending,
    /// Verifying an email address with the mailed code.
    Otp,
}

/// A token's claims.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    iss: String,
    aud: String,
    /// What it is for.
    pub typ: Kind,
    /// The user.
    pub sub: String,
    /// Factors proven: 1 or 2.
    pub lvl: u8,
    /// Issued (Unix seconds).
    pub iat: i64,
    /// Expires (Unix seconds).
    pub exp: i64,
    /// Issued, in milliseconds: compared with the user's cutoff, which may fall in the same
    /// second as a login right after a password change.
    pub ims: i64,
    /// Unique ID.
    pub jti: String,
    /// For `otp`: the mailed code's public ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otc: Option<String>,
    /// For `otp`: the address being verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

/// A token and when it expires.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The JWT.
    pub token: String,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
}

/// Issues and checks account tokens.
#[derive(Clone)]
pub struct AccountTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifespan: i64,
}

/// The token is not one to accept (signature, kind, audience, expiry).
#[derive(Debug, thiserror::Error)]
#[error("the token is invalid or has expired")]
pub struct Invalid;

impl AccountTokens {
    /// Tokens signed with `key`, access tokens living `lifespan` seconds.
    pub fn new(key: &[u8], lifespan: i64) -> Self {
        Self { encoding: EncodingKey::from_secret(key), decoding: DecodingKey::from_secret(key), lifespan }
    }

    /// A token of `kind` for `username` at `level` factors. `code` is the mailed code's ID
    /// and address, for `otp` tokens, which live `otp_lifespan` seconds.
    pub fn issue(
        &self,
        kind: Kind,
        username: &str,
        level: u8,
        code: Option<(String, String)>,
        otp_lifespan: i64,
        now_ms: i64,
    ) -> Result<Issued, String> {
        let now = now_ms.div_euclid(1000);
        let lifespan = match kind {
            Kind::Access => self.lifespan,
            Kind::Pending => PENDING_LIFESPAN_SECS,
            Kind::Otp => otp_lifespan,
        };
        let (otc, email) = code.map_or((None, None), |(id, email)| (Some(id), Some(email)));
        let claims = Claims {
            iss: ISSUER.into(),
            aud: AUDIENCE.into(),
            typ: kind,
            sub: username.to_string(),
            lvl: level,
            iat: now,
            exp: now + lifespan,
            ims: now_ms,
            jti: uuid::Uuid::new_v4().to_string(),
            otc,
            email,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| format!("cannot sign the token: {e}"))?;
        Ok(Issued { token, expires_at: claims.exp })
    }

    /// The claims of `token` when it is a valid, unexpired token of `kind`.
    pub fn verify(&self, token: &str, kind: Kind) -> Result<Claims, Invalid> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 0;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation).map_err(|_| Invalid)?.claims;
        if claims.typ != kind || !(1..=2).contains(&claims.lvl) {
            return Err(Invalid);
        }
        Ok(claims)
    }
}

/// Whether `value` (an `Authorization: Bearer` credential) has a JWT's shape, so that the
/// other bearer credentials (OpenID Connect access tokens, personal API tokens) are not
/// taken for account tokens.
pub fn looks_like_jwt(value: &str) -> bool {
    value.starts_with("eyJ") && value.split('.').count() == 3
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_700_000_000_123;

    fn tokens() -> AccountTokens {
        AccountTokens::new(b"a-key-for-account-tokens-32-chars!!", 3600)
    }

    #[test]
    fn kinds_are_not_interchangeable_and_forgeries_are_refused() {
        let t = tokens();
        let now = crate::clock::now() * 1000;
        let access = t.issue(Kind::Access, "john", 2, None, 600, now).unwrap().token;
        let claims = t.verify(&access, Kind::Access).unwrap();
        assert_eq!((claims.sub.as_str(), claims.lvl, claims.ims), ("john", 2, now));
        assert!(t.verify(&access, Kind::Pending).is_err(), "an access token does not finish a login");
        let pending = t.issue(Kind::Pending, "john", 1, None, 600, now).unwrap().token;
        assert!(t.verify(&pending, Kind::Access).is_err(), "a pending login is no access");

        // Another key, a changed payload, alg none: all refused.
        let other = AccountTokens::new(b"another-key-for-account-tokens-32!!", 3600);
        assert!(other.verify(&access, Kind::Access).is_err());
        let mut parts: Vec<String> = access.split('.').map(str::to_string).collect();
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let payload = String::from_utf8(b64.decode(&parts[1]).unwrap()).unwrap().replace("\"john\"", "\"root\"");
        parts[1] = b64.encode(payload);
        assert!(t.verify(&parts.join("."), Kind::Access).is_err(), "tampered payload");
        let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
        assert!(t.verify(&none, Kind::Access).is_err(), "alg none");
        assert!(looks_like_jwt(&access) && !looks_like_jwt("pcat_abc") && !looks_like_jwt("authelia_at_x.y"));
    }

    #[test]
    fn expired_tokens_are_refused() {
        let t = tokens();
        let old = t.issue(Kind::Access, "john", 1, None, 600, NOW_MS).unwrap().token;
        assert!(t.verify(&old, Kind::Access).is_err(), "issued in 2023, an hour long");
    }
}
