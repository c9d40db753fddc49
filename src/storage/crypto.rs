//! Encryption of secret columns with AES-256-GCM under `storage.encryption_key`.

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, KeyInit};
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::StorageError;

const NONCE_LEN: usize = 12;

/// Encrypts and decrypts values stored in the database. Each value carries its own random
/// nonce; tampering or a wrong key makes decryption fail rather than return garbage.
#[derive(Clone)]
pub struct Cipher {
    aead: Aes256Gcm,
}

impl Cipher {
    /// A cipher keyed by the SHA-256 of `key` (any length ≥ 20 is accepted by validation).
    pub fn from_key(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let aead = match Aes256Gcm::new_from_slice(&digest) {
            Ok(aead) => aead,
            Err(_) => unreachable!("SHA-256 output is a valid AES-256 key"),
        };
        Self { aead }
    }

    /// `nonce || ciphertext+tag`.
    pub fn encrypt(&self, plain: &[u8]) -> Result<Vec<u8>, StorageError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed =
            self.aead.encrypt(&nonce.into(), plain).map_err(|_| StorageError::Crypto("encryption failed".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Reverses [`Cipher::encrypt`].
    pub fn decrypt(&self, stored: &[u8]) -> Result<Vec<u8>, StorageError> {
        if stored.len() < NONCE_LEN {
            return Err(StorageError::Crypto("value too short".into()));
        }
        let (nonce, sealed) = stored.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StorageError::Crypto("bad nonce".into()))?;
        self.aead.decrypt(&nonce.into(), sealed).map_err(|_| StorageError::Crypto("wrong key or tampered value".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_wrong_key() {
        let a = Cipher::from_key("an-encryption-key-of-some-length");
        let b = Cipher::from_key("another-encryption-key-entirely");
        let sealed = a.encrypt(b"totp secret").unwrap();
        assert_ne!(a.encrypt(b"totp secret").unwrap(), sealed, "nonces differ");
        assert_eq!(a.decrypt(&sealed).unwrap(), b"totp secret");
        assert!(b.decrypt(&sealed).is_err());
        let mut tampered = sealed.clone();
        tampered[20] ^= 1;
        assert!(a.decrypt(&tampered).is_err());
        assert!(a.decrypt(b"short").is_err());
    }
}
