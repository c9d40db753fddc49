//! Remembers verified personal API tokens for a short time (`api_tokens.cache_lifespan`),
//! so that a client sending its token on every request costs one HMAC and one map lookup
//! at the proxy instead of a database query.
//!
//! Entries are keyed by the token's keyed hash (the token is never kept) and hold what
//! the authorization needs: the owner and their details, the token's expiry, name and
//! scopes. Whatever can end a token's validity goes through [`ApiTokenCache::forget_token`]
//! (revocation) or [`ApiTokenCache::forget_user`] (a user disabled, changed, deleted, or
//! given a new password), so on this instance it takes effect at the next request; other
//! instances see it when their entry's lifespan ends. Expiry is checked on every hit.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use crate::authn::users_file::User;

/// Most entries kept; beyond it, stale entries are dropped and new ones skipped.
const CAPACITY: usize = 10_000;
/// A token's last use is written at most this often (seconds).
pub const USE_RECORD_INTERVAL: i64 = 60;

/// A token that verified, with its owner as they were then.
#[derive(Clone, Debug)]
pub struct VerifiedToken {
    /// The token's row ID.
    pub id: i32,
    /// The owner's label for it (`token:<name>` subjects).
    pub name: String,
    /// Not valid from this time on (Unix seconds); `None`: no expiry.
    pub expires_at: Option<i64>,
    /// Its scope labels.
    pub scopes: Vec<String>,
    /// The owner, enabled when verified.
    pub user: Arc<User>,
}

struct Entry {
    token: Arc<VerifiedToken>,
    cached_until: Instant,
    /// When its use was last written (or was, when read from storage).
    last_use_recorded: AtomicI64,
}

/// The cache of verified tokens.
pub struct ApiTokenCache {
    entries: RwLock<HashMap<String, Entry>>,
    lifespan: Duration,
}

impl ApiTokenCache {
    /// An empty cache keeping entries for `lifespan` (zero: nothing is kept).
    pub fn new(lifespan: Duration) -> Self {
        Self { entries: RwLock::new(HashMap::new()), lifespan }
    }

    /// The token whose keyed hash is `hash`, if verified less than the lifespan ago; with
    /// `true` when its use at `now` is due to be written (claimed by this call, so that
    /// concurrent requests write it once).
    pub fn get(&self, hash: &str, now: i64) -> Option<(Arc<VerifiedToken>, bool)> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(hash).filter(|e| e.cached_until > Instant::now())?;
        let last = entry.last_use_recorded.load(Ordering::Relaxed);
        let due = now - last >= USE_RECORD_INTERVAL
            && entry.last_use_recorded.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok();
        Some((entry.token.clone(), due))
    }

    /// Records that the token with keyed hash `hash` verified as `token`, its use last
    /// written at `last_use_recorded`.
    pub fn insert(&self, hash: &str, token: Arc<VerifiedToken>, last_use_recorded: i64) {
        if self.lifespan.is_zero() {
            return;
        }
        let Ok(mut entries) = self.entries.write() else { return };
        let now = Instant::now();
        if entries.len() >= CAPACITY {
            entries.retain(|_, e| e.cached_until > now);
            if entries.len() >= CAPACITY {
                return;
            }
        }
        let entry =
            Entry { token, cached_until: now + self.lifespan, last_use_recorded: AtomicI64::new(last_use_recorded) };
        entries.insert(hash.to_string(), entry);
    }

    /// Drops the token `id` (revoked).
    pub fn forget_token(&self, id: i32) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| e.token.id != id);
        }
    }

    /// Drops everything (notices from other replicas may have been missed).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }

    /// Drops every token of `username` (disabled, changed, deleted, new password): the
    /// next request checks the user again.
    pub fn forget_user(&self, username: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, e| !e.token.user.username.eq_ignore_ascii_case(username));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: i32, username: &str) -> Arc<VerifiedToken> {
        let user = User {
            username: username.into(),
            display_name: String::new(),
            password_hash: String::new(),
            emails: Vec::new(),
            groups: Vec::new(),
            disabled: false,
        };
        Arc::new(VerifiedToken { id, name: "ci".into(), expires_at: None, scopes: Vec::new(), user: Arc::new(user) })
    }

    #[test]
    fn hits_and_forgetting() {
        let cache = ApiTokenCache::new(Duration::from_secs(60));
        assert!(cache.get("h1", 1000).is_none());
        cache.insert("h1", token(1, "john"), 1000);
        cache.insert("h2", token(2, "john"), 1000);
        cache.insert("h3", token(3, "mary"), 1000);
        assert_eq!(cache.get("h1", 1000).map(|(t, _)| t.id), Some(1));
        cache.forget_token(1);
        assert!(cache.get("h1", 1000).is_none(), "a revoked token is gone at once");
        cache.forget_user("John");
        assert!(cache.get("h2", 1000).is_none(), "a disabled user's tokens are gone at once");
        assert!(cache.get("h3", 1000).is_some(), "other users' stay");
    }

    #[test]
    fn use_is_due_once_a_minute_and_lifespans_end() {
        let cache = ApiTokenCache::new(Duration::from_secs(60));
        cache.insert("h", token(1, "john"), 1000);
        assert_eq!(cache.get("h", 1010).map(|(_, due)| due), Some(false));
        assert_eq!(cache.get("h", 1060).map(|(_, due)| due), Some(true), "a minute later");
        assert_eq!(cache.get("h", 1061).map(|(_, due)| due), Some(false), "claimed by the previous call");

        let off = ApiTokenCache::new(Duration::ZERO);
        off.insert("h", token(1, "john"), 0);
        assert!(off.get("h", 0).is_none(), "a zero lifespan keeps nothing");
        let short = ApiTokenCache::new(Duration::from_millis(1));
        short.insert("h", token(1, "john"), 0);
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.get("h", 0).is_none(), "expired entry");
    }
}
