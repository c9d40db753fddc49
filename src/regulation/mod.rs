//! Regulation: bans after repeated failures (`regulation.max_retries` failures within
//! `find_time` ban for `ban_time`), per user and/or per client address (`modes`).
//!
//! Passwords and second factors are counted apart: the newest `max_retries` attempts of
//! either kind all failing is a ban. So a success of one kind does not clear failures of
//! the other — knowing the password buys no extra guesses at the code; only a correct
//! code (or the ban expiring) clears code failures.
//!
//! An attempt is reserved before its secret is checked ([`Regulator::begin`]): the ban is
//! decided and the attempt written in one locked step, so concurrent guesses are each
//! counted before the next is judged, on every instance sharing the database. Within one
//! instance, attempts for one user (and one address) also take turns from reservation to
//! settlement ([`Regulator::turn`]), so a user's own concurrent logins each see the ones
//! before them succeed rather than count them as failures in flight. The log is the
//! database's, so bans hold across restarts too. A banned attempt is refused before its
//! secret is looked at, so a ban also stops guessing from costing CPU.
//!
//! Bans set by hand or imported from Authelia (`storage bans ... add`) are rows read in
//! the same reservation step; they hold even with regulation off.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use tokio::sync::OwnedMutexGuard;

use crate::config::schema::Regulation;
use crate::storage::{
    AttemptOutcome, AttemptsBy, AuthAttempt, AuthType, BanTarget, RegulationWindow, Settlement, Storage, StorageError,
};

/// Decides and records bans.
#[derive(Clone)]
pub struct Regulator {
    storage: Storage,
    rules: Rules,
    turns: Arc<Turns>,
}

/// One lock per user or address with attempts in progress (entries go when unused).
#[derive(Default)]
struct Turns {
    locks: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
}

impl Turns {
    fn lock_for(&self, key: String) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.locks.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(lock) = locks.get(&key).and_then(Weak::upgrade) {
            return lock;
        }
        if locks.len() >= 1024 {
            locks.retain(|_, lock| lock.strong_count() > 0);
        }
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(key, Arc::downgrade(&lock));
        lock
    }
}

/// The turn of an attempt: held from reservation to settlement.
#[must_use = "the turn lasts as long as it is held"]
pub struct Turn {
    _guards: Vec<OwnedMutexGuard<()>>,
}

#[derive(Clone, Copy, Debug)]
struct Rules {
    max_retries: u32,
    find_time: i64,
    ban_time: i64,
    by_user: bool,
    by_ip: bool,
}

impl Rules {
    fn disabled(&self) -> bool {
        self.max_retries == 0 || (!self.by_user && !self.by_ip)
    }

    /// The ban end implied by the attempts of a user and of an address (newest first).
    fn ban_until(&self, by_user: &[AttemptOutcome], by_ip: &[AttemptOutcome], now: i64) -> Option<i64> {
        if self.disabled() {
            return None;
        }
        let mut until = None;
        for attempts in [by_user, by_ip] {
            for second_factor in [false, true] {
                let kind: Vec<AttemptOutcome> =
                    attempts.iter().copied().filter(|a| a.unban || a.second_factor == second_factor).collect();
                until = until.max(ban_until(&kind, self.max_retries, self.find_time, self.ban_time, now));
            }
        }
        until
    }
}

/// A ban in force, as listings show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BanInForce {
    /// A user or an address.
    pub target: BanTarget,
    /// The username or the address.
    pub subject: String,
    /// Until when (Unix seconds; [`crate::storage::PERMANENT_BAN_UNTIL`] until lifted).
    pub until: i64,
    /// `regulation` (derived from failures), `cli`, `admin` or `authelia` (imported).
    pub source: String,
    /// Why, when its author said.
    pub reason: Option<String>,
}

/// A reserved attempt, to settle once its secret is checked.
#[derive(Debug)]
#[must_use = "settle the attempt once its secret is checked"]
pub struct Ticket {
    id: i32,
}

/// What regulation says before a secret is checked.
#[derive(Debug)]
pub enum Verdict {
    /// Check it, then settle the ticket.
    Proceed(Ticket),
    /// Refused (and recorded as banned) until this Unix time.
    Banned(i64),
}

