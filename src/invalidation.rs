//! Keeps in-process caches correct across replicas.
//!
//! Some answers are remembered in process memory to spare work: verified Basic credentials
//! ([`crate::authn::basic_cache`]), users looked up in LDAP, the parsed users file. When a
//! user's password, state or sessions change on one replica, the others must stop trusting
//! what they remembered of that user at once, not when their entries expire. Sessions,
//! regulation, one-time codes and users in the database are not cached: every replica reads
//! them from the shared Redis or database.
//!
//! The change is applied here first, then published on the session Redis (`PUBLISH` on
//! [`CHANNEL`], through a client configured exactly as the session store's: Sentinel, TLS,
//! credentials). Every replica subscribes and drops its own entries for that user (and
//! re-reads a users file that changed under it, when the file is shared). A replica that may
//! have missed notices (its subscription's connection failed, or it fell behind) forgets
//! everything and ignores its caches until it listens again: fail safe, one hash more per
//! client rather than a stale answer. With memory sessions there is one instance by
//! definition, and only the local caches are touched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fred::prelude::{Client, ClientLike, EventInterface, PubsubInterface};
use serde::{Deserialize, Serialize};

use crate::config::Configuration;
use crate::server::App;
use crate::services::Services;

/// The Redis channel notices travel on.
pub const CHANNEL: &str = "portcullis:invalidate";

/// How often the subscription's connection is checked besides its events.
const CHECK_EVERY: Duration = Duration::from_millis(250);

/// One notice: `user` changed on the replica `from`.
#[derive(Debug, Serialize, Deserialize)]
struct Notice {
    from: String,
    user: String,
}

/// The invalidation channel of this process.
pub struct Invalidation {
    redis: Option<Channel>,
    /// Tells this process' notices from others' (it has applied its own already).
    origin: String,
    /// False while notices may be missed: cached answers are then not used.
    listening: Arc<AtomicBool>,
}

struct Channel {
    publisher: Client,
    subscriber: Client,
}

impl Invalidation {
    /// A single instance (memory sessions): only local caches exist.
    pub fn single() -> Self {
        Self { redis: None, origin: String::new(), listening: Arc::new(AtomicBool::new(true)) }
    }

    /// The channel on `session.redis` when it is set, else [`Invalidation::single`].
    /// Starts connecting in the background; caches are not trusted until the subscription
    /// is in place.
    pub async fn open(config: &Configuration) -> Result<Self, String> {
        let Some(redis) = &config.session.redis else { return Ok(Self::single()) };
        let build = || {
            crate::session::redis::builder(redis)
                .and_then(|b| b.build().map_err(|e| crate::session::StoreError::Unavailable(e.to_string())))
                .map_err(|e| format!("cache invalidation channel: {e}"))
        };
        let (publisher, subscriber) = (build()?, build()?);
        let origin = format!("{:016x}", rand::random::<u64>());
        let this = Self { redis: None, origin, listening: Arc::new(AtomicBool::new(false)) };
        Ok(Self { redis: Some(Channel { publisher, subscriber }), ..this })
    }

    /// Whether cached answers may be used now: always with one instance; with replicas,
    /// only while this one is subscribed and has missed nothing.
    pub fn caches_trusted(&self) -> bool {
        self.listening.load(Ordering::Acquire)
    }

    async fn publish(&self, username: &str) {
        let Some(channel) = &self.redis else { return };
        let notice = Notice { from: self.origin.clone(), user: username.to_string() };
        let Ok(payload) = serde_json::to_string(&notice) else { return };
        match channel.publisher.publish::<i64, _, _>(CHANNEL, payload).await {
            Ok(receivers) => tracing::debug!(username, receivers, "cache invalidation published"),
            // The other replicas' subscriptions run over the same Redis: if it is down they
            // noticed too and forgot everything.
            Err(e) => tracing::warn!(username, error = %e, "cannot publish a cache invalidation"),
        }
    }
}

