//! The provider's signing keys: from `identity_providers.oidc.jwks` (several, each with its
//! `kid` and algorithm), or, when none is configured, one RS256 key generated on first
//! start and kept sealed with the storage encryption key. Tokens are signed with the key a
//! client asks for by `kid`, else the first key of the algorithm it asks for.

use base64::Engine;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::Serialize;

use crate::config::schema::JwkConfig;

/// Name of the storage row holding the generated key.
pub const GENERATED_KEY_ROW: &str = "oidc_default_signing_key";

/// One signing key.
pub struct SigningKey {
    /// Its `kid`.
    pub kid: String,
    /// Its algorithm.
    pub alg: Algorithm,
    encoding: EncodingKey,
    /// The public half, as published.
    pub jwk: Jwk,
}

/// Every signing key, in configuration order.
pub struct KeySet {
    keys: Vec<SigningKey>,
}

/// A key that cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(pub String);

impl KeySet {
    /// Keys from the configuration.
    pub fn from_config(jwks: &[JwkConfig]) -> Result<Self, KeyError> {
        let mut keys = Vec::new();
        for (i, k) in jwks.iter().enumerate() {
            let key = SigningKey::from_pem(k.key.expose(), &k.algorithm, &k.key_id, &k.certificate_chain)
                .map_err(|e| KeyError(format!("identity_providers.oidc.jwks[{i}]: {}", e.0)))?;
            keys.push(key);
        }
        Ok(Self { keys })
    }

    /// A set of one key (the generated default).
    pub fn single(key: SigningKey) -> Self {
        Self { keys: vec![key] }
    }

    /// True when no key was configured.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The key named `kid`, or else the first key with algorithm `alg`, or else the first.
    pub fn select(&self, kid: &str, alg: &str) -> Option<&SigningKey> {
        if !kid.is_empty() {
            return self.keys.iter().find(|k| k.kid == kid);
        }
        let wanted = parse_alg(alg);
        self.keys.iter().find(|k| Some(k.alg) == wanted).or_else(|| self.keys.first())
    }

    /// The published key set.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().map(|k| k.jwk.clone()).collect() }
    }

    /// The algorithms of the keys, without duplicates.
    pub fn algorithms(&self) -> Vec<String> {
        let mut algs: Vec<String> = Vec::new();
        for k in &self.keys {
            let name = alg_name(k.alg).to_string();
            if !algs.contains(&name) {
                algs.push(name);
            }
        }
        algs
    }
}

impl SigningKey {
    /// A key from its PEM; the algorithm from the key when `alg` is empty (RS256 for RSA,
    /// ES256 or ES384 for EC), the `kid` from its RFC 7638 thumbprint when `kid` is empty.
    pub fn from_pem(pem: &str, alg: &str, kid: &str, certificate_chain: &str) -> Result<Self, KeyError> {
        let bytes = pem.trim().as_bytes();
        let candidates: Vec<Algorithm> = match alg {
            "" => vec![Algorithm::RS256, Algorithm::ES256, Algorithm::ES384],
            a => vec![parse_alg(a).ok_or_else(|| KeyError(format!("unsupported algorithm '{a}'")))?],
        };
        for alg in candidates {
            let encoding = match alg {
                Algorithm::ES256 | Algorithm::ES384 => EncodingKey::from_ec_pem(bytes),
                _ => EncodingKey::from_rsa_pem(bytes),
            };
            let Ok(encoding) = encoding else { continue };
            let Ok(mut jwk) = Jwk::from_encoding_key(&encoding, alg) else { continue };
            // A key of the wrong curve for the algorithm is refused by signing a probe.
            if jsonwebtoken::encode(&Header::new(alg), &serde_json::json!({}), &encoding).is_err() {
                continue;
            }
            let kid = if kid.is_empty() {
                let thumbprint = jwk.thumbprint(ThumbprintHash::SHA256).map_err(|e| KeyError(e.to_string()))?;
                thumbprint.chars().take(16).collect()
            } else {
                kid.to_string()
            };
            jwk.common.key_id = Some(kid.clone());
            jwk.common.public_key_use = Some(PublicKeyUse::Signature);
            let chain = certificate_chain_der(certificate_chain)?;
            if !chain.is_empty() {
                jwk.common.x509_chain = Some(chain);
            }
            return Ok(Self { kid, alg, encoding, jwk });
        }
        Err(KeyError(match alg {
            "" => "the key is neither an RSA nor a P-256/P-384 private key in PEM".to_string(),
            a => format!("the key is not a PEM private key for {a}"),
        }))
    }

