//! PKCE (RFC 7636): checking a code verifier against the challenge the authorization
//! request carried, and whether a client must use it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A challenge as received: `S256` or `plain`.
pub fn valid_method(method: &str, plain_allowed: bool) -> bool {
    method == "S256" || (method == "plain" && plain_allowed)
}

/// Whether `challenge` is well-formed (43 to 128 unreserved characters).
pub fn valid_challenge(challenge: &str) -> bool {
    (43..=128).contains(&challenge.len())
        && challenge.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// True when `verifier` answers `challenge` under `method`.
pub fn verify(method: &str, challenge: &str, verifier: &str) -> bool {
    if !valid_challenge(verifier) {
        return false;
    }
    let computed = match method {
        "S256" => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        "plain" => verifier.to_string(),
        _ => return false,
    };
    bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify("S256", challenge, verifier));
        assert!(!verify("S256", challenge, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX"));
        assert!(!verify("plain", challenge, verifier));
        assert!(verify("plain", verifier, verifier));
        assert!(!verify("S256", challenge, "short"));
        assert!(valid_method("S256", false) && !valid_method("plain", false) && valid_method("plain", true));
    }
}
