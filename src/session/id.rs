//! Session identifiers: 32 random bytes, base64url-encoded in the cookie. Stores key
//! sessions by the SHA-256 of the ID, so a leaked store holds no usable cookie values.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

/// Encoded length of an ID (32 bytes in unpadded base64url).
const ENCODED_LEN: usize = 43;

/// A session ID as carried in the cookie.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionId(String);

impl SessionId {
    /// A fresh ID from the operating system's CSPRNG-seeded generator.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        Self(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// Accepts a cookie value only if it has the exact shape of an ID we issue.
    pub fn parse(value: &str) -> Option<Self> {
        let ok =
            value.len() == ENCODED_LEN && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Self(value.to_string()))
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The key the stores file this session under.
    pub fn storage_key(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the ID itself: it is a bearer credential.
        f.write_str("SessionId(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_and_differ() {
        let a = SessionId::generate();
        let b = SessionId::generate();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(a.as_str()), Some(a.clone()));
        assert_ne!(a.storage_key(), b.storage_key());
        assert!(!format!("{a:?}").contains(a.as_str()));
    }

    #[test]
    fn malformed_values_are_refused() {
        for bad in ["", "short", &"a".repeat(44), &format!("{}*", "a".repeat(42)), &format!("{}:", "a".repeat(42))] {
            assert!(SessionId::parse(bad).is_none(), "{bad}");
        }
    }
}
