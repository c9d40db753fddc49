//! The personal API token's format: `pcat_`, 32 base62 characters of randomness (190 bits),
//! then 6 base62 characters of the CRC-32 of what precedes them.
//!
//! The fixed prefix lets secret scanners (and people) recognise a leaked token; the
//! checksum lets a scanner tell a real token from a random string offline, without asking
//! the server, and lets the server refuse a mistyped or made-up one before any lookup.
//! Checksum and prefix are not secret; the 190 random bits are the whole of the secret.

use rand::Rng;

/// What every token starts with ("Portcullis Access Token").
pub const PREFIX: &str = "pcat_";
/// Random base62 characters after the prefix.
const RANDOM_LEN: usize = 32;
/// Base62 characters of the checksum.
const CHECKSUM_LEN: usize = 6;
/// The whole token's length.
pub const TOKEN_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECKSUM_LEN;
/// How many characters of a token are shown to its owner to tell tokens apart: the prefix
/// and 8 random characters (48 of the 190 bits; the rest stays unguessable).
pub const DISPLAY_LEN: usize = PREFIX.len() + 8;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly drawn token.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let mut token = String::with_capacity(TOKEN_LEN);
    token.push_str(PREFIX);
    for _ in 0..RANDOM_LEN {
        token.push(char::from(BASE62[rng.random_range(0..BASE62.len())]));
    }
    let checksum = checksum(&token);
    token.push_str(&checksum);
    token
}

/// Whether `value` has the token's shape: the prefix, the length, base62 characters and
/// a checksum that matches. Says nothing of whether such a token exists.
pub fn is_well_formed(value: &str) -> bool {
    let Some(body) = value.strip_prefix(PREFIX) else { return false };
    if value.len() != TOKEN_LEN || !body.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return false;
    }
    let (head, sum) = value.split_at(TOKEN_LEN - CHECKSUM_LEN);
    // Not secret: the checksum is a function of the visible characters.
    checksum(head) == sum
}

/// The part shown to the owner (in lists, mails and the audit trail).
pub fn display_prefix(token: &str) -> &str {
    token.get(..DISPLAY_LEN).unwrap_or(token)
}

/// CRC-32 (IEEE) of `text`, as 6 base62 digits, most significant first.
fn checksum(text: &str) -> String {
    let mut value = crc32(text.as_bytes());
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    digits.iter().map(|&b| char::from(b)).collect()
}

/// The byte-at-a-time table of [`crc32`], built at compile time.
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 with the IEEE polynomial (reflected), as zlib computes it: what scanners use.
/// Checked on every token the proxy sees, hence the table.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(byte)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_matches_zlib() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn generated_tokens_are_well_formed_and_distinct() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        for t in [&a, &b] {
            assert_eq!(t.len(), TOKEN_LEN);
            assert!(t.starts_with(PREFIX));
            assert!(is_well_formed(t), "{t}");
        }
        assert_eq!(display_prefix(&a).len(), DISPLAY_LEN);
        assert!(a.starts_with(display_prefix(&a)));
    }

    #[test]
    fn typos_and_other_strings_are_not_tokens() {
        let token = generate();
        let mut chars: Vec<char> = token.chars().collect();
        chars[10] = if chars[10] == 'a' { 'b' } else { 'a' };
        let typo: String = chars.into_iter().collect();
        assert!(!is_well_formed(&typo), "one changed character breaks the checksum");
        assert!(!is_well_formed(&token[..TOKEN_LEN - 1]));
        assert!(!is_well_formed(&format!("{token}x")));
        assert!(!is_well_formed(&token.replacen(PREFIX, "pcxt_", 1)));
        assert!(!is_well_formed("portcullis_at_x.y"));
        assert!(!is_well_formed(""));
        let with_dash = format!("{}-{}", &token[..20], &token[21..]);
        assert!(!is_well_formed(&with_dash));
        // Multi-byte text of the right byte length is refused, never sliced mid-character.
        let odd = format!("{PREFIX}{}", "é".repeat((TOKEN_LEN - PREFIX.len()) / 2));
        assert!(!is_well_formed(&odd));
    }
}