    /// Signs `claims` as a JWS with this key's `kid`, with header type `typ` when given.
    pub fn sign<T: Serialize>(&self, claims: &T, typ: Option<&str>) -> Result<String, KeyError> {
        let mut header = Header::new(self.alg);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.unwrap_or("JWT").to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| KeyError(e.to_string()))
    }
}

/// Generates a 2048-bit RSA key as PKCS#8 PEM.
pub fn generate_rsa_pem() -> Result<String, KeyError> {
    use rsa::pkcs8::EncodePrivateKey;
    let key = rsa::RsaPrivateKey::new(&mut rand_core_06::OsRng, 2048).map_err(|e| KeyError(e.to_string()))?;
    let pem = key.to_pkcs8_pem(rsa::pkcs8::LineEnding::LF).map_err(|e| KeyError(e.to_string()))?;
    Ok(pem.to_string())
}

/// The algorithm named `name`, if it is one Portcullis signs with.
pub fn parse_alg(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        _ => return None,
    })
}

/// The name of `alg`.
pub fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::EdDSA => "EdDSA",
        _ => "unknown",
    }
}

/// The certificates of a PEM chain as standard base64 DER (`x5c`).
fn certificate_chain_der(chain: &str) -> Result<Vec<String>, KeyError> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in chain.lines().map(str::trim) {
        if line == "-----BEGIN CERTIFICATE-----" {
            current = Some(String::new());
        } else if line == "-----END CERTIFICATE-----" {
            let body = current.take().ok_or_else(|| KeyError("malformed certificate_chain".into()))?;
            base64::engine::general_purpose::STANDARD
                .decode(&body)
                .map_err(|_| KeyError("malformed certificate in certificate_chain".into()))?;
            out.push(body);
        } else if let Some(body) = current.as_mut() {
            body.push_str(line);
        }
    }
    if current.is_some() {
        return Err(KeyError("unterminated certificate in certificate_chain".into()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_publish() {
        let pem = generate_rsa_pem().unwrap();
        let key = SigningKey::from_pem(&pem, "", "", "").unwrap();
        assert_eq!(key.alg, Algorithm::RS256);
        assert_eq!(key.kid.len(), 16);
        let token = key.sign(&serde_json::json!({"sub": "x"}), None).unwrap();
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&key.jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(Algorithm::RS256);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        let data = jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();
        assert_eq!(data.claims["sub"], "x");
        assert_eq!(data.header.kid.as_deref(), Some(key.kid.as_str()));
        assert!(SigningKey::from_pem(&pem, "ES256", "", "").is_err(), "an RSA key is no EC key");
        assert!(SigningKey::from_pem("junk", "", "", "").is_err());
    }

    #[test]
    fn selection_by_kid_then_algorithm() {
        let a = SigningKey::from_pem(&generate_rsa_pem().unwrap(), "RS256", "a", "").unwrap();
        let b = SigningKey::from_pem(&generate_rsa_pem().unwrap(), "PS256", "b", "").unwrap();
        let set = KeySet { keys: vec![a, b] };
        assert_eq!(set.select("b", "").unwrap().kid, "b");
        assert_eq!(set.select("", "PS256").unwrap().kid, "b");
        assert_eq!(set.select("", "RS256").unwrap().kid, "a");
        assert!(set.select("zz", "RS256").is_none());
        assert_eq!(set.jwks().keys.len(), 2);
        assert_eq!(set.algorithms(), ["RS256", "PS256"]);
    }
}
