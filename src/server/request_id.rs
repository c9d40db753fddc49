//! Request IDs: a short random token per request, returned in `X-Request-Id` and logged,
//! so a user's report can be matched to the server's log line.

use std::fmt;

/// A 16-hex-digit request identifier, kept inline (copied, never allocated) as it passes
/// from the server to the handlers and the audit trail.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestId([u8; 16]);

/// All zeros: a call made without a request around it.
impl Default for RequestId {
    fn default() -> Self {
        Self([b'0'; 16])
    }
}

impl RequestId {
    /// A fresh random ID.
    pub fn generate() -> Self {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let value: u64 = rand::random();
        let mut out = [0u8; 16];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = HEX[((value >> (60 - 4 * i)) & 0xf) as usize];
        }
        Self(out)
    }

    /// The ID as text.
    pub fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_hex_and_differ() {
        let a = RequestId::generate();
        let b = RequestId::generate();
        assert_eq!(a.as_str().len(), 16);
        assert!(a.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a.as_str(), b.as_str());
    }
}
