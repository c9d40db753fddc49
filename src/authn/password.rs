//! Password hashes: verification of every format Authelia's users files contain, and new
//! hashes with the configured algorithm.
//!
//! Formats read: Argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`, PHC strings), SHA-2 crypt
//! (`$6$`, `$5$`), PBKDF2 in passlib's form (`$pbkdf2$`, `$pbkdf2-sha224$`, `-sha256`,
//! `-sha384`, `-sha512`, "adapted" base64), bcrypt (`$2a$`, `$2b$`, `$2y$`), passlib's
//! bcrypt-sha256 (`$bcrypt-sha256$v=2,t=2b,r=..$`, and the older `$bcrypt-sha256$2b,..$`)
//! and scrypt in passlib's form (`$scrypt$ln=..,r=..,p=..$salt$hash`). New hashes are
//! written in the same forms, so any of them can be moved between Portcullis and Authelia.
//!
//! Every function here is CPU-heavy and blocking (tens of milliseconds to seconds): from
//! async code call them through [`super::hashing_pool::HashingPool`] (or
//! `tokio::task::spawn_blocking`), never directly on a runtime worker.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine;
use base64::alphabet::{self, Alphabet};
use base64::engine::general_purpose::{GeneralPurpose, NO_PAD, STANDARD, STANDARD_NO_PAD};
use hmac::{KeyInit as _, Mac as _};
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::config::schema::PasswordHashing;

