//! Remembers successful Basic-credential checks for a short time
//! (`authn_strategies[].scheme_basic_cache_lifespan`), so that clients sending Basic
//! credentials on every request cost one hash per lifespan instead of one per request.
//!
//! Entries are keyed by HMAC-SHA256 of the credentials under a random per-process key: the
//! password is never stored, and the key cannot be precomputed against. Each entry keeps
//! the stored hash it was verified against; when the user's password changes (the stored
//! hash differs), the entry no longer counts.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use hmac::{KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Most entries kept; beyond it, expired entries are dropped and new ones skipped.
const CAPACITY: usize = 10_000;

struct Entry {
    username: String,
    stored_hash: String,
    expires: Instant,
}

/// The cache of verified Basic credentials.
pub struct BasicCache {
    key: [u8; 32],
    entries: RwLock<HashMap<[u8; 32], Entry>>,
}

impl Default for BasicCache {
    fn default() -> Self {
        Self::new()
    }
}

impl BasicCache {
    /// An empty cache with a fresh random key.
    pub fn new() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self { key, entries: RwLock::new(HashMap::new()) }
    }

    fn fingerprint(&self, login: &str, password: &str) -> [u8; 32] {
        let mut mac = match <hmac::Hmac<Sha256> as KeyInit>::new_from_slice(&self.key) {
            Ok(mac) => mac,
            Err(_) => unreachable!("HMAC accepts any key length"),
        };
        mac.update(login.as_bytes());
        mac.update(&[0]);
        mac.update(password.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The username these credentials were verified for, if that happened less than the
    /// lifespan ago and `current_hash(username)` still returns the same stored hash.
    pub fn get(&self, login: &str, password: &str, current_hash: impl Fn(&str) -> Option<String>) -> Option<String> {
        let (username, stored_hash) = self.candidate(login, password)?;
        (current_hash(&username).as_deref() == Some(stored_hash.as_str())).then_some(username)
    }

    /// The username these credentials were verified for less than the lifespan ago, and
    /// the stored hash they were verified against: they still count only while the user's
    /// stored hash is that one (the caller checks, with whichever backend holds users).
    pub fn candidate(&self, login: &str, password: &str) -> Option<(String, String)> {
        let fp = self.fingerprint(login, password);
        let entries = self.entries.read().ok()?;
        let entry = entries.get(&fp).filter(|e| e.expires > Instant::now())?;
        Some((entry.username.clone(), entry.stored_hash.clone()))
    }

    /// Forgets every entry verified for `username` (its password, state or sessions
    /// changed, possibly on another replica).
    pub fn forget_user(&self, username: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| !e.username.eq_ignore_ascii_case(username));
        }
    }

    /// Forgets every entry (invalidations may have been missed).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    /// Records that `login`/`password` verified as `username` against `stored_hash`.
    pub fn insert(&self, login: &str, password: &str, username: &str, stored_hash: &str, lifespan: Duration) {
        if lifespan.is_zero() {
            return;
        }
        let fp = self.fingerprint(login, password);
        let Ok(mut entries) = self.entries.write() else { return };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.expires > now);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        entries.insert(
            fp,
            Entry { username: username.to_string(), stored_hash: stored_hash.to_string(), expires: now + lifespan },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_expire_and_password_changes_invalidate() {
        let cache = BasicCache::new();
        let hash = |h: &'static str| move |_: &str| Some(h.to_string());
        assert_eq!(cache.get("john", "pw", hash("h1")), None);
        cache.insert("john", "pw", "john", "h1", Duration::from_secs(60));
        assert_eq!(cache.get("john", "pw", hash("h1")).as_deref(), Some("john"));
        assert_eq!(cache.get("john", "other", hash("h1")), None, "another password is another key");
        assert_eq!(cache.get("john", "pw", hash("h2")), None, "a changed password invalidates");
        assert_eq!(cache.get("john", "pw", |_: &str| None), None, "a removed user invalidates");

        cache.insert("mary", "pw", "mary", "h", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(cache.get("mary", "pw", hash("h")), None, "expired");
        cache.insert("kim", "pw", "kim", "h", Duration::ZERO);
        assert_eq!(cache.get("kim", "pw", hash("h")), None, "lifespan 0 disables the cache");
    }

    #[test]
    fn users_can_be_forgotten_one_by_one_or_all() {
        let cache = BasicCache::new();
        let hash = |_: &str| Some("h".to_string());
        let lifespan = Duration::from_secs(60);
        cache.insert("john", "pw", "john", "h", lifespan);
        cache.insert("john@example.com", "pw", "john", "h", lifespan);
        cache.insert("mary", "pw", "mary", "h", lifespan);
        cache.forget_user("John");
        assert_eq!(cache.get("john", "pw", hash), None);
        assert_eq!(cache.get("john@example.com", "pw", hash), None, "every login of the user");
        assert_eq!(cache.get("mary", "pw", hash).as_deref(), Some("mary"), "others stay");
        cache.clear();
        assert_eq!(cache.get("mary", "pw", hash), None);
    }

    #[test]
    fn keys_differ_between_processes() {
        assert_ne!(BasicCache::new().fingerprint("a", "b"), BasicCache::new().fingerprint("a", "b"));
    }
}
