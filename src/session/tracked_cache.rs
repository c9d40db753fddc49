//! A local copy of the sessions this process reads from Redis, kept exact by Redis'
//! server-assisted client-side caching (decision 0031).
//!
//! A dedicated RESP3 connection asks Redis to track every key under the session prefix
//! (`CLIENT TRACKING ON BCAST PREFIX …`): whenever any client changes, deletes or expires
//! such a key, Redis pushes an invalidation on that connection and the entry is dropped
//! here. A hot session then costs no round trip, while a logout, a revocation or a new
//! password on any replica is seen here as soon as the push arrives.
//!
//! The copy is only trusted while the push stream provably misses nothing:
//! - every disconnect, error, unanswered heartbeat or lagging receiver flushes everything
//!   and stops the cache until tracking is on again (an outage denies at once, as without
//!   the cache);
//! - a value read while an invalidation for its key (or a flush) happened is not kept:
//!   each read takes a [`Ticket`] before asking Redis, and the value is stored only if the
//!   ticket is still current, checked under the same lock that invalidations take;
//! - `FLUSHALL`/`FLUSHDB` are announced with a keyless push the client library drops, so a
//!   canary key of this process is checked at every heartbeat: gone means flushed;
//! - no entry is used after [`MAX_AGE`], whatever else happened.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fred::prelude::{Client, ClientLike, EventInterface, Expiration, KeysInterface, SetOptions, TrackingInterface};
use fred::types::RespVersion;
use tokio::sync::broadcast::error::RecvError;

use super::data::SessionData;
use super::store::StoreError;
use crate::config::schema::Redis;
use crate::telemetry::metrics::SessionCacheEvent;

/// Counts an event of the cache when metrics are on (hits and misses are counted by the
/// store that reads through it).
pub fn count(event: SessionCacheEvent) {
    if let Some(metrics) = crate::telemetry::metrics::get() {
        metrics.session_cache(event);
    }
}

/// Shards of the map, so that concurrent requests rarely wait for each other.
const SHARDS: usize = 16;
/// Entries per shard; a full shard drops an arbitrary entry (it is read again on need).
const SHARD_CAPACITY: usize = 4096;
/// The oldest entry ever used, even if every other safeguard failed.
pub const MAX_AGE: Duration = Duration::from_secs(30);
/// How often the tracking connection proves it is alive and nothing was flushed.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// A heartbeat not answered within this stops the cache.
const HEARTBEAT_TIMEOUT: Duration = Duration::from_millis(500);
/// How long to wait before asking again a Redis that refused tracking.
const RETRY_REFUSED: Duration = Duration::from_secs(30);
/// How long the canary lives without heartbeats (a stopped process leaves nothing behind).
const CANARY_TTL_MS: i64 = 60_000;

struct Entry {
    data: Arc<SessionData>,
    stored: Instant,
}

#[derive(Default)]
struct Shard {
    entries: HashMap<[u8; 32], Entry>,
    /// Bumped by every invalidation or flush touching this shard.
    generation: u64,
}

/// Permission to store what a read is about to fetch: valid while no invalidation of the
/// shard happened since it was taken.
#[derive(Clone, Copy, Debug)]
pub struct Ticket {
    generation: u64,
}

/// The sessions read from Redis, by storage key.
pub struct TrackedCache {
    shards: [Mutex<Shard>; SHARDS],
    /// True only while tracking is on and no push can have been missed.
    trusted: AtomicBool,
}

impl Default for TrackedCache {
    fn default() -> Self {
        Self { shards: std::array::from_fn(|_| Mutex::new(Shard::default())), trusted: AtomicBool::new(false) }
    }
}

impl TrackedCache {
    fn shard(&self, key: &[u8; 32]) -> std::sync::MutexGuard<'_, Shard> {
        // Keys are SHA-256 digests: their first byte spreads evenly.
        let shard = &self.shards[usize::from(key[0]) % SHARDS];
        shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether entries may be used and stored now.
    pub fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// The session stored under `key`, if the cache is trusted and holds a fresh copy.
    pub fn get(&self, key: &[u8; 32]) -> Option<Arc<SessionData>> {
        if !self.trusted() {
            return None;
        }
        let shard = self.shard(key);
        let entry = shard.entries.get(key)?;
        (entry.stored.elapsed() < MAX_AGE).then(|| entry.data.clone())
    }

    /// Taken before reading `key` from Redis; `None` while the cache is not trusted.
    pub fn ticket(&self, key: &[u8; 32]) -> Option<Ticket> {
        if !self.trusted() {
            return None;
        }
        Some(Ticket { generation: self.shard(key).generation })
    }

