//! The storage interface sessions live behind, and the configured choice of store.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::data::SessionData;
use super::id::SessionId;
use super::memory::MemoryStore;
use super::redis::RedisStore;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached; callers fail closed.
    #[error("session store unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be read back (wrong key, corruption, old format).
    #[error("session data unreadable: {0}")]
    Corrupt(String),
}

/// Where sessions live. Implementations must be safe to share between tasks.
pub trait SessionStore: Send + Sync + 'static {
    /// The session filed under `id`, if it exists and has not expired.
    fn load(&self, id: &SessionId) -> impl Future<Output = Result<Option<Arc<SessionData>>, StoreError>> + Send;

    /// Stores `data` under `id` for `ttl`, replacing what was there.
    fn save(
        &self,
        id: &SessionId,
        data: &SessionData,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes the session filed under `id` (no error if absent).
    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Removes every session of `username` except `keep`; returns how many were removed.
    fn delete_user(
        &self,
        username: &str,
        keep: Option<&SessionId>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send;

    /// Records `key` as used for `ttl`; `false` when it was recorded already (by any
    /// instance sharing the store). Makes something the client holds single use.
    fn claim_once(&self, key: &[u8; 32], ttl: Duration) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Live logged-in sessions per user and level (for administrators).
    fn stats(&self) -> impl Future<Output = Result<Vec<UserSessions>, StoreError>> + Send;

    /// The live sessions of `username`, described (never their IDs).
    fn sessions_of(&self, username: &str) -> impl Future<Output = Result<Vec<SessionSummary>, StoreError>> + Send;

    /// Removes the session whose storage key is `key` (from [`SessionSummary::key`]).
    fn delete_key(&self, username: &str, key: &[u8; 32]) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Counts one event under `key` in a fixed window of `window_secs` that starts at its
    /// first event, shared by every instance using the store (rate limits). Returns the
    /// count so far and the seconds left in the window.
    fn window_hit(
        &self,
        key: &str,
        window_secs: i64,
        now: i64,
    ) -> impl Future<Output = Result<(u64, i64), StoreError>> + Send;

    /// The count and seconds left of `key`'s current window, without counting.
    fn window_peek(&self, key: &str, now: i64) -> impl Future<Output = Result<Option<(u64, i64)>, StoreError>> + Send;
}

/// One live session as its user may see it: where and when, not its ID (a bearer
/// secret). `key` is the ID's storage key (its SHA-256), which names it without revealing it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SessionSummary {
    /// The session ID's storage key.
    #[serde(skip)]
    pub key: [u8; 32],
    /// The address it was signed in from.
    pub ip: String,
    /// Its User-Agent.
    pub user_agent: String,
    /// When it was created (Unix seconds).
    pub created_at: i64,
    /// Last seen (Unix seconds; recorded at most once a minute or so).
    pub last_activity_at: i64,
    /// Its level (0, 1, 2).
    pub level: u8,
}

impl SessionSummary {
    /// The summary of `data` filed under `key`.
    pub fn of(key: [u8; 32], data: &SessionData) -> Self {
        Self {
            key,
            ip: data.ip.clone(),
            user_agent: data.user_agent.clone(),
            created_at: data.created_at,
            last_activity_at: data.last_activity_at,
            level: data.level() as u8,
        }
    }
}

/// How many live sessions a user has, by level.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct UserSessions {
    /// The user.
    pub username: String,
    /// Sessions at one factor.
    pub one_factor: usize,
    /// Sessions at two factors.
    pub two_factor: usize,
}

impl UserSessions {
    /// Counts a session at `level` (anonymous ones are not counted).
    pub fn count(&mut self, level: super::AuthLevel) {
        match level {
            super::AuthLevel::OneFactor => self.one_factor += 1,
            super::AuthLevel::TwoFactor => self.two_factor += 1,
            super::AuthLevel::Anonymous => {}
        }
    }
}

/// The store chosen by configuration: static dispatch on the hot path.
pub enum Store {
    /// In-process (default).
    Memory(MemoryStore),
    /// Redis, standalone or through Sentinel.
    Redis(RedisStore),
}

