//! The device authorization grant's pure parts (RFC 8628): user codes people can read
//! off a television and type on a phone, the polling interval and its slow-down step,
//! and what a poll of the token endpoint answers for a stored device session.
//!
//! A user code is eight capital consonants (no vowels, so it spells no words, and no I
//! or O to be taken for 1 or 0), shown as `BCDF-GHJK`: 20⁸ ≈ 2^34.6 values, RFC 8628
//! §6.1's example. That is guessable offline, so it is stored only as an HMAC keyed by
//! `hmac_secret`, and online guessing is bounded by the lockout in `flows::oidc::device`.

use rand::Rng;

pub use crate::config::validate::oidc::DEVICE_CODE_GRANT;

/// The letters of user codes: consonants only, none easily misread.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Letters in a user code.
pub const USER_CODE_LEN: usize = 8;

/// Seconds a device waits between polls at first (Authelia's interval).
pub const POLL_INTERVAL_SECS: i64 = 10;

/// Seconds added to the interval each time a device polls too fast (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP_SECS: i64 = 5;

/// Wrong user codes one user, or one client address, may enter per ten minutes before
/// entering codes is locked until the window ends. With N device sessions waiting, each
/// guess succeeds with probability N / 20⁸: at this rate, a thousand waiting sessions
/// give one account about one chance in 36,000 a day.
pub const USER_CODE_FAILURES: u32 = 5;

/// The key the device grant's token lifespans are configured under
/// (`lifespans.custom.<name>.grants.device_code`).
pub const LIFESPAN_GRANT: &str = "device_code";

/// A new user code, normalized (eight letters of [`ALPHABET`]).
pub fn new_user_code() -> String {
    let mut rng = rand::rng();
    (0..USER_CODE_LEN).map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())])).collect()
}

/// The user code as shown: `BCDF-GHJK`.
pub fn display(normalized: &str) -> String {
    let (a, b) = normalized.split_at(normalized.len().min(USER_CODE_LEN / 2));
    format!("{a}-{b}")
}

/// What the user typed, normalized: case, dashes and spaces do not matter. `None` when it
/// cannot be a user code (wrong length or letters outside the alphabet).
pub fn normalize(typed: &str) -> Option<String> {
    if typed.len() > 64 {
        return None;
    }
    let code: String = typed
        .chars()
        .filter(|c| !matches!(c, '-' | ' ' | '\t' | '\u{2010}'..='\u{2015}'))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    (code.len() == USER_CODE_LEN && code.bytes().all(|b| ALPHABET.contains(&b))).then_some(code)
}

/// Where a device session stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the user.
    Pending,
    /// The user allowed it; the device's next poll gets the tokens.
    Approved,
    /// The user refused it (or may not use the client).
    Denied,
    /// The tokens were issued (the device code is spent).
    Used,
}

impl Status {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Used => "used",
        }
    }

    /// The status a stored name stands for (anything unknown is treated as spent).
    pub fn parse(s: &str) -> Self {
        match s {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "denied" => Self::Denied,
            _ => Self::Used,
        }
    }
}

/// What a poll of the token endpoint gets, before any write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// Tokens: the session is approved (taking it must still win the race).
    Take,
    /// `authorization_pending` (the poll time is recorded).
    Pending,
    /// `slow_down`: polled before the interval passed; the interval grows by
    /// [`SLOW_DOWN_STEP_SECS`].
    SlowDown,
    /// `access_denied`.
    Denied,
    /// `expired_token`.
    Expired,
    /// `invalid_grant`: the device code was used already (what it produced is revoked).
    Replayed,
}

/// The answer to a poll at `now` of a session in `status` that expires at `expires_at`,
/// was last polled at `last_polled_at`, with `interval` seconds between polls.
pub fn poll(status: Status, expires_at: i64, last_polled_at: Option<i64>, interval: i64, now: i64) -> Poll {
    match status {
        Status::Used => Poll::Replayed,
        _ if now >= expires_at => Poll::Expired,
        Status::Approved => Poll::Take,
        Status::Denied => Poll::Denied,
        Status::Pending if last_polled_at.is_some_and(|last| now.saturating_sub(last) < interval) => Poll::SlowDown,
        Status::Pending => Poll::Pending,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_are_eight_unambiguous_letters() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let code = new_user_code();
            assert_eq!(code.len(), USER_CODE_LEN);
            assert!(code.bytes().all(|b| ALPHABET.contains(&b)), "{code}");
            assert!(!code.contains(['A', 'E', 'I', 'O', 'U', 'Y', '0', '1']), "{code}");
            seen.insert(code);
        }
        assert!(seen.len() > 1990, "random enough: {} distinct of 2000", seen.len());
        assert_eq!(ALPHABET.len(), 20);
    }

    #[test]
    fn typed_codes_are_normalized() {
        assert_eq!(display("BCDFGHJK"), "BCDF-GHJK");
        for typed in ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " BcDf GhJk ", "BCDF–GHJK", "B-C-D-F-G-H-J-K"] {
            assert_eq!(normalize(typed).as_deref(), Some("BCDFGHJK"), "{typed:?}");
        }
        for typed in
            ["", "BCDF-GHJ", "BCDF-GHJKL", "BCDF-GHJA", "BCDF-GHJ0", "BCDF_GHJK", "ÄCDF-GHJK", &"B".repeat(100)]
        {
            assert_eq!(normalize(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn polls_follow_rfc_8628() {
        let p = |status, last, now| poll(status, 1000, last, 10, now);
        assert_eq!(p(Status::Pending, None, 100), Poll::Pending);
        assert_eq!(p(Status::Pending, Some(95), 100), Poll::SlowDown, "five seconds after the last poll");
        assert_eq!(p(Status::Pending, Some(90), 100), Poll::Pending, "exactly the interval later");
        assert_eq!(p(Status::Approved, Some(99), 100), Poll::Take, "an approved device is not slowed down");
        assert_eq!(p(Status::Denied, None, 100), Poll::Denied);
        assert_eq!(p(Status::Pending, None, 1000), Poll::Expired);
        assert_eq!(p(Status::Approved, None, 1000), Poll::Expired);
        assert_eq!(p(Status::Used, None, 100), Poll::Replayed);
        assert_eq!(p(Status::Used, None, 5000), Poll::Replayed, "a spent code is a replay even once expired");
        for s in [Status::Pending, Status::Approved, Status::Denied, Status::Used] {
            assert_eq!(Status::parse(s.as_str()), s);
        }
        assert_eq!(Status::parse("tampered"), Status::Used);
    }
}
