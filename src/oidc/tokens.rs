//! Opaque codes and tokens: `portcullis_<kind>_<random>.<HMAC>`, the HMAC keyed by
//! `hmac_secret`. The database stores only the HMAC part (the signature), so a copy of the
//! database yields no usable token, and a forged token is refused before any lookup.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{KeyInit, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// What an opaque value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Authorization code.
    Code,
    /// Access token.
    Access,
    /// Refresh token.
    Refresh,
    /// A pending authorization (login or consent in progress).
    Flow,
    /// A pushed authorization request's `request_uri`.
    Par,
    /// A device code (RFC 8628).
    Device,
    /// A user code (RFC 8628): only its keyed hash is ever used, never minted here.
    UserCode,
}

impl Kind {
    /// The storage name and token prefix part.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "ac",
            Self::Access => "at",
            Self::Refresh => "rt",
            Self::Flow => "fl",
            Self::Par => "par",
            Self::Device => "dc",
            Self::UserCode => "uc",
        }
    }
}

/// Mints and checks opaque values.
#[derive(Clone)]
pub struct Minter {
    key: Vec<u8>,
}

impl Minter {
    /// A minter keyed by `hmac_secret`.
    pub fn new(hmac_secret: &str) -> Self {
        Self { key: Sha256::digest(hmac_secret.as_bytes()).to_vec() }
    }

    fn mac(&self, kind: Kind, random: &str) -> String {
        let mut mac = match hmac::Hmac::<Sha256>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(random.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// A new value of `kind` and its signature (what storage keeps).
    pub fn mint(&self, kind: Kind) -> (String, String) {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let random = URL_SAFE_NO_PAD.encode(bytes);
        let signature = self.mac(kind, &random);
        (format!("portcullis_{}_{random}.{signature}", kind.as_str()), signature)
    }

    /// The signature a JWT access token is recorded under (by its `jti`).
    pub fn jwt_signature(&self, jti: &str) -> String {
        self.mac(Kind::Access, &format!("jwt:{jti}"))
    }

    /// The keyed hash a (normalized) user code is stored and looked up under: user codes
    /// are short, so a plain hash of one would be reversed by trying them all; keyed by
    /// `hmac_secret`, a copy of the database does not reveal them.
    pub fn user_code_signature(&self, normalized: &str) -> String {
        self.mac(Kind::UserCode, normalized)
    }

    /// The signature of `value` when it is a genuine value of `kind`; `None` for anything
    /// else (checked in constant time).
    pub fn verify(&self, kind: Kind, value: &str) -> Option<String> {
        let rest = value.strip_prefix("portcullis_")?.strip_prefix(kind.as_str())?.strip_prefix('_')?;
        let (random, signature) = rest.split_once('.')?;
        let expected = self.mac(kind, random);
        bool::from(expected.as_bytes().ct_eq(signature.as_bytes())).then_some(expected)
    }
}

/// `at_hash` / `c_hash`: the left half of the SHA-256 of `value`, base64url (for the
/// 256-bit algorithms; SHA-384/512 for the others).
pub fn half_hash(value: &str, alg: jsonwebtoken::Algorithm) -> String {
    use jsonwebtoken::Algorithm::*;
    let digest: Vec<u8> = match alg {
        RS384 | PS384 | ES384 | HS384 => sha2::Sha384::digest(value.as_bytes()).to_vec(),
        RS512 | PS512 | HS512 => sha2::Sha512::digest(value.as_bytes()).to_vec(),
        _ => Sha256::digest(value.as_bytes()).to_vec(),
    };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// A random identifier (`jti`, grant chain IDs).
pub fn random_id() -> String {
    let mut bytes = [0u8; 18];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_values_verify_only_as_their_kind() {
        let m = Minter::new("a-very-long-hmac-secret-for-tests-0123456789");
        let (token, signature) = m.mint(Kind::Access);
        assert!(token.starts_with("portcullis_at_"));
        assert_eq!(m.verify(Kind::Access, &token), Some(signature));
        assert_eq!(m.verify(Kind::Refresh, &token), None);
        let other = Minter::new("another-very-long-hmac-secret-for-tests-01");
        assert_eq!(other.verify(Kind::Access, &token), None, "another secret");
        let forged = format!("{}x", &token[..token.len() - 1]);
        assert_eq!(m.verify(Kind::Access, &forged), None);
        assert_eq!(m.verify(Kind::Access, "portcullis_at_"), None);
    }

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OpenID Connect Core, appendix A.3: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y".
        let h = half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", jsonwebtoken::Algorithm::RS256);
        assert_eq!(h, "77QmUPtjPfzWtF2AnpK9RQ");
    }
}
