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
    /// HMAC-SHA256 keyed for [`Cipher::keyed_hash`] (a key derived apart from the
    /// encryption key), its key schedule done once: each hash clones it. Personal API
    /// tokens are hashed on every request at the proxy.
    mac: hmac::Hmac<Sha256>,
}

impl Cipher {
    /// A cipher keyed by the SHA-256 of `key` (any length ≥ 20 is accepted by validation).
    pub fn from_key(key: &str) -> Self {
        let digest = Sha256::digest(key.as_bytes());
        let aead = match Aes256Gcm::new_from_slice(&digest) {
            Ok(aead) => aead,
            Err(_) => unreachable!("SHA-256 output is a valid AES-256 key"),
        };
        let mac_key = Sha256::digest([b"portcullis keyed hash v1\0".as_slice(), key.as_bytes()].concat());
        let mac = match <hmac::Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&mac_key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        Self { aead, mac }
    }

    /// HMAC-SHA256 of `value` under a key derived from the encryption key, as lowercase
    /// hex. Used for one-time secrets (recovery and emailed codes): the database holds only
    /// this, so a copy of it does not reveal usable codes, yet the server can look a code
    /// up by its hash. `purpose` separates the kinds of codes.
    pub fn keyed_hash(&self, purpose: &str, value: &str) -> String {
        use hmac::Mac as _;
        let mut mac = self.mac.clone();
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        crate::hex::encode(&mac.finalize().into_bytes())
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
    fn opens_a_value_sealed_as_authelia_seals_it() {
        // Made by another AES-GCM implementation: key SHA-256("an-authelia-encryption-key-for-tests"),
        // nonce 00..0b, value nonce || ciphertext || tag, as Authelia's storage writes them.
        let sealed = "000102030405060708090a0bba677176c9012148f1917f693c1c86ebce83133aae369765bf533b7f2fe144a5";
        let bytes: Vec<u8> =
            (0..sealed.len()).step_by(2).map(|i| u8::from_str_radix(&sealed[i..i + 2], 16).unwrap()).collect();
        let cipher = Cipher::from_key("an-authelia-encryption-key-for-tests");
        assert_eq!(cipher.decrypt(&bytes).unwrap(), b"JBSWY3DPEHPK3PXP");
    }

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

    #[test]
    fn keyed_hash_is_stable() {
        // Stored hashes must keep matching: HMAC-SHA256 under SHA-256("portcullis keyed
        // hash v1\0" || key) of purpose || 0 || value, lowercase hex (computed with Python).
        let cipher = Cipher::from_key("a-test-encryption-key-that-is-long-enough");
        assert_eq!(
            cipher.keyed_hash("recovery", "ABCD-EFGH"),
            "b660ebfa946e627bb2f8d2c4f1047f200b37755fd3ffcf46edc8ed7e9ca80aeb"
        );
    }

    #[test]
    fn keyed_hash_depends_on_key_purpose_and_value() {
        let a = Cipher::from_key("an-encryption-key-of-some-length");
        let b = Cipher::from_key("another-encryption-key-entirely");
        let h = a.keyed_hash("recovery", "ABCD-EFGH");
        assert_eq!(h.len(), 64);
        assert_eq!(h, a.keyed_hash("recovery", "ABCD-EFGH"));
        assert_ne!(h, b.keyed_hash("recovery", "ABCD-EFGH"));
        assert_ne!(h, a.keyed_hash("otc", "ABCD-EFGH"));
        assert_ne!(h, a.keyed_hash("recovery", "ABCD-EFGI"));
    }
}