impl Regulator {
    /// A regulator for `config` over `storage`.
    pub fn new(config: &Regulation, storage: Storage) -> Self {
        let secs = |d: crate::config::types::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
        Self {
            storage,
            rules: Rules {
                max_retries: config.max_retries,
                find_time: secs(config.find_time),
                ban_time: secs(config.ban_time),
                by_user: config.modes.iter().any(|m| m == "user"),
                by_ip: config.modes.iter().any(|m| m == "ip"),
            },
            turns: Arc::new(Turns::default()),
        }
    }

    /// Waits for the turn of an attempt by `username` from `ip` (the user's first, then the
    /// address's, always in that order).
    pub async fn turn(&self, username: &str, ip: &str) -> Turn {
        let mut guards = vec![self.turns.lock_for(format!("user:{username}")).lock_owned().await];
        if self.rules.by_ip && !ip.is_empty() {
            guards.push(self.turns.lock_for(format!("ip:{ip}")).lock_owned().await);
        }
        Turn { _guards: guards }
    }

    /// When regulation is off.
    pub fn disabled(&self) -> bool {
        self.rules.disabled()
    }

    /// Reserves `attempt` (its `successful` and `banned` fields are ignored): refused when
    /// its user or address is banned, else recorded as failed until settled.
    pub async fn begin(&self, attempt: AuthAttempt) -> Result<Verdict, StorageError> {
        let rules = self.rules;
        let now = attempt.time;
        let window = RegulationWindow {
            since: now.saturating_sub(rules.find_time.saturating_add(rules.ban_time)),
            limit: i64::from(rules.max_retries.max(1)),
            by_user: rules.by_user && !rules.disabled(),
            by_ip: rules.by_ip && !rules.disabled(),
        };
        let reservation = self
            .storage
            .reserve_attempt(attempt, window, move |by_user, by_ip| rules.ban_until(by_user, by_ip, now))
            .await?;
        Ok(match reservation.banned_until {
            Some(until) => Verdict::Banned(until),
            None => Verdict::Proceed(Ticket { id: reservation.id }),
        })
    }

    /// The Unix time until which `username` (or `ip`) is banned, if it is banned now (a
    /// read only: for listings and for noticing that a failure started a ban).
    pub async fn banned_until(&self, username: &str, ip: &str, now: i64) -> Result<Option<i64>, StorageError> {
        let explicit = self.storage.explicit_ban_until(username, ip, now).await?;
        let rules = self.rules;
        if rules.disabled() {
            return Ok(explicit);
        }
        let since = now.saturating_sub(rules.find_time.saturating_add(rules.ban_time));
        let limit = i64::from(rules.max_retries);
        let mut by_user = Vec::new();
        let mut by_ip = Vec::new();
        for second_factor in [false, true] {
            if rules.by_user && !username.is_empty() {
                by_user.extend(
                    self.storage
                        .recent_attempts_of(AttemptsBy::User(username), since, limit, Some(second_factor))
                        .await?,
                );
            }
            if rules.by_ip && !ip.is_empty() {
                by_ip.extend(
                    self.storage.recent_attempts_of(AttemptsBy::Ip(ip), since, limit, Some(second_factor)).await?,
                );
            }
        }
        Ok(rules.ban_until(&by_user, &by_ip, now).max(explicit))
    }

    /// Every ban in force at `now`: those regulation derives from the log (looking at up
    /// to `candidates` recently failing users and addresses) and those set by hand or
    /// imported; a subject banned both ways is listed once, with the later end.
    pub async fn bans_in_force(&self, now: i64, candidates: i64) -> Result<Vec<BanInForce>, StorageError> {
        let mut bans: Vec<BanInForce> = Vec::new();
        if !self.rules.disabled() {
            let since = now.saturating_sub(self.rules.find_time.saturating_add(self.rules.ban_time));
            let (users, ips) = self.storage.failed_subjects(since, candidates).await?;
            let subjects =
                users.into_iter().map(|u| (BanTarget::User, u)).chain(ips.into_iter().map(|i| (BanTarget::Ip, i)));
            for (target, subject) in subjects {
                let (user, ip) = match target {
                    BanTarget::User => (subject.as_str(), ""),
                    BanTarget::Ip => ("", subject.as_str()),
                };
                if let Some(until) = self.banned_until(user, ip, now).await? {
                    bans.push(BanInForce { target, subject, until, source: "regulation".into(), reason: None });
                }
            }
        }
        for ban in self.storage.bans_in_force(now).await? {
            let until = ban.until();
            match bans.iter_mut().find(|b| b.target == ban.target && b.subject == ban.subject) {
                Some(listed) if listed.until >= until => {}
                Some(listed) => {
                    (listed.until, listed.source, listed.reason) = (until, ban.source, ban.reason);
                }
                None => bans.push(BanInForce {
                    target: ban.target,
                    subject: ban.subject,
                    until,
                    source: ban.source,
                    reason: ban.reason,
                }),
            }
        }
        Ok(bans)
    }

