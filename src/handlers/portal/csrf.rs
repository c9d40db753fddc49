//! Cross-site request forgery defences for the portal's forms: every POST carries a token
//! bound to the session (or, before login, to a random cookie), compared in constant time;
//! and a browser's `Origin`/`Sec-Fetch-Site` must say the form came from the portal itself
//! ([`crate::handlers::origin`]).

use subtle::ConstantTimeEq;

use crate::storage::Cipher;

/// Cookie binding the token before a session exists.
pub const COOKIE: &str = "portcullis_csrf";

/// The token for a binding (`s:<session id>` or `a:<cookie value>`).
pub fn token(cipher: &Cipher, binding: &str) -> String {
    cipher.keyed_hash("portal-csrf", binding)
}

/// True when `submitted` is the token of one of `bindings`.
pub fn valid(cipher: &Cipher, submitted: &str, bindings: &[String]) -> bool {
    !submitted.is_empty()
        && bindings.iter().any(|b| bool::from(token(cipher, b).as_bytes().ct_eq(submitted.as_bytes())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_bound() {
        let c = Cipher::from_key("an-encryption-key-of-some-length");
        let t = token(&c, "s:abc");
        assert!(valid(&c, &t, &["a:x".into(), "s:abc".into()]));
        assert!(!valid(&c, &t, &["s:abd".into()]));
        assert!(!valid(&c, "", &["s:abc".into()]));
    }
}
