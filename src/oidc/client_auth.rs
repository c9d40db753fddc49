//! Client authentication at the token, introspection, revocation and PAR endpoints
//! (RFC 6749 §2.3, OpenID Connect Core §9): what the client presented, and the check of a
//! JWT assertion (`client_secret_jwt`, `private_key_jwt`, RFC 7523). Secrets are checked
//! in `flows::oidc` (hashed secrets need the hashing pool).

use std::collections::HashMap;

use base64::Engine;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::Client;
use super::keys::parse_alg;
use super::request::OAuthError;

/// The assertion type of RFC 7523.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// What the client presented to authenticate.
#[derive(Debug, PartialEq, Eq)]
pub enum Presented {
    /// `Authorization: Basic` (client_secret_basic).
    Basic { client_id: String, secret: String },
    /// `client_id` and `client_secret` in the body (client_secret_post).
    Post { client_id: String, secret: String },
    /// A JWT assertion (client_secret_jwt or private_key_jwt).
    Assertion { client_id: String, assertion: String },
    /// Only a `client_id` (public clients).
    IdOnly { client_id: String },
}

impl Presented {
    /// The client it claims to be.
    pub fn client_id(&self) -> &str {
        match self {
            Self::Basic { client_id, .. }
            | Self::Post { client_id, .. }
            | Self::Assertion { client_id, .. }
            | Self::IdOnly { client_id } => client_id,
        }
    }

    /// The method this presentation is.
    pub fn method(&self, client: &Client) -> &'static str {
        match self {
            Self::Basic { .. } => "client_secret_basic",
            Self::Post { .. } => "client_secret_post",
            Self::Assertion { .. } if client.auth_method == "client_secret_jwt" => "client_secret_jwt",
            Self::Assertion { .. } => "private_key_jwt",
            Self::IdOnly { .. } => "none",
        }
    }
}

fn invalid_client(description: &str) -> OAuthError {
    OAuthError::new("invalid_client", description)
}

/// Reads the client's credentials from the `Authorization` header and the form. More than
/// one method at once is refused (RFC 6749 §2.3).
pub fn presented(authorization: Option<&str>, form: &HashMap<String, String>) -> Result<Presented, OAuthError> {
    let field = |k: &str| form.get(k).filter(|v| !v.is_empty()).cloned();
    let basic = match authorization {
        Some(h) if h.len() > 6 && h[..6].eq_ignore_ascii_case("basic ") => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(h[6..].trim())
                .map_err(|_| invalid_client("malformed Basic credentials"))?;
            let text = String::from_utf8(decoded).map_err(|_| invalid_client("malformed Basic credentials"))?;
            let (id, secret) = text.split_once(':').ok_or_else(|| invalid_client("malformed Basic credentials"))?;
            // RFC 6749 §2.3.1: both parts are form-urlencoded.
            let decode =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            Some((decode(id).unwrap_or_default(), decode(secret).unwrap_or_default()))
        }
        _ => None,
    };
    let assertion = field("client_assertion");
    let secret = field("client_secret");
    let client_id = field("client_id");
    let methods = [basic.is_some(), assertion.is_some(), secret.is_some()].iter().filter(|b| **b).count();
    if methods > 1 {
        return Err(OAuthError::new("invalid_request", "more than one client authentication method was used"));
    }
    if let Some((id, secret)) = basic {
        if client_id.as_ref().is_some_and(|c| *c != id) {
            return Err(invalid_client("client_id does not match the Basic credentials"));
        }
        return Ok(Presented::Basic { client_id: id, secret });
    }
    if let Some(assertion) = assertion {
        if field("client_assertion_type").as_deref() != Some(JWT_BEARER) {
            return Err(OAuthError::new("invalid_request", "unsupported client_assertion_type"));
        }
        let claimed = unverified_issuer(&assertion).ok_or_else(|| invalid_client("malformed client assertion"))?;
        if client_id.as_ref().is_some_and(|c| *c != claimed) {
            return Err(invalid_client("client_id does not match the client assertion"));
        }
        return Ok(Presented::Assertion { client_id: claimed, assertion });
    }
    match (client_id, secret) {
        (Some(client_id), Some(secret)) => Ok(Presented::Post { client_id, secret }),
        (Some(client_id), None) => Ok(Presented::IdOnly { client_id }),
        _ => Err(invalid_client("client authentication is required")),
    }
}

