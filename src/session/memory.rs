//! The in-process session store: sharded maps, expiry checked on read and swept in passing.
//! Sessions are lost on restart, which is what a single-instance default wants.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::data::SessionData;
use super::id::SessionId;
use super::store::{SessionStore, SessionSummary, StoreError, UserSessions};

const SHARDS: usize = 16;
/// Every this many saves, the shard written to is swept of expired sessions.
const SWEEP_EVERY: u64 = 256;

type Key = [u8; 32];

struct Entry {
    data: Arc<SessionData>,
    expires: Instant,
}

/// In-memory [`SessionStore`].
pub struct MemoryStore {
    shards: Vec<RwLock<HashMap<Key, Entry>>>,
    by_user: Mutex<HashMap<String, HashSet<Key>>>,
    saves: AtomicU64,
    /// Keys claimed once, until they expire.
    claims: Mutex<HashMap<Key, Instant>>,
    /// Rate-limit windows: (start, length, count) by key (Unix seconds).
    windows: Mutex<HashMap<String, (i64, i64, u64)>>,
}

/// Windows tracked at most (ended ones are dropped first).
const MAX_WINDOWS: usize = 10_000;

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            by_user: Mutex::new(HashMap::new()),
            saves: AtomicU64::new(0),
            claims: Mutex::new(HashMap::new()),
            windows: Mutex::new(HashMap::new()),
        }
    }

    fn shard(&self, key: &Key) -> &RwLock<HashMap<Key, Entry>> {
        &self.shards[usize::from(key[0]) % SHARDS]
    }

    /// Number of live sessions (for tests and metrics).
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.shards.iter().map(|s| s.read().map(|m| m.values().filter(|e| e.expires > now).count()).unwrap_or(0)).sum()
    }

    /// True when no live session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn remove_key(&self, key: &Key) -> Option<Entry> {
        let removed = self.shard(key).write().ok()?.remove(key);
        if let Some(entry) = &removed
            && let Ok(mut by_user) = self.by_user.lock()
            && let Some(keys) = by_user.get_mut(&entry.data.username)
        {
            keys.remove(key);
            if keys.is_empty() {
                by_user.remove(&entry.data.username);
            }
        }
        removed
    }

    fn sweep(&self, shard: &RwLock<HashMap<Key, Entry>>) {
        let now = Instant::now();
        let expired: Vec<Key> = match shard.read() {
            Ok(map) => map.iter().filter(|(_, e)| e.expires <= now).map(|(k, _)| *k).collect(),
            Err(_) => return,
        };
        for key in expired {
            self.remove_key(&key);
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("memory store lock poisoned".into())
}

impl SessionStore for MemoryStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<SessionData>>, StoreError> {
        let key = id.storage_key();
        let map = self.shard(&key).read().map_err(|_| poisoned())?;
        Ok(map.get(&key).filter(|e| e.expires > Instant::now()).map(|e| e.data.clone()))
    }

    async fn save(&self, id: &SessionId, data: &SessionData, ttl: Duration) -> Result<(), StoreError> {
        let key = id.storage_key();
        let shard = self.shard(&key);
        let previous = {
            let mut map = shard.write().map_err(|_| poisoned())?;
            map.insert(key, Entry { data: Arc::new(data.clone()), expires: Instant::now() + ttl })
        };
        {
            let mut by_user = self.by_user.lock().map_err(|_| poisoned())?;
            if let Some(prev) = previous
                && prev.data.username != data.username
                && let Some(keys) = by_user.get_mut(&prev.data.username)
            {
                keys.remove(&key);
            }
            if !data.username.is_empty() {
                by_user.entry(data.username.clone()).or_default().insert(key);
            }
        }
        if self.saves.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep(shard);
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        self.remove_key(&id.storage_key());
        Ok(())
    }

    async fn delete_user(&self, username: &str, keep: Option<&SessionId>) -> Result<usize, StoreError> {
        let keep = keep.map(SessionId::storage_key);
        let keys: Vec<Key> = {
            let by_user = self.by_user.lock().map_err(|_| poisoned())?;
            by_user.get(username).map(|k| k.iter().copied().filter(|k| Some(*k) != keep).collect()).unwrap_or_default()
        };
        Ok(keys.iter().filter_map(|k| self.remove_key(k)).count())
    }

    async fn stats(&self) -> Result<Vec<UserSessions>, StoreError> {
        let now = Instant::now();
        let mut by_user: HashMap<String, UserSessions> = HashMap::new();
        for shard in &self.shards {
            let map = shard.read().map_err(|_| poisoned())?;
            for entry in map.values().filter(|e| e.expires > now && !e.data.username.is_empty()) {
                let user = by_user
                    .entry(entry.data.username.clone())
                    .or_insert_with(|| UserSessions { username: entry.data.username.clone(), ..Default::default() });
                user.count(entry.data.level());
            }
        }
        let mut stats: Vec<UserSessions> = by_user.into_values().collect();
        stats.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(stats)
    }

    async fn sessions_of(&self, username: &str) -> Result<Vec<SessionSummary>, StoreError> {
        let keys: Vec<Key> = {
            let by_user = self.by_user.lock().map_err(|_| poisoned())?;
            by_user.get(username).map(|k| k.iter().copied().collect()).unwrap_or_default()
        };
        let now = Instant::now();
        let mut found = Vec::new();
        for key in keys {
            let map = self.shard(&key).read().map_err(|_| poisoned())?;
            if let Some(entry) = map.get(&key).filter(|e| e.expires > now && e.data.username == username) {
                found.push(SessionSummary::of(key, &entry.data));
            }
        }
        Ok(found)
    }

    async fn delete_key(&self, username: &str, key: &[u8; 32]) -> Result<bool, StoreError> {
        let owned = {
            let map = self.shard(key).read().map_err(|_| poisoned())?;
            map.get(key).is_some_and(|e| e.data.username == username)
        };
        Ok(owned && self.remove_key(key).is_some())
    }

    async fn window_hit(&self, key: &str, window_secs: i64, now: i64) -> Result<(u64, i64), StoreError> {
        let mut windows = self.windows.lock().map_err(|_| poisoned())?;
        if windows.len() >= MAX_WINDOWS {
            windows.retain(|_, (start, length, _)| now - *start < *length);
        }
        let entry = windows.entry(key.to_string()).or_insert((now, window_secs, 0));
        if now - entry.0 >= entry.1 {
            *entry = (now, window_secs, 0);
        }
        entry.2 += 1;
        Ok((entry.2, entry.0 + entry.1 - now))
    }

    async fn window_peek(&self, key: &str, now: i64) -> Result<Option<(u64, i64)>, StoreError> {
        let windows = self.windows.lock().map_err(|_| poisoned())?;
        Ok(windows
            .get(key)
            .filter(|(start, length, _)| now - start < *length)
            .map(|(start, length, count)| (*count, start + length - now)))
    }

    async fn claim_once(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, StoreError> {
        let now = Instant::now();
        let mut claims = self.claims.lock().map_err(|_| poisoned())?;
        if claims.get(key).is_some_and(|until| *until > now) {
            return Ok(false);
        }
        if claims.len() >= 1024 {
            claims.retain(|_, until| *until > now);
        }
        claims.insert(*key, now + ttl);
        Ok(true)
    }
}
