//! Runs password hashing off the async runtime, at most N at a time.
//!
//! Argon2 takes tens of milliseconds and tens of megabytes per hash. Unbounded, a storm of
//! logins would fill the blocking pool and memory, and starve the authz path of CPU. Here
//! a semaphore admits at most `limit` hashes at once; a caller that cannot get a slot
//! within `wait` is told the server is busy (503 + Retry-After) without hashing anything.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::password::{self, HashError};
use crate::config::schema::PasswordHashing;

/// A stored hash with default Argon2id parameters, for a password nobody knows. Checking
/// a login for an unknown or disabled user against it takes as long as a real check, so
/// response times do not reveal which usernames exist.
pub const DECOY_HASH: &str =
    "$argon2id$v=19$m=65536,t=3,p=4$/v0P1Cj3PyW2Ypb9qsHRWw$ARfNyC2/19RX3W4a6owJ6aoh+rYyCzUaJAUd6dWNGXg";

/// Why hashing did not happen.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// Every slot stayed busy for the whole wait.
    #[error("too many password checks in progress")]
    Busy,
    /// The stored hash is malformed or of an unknown kind.
    #[error(transparent)]
    Hash(#[from] HashError),
    /// The blocking task failed.
    #[error("password hashing task failed: {0}")]
    Task(String),
}

/// Bounded password hashing.
#[derive(Clone)]
pub struct HashingPool {
    slots: Arc<Semaphore>,
    wait: Duration,
}

impl HashingPool {
    /// At most `limit` concurrent hashes; callers wait at most `wait` for a slot.
    pub fn new(limit: usize, wait: Duration) -> Self {
        Self { slots: Arc::new(Semaphore::new(limit.max(1))), wait }
    }

    /// One slot per CPU core, waiting up to two seconds.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from), Duration::from_secs(2))
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let permit = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned())
            .await
            .map_err(|_| PoolError::Busy)?
            .map_err(|_| PoolError::Busy)?;
        let result = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work()
        })
        .await
        .map_err(|e| PoolError::Task(e.to_string()))?;
        Ok(result)
    }

    /// Checks `password` against `encoded` (a stored hash).
    pub async fn verify(&self, password: &str, encoded: &str) -> Result<bool, PoolError> {
        let (password, encoded) = (password.to_string(), encoded.to_string());
        Ok(self.run(move || password::verify(&password, &encoded)).await??)
    }

    /// Hashes `password` with the configured algorithm.
    pub async fn hash(&self, password: &str, params: &PasswordHashing) -> Result<String, PoolError> {
        let (password, params) = (password.to_string(), params.clone());
        Ok(self.run(move || password::hash(&password, &params)).await??)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_bound_callers_are_told_busy_without_hashing() {
        let pool = HashingPool::new(1, Duration::from_millis(20));
        let busy = pool.clone();
        // Hold the only slot with a real (default-cost) Argon2id check.
        let first = tokio::spawn(async move { busy.verify("x", DECOY_HASH).await });
        tokio::time::sleep(Duration::from_millis(5)).await;
        let second = pool.verify("y", DECOY_HASH).await;
        assert!(matches!(second, Err(PoolError::Busy)), "{second:?}");
        assert!(!first.await.unwrap().unwrap());
        // Once the slot is free, checks run again.
        assert!(!pool.verify("y", DECOY_HASH).await.unwrap());
    }
}