    /// Keeps `data`, read from Redis under `ticket`, unless `key` (or its shard) was
    /// invalidated since, or the cache stopped being trusted.
    pub fn fill(&self, key: [u8; 32], ticket: Ticket, data: Arc<SessionData>) {
        let mut shard = self.shard(&key);
        // Checked under the shard's lock, which invalidations take too: either the
        // invalidation came first (the generation moved) or it removes this entry after.
        if shard.generation != ticket.generation || !self.trusted() {
            return;
        }
        if shard.entries.len() >= SHARD_CAPACITY
            && !shard.entries.contains_key(&key)
            && let Some(victim) = shard.entries.keys().next().copied()
        {
            shard.entries.remove(&victim);
        }
        shard.entries.insert(key, Entry { data, stored: Instant::now() });
    }

    /// `key` changed in Redis: drop it, and spoil the tickets of reads in flight.
    pub fn invalidate(&self, key: &[u8; 32]) {
        let mut shard = self.shard(key);
        shard.generation = shard.generation.wrapping_add(1);
        shard.entries.remove(key);
    }

    /// Drops everything and stops using the cache until [`TrackedCache::trust`].
    pub fn distrust(&self) {
        if self.trusted.swap(false, Ordering::AcqRel) {
            count(SessionCacheEvent::Flush);
        }
        self.flush();
    }

    /// Tracking is on (again): entries may be stored and used from now on.
    fn trust(&self) {
        self.flush();
        self.trusted.store(true, Ordering::Release);
    }

    fn flush(&self) {
        for shard in &self.shards {
            let mut shard = shard.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            shard.generation = shard.generation.wrapping_add(1);
            shard.entries.clear();
        }
    }

    /// How many sessions are held (for tests).
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map(|s| s.entries.len()).unwrap_or(0)).sum()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Opens the tracking connection (configured as the session store's: Sentinel, TLS,
/// credentials, in RESP3) and keeps `cache` in step with Redis for as long as the process
/// runs. `prefix` is the session keys' prefix; `decode` turns a pushed key into a storage key.
pub fn track(
    config: &Redis,
    cache: Arc<TrackedCache>,
    prefix: &'static str,
    decode: fn(&str) -> Option<[u8; 32]>,
) -> Result<(), StoreError> {
    let mut builder = super::redis::builder(config)?;
    builder.with_config(|c| c.version = RespVersion::RESP3);
    let client = builder.build().map_err(|e| StoreError::Unavailable(format!("session cache tracking: {e}")))?;
    let canary = format!("portcullis:session-cache-canary:{:016x}", rand::random::<u64>());
    // Receivers first: the first connection's event must not be missed.
    let mut invalidations = client.invalidation_rx();
    let mut reconnects = client.reconnect_rx();
    let mut errors = client.error_rx();
    let mut unresponsive = client.unresponsive_rx();
    client.connect();
    tokio::spawn(async move {
        // After a refusal, tracking is asked for again at a reconnect or after RETRY_REFUSED.
        let mut refused_until: Option<tokio::time::Instant> = None;
        let mut heartbeat = tokio::time::interval(HEARTBEAT);
        heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let stop = |why: &str| {
            if cache.trusted() {
                tracing::warn!("session cache {why}: flushed and unused until tracking is back");
            }
            cache.distrust();
        };
        loop {
            tokio::select! {
                pushed = invalidations.recv() => match pushed {
                    Ok(pushed) => {
                        for key in &pushed.keys {
                            match key.as_str().and_then(|k| decode(k.strip_prefix(prefix)?)) {
                                Some(key) => cache.invalidate(&key),
                                // Not a session key of ours (another version's?): be safe.
                                None => cache.flush(),
                            }
                        }
                        if pushed.keys.is_empty() {
                            cache.flush();
                        }
                    }
                    Err(RecvError::Lagged(_)) => stop("fell behind its invalidations"),
                    Err(RecvError::Closed) => break,
                },
                event = reconnects.recv() => {
                    if matches!(event, Err(RecvError::Closed)) {
                        break;
                    }
                    stop("reconnecting");
                    refused_until = refusal(start(&client, &cache, &canary, prefix).await);
                },
                event = errors.recv() => {
                    if matches!(event, Err(RecvError::Closed)) {
                        break;
                    }
                    // Broadcast before the client's state changes: whatever the error,
                    // pushes may have been lost with it.
                    stop("saw its connection fail");
                },
                event = unresponsive.recv() => {
                    if matches!(event, Err(RecvError::Closed)) {
                        break;
                    }
                    stop("stopped answering");
                },
                _ = heartbeat.tick() => {
                    if !client.is_connected() {
                        stop("lost its connection");
                    } else if !cache.trusted() {
                        if refused_until.is_none_or(|until| tokio::time::Instant::now() >= until) {
                            refused_until = refusal(start(&client, &cache, &canary, prefix).await);
                        }
                    } else if !canary_alive(&client, &canary).await {
                        // Flushed (FLUSHALL/FLUSHDB), or no answer in time.
                        stop("saw its canary disappear or go unanswered");
                        refused_until = refusal(start(&client, &cache, &canary, prefix).await);
                    }
                },
            }
        }
        cache.distrust();
    });
    Ok(())
}

/// When to ask for tracking again after [`start`] answered `started`.
fn refusal(started: bool) -> Option<tokio::time::Instant> {
    (!started).then(|| tokio::time::Instant::now() + RETRY_REFUSED)
}

/// Turns tracking on for the session prefix and plants the canary; trusts the cache only
/// when both succeeded. Returns `false` when Redis refused tracking (the caller waits
/// [`RETRY_REFUSED`] before asking again, rather than every heartbeat).
async fn start(client: &Client, cache: &TrackedCache, canary: &str, prefix: &str) -> bool {
    // Tracking may still be on for this connection (after an error that did not close it):
    // Redis refuses the same prefix twice.
    let _ = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.stop_tracking()).await;
    let tracking = tokio::time::timeout(HEARTBEAT_TIMEOUT, client.start_tracking(prefix, true, false, false, false));
    match tracking.await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot turn on Redis client tracking (Redis 6 or later needed); sessions are read from Redis every time");
            return false;
        }
        Err(_) => return true,
    }
    let planted: Result<Result<(), _>, _> = tokio::time::timeout(
        HEARTBEAT_TIMEOUT,
        client.set(canary, 1, Some(Expiration::PX(CANARY_TTL_MS)), None, false),
    )
    .await;
    if matches!(planted, Ok(Ok(()))) {
        cache.trust();
        tracing::debug!("session cache tracking Redis");
    }
    true
}