#[derive(Deserialize)]
struct AssertionClaims {
    iss: String,
    sub: String,
    jti: String,
    exp: i64,
}

/// The `iss` of an assertion, before its signature is checked (to find the client).
fn unverified_issuer(assertion: &str) -> Option<String> {
    let payload = assertion.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let value: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    value.get("iss")?.as_str().map(String::from)
}

/// A verified assertion: its `jti` (to refuse replays) and expiry.
#[derive(Debug)]
pub struct VerifiedAssertion {
    /// The assertion's ID.
    pub jti: String,
    /// Its expiry (Unix seconds).
    pub exp: i64,
}

/// Checks a client assertion: signed by the client (its secret for client_secret_jwt,
/// one of its keys for private_key_jwt), `iss` = `sub` = client ID, `aud` one of
/// `audiences`, not expired.
pub fn verify_assertion(
    client: &Client,
    assertion: &str,
    audiences: &[String],
) -> Result<VerifiedAssertion, OAuthError> {
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| invalid_client("malformed client assertion"))?;
    let keys: Vec<(Algorithm, DecodingKey)> = if client.auth_method == "client_secret_jwt" {
        let secret = client.config.client_secret.expose().as_bytes();
        vec![(header.alg, DecodingKey::from_secret(secret))]
            .into_iter()
            .filter(|(a, _)| matches!(a, Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512))
            .collect()
    } else {
        client
            .config
            .jwks
            .iter()
            .filter(|k| header.kid.as_deref().is_none_or(|kid| kid == k.key_id))
            .filter_map(|k| {
                let alg = if k.algorithm.is_empty() { header.alg } else { parse_alg(&k.algorithm)? };
                let pem = k.key.trim().as_bytes();
                let key = match alg {
                    Algorithm::ES256 | Algorithm::ES384 => DecodingKey::from_ec_pem(pem).ok()?,
                    _ => DecodingKey::from_rsa_pem(pem).ok()?,
                };
                (alg == header.alg).then_some((alg, key))
            })
            .collect()
    };
    if let Some(required) = parse_alg(&client.config.token_endpoint_auth_signing_alg)
        && required != header.alg
    {
        return Err(invalid_client("the client assertion uses another algorithm than registered"));
    }
    for (alg, key) in keys {
        let mut validation = Validation::new(alg);
        validation.set_audience(audiences);
        validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
        validation.set_issuer(&[client.id()]);
        validation.leeway = 5;
        if let Ok(data) = jsonwebtoken::decode::<AssertionClaims>(assertion, &key, &validation) {
            let c = data.claims;
            if c.sub != client.id() || c.iss != client.id() || c.jti.is_empty() {
                return Err(invalid_client("the client assertion's iss, sub or jti is wrong"));
            }
            return Ok(VerifiedAssertion { jti: c.jti, exp: c.exp });
        }
    }
    Err(invalid_client("the client assertion could not be verified"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect()
    }

    #[test]
    fn methods_are_read_and_mixing_is_refused() {
        let basic = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("my%20app:s%3Acret"));
        assert_eq!(
            presented(Some(&basic), &form(&[])).unwrap(),
            Presented::Basic { client_id: "my app".into(), secret: "s:cret".into() }
        );
        assert_eq!(
            presented(None, &form(&[("client_id", "a"), ("client_secret", "s")])).unwrap(),
            Presented::Post { client_id: "a".into(), secret: "s".into() }
        );
        assert_eq!(presented(None, &form(&[("client_id", "a")])).unwrap(), Presented::IdOnly { client_id: "a".into() });
        assert_eq!(presented(Some(&basic), &form(&[("client_secret", "s")])).unwrap_err().code, "invalid_request");
        assert_eq!(presented(None, &form(&[])).unwrap_err().code, "invalid_client");
        assert_eq!(presented(Some("Basic !!"), &form(&[])).unwrap_err().code, "invalid_client");
    }
}
