//! The connection pool (deadpool): how it opens connections, and which ones it refuses to
//! hand out again. A connection is handed out again only if it finished its work, left no
//! transaction open and, after some idle time, still answers; one that was interrupted,
//! hit a storage fault, or is a SQLite connection opened read-only once the file is
//! writable again is closed instead.

use std::time::Duration;

use deadpool::managed::{Metrics, RecycleError, RecycleResult};
use diesel_async::{AsyncConnection, RunQueryDsl, TransactionManager};

use super::StorageError;
use super::connection::{Backend, DbConnection, per_backend, sqlite_writable};
use super::target::Target;

/// How long a network connection may sit idle in the pool before it is checked with a
/// round trip when handed out again.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The pool's connection manager.
pub struct Manager {
    target: Target,
}

/// A pooled connection and what the pool knows about it.
pub struct Pooled {
    /// The connection itself.
    pub conn: DbConnection,
    /// Opened while the SQLite file was read-only (see [`super::target::Opened::read_only`]).
    read_only: bool,
    /// Work started on the connection and has not finished: if it comes back in this state
    /// (the work panicked or was dropped half-way), its state is unknown.
    pub in_use: bool,
}

impl Manager {
    /// A manager opening connections to `target`.
    pub fn new(target: Target) -> Self {
        Self { target }
    }
}

impl deadpool::managed::Manager for Manager {
    type Type = Pooled;
    type Error = StorageError;

    async fn create(&self) -> Result<Pooled, StorageError> {
        let opened = self.target.connect().await?;
        Ok(Pooled { conn: opened.conn, read_only: opened.read_only, in_use: false })
    }

    /// Runs when an idle connection is checked out.
    async fn recycle(&self, pooled: &mut Pooled, metrics: &Metrics) -> RecycleResult<StorageError> {
        if pooled.in_use {
            return Err(RecycleError::message("its last work was interrupted"));
        }
        if pooled.read_only && self.target.sqlite_path().is_some_and(sqlite_writable) {
            return Err(RecycleError::message("opened while the database was read-only; it is writable again"));
        }
        let broken = per_backend!(&mut pooled.conn, |c| transaction_broken(c));
        if broken {
            return Err(RecycleError::message("a transaction on it was left unfinished"));
        }
        // A network connection idle for a while may have been closed by the server or
        // something in between: one round trip tells. One just used is taken as alive; if
        // it died since, its query fails as a storage fault and it is closed then. SQLite
        // has no connection to lose; its file-level faults also show at the query.
        let idle = metrics.last_used();
        if self.target.backend() != Backend::Sqlite && idle >= PING_AFTER_IDLE {
            per_backend!(&mut pooled.conn, |c| diesel::sql_query("SELECT 1").execute(c).await)
                .map_err(|e| RecycleError::Backend(StorageError::Unavailable(e.to_string())))?;
        }
        Ok(())
    }
}

/// Whether a transaction on `conn` was left unfinished (its future dropped half-way).
fn transaction_broken<C: AsyncConnection>(conn: &mut C) -> bool {
    C::TransactionManager::is_broken_transaction_manager(conn)
}