/// Refreshes the canary if it is still there: `false` if it is gone (the database was
/// flushed) or Redis did not answer in time.
async fn canary_alive(client: &Client, canary: &str) -> bool {
    let refreshed: Result<Result<Option<String>, _>, _> = tokio::time::timeout(
        HEARTBEAT_TIMEOUT,
        client.set(canary, 1, Some(Expiration::PX(CANARY_TTL_MS)), Some(SetOptions::XX), false),
    )
    .await;
    matches!(refreshed, Ok(Ok(Some(_))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> Arc<SessionData> {
        Arc::new(SessionData { username: "john".into(), ..SessionData::default() })
    }

    fn trusted() -> TrackedCache {
        let cache = TrackedCache::default();
        cache.trust();
        cache
    }

    #[test]
    fn nothing_is_kept_or_used_while_untrusted() {
        let cache = TrackedCache::default();
        assert!(cache.ticket(&[1; 32]).is_none());
        let cache = trusted();
        let ticket = cache.ticket(&[1; 32]).unwrap();
        cache.fill([1; 32], ticket, data());
        assert!(cache.get(&[1; 32]).is_some());
        cache.distrust();
        assert!(cache.get(&[1; 32]).is_none());
        assert!(cache.is_empty());
    }

    #[test]
    fn a_read_overtaken_by_an_invalidation_is_not_kept() {
        let cache = trusted();
        let ticket = cache.ticket(&[7; 32]).unwrap();
        cache.invalidate(&[7; 32]);
        cache.fill([7; 32], ticket, data());
        assert!(cache.get(&[7; 32]).is_none());
        // A read after the invalidation is kept; a later invalidation removes it.
        let ticket = cache.ticket(&[7; 32]).unwrap();
        cache.fill([7; 32], ticket, data());
        assert!(cache.get(&[7; 32]).is_some());
        cache.invalidate(&[7; 32]);
        assert!(cache.get(&[7; 32]).is_none());
    }

    #[test]
    fn a_read_overtaken_by_a_flush_is_not_kept() {
        let cache = trusted();
        let ticket = cache.ticket(&[9; 32]).unwrap();
        cache.distrust();
        cache.trust();
        cache.fill([9; 32], ticket, data());
        assert!(cache.get(&[9; 32]).is_none());
    }

    #[test]
    fn shards_stay_bounded() {
        let cache = trusted();
        for i in 0..(SHARD_CAPACITY + 10) {
            let mut key = [0u8; 32];
            key[1..9].copy_from_slice(&(i as u64).to_le_bytes());
            let ticket = cache.ticket(&key).unwrap();
            cache.fill(key, ticket, data());
        }
        assert_eq!(cache.len(), SHARD_CAPACITY);
    }
}
