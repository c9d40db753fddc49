//! Session rules on top of a store: which cookie domain a request belongs to, expiry,
//! inactivity, remember-me, and a fresh ID whenever the authentication level changes.

use std::sync::Arc;
use std::time::Duration;

use super::cookies::CookieSettings;
use super::data::SessionData;
use super::id::SessionId;
use super::memory::MemoryStore;
use super::redis::RedisStore;
use super::store::{SessionStore, Store, StoreError};
use crate::config::Configuration;

/// A valid session found for a request.
#[derive(Clone, Debug)]
pub struct LoadedSession {
    /// Its ID (from the cookie).
    pub id: SessionId,
    /// Its contents.
    pub data: Arc<SessionData>,
}

/// Sessions for every configured cookie domain.
pub struct Sessions<S: SessionStore = Store> {
    store: S,
    cookies: Vec<CookieSettings>,
}

impl Sessions<Store> {
    /// The store `config` selects (Redis when `session.redis` is set, memory otherwise).
    pub async fn from_config(config: &Configuration) -> Result<Self, StoreError> {
        let store = match &config.session.redis {
            Some(redis) => Store::Redis(RedisStore::connect(redis, &config.session.secret).await?),
            None => Store::Memory(MemoryStore::new()),
        };
        Ok(Self::new(store, CookieSettings::from_config(&config.session)))
    }
}

