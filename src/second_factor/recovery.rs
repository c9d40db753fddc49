//! Recovery codes: ten random single-use codes shown once, for when the authenticator is
//! lost. Only keyed hashes are stored; using one burns it.

use rand::Rng;

use crate::storage::Cipher;

/// How many codes a user gets.
pub const COUNT: usize = 10;

/// Unambiguous characters (no 0/O, 1/I/L): about 5 bits each, 10 per code → 50 bits.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";
const PURPOSE: &str = "recovery-code";

/// A new set of codes, formatted `XXXXX-XXXXX`.
pub fn generate() -> Vec<String> {
    let mut rng = rand::rng();
    (0..COUNT)
        .map(|_| {
            let chars: String = (0..10).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect();
            format!("{}-{}", &chars[..5], &chars[5..])
        })
        .collect()
}

/// The canonical form of a typed code: upper case, separators and spaces dropped.
pub fn normalize(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// The keyed hash stored for `code`.
pub fn hash(cipher: &Cipher, code: &str) -> String {
    cipher.keyed_hash(PURPOSE, &normalize(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_and_normalize() {
        let codes = generate();
        assert_eq!(codes.len(), COUNT);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), COUNT);
        assert!(codes.iter().all(|c| c.len() == 11 && c.as_bytes()[5] == b'-'));
        let cipher = Cipher::from_key("an-encryption-key-of-some-length");
        let lower = codes[0].to_lowercase().replace('-', " ");
        assert_eq!(hash(&cipher, &codes[0]), hash(&cipher, &lower));
        assert_ne!(hash(&cipher, &codes[0]), hash(&cipher, &codes[1]));
    }
}