/// Why a hash could not be checked or made.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The stored string is not a hash of a supported kind.
    #[error("unsupported password hash format (expected argon2, sha2crypt, pbkdf2, bcrypt, bcrypt-sha256 or scrypt)")]
    UnknownFormat,
    /// The stored string looks like a supported hash but is malformed.
    #[error("malformed {0} hash: {1}")]
    Malformed(&'static str, String),
    /// Parameters out of range for the algorithm.
    #[error("invalid {0} parameters: {1}")]
    Params(&'static str, String),
}

/// True when `password` matches `encoded`; an error when `encoded` is not a hash this
/// module reads. Derived hashes are compared in constant time.
///
/// Blocking and CPU-heavy: run it off the async runtime (see the module docs).
pub fn verify(password: &str, encoded: &str) -> Result<bool, HashError> {
    let encoded = encoded.trim();
    let pw = password.as_bytes();
    if encoded.starts_with("$argon2") {
        return verify_argon2(pw, encoded);
    }
    if encoded.starts_with("$6$") || encoded.starts_with("$5$") {
        return verify_sha2crypt(pw, encoded);
    }
    if encoded.starts_with("$pbkdf2") {
        return verify_pbkdf2(pw, encoded);
    }
    if encoded.starts_with("$2a$") || encoded.starts_with("$2b$") || encoded.starts_with("$2y$") {
        return bcrypt::verify(pw, encoded).map_err(|e| HashError::Malformed("bcrypt", e.to_string()));
    }
    if encoded.starts_with("$bcrypt-sha256$") {
        return verify_bcrypt_sha256(pw, encoded);
    }
    if encoded.starts_with("$scrypt$") {
        return verify_scrypt(pw, encoded);
    }
    Err(HashError::UnknownFormat)
}

/// A new hash of `password` with the algorithm and parameters of `params`, salted from
/// the operating system's CSPRNG (through `rand`'s thread generator).
///
/// Blocking and CPU-heavy: run it off the async runtime (see the module docs).
pub fn hash(password: &str, params: &PasswordHashing) -> Result<String, HashError> {
    let pw = password.as_bytes();
    match params.algorithm.as_str() {
        "argon2" => hash_argon2(pw, params),
        "sha2crypt" => hash_sha2crypt(pw, params),
        "pbkdf2" => hash_pbkdf2(pw, params),
        "bcrypt" => hash_bcrypt(pw, params),
        "scrypt" => hash_scrypt(pw, params),
        other => Err(HashError::Params("password", format!("unknown algorithm '{other}'"))),
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut salt = vec![0u8; n];
    rand::rng().fill_bytes(&mut salt);
    salt
}

// ---------------------------------------------------------------- argon2

fn hash_argon2(pw: &[u8], params: &PasswordHashing) -> Result<String, HashError> {
    let p = &params.argon2;
    let algorithm = match p.variant.as_str() {
        "argon2id" => argon2::Algorithm::Argon2id,
        "argon2i" => argon2::Algorithm::Argon2i,
        "argon2d" => argon2::Algorithm::Argon2d,
        other => return Err(HashError::Params("argon2", format!("unknown variant '{other}'"))),
    };
    let ap = argon2::Params::new(p.memory, p.iterations, p.parallelism, Some(p.key_length as usize))
        .map_err(|e| HashError::Params("argon2", e.to_string()))?;
    let salt = random_bytes(p.salt_length as usize);
    argon2::Argon2::new(algorithm, argon2::Version::V0x13, ap)
        .hash_password_with_salt(pw, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Params("argon2", e.to_string()))
}

fn verify_argon2(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    let parsed = argon2::password_hash::phc::PasswordHash::new(encoded)
        .map_err(|e| HashError::Malformed("argon2", e.to_string()))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(HashError::Malformed("argon2", "salt or hash missing".into()));
    }
    // The algorithm, version and cost come from the string, not from `default()`.
    match argon2::Argon2::default().verify_password(pw, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(HashError::Malformed("argon2", e.to_string())),
    }
}

// ---------------------------------------------------------------- SHA-2 crypt

fn hash_sha2crypt(pw: &[u8], params: &PasswordHashing) -> Result<String, HashError> {
    let p = &params.sha2crypt;
    let algorithm = match p.variant.as_str() {
        "sha256" => sha_crypt::Algorithm::Sha256Crypt,
        "sha512" => sha_crypt::Algorithm::Sha512Crypt,
        other => return Err(HashError::Params("sha2crypt", format!("unknown variant '{other}'"))),
    };
    let rounds = sha_crypt::Params::new(p.iterations).map_err(|e| HashError::Params("sha2crypt", e.to_string()))?;
    // The crate writes the salt bytes in crypt's unpadded base64 (n bytes become
    // ceil(8n/6) characters) and crypt reads at most 16 characters; this many bytes
    // give exactly `salt_length` characters (one more when no byte count can).
    let chars = p.salt_length.clamp(1, 16) as usize;
    let salt = random_bytes((3 * chars + 1) / 4);
    sha_crypt::ShaCrypt::new(algorithm, rounds)
        .hash_password_with_salt(pw, &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Params("sha2crypt", e.to_string()))
}

fn verify_sha2crypt(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    match sha_crypt::ShaCrypt::default().verify_password(pw, encoded) {
        Ok(()) => Ok(true),
        Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(HashError::Malformed("sha2crypt", e.to_string())),
    }
}

// ---------------------------------------------------------------- PBKDF2

/// passlib's "adapted base64": the standard alphabet with '.' for '+', unpadded.
const AB64_ALPHABET: Alphabet = match Alphabet::new("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789./")
{
    Ok(alphabet) => alphabet,
    Err(_) => panic!("the adapted base64 alphabet is valid"),
};
const AB64: GeneralPurpose = GeneralPurpose::new(&AB64_ALPHABET, NO_PAD);

fn pbkdf2_ident(variant: &str) -> Result<(&'static str, usize), HashError> {
    Ok(match variant {
        "sha1" => ("pbkdf2", 20),
        "sha224" => ("pbkdf2-sha224", 28),
        "sha256" => ("pbkdf2-sha256", 32),
        "sha384" => ("pbkdf2-sha384", 48),
        "sha512" => ("pbkdf2-sha512", 64),
        other => return Err(HashError::Params("pbkdf2", format!("unknown variant '{other}'"))),
    })
}

fn pbkdf2_into(variant: &str, pw: &[u8], salt: &[u8], rounds: u32, out: &mut [u8]) -> Result<(), HashError> {
    match variant {
        "sha1" => pbkdf2::pbkdf2_hmac::<sha1::Sha1>(pw, salt, rounds, out),
        "sha224" => pbkdf2::pbkdf2_hmac::<sha2::Sha224>(pw, salt, rounds, out),
        "sha256" => pbkdf2::pbkdf2_hmac::<sha2::Sha256>(pw, salt, rounds, out),
        "sha384" => pbkdf2::pbkdf2_hmac::<sha2::Sha384>(pw, salt, rounds, out),
        "sha512" => pbkdf2::pbkdf2_hmac::<sha2::Sha512>(pw, salt, rounds, out),
        other => return Err(HashError::Params("pbkdf2", format!("unknown variant '{other}'"))),
    }
    Ok(())
}

/// `$pbkdf2-<digest>$<rounds>$<ab64 salt>$<ab64 hash>`, the hash as long as the digest.
fn hash_pbkdf2(pw: &[u8], params: &PasswordHashing) -> Result<String, HashError> {
    let p = &params.pbkdf2;
    let (ident, len) = pbkdf2_ident(&p.variant)?;
    if p.iterations == 0 {
        return Err(HashError::Params("pbkdf2", "iterations must be positive".into()));
    }
    let salt = random_bytes(p.salt_length as usize);
    let mut out = vec![0u8; len];
    pbkdf2_into(&p.variant, pw, &salt, p.iterations, &mut out)?;
    Ok(format!("${ident}${}${}${}", p.iterations, AB64.encode(&salt), AB64.encode(&out)))
}

/// `$pbkdf2-sha512$<rounds>$<ab64 salt>$<ab64 hash>` (`$pbkdf2$` is SHA-1).
fn verify_pbkdf2(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    let bad = |why: &str| HashError::Malformed("pbkdf2", why.to_string());
    let parts: Vec<&str> = encoded.split('$').collect();
    let [_, ident, rounds, salt, digest] = parts.as_slice() else {
        return Err(bad("expected $ident$rounds$salt$hash"));
    };
    let variant = match *ident {
        "pbkdf2" => "sha1",
        "pbkdf2-sha224" => "sha224",
        "pbkdf2-sha256" => "sha256",
        "pbkdf2-sha384" => "sha384",
        "pbkdf2-sha512" => "sha512",
        _ => return Err(bad("unknown digest")),
    };
    let rounds: u32 = rounds.parse().map_err(|_| bad("rounds must be a number"))?;
    if rounds == 0 {
        return Err(bad("rounds must be positive"));
    }
    let salt = AB64.decode(salt.trim_end_matches('=')).map_err(|_| bad("salt is not adapted base64"))?;
    let expected = AB64.decode(digest.trim_end_matches('=')).map_err(|_| bad("hash is not adapted base64"))?;
    if expected.is_empty() || expected.len() > 1024 {
        return Err(bad("hash has an invalid length"));
    }
    let mut out = vec![0u8; expected.len()];
    pbkdf2_into(variant, pw, &salt, rounds, &mut out)?;
    Ok(bool::from(out.ct_eq(&expected)))
}

// ---------------------------------------------------------------- bcrypt

/// bcrypt's own base64 (`./A-Za-z0-9`), unpadded: salts and digests in `$2b$` strings.
const BCRYPT64: GeneralPurpose = GeneralPurpose::new(&alphabet::BCRYPT, NO_PAD);

/// `standard` writes `$2b$`; `sha256` writes passlib's bcrypt-sha256 (version 2), which
/// lifts bcrypt's 72-byte password limit.
fn hash_bcrypt(pw: &[u8], params: &PasswordHashing) -> Result<String, HashError> {
    let p = &params.bcrypt;
    let error = |e: bcrypt::BcryptError| HashError::Params("bcrypt", e.to_string());
    match p.variant.as_str() {
        "standard" => bcrypt::hash(pw, p.cost).map_err(error),
        "sha256" => {
            let mut raw_salt = [0u8; 16];
            rand::rng().fill_bytes(&mut raw_salt);
            let salt = BCRYPT64.encode(raw_salt);
            let key = bcrypt_sha256_key(pw, &salt, true)?;
            let inner = bcrypt::hash_with_salt(key, p.cost, raw_salt).map_err(error)?;
            let inner = inner.format_for_version(bcrypt::Version::TwoB);
            // `$2b$NN$` + 22 salt characters + 31 digest characters.
            let digest = inner
                .get(29..)
                .filter(|d| d.len() == 31)
                .ok_or_else(|| HashError::Params("bcrypt", "unexpected bcrypt output".into()))?;
            Ok(format!("$bcrypt-sha256$v=2,t=2b,r={}${salt}${digest}", p.cost))
        }
        other => Err(HashError::Params("bcrypt", format!("unknown variant '{other}'"))),
    }
}

/// The key bcrypt-sha256 hands to bcrypt: base64 (standard, padded: 44 bytes, below
/// bcrypt's 72) of HMAC-SHA256 keyed with the salt's text (version 2), or of plain
/// SHA-256 (version 1).
fn bcrypt_sha256_key(pw: &[u8], salt: &str, hmac: bool) -> Result<String, HashError> {
    let digest: [u8; 32] = if hmac {
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(salt.as_bytes())
            .map_err(|e| HashError::Params("bcrypt-sha256", e.to_string()))?;
        mac.update(pw);
        mac.finalize().into_bytes().into()
    } else {
        use sha2::Digest as _;
        sha2::Sha256::digest(pw).into()
    };
    Ok(STANDARD.encode(digest))
}

/// `$bcrypt-sha256$v=2,t=2b,r=<cost>$<salt>$<digest>`, or version 1:
/// `$bcrypt-sha256$<2a|2b>,<cost>$<salt>$<digest>`.
fn verify_bcrypt_sha256(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    let bad = |why: &str| HashError::Malformed("bcrypt-sha256", why.to_string());
    let parts: Vec<&str> = encoded.split('$').collect();
    let [_, "bcrypt-sha256", settings, salt, digest] = parts.as_slice() else {
        return Err(bad("expected $bcrypt-sha256$v=2,t=2b,r=<cost>$salt$digest"));
    };
    let (version2, ident, cost) = if settings.starts_with("v=") {
        let (mut version, mut ident, mut cost) = (None, None, None);
        for pair in settings.split(',') {
            match pair.split_once('=') {
                Some(("v", v)) => version = Some(v),
                Some(("t", t)) => ident = Some(t),
                Some(("r", r)) => cost = Some(r),
                _ => return Err(bad("settings must be v=2,t=<type>,r=<cost>")),
            }
        }
        if version != Some("2") {
            return Err(bad("only versions 1 and 2 exist"));
        }
        let (Some(ident), Some(cost)) = (ident, cost) else { return Err(bad("t and r are required")) };
        (true, ident, cost)
    } else {
        let (ident, cost) = settings.split_once(',').ok_or_else(|| bad("expected <type>,<cost>"))?;
        (false, ident, cost)
    };
    if ident != "2a" && ident != "2b" {
        return Err(bad("type must be 2a or 2b"));
    }
    let cost: u32 = cost.parse().map_err(|_| bad("cost must be a number"))?;
    if !(4..=31).contains(&cost) {
        return Err(bad("cost out of range"));
    }
    if salt.len() != 22 || digest.len() != 31 {
        return Err(bad("salt must be 22 and digest 31 characters"));
    }
    let key = bcrypt_sha256_key(pw, salt, version2)?;
    bcrypt::verify(key, &format!("${ident}${cost:02}${salt}{digest}")).map_err(|e| bad(&e.to_string()))
}

// ---------------------------------------------------------------- scrypt

/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<base64 salt>$<base64 hash>` (standard base64, unpadded).
fn hash_scrypt(pw: &[u8], params: &PasswordHashing) -> Result<String, HashError> {
    let p = &params.scrypt;
    if p.variant != "scrypt" {
        return Err(HashError::Params("scrypt", format!("unknown variant '{}'", p.variant)));
    }
    let log_n = u8::try_from(p.iterations).map_err(|_| HashError::Params("scrypt", "iterations".into()))?;
    let sp = scrypt::Params::new(log_n, p.block_size, p.parallelism)
        .map_err(|e| HashError::Params("scrypt", e.to_string()))?;
    let salt = random_bytes(p.salt_length as usize);
    let mut out = vec![0u8; p.key_length as usize];
    scrypt::scrypt(pw, &salt, &sp, &mut out).map_err(|e| HashError::Params("scrypt", e.to_string()))?;
    Ok(format!(
        "$scrypt$ln={log_n},r={},p={}${}${}",
        p.block_size,
        p.parallelism,
        STANDARD_NO_PAD.encode(&salt),
        STANDARD_NO_PAD.encode(&out)
    ))
}

fn verify_scrypt(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    let bad = |why: &str| HashError::Malformed("scrypt", why.to_string());
    let parts: Vec<&str> = encoded.split('$').collect();
    let [_, "scrypt", params, salt, digest] = parts.as_slice() else {
        return Err(bad("expected $scrypt$ln=..,r=..,p=..$salt$hash"));
    };
    let (mut ln, mut r, mut p) = (None, None, None);
    for pair in params.split(',') {
        let (key, value) = pair.split_once('=').ok_or_else(|| bad("parameters must be key=value"))?;
        let value: u32 = value.parse().map_err(|_| bad("parameters must be numbers"))?;
        match key {
            "ln" => ln = Some(value),
            "r" => r = Some(value),
            "p" => p = Some(value),
            _ => return Err(bad("unknown parameter")),
        }
    }
    let (Some(ln), Some(r), Some(p)) = (ln, r, p) else { return Err(bad("ln, r and p are required")) };
    let ln = u8::try_from(ln).ok().filter(|ln| (1..=58).contains(ln)).ok_or_else(|| bad("ln out of range"))?;
    let params = scrypt::Params::new(ln, r, p).map_err(|e| bad(&e.to_string()))?;
    let salt = STANDARD_NO_PAD.decode(salt.trim_end_matches('=')).map_err(|_| bad("salt is not base64"))?;
    let expected = STANDARD_NO_PAD.decode(digest.trim_end_matches('=')).map_err(|_| bad("hash is not base64"))?;
    if expected.is_empty() || expected.len() > 1024 {
        return Err(bad("hash has an invalid length"));
    }
    let mut out = vec![0u8; expected.len()];
    scrypt::scrypt(pw, &salt, &params, &mut out).map_err(|e| bad(&e.to_string()))?;
    Ok(bool::from(out.ct_eq(&expected)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::PasswordHashing;

    /// Cheap parameters so the round trips run fast.
    fn cheap(algorithm: &str, variant: &str) -> PasswordHashing {
        let mut p = PasswordHashing { algorithm: algorithm.into(), ..Default::default() };
        p.argon2.memory = 1024;
        p.argon2.iterations = 1;
        p.argon2.parallelism = 1;
        p.sha2crypt.iterations = 1000;
        p.pbkdf2.iterations = 1000;
        p.bcrypt.cost = 4;
        p.scrypt.iterations = 4;
        match algorithm {
            "argon2" => p.argon2.variant = variant.into(),
            "sha2crypt" => p.sha2crypt.variant = variant.into(),
            "pbkdf2" => p.pbkdf2.variant = variant.into(),
            "bcrypt" => p.bcrypt.variant = variant.into(),
            "scrypt" => p.scrypt.variant = variant.into(),
            _ => {}
        }
        p
    }

    #[test]
    fn round_trips_for_every_algorithm() {
        let cases: &[(&str, &str, &str)] = &[
            ("argon2", "argon2id", "$argon2id$v=19$m=1024,t=1,p=1$"),
            ("argon2", "argon2i", "$argon2i$v=19$m=1024,t=1,p=1$"),
            ("argon2", "argon2d", "$argon2d$v=19$m=1024,t=1,p=1$"),
            ("sha2crypt", "sha512", "$6$rounds=1000$"),
            ("sha2crypt", "sha256", "$5$rounds=1000$"),
            ("pbkdf2", "sha1", "$pbkdf2$1000$"),
            ("pbkdf2", "sha224", "$pbkdf2-sha224$1000$"),
            ("pbkdf2", "sha256", "$pbkdf2-sha256$1000$"),
            ("pbkdf2", "sha384", "$pbkdf2-sha384$1000$"),
            ("pbkdf2", "sha512", "$pbkdf2-sha512$1000$"),
            ("bcrypt", "standard", "$2b$04$"),
            ("bcrypt", "sha256", "$bcrypt-sha256$v=2,t=2b,r=4$"),
            ("scrypt", "scrypt", "$scrypt$ln=4,r=8,p=1$"),
        ];
        for (algorithm, variant, prefix) in cases {
            let params = cheap(algorithm, variant);
            let h = hash("pässword 1", &params).unwrap_or_else(|e| panic!("{algorithm}/{variant}: {e}"));
            assert!(h.starts_with(prefix), "{h}");
            assert!(verify("pässword 1", &h).unwrap(), "{h}");
            assert!(!verify("pässword 2", &h).unwrap(), "{h}");
            assert!(!verify("", &h).unwrap(), "{h}");
            assert!(verify("pässword 1", &format!(" {h}\n")).unwrap(), "surrounding space is ignored: {h}");
            assert_ne!(h, hash("pässword 1", &params).unwrap(), "salts differ");
        }
    }

    #[test]
    fn pbkdf2_hash_length_follows_the_digest() {
        for (variant, bytes) in [("sha1", 20), ("sha224", 28), ("sha256", 32), ("sha384", 48), ("sha512", 64)] {
            let h = hash("x", &cheap("pbkdf2", variant)).unwrap();
            let digest = h.rsplit('$').next().unwrap();
            assert_eq!(AB64.decode(digest).unwrap().len(), bytes, "{h}");
            assert!(!h.contains('+') && !h.contains('='), "adapted base64: {h}");
        }
    }

    #[test]
    fn sha2crypt_salt_has_the_configured_length() {
        for (configured, chars) in [(16, 16), (8, 8), (10, 10), (11, 11), (12, 12), (1, 2), (40, 16)] {
            let mut params = cheap("sha2crypt", "sha512");
            params.sha2crypt.salt_length = configured;
            let h = hash("x", &params).unwrap();
            let salt = h.split('$').nth(3).unwrap();
            assert_eq!(salt.len(), chars, "salt_length {configured}: {h}");
            assert!(verify("x", &h).unwrap());
        }
    }

    #[test]
    fn bcrypt_sha256_sees_past_72_bytes_where_bcrypt_truncates() {
        let long_a = format!("{}a", "x".repeat(72));
        let long_b = format!("{}b", "x".repeat(72));
        let sha = hash(&long_a, &cheap("bcrypt", "sha256")).unwrap();
        assert!(verify(&long_a, &sha).unwrap());
        assert!(!verify(&long_b, &sha).unwrap());
        // Plain bcrypt ignores everything after byte 72, as every implementation does.
        let plain = hash(&long_a, &cheap("bcrypt", "standard")).unwrap();
        assert!(verify(&long_b, &plain).unwrap());
    }

    #[test]
    fn unknown_algorithms_and_variants_are_refused() {
        for (algorithm, variant) in [
            ("md5", ""),
            ("argon2", "argon2x"),
            ("sha2crypt", "sha1"),
            ("pbkdf2", "md5"),
            ("bcrypt", "sha512"),
            ("scrypt", "yescrypt"),
        ] {
            let result = hash("x", &cheap(algorithm, variant));
            assert!(matches!(result, Err(HashError::Params(..))), "{algorithm}/{variant}: {result:?}");
        }
        let mut params = cheap("argon2", "argon2id");
        params.argon2.salt_length = 4;
        assert!(hash("x", &params).is_err(), "argon2 needs 8 salt bytes");
        let mut params = cheap("pbkdf2", "sha256");
        params.pbkdf2.iterations = 0;
        assert!(hash("x", &params).is_err());
        let mut params = cheap("bcrypt", "standard");
        params.bcrypt.cost = 3;
        assert!(hash("x", &params).is_err());
    }

    #[test]
    fn malformed_and_unknown_hashes_are_errors_not_panics() {
        let bcrypt_sha = hash("x", &cheap("bcrypt", "sha256")).unwrap();
        let v2 = bcrypt_sha.as_str();
        for bad in [
            "",
            "plaintext",
            "$1$md5crypt$hash",
            "$argon2id$v=19$m=x,t=1,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=1024,t=1,p=1",
            "$argon2id$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ",
            "$argon2q$v=19$m=1024,t=1,p=1$c2FsdHNhbHQ$aGFzaA",
            "$6$",
            "$5$rounds=x$salt$hash",
            "$pbkdf2-sha512$0$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$abc$c2FsdA$aGFzaA",
            "$pbkdf2-md5$1000$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$1000$!!!$aGFzaA",
            "$pbkdf2-sha512$1000$c2FsdA$",
            "$pbkdf2-sha512$1000$c2FsdA",
            "$2b$04$short",
            "$2y$99$abcdefghijklmnopqrstuuabcdefghijklmnopqrstuvwxyz12345",
            "$2a$04$ééééééééééééééééééééééééééééééééééééééééééééééééééééé",
            "$bcrypt-sha256$v=3,t=2b,r=4$abcdefghijklmnopqrstuu$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$v=2,t=2y,r=4$abcdefghijklmnopqrstuu$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$v=2,t=2b,r=99$abcdefghijklmnopqrstuu$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$v=2,t=2b$abcdefghijklmnopqrstuu$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$v=2,t=2b,r=4$short$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$v=2,t=2b,r=4$!!!!!!!!!!!!!!!!!!!!!!$abcdefghijklmnopqrstuvwxyz12345",
            "$bcrypt-sha256$2b$abcdefghijklmnopqrstuu$abcdefghijklmnopqrstuvwxyz12345",
            &v2[..v2.len() - 1],
            "$scrypt$ln=99,r=8,p=1$c2FsdA$aGFzaA",
            "$scrypt$r=8,p=1$c2FsdA$aGFzaA",
            "$scrypt$ln=4,r=8,p=1$c2FsdA$",
            "$scrypt$ln=4,r=0,p=1$c2FsdA$aGFzaA",
            "$scrypt$ln=4,r=8,p=1,x=2$c2FsdA$aGFzaA",
        ] {
            assert!(verify("x", bad).is_err(), "{bad:?} should be an error");
        }
    }
}