impl<S: SessionStore> Sessions<S> {
    /// Sessions kept in `store` for the given cookie domains.
    pub fn new(store: S, cookies: Vec<CookieSettings>) -> Self {
        Self { store, cookies }
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The cookie domain `host` belongs to. The most specific domain wins when several
    /// configured domains cover the host.
    pub fn cookie_for_host(&self, host: &str) -> Option<&CookieSettings> {
        self.cookies.iter().filter(|c| c.covers(host)).max_by_key(|c| c.domain.len())
    }

    /// True when `target` is an absolute URL the portal may redirect to: under one of the
    /// configured cookie domains, over https (or http for a local development domain).
    /// Anything else (other hosts, userinfo tricks, other schemes) is refused, which is
    /// what prevents open redirects through `rd`/`targetURL`.
    pub fn is_safe_redirect(&self, target: &str) -> bool {
        let Ok(url) = url::Url::parse(target) else { return false };
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let Some(host) = url.host_str() else { return false };
        self.cookie_for_host(host).is_some_and(|settings| {
            url.scheme() == "https"
                || (url.scheme() == "http" && crate::config::validate::is_local_domain(&settings.domain))
        })
    }

    /// The valid session named by `cookie_header` on `settings`' domain, if any. Expired
    /// or idle sessions are deleted and reported as absent.
    pub async fn load(
        &self,
        settings: &CookieSettings,
        cookie_header: Option<&str>,
        now: i64,
    ) -> Result<Option<LoadedSession>, StoreError> {
        let Some(id) = cookie_header.and_then(|h| settings.session_id(h)) else { return Ok(None) };
        self.load_id(settings, id, now).await
    }

    /// The valid session `id` on `settings`' domain, if any (as [`Sessions::load`]).
    pub async fn load_id(
        &self,
        settings: &CookieSettings,
        id: SessionId,
        now: i64,
    ) -> Result<Option<LoadedSession>, StoreError> {
        let Some(data) = self.store.load(&id).await? else { return Ok(None) };
        if data.domain != settings.domain || remaining(settings, &data, now).is_none() {
            if data.domain == settings.domain {
                self.store.delete(&id).await?;
            }
            return Ok(None);
        }
        Ok(Some(LoadedSession { id, data }))
    }

    /// Stores `data` under a new ID (any `previous` session is deleted) and returns the ID
    /// and the `Set-Cookie` value. Call it at every change of authentication level, so
    /// that an ID seen before a login is worthless after it (no session fixation).
    pub async fn issue(
        &self,
        settings: &CookieSettings,
        previous: Option<&SessionId>,
        data: SessionData,
        now: i64,
    ) -> Result<(SessionId, String), StoreError> {
        let (session, cookie) = self.regenerate(settings, previous, data, now).await?;
        Ok((session.id, cookie))
    }

    /// [`Sessions::issue`], returning the new session as a request would load it.
    pub async fn regenerate(
        &self,
        settings: &CookieSettings,
        previous: Option<&SessionId>,
        mut data: SessionData,
        now: i64,
    ) -> Result<(LoadedSession, String), StoreError> {
        if let Some(old) = previous {
            self.store.delete(old).await?;
        }
        data.domain = settings.domain.clone();
        if data.created_at == 0 {
            data.created_at = now;
        }
        data.last_activity_at = now;
        let ttl = remaining(settings, &data, now).unwrap_or(Duration::from_secs(1));
        let id = SessionId::generate();
        self.store.save(&id, &data, ttl).await?;
        let cookie = settings.set_cookie(&id, data.remember_me);
        Ok((LoadedSession { id, data: Arc::new(data) }, cookie))
    }

    /// Saves changed `data` under the session's existing ID. Only for changes that do not
    /// raise the authentication level (pending ceremonies, elevation); use
    /// [`Sessions::issue`] for those.
    pub async fn update(
        &self,
        settings: &CookieSettings,
        session: &LoadedSession,
        mut data: SessionData,
        now: i64,
    ) -> Result<(), StoreError> {
        data.last_activity_at = now;
        match remaining(settings, &data, now) {
            Some(ttl) => self.store.save(&session.id, &data, ttl).await,
            None => self.store.delete(&session.id).await,
        }
    }

    /// Records activity on a session, writing only when the last write is older than
    /// `throttle`, so that busy sessions do not cost a store write per request.
    pub async fn touch(
        &self,
        settings: &CookieSettings,
        session: &LoadedSession,
        now: i64,
        throttle: Duration,
    ) -> Result<(), StoreError> {
        let since = now.saturating_sub(session.data.last_activity_at);
        if since < i64::try_from(throttle.as_secs()).unwrap_or(i64::MAX) {
            return Ok(());
        }
        let mut data = (*session.data).clone();
        data.last_activity_at = now;
        match remaining(settings, &data, now) {
            Some(ttl) => self.store.save(&session.id, &data, ttl).await,
            None => self.store.delete(&session.id).await,
        }
    }

    /// Ends a session; returns the `Set-Cookie` value that clears the cookie.
    pub async fn end(&self, settings: &CookieSettings, id: &SessionId) -> Result<String, StoreError> {
        self.store.delete(id).await?;
        Ok(settings.clear_cookie())
    }

    /// Records `key` as used for `ttl`; `false` when it was used already (see
    /// [`SessionStore::claim_once`]).
    pub async fn claim_once(&self, key: &[u8; 32], ttl: Duration) -> Result<bool, StoreError> {
        self.store.claim_once(key, ttl).await
    }

    /// Live logged-in sessions per user and level.
    pub async fn stats(&self) -> Result<Vec<super::store::UserSessions>, StoreError> {
        self.store.stats().await
    }

    /// Counts one event in `key`'s fixed window (see [`SessionStore::window_hit`]).
    pub async fn window_hit(&self, key: &str, window_secs: i64, now: i64) -> Result<(u64, i64), StoreError> {
        self.store.window_hit(key, window_secs, now).await
    }

    /// `key`'s current window, without counting.
    pub async fn window_peek(&self, key: &str, now: i64) -> Result<Option<(u64, i64)>, StoreError> {
        self.store.window_peek(key, now).await
    }

    /// The live sessions of `username`, newest activity first.
    pub async fn sessions_of(&self, username: &str) -> Result<Vec<super::store::SessionSummary>, StoreError> {
        let mut found = self.store.sessions_of(username).await?;
        found.sort_by_key(|s| std::cmp::Reverse(s.last_activity_at));
        Ok(found)
    }

    /// Ends `username`'s session whose storage key is `key`; false when it is not theirs
    /// or gone.
    pub async fn end_key(&self, username: &str, key: &[u8; 32]) -> Result<bool, StoreError> {
        self.store.delete_key(username, key).await
    }

    /// Ends every session of `username` except `keep` (after a password change or reset).
    pub async fn end_all_for(&self, username: &str, keep: Option<&SessionId>) -> Result<usize, StoreError> {
        self.store.delete_user(username, keep).await
    }
}

/// When `data` expires unless used again (Unix seconds), or `None` when it has.
pub fn expires_at(settings: &CookieSettings, data: &SessionData, now: i64) -> Option<i64> {
    remaining(settings, data, now).map(|left| now.saturating_add(i64::try_from(left.as_secs()).unwrap_or(i64::MAX)))
}

/// Time left before `data` expires (absolute lifetime, then inactivity unless remembered),
/// or `None` when it already has.
fn remaining(settings: &CookieSettings, data: &SessionData, now: i64) -> Option<Duration> {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
    let mut until = data.created_at.saturating_add(secs(settings.lifetime(data.remember_me)));
    let remembered = data.remember_me && !settings.remember_me.is_zero();
    if !remembered {
        until = until.min(data.last_activity_at.saturating_add(secs(settings.inactivity)));
    }
    let left = until - now;
    (left > 0).then(|| Duration::from_secs(u64::try_from(left).unwrap_or(0)))
}
