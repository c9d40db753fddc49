//! The Redis session store (fred): standalone or through Sentinel, optional TLS.
//!
//! Session data is filed under the SHA-256 of the session ID and encrypted with
//! AES-256-GCM under a key derived from `session.secret` and the session ID itself, with
//! the Redis key as associated data. So neither a Redis dump nor a replica yields usable
//! sessions (the IDs are not in it), and a value copied under another key does not read as
//! that session. Commands fail fast while Redis is unreachable (callers fail closed) and
//! the client reconnects by itself when Redis returns.

use std::sync::Arc;
use std::time::Duration;

use aes_gcm::Aes256Gcm;
use aes_gcm::aead::{Aead, Payload};
use fred::prelude::{
    ClientLike, Config, Expiration, KeysInterface, Pool, ReconnectPolicy, Server, ServerConfig, SetOptions,
    SetsInterface,
};
use hmac::Hmac;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::data::SessionData;
use super::id::SessionId;
use super::store::{SessionStore, SessionSummary, StoreError, UserSessions};
use super::tracked_cache::{TrackedCache, count};
use crate::config::schema::Redis;
use crate::config::types::Secret;
use crate::telemetry::metrics::SessionCacheEvent;

const SESSION_PREFIX: &str = "portcullis:session:";
const USER_PREFIX: &str = "portcullis:user-sessions:";
const CLAIM_PREFIX: &str = "portcullis:claimed:";
/// Rate-limit windows shared by every instance: a counter that expires with its window.
const WINDOW_PREFIX: &str = "portcullis:window:";
/// A session's authentication level beside it (for statistics, which cannot decrypt).
const LEVEL_PREFIX: &str = "portcullis:session-level:";
/// What a user's session list shows of a session (address, User-Agent, times, level),
/// sealed under a key derived from `session.secret`: the session itself is sealed under
/// its own ID, which the list does not have.
const META_PREFIX: &str = "portcullis:session-meta:";
/// Version 2 binds each value to its session (key derived from the ID, the Redis key as
/// associated data); version 1 values are not read (their sessions end on upgrade).
const FORMAT_VERSION: u8 = 2;
const NONCE_LEN: usize = 12;

/// Redis-backed [`SessionStore`].
pub struct RedisStore {
    pool: Pool,
    /// Derives each session's encryption key from its ID.
    master: Arc<[u8; 32]>,
    /// Sessions read before, while Redis' invalidations keep them exact (unless disabled).
    cache: Option<Arc<TrackedCache>>,
}

impl RedisStore {
    /// Builds the client pool and starts connecting in the background. Waits up to the
    /// configured timeout for the first connection, but starts anyway if Redis is down:
    /// requests needing a session then fail closed until it is reachable.
    pub async fn connect(config: &Redis, secret: &Secret) -> Result<Self, StoreError> {
        let pool = build_pool(config)?;
        pool.connect_pool();
        match tokio::time::timeout(config.timeout.get(), pool.wait_for_connect()).await {
            Ok(Ok(())) => tracing::info!("connected to Redis"),
            Ok(Err(e)) => tracing::warn!(error = %e, "Redis is not reachable yet; sessions fail closed until it is"),
            Err(_) => tracing::warn!("Redis is not reachable yet; sessions fail closed until it is"),
        }
        let cache = if config.client_side_cache {
            let cache = Arc::new(TrackedCache::default());
            super::tracked_cache::track(config, cache.clone(), SESSION_PREFIX, decode_hex_key)?;
            Some(cache)
        } else {
            None
        };
        Ok(Self { pool, master: Arc::new(master_key(secret)), cache })
    }