// Each operation is timed and traced here, once for every store (free when telemetry is
// off). The methods return the wrapped future rather than being `async fn`s, so the
// wrapper replaces a layer of future instead of adding one. Redis' futures are boxed: a
// Redis command's future is several kilobytes, and inline it would size (and be copied
// with) every caller's future, the authorization path's included, whichever store is
// configured. Loads box only their Redis round trip, which a cache hit skips.
impl SessionStore for Store {
    fn load(&self, id: &SessionId) -> impl Future<Output = Result<Option<Arc<SessionData>>, StoreError>> + Send {
        crate::telemetry::session_call("load", async move {
            match self {
                Self::Memory(s) => s.load(id).await,
                Self::Redis(s) => s.load(id).await,
            }
        })
    }

    fn save(
        &self,
        id: &SessionId,
        data: &SessionData,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        crate::telemetry::session_call("save", async move {
            match self {
                Self::Memory(s) => s.save(id, data, ttl).await,
                Self::Redis(s) => Box::pin(s.save(id, data, ttl)).await,
            }
        })
    }

    fn delete(&self, id: &SessionId) -> impl Future<Output = Result<(), StoreError>> + Send {
        crate::telemetry::session_call("delete", async move {
            match self {
                Self::Memory(s) => s.delete(id).await,
                Self::Redis(s) => Box::pin(s.delete(id)).await,
            }
        })
    }

    fn delete_user(
        &self,
        username: &str,
        keep: Option<&SessionId>,
    ) -> impl Future<Output = Result<usize, StoreError>> + Send {
        crate::telemetry::session_call("delete_user", async move {
            match self {
                Self::Memory(s) => s.delete_user(username, keep).await,
                Self::Redis(s) => Box::pin(s.delete_user(username, keep)).await,
            }
        })
    }

    fn claim_once(&self, key: &[u8; 32], ttl: Duration) -> impl Future<Output = Result<bool, StoreError>> + Send {
        crate::telemetry::session_call("claim_once", async move {
            match self {
                Self::Memory(s) => s.claim_once(key, ttl).await,
                Self::Redis(s) => Box::pin(s.claim_once(key, ttl)).await,
            }
        })
    }

    fn stats(&self) -> impl Future<Output = Result<Vec<UserSessions>, StoreError>> + Send {
        crate::telemetry::session_call("stats", async move {
            match self {
                Self::Memory(s) => s.stats().await,
                Self::Redis(s) => Box::pin(s.stats()).await,
            }
        })
    }

    fn sessions_of(&self, username: &str) -> impl Future<Output = Result<Vec<SessionSummary>, StoreError>> + Send {
        crate::telemetry::session_call("sessions_of", async move {
            match self {
                Self::Memory(s) => s.sessions_of(username).await,
                Self::Redis(s) => Box::pin(s.sessions_of(username)).await,
            }
        })
    }

    fn delete_key(&self, username: &str, key: &[u8; 32]) -> impl Future<Output = Result<bool, StoreError>> + Send {
        crate::telemetry::session_call("delete_key", async move {
            match self {
                Self::Memory(s) => s.delete_key(username, key).await,
                Self::Redis(s) => Box::pin(s.delete_key(username, key)).await,
            }
        })
    }

    fn window_hit(
        &self,
        key: &str,
        window_secs: i64,
        now: i64,
    ) -> impl Future<Output = Result<(u64, i64), StoreError>> + Send {
        crate::telemetry::session_call("window_hit", async move {
            match self {
                Self::Memory(s) => s.window_hit(key, window_secs, now).await,
                Self::Redis(s) => Box::pin(s.window_hit(key, window_secs, now)).await,
            }
        })
    }

    fn window_peek(&self, key: &str, now: i64) -> impl Future<Output = Result<Option<(u64, i64)>, StoreError>> + Send {
        crate::telemetry::session_call("window_peek", async move {
            match self {
                Self::Memory(s) => s.window_peek(key, now).await,
                Self::Redis(s) => Box::pin(s.window_peek(key, now)).await,
            }
        })
    }
}

impl Store {
    /// `memory` or `redis`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Memory(_) => "memory",
            Self::Redis(_) => "redis",
        }
    }

    /// Answers when the store does (the readiness check): memory always, Redis to a PING.
    pub async fn ping(&self) -> Result<(), StoreError> {
        match self {
            Self::Memory(_) => Ok(()),
            Self::Redis(s) => Box::pin(s.ping()).await,
        }
    }

    /// How many sessions the store holds (the sampled `portcullis_sessions_active`).
    pub async fn count(&self) -> Result<u64, StoreError> {
        match self {
            Self::Memory(s) => Ok(s.len() as u64),
            Self::Redis(s) => Box::pin(s.count()).await,
        }
    }
}
