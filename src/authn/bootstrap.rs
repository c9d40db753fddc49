//! First-run bootstrap: with no users at all, a one-time token (logged at startup) lets
//! the operator create the first administrator through `POST /api/bootstrap`. The token
//! dies after one use or after an hour, and never exists while any user does.

use std::time::{Duration, Instant};

use rand::Rng;
use rand::distr::Alphanumeric;
use subtle::ConstantTimeEq;
use tokio::sync::{Mutex, MutexGuard};

/// How long a bootstrap token is valid.
pub const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// The pending bootstrap token, if any.
pub struct Bootstrap {
    token: Mutex<Option<(String, Instant)>>,
}

/// Result of presenting a token.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenCheck {
    /// Bootstrap is over (used, expired, or users exist).
    Unavailable,
    /// Wrong token.
    Invalid,
    /// Right token; the guard holds bootstrap exclusively until dropped or consumed.
    Valid,
}

impl Bootstrap {
    /// Creates a token when `no_users`; returns it so the caller can log it once.
    pub fn new(no_users: bool) -> (Self, Option<String>) {
        let token =
            no_users.then(|| rand::rng().sample_iter(Alphanumeric).take(32).map(char::from).collect::<String>());
        let state = token.clone().map(|t| (t, Instant::now() + TOKEN_LIFETIME));
        (Self { token: Mutex::new(state) }, token)
    }

    /// Locks bootstrap (so two requests cannot both create a first admin) and checks
    /// `presented` against the token in constant time.
    pub async fn check(&self, presented: &str) -> (TokenCheck, MutexGuard<'_, Option<(String, Instant)>>) {
        let mut guard = self.token.lock().await;
        let check = match guard.as_ref() {
            None => TokenCheck::Unavailable,
            Some((_, expires)) if Instant::now() >= *expires => {
                *guard = None;
                TokenCheck::Unavailable
            }
            Some((token, _)) if bool::from(token.as_bytes().ct_eq(presented.as_bytes())) => TokenCheck::Valid,
            Some(_) => TokenCheck::Invalid,
        };
        (check, guard)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn tokens_only_without_users_and_checked_exactly() {
        let (none, token) = Bootstrap::new(false);
        assert!(token.is_none());
        assert_eq!(none.check("anything").await.0, TokenCheck::Unavailable);

        let (bootstrap, token) = Bootstrap::new(true);
        let token = token.unwrap();
        assert_eq!(token.len(), 32);
        assert_eq!(bootstrap.check("wrong").await.0, TokenCheck::Invalid);
        assert_eq!(bootstrap.check(&token[..31]).await.0, TokenCheck::Invalid);
        let (check, mut guard) = bootstrap.check(&token).await;
        assert_eq!(check, TokenCheck::Valid);
        *guard = None;
        drop(guard);
        assert_eq!(bootstrap.check(&token).await.0, TokenCheck::Unavailable, "a used token is dead");
    }

    #[tokio::test]
    async fn expired_tokens_die() {
        let (bootstrap, token) = Bootstrap::new(true);
        bootstrap.token.lock().await.as_mut().unwrap().1 = Instant::now();
        assert_eq!(bootstrap.check(&token.unwrap()).await.0, TokenCheck::Unavailable);
    }
}