    /// Reads session `id` from Redis (a cache miss), keeping it in the cache under `ticket`.
    async fn fetch(
        &self,
        id: &SessionId,
        storage_key: [u8; 32],
        ticket: Option<super::tracked_cache::Ticket>,
    ) -> Result<Option<Arc<SessionData>>, StoreError> {
        let key = hex_key(SESSION_PREFIX, &storage_key);
        let value: Option<Vec<u8>> = self.pool.get(&key).await.map_err(unavailable)?;
        match value {
            None => Ok(None),
            Some(bytes) => match self.decrypt(id, &key, &bytes) {
                Ok(data) => {
                    let data = Arc::new(data);
                    if let (Some(cache), Some(ticket)) = (&self.cache, ticket) {
                        cache.fill(storage_key, ticket, data.clone());
                    }
                    Ok(Some(data))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "discarding an unreadable session");
                    Ok(None)
                }
            },
        }
    }

    /// Drops `key` from the local cache after this process changed it in Redis, so the
    /// next request here sees the change without waiting for Redis' push.
    fn forget(&self, key: &str) {
        if let (Some(cache), Some(bytes)) = (&self.cache, key_bytes(key)) {
            cache.invalidate(&bytes);
        }
    }

    /// Answers when Redis does (a PING).
    pub async fn ping(&self) -> Result<(), StoreError> {
        let _: fred::types::Value = self.pool.next().ping(None).await.map_err(unavailable)?;
        Ok(())
    }

    /// Counts the sessions with SCAN (never KEYS, which would block Redis). Only for
    /// sampling: it walks the whole key space, so it runs at most once per scrape interval.
    pub async fn count(&self) -> Result<u64, StoreError> {
        use futures_util::StreamExt;
        let mut keys = self.pool.next().scan_buffered(format!("{SESSION_PREFIX}*"), Some(1000), None);
        let mut count = 0u64;
        while let Some(key) = keys.next().await {
            key.map_err(unavailable)?;
            count += 1;
        }
        Ok(count)
    }

    fn encrypt(&self, id: &SessionId, key: &str, data: &SessionData) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(data).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = session_cipher(&self.master, id)?
            .encrypt(&nonce.into(), Payload { msg: &plain, aad: key.as_bytes() })
            .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn decrypt(&self, id: &SessionId, key: &str, stored: &[u8]) -> Result<SessionData, StoreError> {
        let (version, rest) = stored.split_first().ok_or_else(|| StoreError::Corrupt("empty value".into()))?;
        if *version != FORMAT_VERSION || rest.len() < NONCE_LEN {
            return Err(StoreError::Corrupt("unknown session format".into()));
        }
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::Corrupt("bad nonce".into()))?;
        let plain = session_cipher(&self.master, id)?
            .decrypt(&nonce.into(), Payload { msg: sealed, aad: key.as_bytes() })
            .map_err(|_| {
                StoreError::Corrupt("cannot decrypt (session.secret changed, or not this session's value)".into())
            })?;
        serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    fn seal_meta(&self, key: &str, summary: &SessionSummary) -> Result<Vec<u8>, StoreError> {
        let plain = serde_json::to_vec(summary).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = meta_cipher(&self.master)?
            .encrypt(&nonce.into(), Payload { msg: &plain, aad: key.as_bytes() })
            .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
        Ok([&nonce[..], &sealed].concat())
    }

    fn open_meta(&self, key: &str, stored: &[u8]) -> Option<SessionSummary> {
        let (nonce, sealed) = stored.split_at_checked(NONCE_LEN)?;
        let nonce: [u8; NONCE_LEN] = nonce.try_into().ok()?;
        let plain = meta_cipher(&self.master)
            .ok()?
            .decrypt(&nonce.into(), Payload { msg: sealed, aad: key.as_bytes() })
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }
}

/// The key session keys are derived from, from `session.secret`.
fn master_key(secret: &Secret) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(b"portcullis session encryption v2\0");
    hasher.update(secret.expose().as_bytes());
    hasher.finalize().into()
}

/// The cipher of one session: HMAC-SHA256 of its ID under the master key.
fn session_cipher(master: &[u8; 32], id: &SessionId) -> Result<Aes256Gcm, StoreError> {
    let derive = || StoreError::Unavailable("cannot derive the session key".into());
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = Hmac::<Sha256>::new_from_slice(master).map_err(|_| derive())?;
    mac.update(id.as_str().as_bytes());
    Aes256Gcm::new_from_slice(&mac.finalize().into_bytes()).map_err(|_| derive())
}

fn build_pool(config: &Redis) -> Result<Pool, StoreError> {
    let size = usize::try_from(config.maximum_active_connections.clamp(1, 64)).unwrap_or(1);
    builder(config)?.build_pool(size).map_err(|e| StoreError::Unavailable(format!("invalid Redis configuration: {e}")))
}

