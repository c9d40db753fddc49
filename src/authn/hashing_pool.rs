//! Runs password hashing off the async runtime, at most N at a time, at low CPU priority.
//!
//! Argon2 takes tens of milliseconds and tens of megabytes per hash. Unbounded, a storm of
//! logins would fill the blocking pool and memory, and starve the authz path of CPU. Here
//! a semaphore admits at most `limit` hashes at once; a caller that cannot get a slot
//! within `wait` is told the server is busy (503 + Retry-After) without hashing anything.
//! Hashes run on the pool's own threads, lowered in scheduling priority (nice 10), so that
//! when logins and authorization requests compete for the cores, authorization wins: a
//! login storm slows logins, not every request behind the proxy.

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

type Job = Box<dyn FnOnce() + Send>;

/// Bounded password hashing.
#[derive(Clone)]
pub struct HashingPool {
    slots: Arc<Semaphore>,
    wait: Duration,
    jobs: std::sync::mpsc::SyncSender<Job>,
}

/// Lowers the calling thread's scheduling priority (Linux applies nice per thread).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority only changes the calling thread's nice value; it has no memory
    // effects. A failure (not permitted) leaves the priority as it was, which is harmless.
    unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 10);
    }
}

impl HashingPool {
    /// At most `limit` concurrent hashes (on `limit` low-priority threads); callers wait
    /// at most `wait` for a slot.
    pub fn new(limit: usize, wait: Duration) -> Self {
        let limit = limit.max(1);
        let (jobs, queue) = std::sync::mpsc::sync_channel::<Job>(limit);
        let queue = Arc::new(std::sync::Mutex::new(queue));
        for i in 0..limit {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new().name(format!("hashing-{i}")).spawn(move || {
                lower_priority();
                loop {
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        Self { slots: Arc::new(Semaphore::new(limit)), wait, jobs }
    }

    /// One slot per CPU core, waiting up to two seconds. The threads' low priority, not a
    /// smaller count, is what keeps a core for the request path when logins pile up.
    pub fn per_core() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, usize::from), Duration::from_secs(2))
    }

    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, PoolError> {
        let queued = crate::telemetry::HashingWait::start();
        let Ok(Ok(permit)) = tokio::time::timeout(self.wait, self.slots.clone().acquire_owned()).await else {
            queued.refused();
            return Err(PoolError::Busy);
        };
        let running = queued.admitted();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            // A panicking hash must not take the thread with it; the caller sees an error.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work));
            // The slot is released before the answer goes out, so whoever reads the pool
            // after the caller has its answer never sees that hash still running.
            drop(running);
            drop(permit);
            if let Ok(result) = result {
                let _ = tx.send(result);
            }
        });
        // A slot is held, so a thread is free or about to be: this does not block long.
        self.jobs.send(job).map_err(|e| PoolError::Task(e.to_string()))?;
        rx.await.map_err(|e| PoolError::Task(e.to_string()))
    }

    /// Checks `password` against `encoded` (a stored hash).
    pub async fn verify(&self, password: &str, encoded: &str) -> Result<bool, PoolError> {
        let (password, encoded) = (password.to_string(), encoded.to_string());
        let span = crate::telemetry::traces::span!("password.verify");
        Ok(tracing::Instrument::instrument(self.run(move || password::verify(&password, &encoded)), span).await??)
    }

    /// Hashes `password` with the configured algorithm.
    pub async fn hash(&self, password: &str, params: &PasswordHashing) -> Result<String, PoolError> {
        let (password, params) = (password.to_string(), params.clone());
        let span = crate::telemetry::traces::span!("password.hash");
        Ok(tracing::Instrument::instrument(self.run(move || password::hash(&password, &params)), span).await??)
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
