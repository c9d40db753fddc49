//! Regulation: bans after repeated failed logins (`regulation.max_retries` failures within
//! `find_time` ban for `ban_time`), per user and/or per client address (`modes`).
//!
//! The decision reads the authentication log, so bans hold across restarts and across
//! several Portcullis instances sharing a database. A banned login is refused before its
//! password is looked at, so a ban also stops password guessing from costing CPU.

use crate::config::schema::Regulation;
use crate::storage::{AttemptOutcome, AttemptsBy, AuthAttempt, Storage, StorageError};

/// Decides and records bans.
#[derive(Clone)]
pub struct Regulator {
    storage: Storage,
    max_retries: u32,
    find_time: i64,
    ban_time: i64,
    by_user: bool,
    by_ip: bool,
}

impl Regulator {
    /// A regulator for `config` over `storage`.
    pub fn new(config: &Regulation, storage: Storage) -> Self {
        let secs = |d: crate::config::types::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            storage,
            max_retries: config.max_retries,
            find_time: secs(config.find_time),
            ban_time: secs(config.ban_time),
            by_user: config.modes.iter().any(|m| m == "user"),
            by_ip: config.modes.iter().any(|m| m == "ip"),
        }
    }

    /// When regulation is off.
    pub fn disabled(&self) -> bool {
        self.max_retries == 0 || (!self.by_user && !self.by_ip)
    }

    /// The Unix time until which `username` (or `ip`) is banned, if it is banned now.
    pub async fn banned_until(&self, username: &str, ip: &str, now: i64) -> Result<Option<i64>, StorageError> {
        if self.disabled() {
            return Ok(None);
        }
        let since = now.saturating_sub(self.find_time.saturating_add(self.ban_time));
        let limit = i64::from(self.max_retries);
        let mut until = None;
        if self.by_user {
            let attempts = self.storage.recent_attempts(AttemptsBy::User(username), since, limit).await?;
            until = until.max(ban_until(&attempts, self.max_retries, self.find_time, self.ban_time, now));
        }
        if self.by_ip && !ip.is_empty() {
            let attempts = self.storage.recent_attempts(AttemptsBy::Ip(ip), since, limit).await?;
            until = until.max(ban_until(&attempts, self.max_retries, self.find_time, self.ban_time, now));
        }
        Ok(until)
    }

    /// Records an attempt in the authentication log.
    pub async fn record(&self, attempt: AuthAttempt) -> Result<(), StorageError> {
        self.storage.log_attempt(attempt).await
    }
}

/// The ban end implied by `attempts` (newest first), if it lies after `now`: the newest
/// `max_retries` attempts all failed, within `find_time` of each other.
pub fn ban_until(
    attempts: &[AttemptOutcome],
    max_retries: u32,
    find_time: i64,
    ban_time: i64,
    now: i64,
) -> Option<i64> {
    let needed = usize::try_from(max_retries).ok().filter(|n| *n > 0)?;
    let window = attempts.get(..needed)?;
    if window.iter().any(|a| a.successful) {
        return None;
    }
    let newest = window.first()?.time;
    let oldest = window.last()?.time;
    if newest - oldest > find_time {
        return None;
    }
    let until = newest.saturating_add(ban_time);
    (until > now).then_some(until)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(time: i64, successful: bool) -> AttemptOutcome {
        AttemptOutcome { time, successful }
    }

    #[test]
    fn ban_decisions() {
        // (attempts newest first, now, expected ban end) with max 3, find 120 s, ban 300 s.
        let cases: &[(&[AttemptOutcome], i64, Option<i64>)] = &[
            (&[], 1000, None),
            (&[a(990, false), a(980, false)], 1000, None),
            (&[a(990, false), a(980, false), a(970, false)], 1000, Some(1290)),
            (&[a(990, false), a(980, true), a(970, false)], 1000, None),
            (&[a(990, false), a(980, false), a(850, false)], 1000, None),
            (&[a(990, false), a(980, false), a(870, false)], 1000, Some(1290)),
            (&[a(990, false), a(980, false), a(970, false)], 1290, None),
            (&[a(990, false), a(980, false), a(970, false)], 1289, Some(1290)),
        ];
        for (i, (attempts, now, expected)) in cases.iter().enumerate() {
            assert_eq!(ban_until(attempts, 3, 120, 300, *now), *expected, "case {i}");
        }
        assert_eq!(ban_until(&[a(1, false)], 0, 120, 300, 2), None, "max_retries 0 disables");
    }
}
