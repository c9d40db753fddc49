//! Password hashes: verification of every format Authelia's users files contain, and new
//! hashes with the configured algorithm.
//!
//! Formats read: Argon2 (`$argon2id$`, `$argon2i$`, `$argon2d$`, PHC strings), SHA-2 crypt
//! (`$6$`, `$5$`), PBKDF2 in passlib's form (`$pbkdf2$`, `$pbkdf2-sha224$`, `-sha256`,
//! `-sha384`, `-sha512`, "adapted" base64), bcrypt (`$2a$`, `$2b$`, `$2y$`) and scrypt in
//! passlib's form (`$scrypt$ln=..,r=..,p=..$salt$hash`). New hashes are written in the
//! same forms, so any of them can be moved between Portcullis and Authelia.
//!
//! Every function here is CPU-heavy and blocking: call them through
//! [`super::hashing_pool::HashingPool`], never directly on an async worker.

use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::config::schema::PasswordHashing;

/// Why a hash could not be checked or made.
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The stored string is not a hash of a supported kind.
    #[error("unsupported password hash format (expected argon2, sha2crypt, pbkdf2, bcrypt or scrypt)")]
    UnknownFormat,
    /// The stored string looks like a supported hash but is malformed.
    #[error("malformed {0} hash: {1}")]
    Malformed(&'static str, String),
    /// Parameters out of range for the algorithm.
    #[error("invalid {0} parameters: {1}")]
    Params(&'static str, String),
}

/// True when `password` matches `encoded`.
pub fn verify(password: &str, encoded: &str) -> Result<bool, HashError> {
    let encoded = encoded.trim();
    let pw = password.as_bytes();
    if encoded.starts_with("$argon2") {
        return verify_argon2(pw, encoded);
    }
    if encoded.starts_with("$6$") || encoded.starts_with("$5$") {
        let malformed = |e: String| HashError::Malformed("sha2crypt", e);
        return match sha_crypt::ShaCrypt::default().verify_password(pw, encoded) {
            Ok(()) => Ok(true),
            Err(sha_crypt::password_hash::Error::PasswordInvalid) => Ok(false),
            Err(e) => Err(malformed(e.to_string())),
        };
    }
    if encoded.starts_with("$pbkdf2") {
        return verify_pbkdf2(pw, encoded);
    }
    if encoded.starts_with("$2a$") || encoded.starts_with("$2b$") || encoded.starts_with("$2y$") {
        return bcrypt::verify(pw, encoded).map_err(|e| HashError::Malformed("bcrypt", e.to_string()));
    }
    if encoded.starts_with("$scrypt$") {
        return verify_scrypt(pw, encoded);
    }
    Err(HashError::UnknownFormat)
}

/// A new hash of `password` with the algorithm and parameters of `params`.
pub fn hash(password: &str, params: &PasswordHashing) -> Result<String, HashError> {
    let pw = password.as_bytes();
    match params.algorithm.as_str() {
        "sha2crypt" => {
            let p = &params.sha2crypt;
            let algorithm = if p.variant == "sha256" {
                sha_crypt::Algorithm::Sha256Crypt
            } else {
                sha_crypt::Algorithm::Sha512Crypt
            };
            let rounds =
                sha_crypt::Params::new(p.iterations).map_err(|e| HashError::Params("sha2crypt", e.to_string()))?;
            // The salt is written in crypt's base64: 3 bytes give 4 characters.
            let salt = random_bytes(((p.salt_length.clamp(1, 16) as usize) * 3).div_ceil(4));
            sha_crypt::ShaCrypt::new(algorithm, rounds)
                .hash_password_with_salt(pw, &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Params("sha2crypt", e.to_string()))
        }
        "pbkdf2" => {
            let p = &params.pbkdf2;
            let salt = random_bytes(p.salt_length as usize);
            let (ident, len) = pbkdf2_ident(&p.variant)?;
            let mut out = vec![0u8; len];
            pbkdf2_into(&p.variant, pw, &salt, p.iterations, &mut out)?;
            Ok(format!("${ident}${}${}${}", p.iterations, ab64(&salt), ab64(&out)))
        }
        "bcrypt" => {
            let cost = params.bcrypt.cost;
            bcrypt::hash(pw, cost).map_err(|e| HashError::Params("bcrypt", e.to_string()))
        }
        "scrypt" => {
            let p = &params.scrypt;
            let log_n = u8::try_from(p.iterations).map_err(|_| HashError::Params("scrypt", "iterations".into()))?;
            let salt = random_bytes(p.salt_length as usize);
            let mut out = vec![0u8; p.key_length as usize];
            let sp = scrypt::Params::new(log_n, p.block_size, p.parallelism)
                .map_err(|e| HashError::Params("scrypt", e.to_string()))?;
            scrypt::scrypt(pw, &salt, &sp, &mut out).map_err(|e| HashError::Params("scrypt", e.to_string()))?;
            Ok(format!(
                "$scrypt$ln={},r={},p={}${}${}",
                log_n,
                p.block_size,
                p.parallelism,
                STANDARD_NO_PAD.encode(&salt),
                STANDARD_NO_PAD.encode(&out)
            ))
        }
        _ => {
            let p = &params.argon2;
            let algorithm = match p.variant.as_str() {
                "argon2i" => argon2::Algorithm::Argon2i,
                "argon2d" => argon2::Algorithm::Argon2d,
                _ => argon2::Algorithm::Argon2id,
            };
            let ap = argon2::Params::new(p.memory, p.iterations, p.parallelism, Some(p.key_length as usize))
                .map_err(|e| HashError::Params("argon2", e.to_string()))?;
            let salt = random_bytes(p.salt_length as usize);
            argon2::Argon2::new(algorithm, argon2::Version::V0x13, ap)
                .hash_password_with_salt(pw, &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Params("argon2", e.to_string()))
        }
    }
}

fn random_bytes(n: usize) -> Vec<u8> {
    let mut salt = vec![0u8; n];
    rand::rng().fill_bytes(&mut salt);
    salt
}

fn verify_argon2(pw: &[u8], encoded: &str) -> Result<bool, HashError> {
    let parsed = argon2::password_hash::phc::PasswordHash::new(encoded)
        .map_err(|e| HashError::Malformed("argon2", e.to_string()))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(HashError::Malformed("argon2", "salt or hash missing".into()));
    }
    match argon2::Argon2::default().verify_password(pw, &parsed) {
        Ok(()) => Ok(true),
        Err(argon2::password_hash::Error::PasswordInvalid) => Ok(false),
        Err(e) => Err(HashError::Malformed("argon2", e.to_string())),
    }
}