    /// Bans `subject` until `expires_at` (`None`: until lifted), whatever its attempts.
    pub async fn ban(
        &self,
        target: BanTarget,
        subject: &str,
        expires_at: Option<i64>,
        source: &str,
        reason: Option<&str>,
        now: i64,
    ) -> Result<(), StorageError> {
        self.storage.ban_add(target, subject, expires_at, source, reason, now).await
    }

    /// Lifts every ban on `subject`: revokes the bans set by hand and writes an unban
    /// marker to the log, which also clears the failures that led to a derived one.
    /// Lifting what is not banned is harmless.
    pub async fn lift(&self, target: BanTarget, subject: &str, now: i64) -> Result<(), StorageError> {
        let (username, remote_ip) = match target {
            BanTarget::User => (subject.to_string(), String::new()),
            BanTarget::Ip => (String::new(), subject.to_string()),
        };
        let marker = AuthAttempt {
            time: now,
            successful: true,
            banned: false,
            username,
            auth_type: AuthType::Unban,
            remote_ip,
            request_uri: String::new(),
            request_method: String::new(),
        };
        self.storage.log_attempt(marker).await?;
        self.storage.ban_revoke(target, subject, now).await?;
        Ok(())
    }

    /// Records how a reserved attempt ended.
    pub async fn settle(&self, ticket: Ticket, settlement: Settlement) -> Result<(), StorageError> {
        self.storage.settle_attempt(ticket.id, settlement).await
    }
}

/// The ban end implied by `attempts` of one kind (newest first), if it lies after `now`:
/// the newest `max_retries` attempts all failed, within `find_time` of each other.
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
        AttemptOutcome { time, successful, second_factor: false, unban: false }
    }

    fn code(time: i64, successful: bool) -> AttemptOutcome {
        AttemptOutcome { time, successful, second_factor: true, unban: false }
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

    #[test]
    fn passwords_and_codes_are_counted_apart() {
        let rules = Rules { max_retries: 3, find_time: 120, ban_time: 300, by_user: true, by_ip: false };
        // A successful password between every two wrong codes does not clear them.
        let user = [code(990, false), a(985, true), code(980, false), a(975, true), code(970, false)];
        assert_eq!(rules.ban_until(&user, &[], 1000), Some(1290));
        // A correct code does.
        let user = [code(990, false), code(985, true), code(980, false), code(970, false)];
        assert_eq!(rules.ban_until(&user, &[], 1000), None);
        // A correct code does not clear password failures either.
        let user = [a(990, false), code(985, true), a(980, false), a(970, false)];
        assert_eq!(rules.ban_until(&user, &[], 1000), Some(1290));
        // The address counts on its own when asked to.
        let ip_rules = Rules { by_ip: true, ..rules };
        assert_eq!(ip_rules.ban_until(&[], &[a(990, false), a(980, false), a(970, false)], 1000), Some(1290));
        assert_eq!(rules.ban_until(&[], &[a(990, false), a(980, false), a(970, false)], 1000), Some(1290));
        // A lifted ban clears both kinds.
        let unban = AttemptOutcome { time: 995, successful: true, second_factor: false, unban: true };
        let user = [unban, code(990, false), code(980, false), a(975, false), a(972, false), a(970, false)];
        assert_eq!(rules.ban_until(&user, &[], 1000), None);
        let off = Rules { max_retries: 0, ..rules };
        assert_eq!(off.ban_until(&[a(990, false), a(980, false), a(970, false)], &[], 1000), None);
    }
}