/// A client builder for `session.redis`: standalone or Sentinel, credentials, database,
/// TLS, timeouts and the reconnect policy. Shared with the cache invalidation channel
/// (`crate::invalidation`), which must reach the same Redis the same way.
pub(crate) fn builder(config: &Redis) -> Result<fred::prelude::Builder, StoreError> {
    let host = config.host.clone().unwrap_or_default();
    let server = match &config.high_availability {
        Some(ha) => {
            // Sentinel: `host` is one more sentinel, when set (the nodes may be all of them).
            let mut hosts: Vec<Server> =
                (!host.is_empty()).then(|| Server::new(host, config.port)).into_iter().collect();
            hosts.extend(
                ha.nodes.iter().map(|n| Server::new(n.host.clone().unwrap_or_default(), n.port.unwrap_or(26379))),
            );
            ServerConfig::Sentinel {
                hosts,
                service_name: ha.sentinel_name.clone().unwrap_or_default(),
                username: (!ha.sentinel_username.is_empty()).then(|| ha.sentinel_username.clone()),
                password: (!ha.sentinel_password.is_empty()).then(|| ha.sentinel_password.expose().to_string()),
            }
        }
        None => ServerConfig::new_centralized(host, config.port),
    };
    let database = u8::try_from(config.database_index)
        .map_err(|_| StoreError::Unavailable("session.redis.database_index must be below 256".into()))?;
    let mut fred_config = Config {
        server,
        username: (!config.username.is_empty()).then(|| config.username.clone()),
        password: (!config.password.is_empty()).then(|| config.password.expose().to_string()),
        database: Some(database),
        // Fail commands at once while disconnected instead of queueing them: fail closed.
        fail_fast: true,
        ..Config::default()
    };
    if config.tls.is_some() {
        let connector = fred::types::config::TlsConnector::default_rustls()
            .map_err(|e| StoreError::Unavailable(format!("cannot set up TLS to Redis: {e}")))?;
        fred_config.tls = Some(connector.into());
    }
    let timeout = config.timeout.get();
    let mut builder = fred::prelude::Builder::from_config(fred_config);
    builder
        .with_connection_config(|c| {
            c.connection_timeout = timeout;
            c.internal_command_timeout = timeout;
            c.max_command_attempts = config.max_retries.saturating_add(1);
        })
        .with_performance_config(|p| p.default_command_timeout = timeout)
        // Retry forever, every 500 ms: recovery needs no restart.
        .set_policy(ReconnectPolicy::new_constant(0, 500));
    Ok(builder)
}

/// The key holding the level of the session filed under `session_key`.
fn level_key(session_key: &str) -> String {
    format!("{LEVEL_PREFIX}{}", session_key.strip_prefix(SESSION_PREFIX).unwrap_or(session_key))
}

fn meta_key(session_key: &str) -> String {
    format!("{META_PREFIX}{}", session_key.strip_prefix(SESSION_PREFIX).unwrap_or(session_key))
}

/// The storage key a session key names (its hex part).
fn key_bytes(session_key: &str) -> Option<[u8; 32]> {
    decode_hex_key(session_key.strip_prefix(SESSION_PREFIX)?)
}

/// The 32 bytes written as 64 hex digits in `hex`.
fn decode_hex_key(hex: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if hex.len() != 64 {
        return None;
    }
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(i * 2..i * 2 + 2)?, 16).ok()?;
    }
    Some(out)
}

/// The cipher of the session list's records.
fn meta_cipher(master: &[u8; 32]) -> Result<Aes256Gcm, StoreError> {
    let derive = || StoreError::Unavailable("cannot derive the session list key".into());
    use hmac::{KeyInit as _, Mac as _};
    let mut mac = Hmac::<Sha256>::new_from_slice(master).map_err(|_| derive())?;
    mac.update(b"session list records\0");
    Aes256Gcm::new_from_slice(&mac.finalize().into_bytes()).map_err(|_| derive())
}

fn session_key(id: &SessionId) -> String {
    hex_key(SESSION_PREFIX, &id.storage_key())
}

fn hex_key(prefix: &str, bytes: &[u8; 32]) -> String {
    let mut key = String::with_capacity(prefix.len() + 64);
    key.push_str(prefix);
    crate::hex::push(&mut key, bytes);
    key
}