/// passlib's "adapted base64": standard alphabet with '.' for '+', no padding.
fn ab64(bytes: &[u8]) -> String {
    STANDARD_NO_PAD.encode(bytes).replace('+', ".")
}

fn unab64(text: &str) -> Option<Vec<u8>> {
    STANDARD_NO_PAD.decode(text.replace('.', "+").trim_end_matches('=')).ok()
}

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
    let salt = unab64(salt).ok_or_else(|| bad("salt is not base64"))?;
    let expected = unab64(digest).ok_or_else(|| bad("hash is not base64"))?;
    if expected.is_empty() || expected.len() > 1024 {
        return Err(bad("hash has an invalid length"));
    }
    let mut out = vec![0u8; expected.len()];
    pbkdf2_into(variant, pw, &salt, rounds, &mut out)?;
    Ok(bool::from(out.ct_eq(&expected)))
}

/// `$scrypt$ln=<log2 N>,r=<r>,p=<p>$<base64 salt>$<base64 hash>`.
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
    fn cheap(algorithm: &str) -> PasswordHashing {
        let mut p = PasswordHashing { algorithm: algorithm.into(), ..Default::default() };
        p.argon2.memory = 1024;
        p.argon2.iterations = 1;
        p.argon2.parallelism = 1;
        p.sha2crypt.iterations = 1000;
        p.pbkdf2.iterations = 1000;
        p.bcrypt.cost = 4;
        p.scrypt.iterations = 4;
        p
    }

    #[test]
    fn round_trips_for_every_algorithm() {
        let cases: &[(&str, &str, &str)] = &[
            ("argon2", "argon2id", "$argon2id$"),
            ("argon2", "argon2i", "$argon2i$"),
            ("argon2", "argon2d", "$argon2d$"),
            ("sha2crypt", "sha512", "$6$"),
            ("sha2crypt", "sha256", "$5$"),
            ("pbkdf2", "sha1", "$pbkdf2$"),
            ("pbkdf2", "sha256", "$pbkdf2-sha256$"),
            ("pbkdf2", "sha512", "$pbkdf2-sha512$"),
            ("bcrypt", "standard", "$2b$"),
            ("scrypt", "scrypt", "$scrypt$ln=4,r=8,p=1$"),
        ];
        for (algorithm, variant, prefix) in cases {
            let mut params = cheap(algorithm);
            params.argon2.variant = (*variant).into();
            params.sha2crypt.variant = (*variant).into();
            params.pbkdf2.variant = (*variant).into();
            let h = hash("pässword 1", &params).unwrap_or_else(|e| panic!("{algorithm}/{variant}: {e}"));
            assert!(h.starts_with(prefix), "{h}");
            assert!(verify("pässword 1", &h).unwrap(), "{h}");
            assert!(!verify("pässword 2", &h).unwrap(), "{h}");
            assert_ne!(h, hash("pässword 1", &params).unwrap(), "salts differ");
        }
    }

    #[test]
    fn malformed_and_unknown_hashes_are_errors_not_panics() {
        for bad in [
            "",
            "plaintext",
            "$1$md5crypt$hash",
            "$argon2id$v=19$m=x,t=1,p=1$c2FsdA$aGFzaA",
            "$argon2id$v=19$m=1024,t=1,p=1",
            "$6$",
            "$pbkdf2-sha512$0$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$abc$c2FsdA$aGFzaA",
            "$pbkdf2-md5$1000$c2FsdA$aGFzaA",
            "$pbkdf2-sha512$1000$!!!$aGFzaA",
            "$2b$04$short",
            "$scrypt$ln=99,r=8,p=1$c2FsdA$aGFzaA",
            "$scrypt$r=8,p=1$c2FsdA$aGFzaA",
            "$scrypt$ln=4,r=8,p=1$c2FsdA$",
        ] {
            assert!(verify("x", bad).is_err(), "{bad:?} should be an error");
        }
    }
}
