//! A fixed-window request counter per client address, for endpoints that send mail to
//! addresses named by anonymous callers (password reset), so they cannot be used to flood
//! mailboxes or probe at speed; also for counting failures only (wrong device user
//! codes), with [`ClientLimiter::blocked`] asked before each try.

use crate::session::{SessionStore, Sessions, StoreError};

/// Requests one client address may make per window.
pub const PER_CLIENT: u32 = 10;
/// Window length.
pub const CLIENT_WINDOW_SECS: i64 = 600;

/// Why a request was not let through.
#[derive(Debug)]
pub enum Limited {
    /// The window is used up; seconds until it ends.
    Over {
        /// Seconds until another request may be made.
        retry_after: i64,
    },
    /// The shared counts cannot be read: refused (fail closed), as everything else that
    /// depends on the session store.
    Unavailable(StoreError),
}

/// Fixed-window counts of requests per client address, kept in the session store so that
/// every replica sharing it counts together (Redis), or in this process (memory store).
pub struct ClientLimiter {
    name: &'static str,
    limit: u32,
}

impl ClientLimiter {
    /// A limiter named `name` (its counts' namespace) allowing `limit` requests per
    /// address and window.
    pub const fn new(name: &'static str, limit: u32) -> Self {
        Self { name, limit }
    }

    fn key(&self, client: &str) -> String {
        format!("{}:{client}", self.name)
    }

    /// Counts a request from `client`; [`Limited::Over`] past the limit.
    pub async fn hit<S: SessionStore>(&self, sessions: &Sessions<S>, client: &str, now: i64) -> Result<(), Limited> {
        let (count, left) =
            sessions.window_hit(&self.key(client), CLIENT_WINDOW_SECS, now).await.map_err(Limited::Unavailable)?;
        if count > u64::from(self.limit) { Err(Limited::Over { retry_after: left.max(1) }) } else { Ok(()) }
    }

    /// Whether `client` used up its window, without counting this as a request.
    pub async fn blocked<S: SessionStore>(
        &self,
        sessions: &Sessions<S>,
        client: &str,
        now: i64,
    ) -> Result<(), Limited> {
        match sessions.window_peek(&self.key(client), now).await.map_err(Limited::Unavailable)? {
            Some((count, left)) if count >= u64::from(self.limit) => Err(Limited::Over { retry_after: left.max(1) }),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::memory::MemoryStore;

    fn sessions() -> Sessions<MemoryStore> {
        Sessions::new(MemoryStore::new(), Vec::new())
    }

    #[tokio::test]
    async fn limits_per_client_and_window() {
        let s = sessions();
        let limiter = ClientLimiter::new("test", PER_CLIENT);
        for _ in 0..PER_CLIENT {
            assert!(limiter.hit(&s, "192.0.2.1", 1000).await.is_ok());
        }
        assert!(
            matches!(limiter.hit(&s, "192.0.2.1", 1010).await, Err(Limited::Over { retry_after }) if retry_after == CLIENT_WINDOW_SECS - 10)
        );
        assert!(limiter.hit(&s, "192.0.2.2", 1010).await.is_ok(), "other clients are not affected");
        assert!(ClientLimiter::new("other", 1).hit(&s, "192.0.2.1", 1010).await.is_ok(), "other limiters count apart");
        assert!(limiter.hit(&s, "192.0.2.1", 1000 + CLIENT_WINDOW_SECS).await.is_ok(), "a new window starts");
    }

    #[tokio::test]
    async fn blocked_reports_a_used_up_window_without_counting() {
        let s = sessions();
        let failures = ClientLimiter::new("failures", 2);
        assert!(failures.blocked(&s, "a", 0).await.is_ok());
        assert!(failures.hit(&s, "a", 0).await.is_ok());
        assert!(failures.blocked(&s, "a", 1).await.is_ok(), "one failure: not yet");
        assert!(failures.hit(&s, "a", 1).await.is_ok());
        assert!(matches!(failures.blocked(&s, "a", 2).await, Err(Limited::Over { .. })));
        assert!(failures.blocked(&s, "a", 2).await.is_err(), "asking does not count");
        assert!(failures.blocked(&s, "a", CLIENT_WINDOW_SECS).await.is_ok(), "the window ends");
    }
}