fn unavailable(e: fred::error::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

impl SessionStore for RedisStore {
    async fn load(&self, id: &SessionId) -> Result<Option<Arc<SessionData>>, StoreError> {
        let storage_key = id.storage_key();
        let ticket = match &self.cache {
            Some(cache) => match cache.get(&storage_key) {
                Some(hit) => {
                    count(SessionCacheEvent::Hit);
                    return Ok(Some(hit));
                }
                None => {
                    let ticket = cache.ticket(&storage_key);
                    if ticket.is_some() {
                        count(SessionCacheEvent::Miss);
                    }
                    ticket
                }
            },
            None => None,
        };
        Box::pin(self.fetch(id, storage_key, ticket)).await
    }

    async fn save(&self, id: &SessionId, data: &SessionData, ttl: Duration) -> Result<(), StoreError> {
        let key = session_key(id);
        let value = self.encrypt(id, &key, data)?;
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let written = self.pool.set(&key, value, Some(Expiration::PX(ms)), None, false).await.map_err(unavailable);
        self.forget(&key);
        let () = written?;
        let level = i64::from(data.level() as u8);
        let () =
            self.pool.set(level_key(&key), level, Some(Expiration::PX(ms)), None, false).await.map_err(unavailable)?;
        if !data.username.is_empty() {
            let meta = self.seal_meta(&meta_key(&key), &SessionSummary::of(id.storage_key(), data))?;
            let () = self
                .pool
                .set(meta_key(&key), meta, Some(Expiration::PX(ms)), None, false)
                .await
                .map_err(unavailable)?;
            // Index the session under its user so that all of a user's sessions can be
            // revoked; the index lives as long as its longest-lived session.
            let index = format!("{USER_PREFIX}{}", data.username);
            let _: i64 = self.pool.sadd(&index, key.as_str()).await.map_err(unavailable)?;
            let remaining: i64 = self.pool.pttl(&index).await.map_err(unavailable)?;
            if remaining < ms {
                let _: bool = self.pool.pexpire(&index, ms, None).await.map_err(unavailable)?;
            }
        }
        Ok(())
    }

    async fn delete(&self, id: &SessionId) -> Result<(), StoreError> {
        let key = session_key(id);
        if let Some(data) = self.load(id).await?
            && !data.username.is_empty()
        {
            let _: i64 =
                self.pool.srem(format!("{USER_PREFIX}{}", data.username), key.as_str()).await.map_err(unavailable)?;
        }
        let deleted = self.pool.del(vec![level_key(&key), meta_key(&key), key.clone()]).await.map_err(unavailable);
        self.forget(&key);
        let _: i64 = deleted?;
        Ok(())
    }

    async fn delete_user(&self, username: &str, keep: Option<&SessionId>) -> Result<usize, StoreError> {
        let index = format!("{USER_PREFIX}{username}");
        let keep = keep.map(session_key);
        let members: Vec<String> = self.pool.smembers(&index).await.map_err(unavailable)?;
        let mut removed = 0;
        for member in members.into_iter().filter(|m| Some(m) != keep.as_ref()) {
            let _: i64 = self.pool.del(vec![level_key(&member), meta_key(&member)]).await.map_err(unavailable)?;
            let deleted = self.pool.del(member.as_str()).await.map_err(unavailable);
            self.forget(&member);
            let deleted: i64 = deleted?;
            let _: i64 = self.pool.srem(&index, member.as_str()).await.map_err(unavailable)?;
            removed += usize::try_from(deleted).unwrap_or(0);
        }
        Ok(removed)
    }

    async fn sessions_of(&self, username: &str) -> Result<Vec<SessionSummary>, StoreError> {
        let members: Vec<String> = self.pool.smembers(format!("{USER_PREFIX}{username}")).await.map_err(unavailable)?;
        if members.is_empty() {
            return Ok(Vec::new());
        }
        let metas: Vec<Option<Vec<u8>>> =
            self.pool.mget(members.iter().map(|m| meta_key(m)).collect::<Vec<_>>()).await.map_err(unavailable)?;
        let mut found = Vec::new();
        for (member, meta) in members.iter().zip(metas) {
            let (Some(key), Some(meta)) = (key_bytes(member), meta) else { continue };
            if let Some(mut summary) = self.open_meta(&meta_key(member), &meta) {
                summary.key = key;
                found.push(summary);
            }
        }
        Ok(found)
    }

    async fn delete_key(&self, username: &str, key: &[u8; 32]) -> Result<bool, StoreError> {
        let index = format!("{USER_PREFIX}{username}");
        let member = hex_key(SESSION_PREFIX, key);
        let owned: bool = self.pool.sismember(&index, member.as_str()).await.map_err(unavailable)?;
        if !owned {
            return Ok(false);
        }
        let deleted = self.pool.del(member.as_str()).await.map_err(unavailable);
        self.forget(&member);
        let deleted: i64 = deleted?;
        let _: i64 = self.pool.del(vec![level_key(&member), meta_key(&member)]).await.map_err(unavailable)?;
        let _: i64 = self.pool.srem(&index, member.as_str()).await.map_err(unavailable)?;
        Ok(deleted > 0)
    }

    async fn window_hit(&self, key: &str, window_secs: i64, _now: i64) -> Result<(u64, i64), StoreError> {
        let key = format!("{WINDOW_PREFIX}{key}");
        let ms = window_secs.max(1).saturating_mul(1000);
        // The window starts with its first event: created with its expiry, then counted
        // (INCR keeps the expiry).
        let _: Option<String> =
            self.pool.set(&key, 0, Some(Expiration::PX(ms)), Some(SetOptions::NX), false).await.map_err(unavailable)?;
        let count: i64 = self.pool.incr(&key).await.map_err(unavailable)?;
        let left_ms: i64 = self.pool.pttl(&key).await.map_err(unavailable)?;
        if left_ms < 0 {
            // Expired between the two calls: the counter lost its expiry; give it one.
            let _: bool = self.pool.pexpire(&key, ms, None).await.map_err(unavailable)?;
        }
        let left = if left_ms < 0 { window_secs } else { (left_ms + 999) / 1000 };
        Ok((u64::try_from(count).unwrap_or(0), left))
    }

    async fn window_peek(&self, key: &str, _now: i64) -> Result<Option<(u64, i64)>, StoreError> {
        let key = format!("{WINDOW_PREFIX}{key}");
        let count: Option<i64> = self.pool.get(&key).await.map_err(unavailable)?;
        let Some(count) = count else { return Ok(None) };
        let left_ms: i64 = self.pool.pttl(&key).await.map_err(unavailable)?;
        Ok((left_ms > 0).then(|| (u64::try_from(count).unwrap_or(0), (left_ms + 999) / 1000)))
    }

    async fn stats(&self) -> Result<Vec<UserSessions>, StoreError> {
        use fred::types::scan::Scanner;
        use futures_util::TryStreamExt;
        let client = self.pool.next();
        let mut scan = client.scan(format!("{USER_PREFIX}*"), Some(1000), None);
        let mut indexes = Vec::new();
        while let Some(mut page) = scan.try_next().await.map_err(unavailable)? {
            if let Some(keys) = page.take_results() {
                indexes.extend(keys.into_iter().filter_map(|k| k.into_string()));
            }
        }
        let mut stats = Vec::new();
        for index in indexes {
            let Some(username) = index.strip_prefix(USER_PREFIX) else { continue };
            let members: Vec<String> = self.pool.smembers(&index).await.map_err(unavailable)?;
            if members.is_empty() {
                continue;
            }
            let level_keys: Vec<String> = members.iter().map(|m| level_key(m)).collect();
            let levels: Vec<Option<u8>> = self.pool.mget(level_keys).await.map_err(unavailable)?;
            let mut user = UserSessions { username: username.to_string(), ..Default::default() };
            for level in levels.into_iter().flatten() {
                user.count(match level {
                    2 => super::AuthLevel::TwoFactor,
                    1 => super::AuthLevel::OneFactor,
                    _ => super::AuthLevel::Anonymous,
                });
            }
            if user.one_factor + user.two_factor > 0 {
                stats.push(user);
            }
        }
        stats.sort_by(|a, b| a.username.cmp(&b.username));
        Ok(stats)
    }

    async fn claim_once(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, StoreError> {
        let ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX).max(1);
        let set: Option<String> = self
            .pool
            .set(hex_key(CLAIM_PREFIX, key), 1, Some(Expiration::PX(ms)), Some(SetOptions::NX), false)
            .await
            .map_err(unavailable)?;
        Ok(set.is_some())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashes_of_the_id() {
        let id = SessionId::generate();
        let key = session_key(&id);
        assert!(key.starts_with(SESSION_PREFIX));
        assert_eq!(key.len(), SESSION_PREFIX.len() + 64);
        assert!(!key.contains(id.as_str()));
    }

    #[test]
    fn ciphers_differ_by_secret_and_by_session() {
        let id = SessionId::generate();
        let a = session_cipher(&master_key(&Secret::new("one")), &id).unwrap();
        let b = session_cipher(&master_key(&Secret::new("two")), &id).unwrap();
        let other = session_cipher(&master_key(&Secret::new("one")), &SessionId::generate()).unwrap();
        let nonce = [0u8; NONCE_LEN];
        let sealed = a.encrypt(&nonce.into(), b"x".as_slice()).unwrap();
        assert!(b.decrypt(&nonce.into(), sealed.as_slice()).is_err());
        assert!(other.decrypt(&nonce.into(), sealed.as_slice()).is_err());
        assert_eq!(a.decrypt(&nonce.into(), sealed.as_slice()).unwrap(), b"x");
    }
}