/// `username`'s password, state or sessions changed: forget what this process remembers of
/// the user, then tell the other replicas.
pub async fn user_changed(app: &App, username: &str) {
    forget_user(&app.services, username).await;
    app.services.invalidation.publish(username).await;
}

/// Re-reads a users file that changed, then drops the local caches' entries for
/// `username`: in this order, so that a request between the two cannot cache the old
/// password again from the old copy of the file.
async fn forget_user(services: &Services, username: &str) {
    if let Some(file) = services.users.file() {
        let file = file.clone();
        match tokio::task::spawn_blocking(move || file.reload_if_changed()).await {
            Ok(Ok(true)) => tracing::info!("users file reloaded after a change on another replica"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => tracing::error!("{e}; keeping the previous users"),
            Err(e) => tracing::error!(error = %e, "users file reload task failed"),
        }
    }
    services.basic_cache.forget_user(username);
    services.api_token_cache.forget_user(username);
    if let Some(ldap) = services.users.ldap() {
        ldap.forget(username);
    }
}

/// Forgets everything the caches hold (notices may have been missed).
fn forget_everything(services: &Services) {
    services.basic_cache.clear();
    services.api_token_cache.clear();
    if let Some(ldap) = services.users.ldap() {
        ldap.forget_all();
    }
}

/// Connects the channel and applies the other replicas' notices for as long as the process
/// runs (nothing to do for a single instance).
pub fn listen(app: Arc<App>) {
    let Some(channel) = &app.services.invalidation.redis else { return };
    let (publisher, subscriber) = (channel.publisher.clone(), channel.subscriber.clone());
    // Receivers first: the first connection's event must not be missed.
    let mut messages = subscriber.message_rx();
    let mut reconnects = subscriber.reconnect_rx();
    let mut errors = subscriber.error_rx();
    let mut unresponsive = subscriber.unresponsive_rx();
    publisher.connect();
    subscriber.connect();
    tokio::spawn(async move {
        let services = &app.services;
        let invalidation = &services.invalidation;
        let stop_trusting = |why: &str| {
            if invalidation.listening.swap(false, Ordering::AcqRel) {
                tracing::warn!("cache invalidation channel {why}: caches flushed and unused until it is back");
            }
            forget_everything(services);
        };
        let mut check = tokio::time::interval(CHECK_EVERY);
        check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                message = messages.recv() => match message {
                    Ok(message) => {
                        let notice = message.value.as_str().and_then(|text| serde_json::from_str::<Notice>(&text).ok());
                        match notice {
                            Some(n) if n.from != invalidation.origin => forget_user(services, &n.user).await,
                            Some(_) => {}
                            None => tracing::warn!("unreadable cache invalidation notice ignored"),
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => stop_trusting("fell behind"),
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                reconnected = reconnects.recv() => {
                    if matches!(reconnected, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    stop_trusting("reconnecting");
                    match subscriber.subscribe(CHANNEL).await {
                        Ok(()) => {
                            // Anything cached while notices could not arrive is dropped.
                            forget_everything(services);
                            invalidation.listening.store(true, Ordering::Release);
                            tracing::info!(channel = CHANNEL, "cache invalidation channel listening");
                        }
                        Err(e) => tracing::warn!(error = %e, "cannot subscribe to the cache invalidation channel"),
                    }
                },
                error = errors.recv() => {
                    if matches!(error, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    if !subscriber.is_connected() {
                        stop_trusting("lost its connection");
                    }
                },
                stalled = unresponsive.recv() => {
                    if matches!(stalled, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                        break;
                    }
                    stop_trusting("stopped answering");
                },
                _ = check.tick() => {
                    if !subscriber.is_connected() {
                        stop_trusting("lost its connection");
                    }
                },
            }
        }
        // The client is gone: no notice can arrive any more.
        invalidation.listening.store(false, Ordering::Release);
        forget_everything(services);
    });
}
