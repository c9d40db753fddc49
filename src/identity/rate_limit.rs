//! A fixed-window request counter per client address, for endpoints that send mail to
//! addresses named by anonymous callers (password reset), so they cannot be used to flood
//! mailboxes or probe at speed; also for counting failures only (wrong device user
//! codes), with [`ClientLimiter::blocked`] asked before each try.

use std::collections::HashMap;
use std::sync::Mutex;

/// Requests one client address may make per window.
pub const PER_CLIENT: u32 = 10;
/// Window length.
pub const CLIENT_WINDOW_SECS: i64 = 600;
/// Addresses tracked at most (older windows are dropped first).
const MAX_TRACKED: usize = 10_000;

/// Fixed-window counts of requests per client address.
pub struct ClientLimiter {
    windows: Mutex<HashMap<String, (i64, u32)>>,
    limit: u32,
}

impl Default for ClientLimiter {
    fn default() -> Self {
        Self::with_limit(PER_CLIENT)
    }
}

impl ClientLimiter {
    /// A limiter allowing `limit` requests per address and window.
    pub fn with_limit(limit: u32) -> Self {
        Self { windows: Mutex::new(HashMap::new()), limit }
    }

    /// Counts a request from `client`; `Err(retry_after)` past the limit.
    pub fn hit(&self, client: &str, now: i64) -> Result<(), i64> {
        let mut windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if windows.len() >= MAX_TRACKED {
            windows.retain(|_, (start, _)| now - *start < CLIENT_WINDOW_SECS);
        }
        let entry = windows.entry(client.to_string()).or_insert((now, 0));
        if now - entry.0 >= CLIENT_WINDOW_SECS {
            *entry = (now, 0);
        }
        entry.1 += 1;
        if entry.1 > self.limit { Err(entry.0 + CLIENT_WINDOW_SECS - now) } else { Ok(()) }
    }

    /// Whether `client` used up its window without counting this as a request:
    /// `Err(retry_after)` once `limit` hits were counted in the current window.
    pub fn blocked(&self, client: &str, now: i64) -> Result<(), i64> {
        let windows = self.windows.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match windows.get(client) {
            Some((start, count)) if now - start < CLIENT_WINDOW_SECS && *count >= self.limit => {
                Err(start + CLIENT_WINDOW_SECS - now)
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_client_and_window() {
        let limiter = ClientLimiter::default();
        for _ in 0..PER_CLIENT {
            assert!(limiter.hit("192.0.2.1", 1000).is_ok());
        }
        assert_eq!(limiter.hit("192.0.2.1", 1010), Err(CLIENT_WINDOW_SECS - 10));
        assert!(limiter.hit("192.0.2.2", 1010).is_ok(), "other clients are not affected");
        assert!(limiter.hit("192.0.2.1", 1000 + CLIENT_WINDOW_SECS).is_ok(), "a new window starts");
        let wider = ClientLimiter::with_limit(2);
        assert!(wider.hit("a", 0).is_ok() && wider.hit("a", 0).is_ok() && wider.hit("a", 0).is_err());
    }

    #[test]
    fn blocked_reports_a_used_up_window_without_counting() {
        let failures = ClientLimiter::with_limit(2);
        assert_eq!(failures.blocked("a", 0), Ok(()));
        assert!(failures.hit("a", 0).is_ok());
        assert_eq!(failures.blocked("a", 5), Ok(()), "asking counts nothing");
        assert!(failures.hit("a", 10).is_ok());
        assert_eq!(failures.blocked("a", 20), Err(CLIENT_WINDOW_SECS - 20), "two failures: blocked");
        assert_eq!(failures.blocked("b", 20), Ok(()));
        assert_eq!(failures.blocked("a", CLIENT_WINDOW_SECS), Ok(()), "until the window ends");
    }
}
