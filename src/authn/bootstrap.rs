//! First-run bootstrap tokens: with no users at all, a one-time token lets the operator
//! create the first administrator (`POST /auth/bootstrap/complete`, or the form the login
//! page shows then). Tokens are drawn here and stored in the database by keyed hash only
//! ([`crate::storage::Storage::bootstrap_token_insert`]), so a token issued by one replica
//! (at startup, by `portcullis bootstrap token` or by an administrator) works on every
//! other, once, until it expires.

use std::time::Duration;

use rand::Rng;
use rand::distr::Alphanumeric;

use crate::storage::{Storage, StorageError};

/// How long a token issued at startup (and by default) is valid.
pub const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// The longest lifetime a token may be given.
pub const MAX_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// Characters in a token (alphanumeric: about 190 bits).
pub const TOKEN_LENGTH: usize = 32;

/// Who issues a token at startup.
pub const BY_STARTUP: &str = "startup";

/// Who issues a token from the command line.
pub const BY_CLI: &str = "cli";

/// The keyed hash a token is stored and found by.
pub fn token_hash(storage: &Storage, token: &str) -> String {
    storage.cipher().keyed_hash("bootstrap token", token)
}

/// Draws a token valid for `lifetime` from `now`, stores its hash with `created_by`, and
/// returns it with its expiry (Unix seconds).
pub async fn issue(
    storage: &Storage,
    created_by: &str,
    lifetime: Duration,
    now: i64,
) -> Result<(String, i64), StorageError> {
    let expires_at = now.saturating_add(i64::try_from(lifetime.as_secs()).unwrap_or(i64::MAX));
    loop {
        let token: String = rand::rng().sample_iter(Alphanumeric).take(TOKEN_LENGTH).map(char::from).collect();
        match storage.bootstrap_token_insert(&token_hash(storage, &token), now, expires_at, Some(created_by)).await {
            Ok(()) => return Ok((token, expires_at)),
            // Drawn twice: draw again.
            Err(StorageError::Duplicate) => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Reads a lifetime such as `30m` or `1h`: at least a second, at most [`MAX_LIFETIME`].
pub fn parse_lifetime(text: &str) -> Result<Duration, String> {
    let lifetime = humantime::parse_duration(text.trim()).map_err(|e| format!("ttl: '{text}': {e}"))?;
    if lifetime < Duration::from_secs(1) {
        return Err(format!("ttl: '{text}' is shorter than a second"));
    }
    if lifetime > MAX_LIFETIME {
        return Err(format!("ttl: '{text}' is longer than 24h"));
    }
    Ok(lifetime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_bounded() {
        assert_eq!(parse_lifetime("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_lifetime(" 1h "), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_lifetime("24h"), Ok(MAX_LIFETIME));
        assert_eq!(parse_lifetime("1s"), Ok(Duration::from_secs(1)));
        assert!(parse_lifetime("25h").is_err());
        assert!(parse_lifetime("0s").is_err());
        assert!(parse_lifetime("soon").is_err());
        assert!(parse_lifetime("").is_err());
    }
}
