//! Durable storage: SQLite (bundled, the default), PostgreSQL or MySQL/MariaDB through one
//! diesel connection type, an r2d2 pool, and migrations embedded in the binary.
//!
//! Database calls block, so every call runs on tokio's blocking pool ([`Storage::run`]);
//! the async workers that answer authz requests never wait on SQL. Secret columns are
//! encrypted with AES-256-GCM under `storage.encryption_key`; a check row written on first
//! use makes a server with a different key refuse to start instead of corrupting data.

mod auth_log;
mod connection;
mod crypto;
mod migrations;
mod one_time;
mod preferences;
pub mod schema;
mod totp;
mod webauthn;

use std::sync::Arc;
use std::time::Duration;

use diesel::r2d2::{Pool, PooledConnection};

pub use auth_log::{AttemptOutcome, AttemptsBy, AuthAttempt, AuthType};
pub use connection::{Backend, DbConnection};
use connection::{Manager, Pooled};
pub use crypto::Cipher;
pub use migrations::MigrationStatus;
pub use one_time::OneTimeCode;
pub use totp::TotpRecord;
pub use webauthn::WebAuthnCredential;

use crate::config::schema::Storage as StorageConfig;

/// What went wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The database cannot be reached (or no connection was free in time).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// A query failed.
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migration(String),
    /// `storage.encryption_key` is not the key this database was created with.
    #[error(
        "storage.encryption_key does not match the key this database was encrypted with; \
         start with the original key (refusing to continue rather than corrupt data)"
    )]
    KeyMismatch,
    /// A row with the same unique value exists already.
    #[error("an entry with that name exists already")]
    Duplicate,
    /// Encrypted data could not be read.
    #[error("cannot decrypt stored data: {0}")]
    Crypto(String),
}

/// Largest number of pooled connections.
const POOL_SIZE: u32 = 8;

/// The database, shared by all handlers.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    cipher: Cipher,
    backend: Backend,
}

impl Storage {
    /// Connects, applies pending migrations, and checks the encryption key.
    pub fn open(config: &StorageConfig) -> Result<Self, StorageError> {
        let storage = Self::connect(config)?;
        storage.migrate_up_blocking()?;
        storage.check_encryption_key_blocking()?;
        Ok(storage)
    }

    /// Connects without migrating (for `storage migrate` commands).
    pub fn connect(config: &StorageConfig) -> Result<Self, StorageError> {
        let (backend, url, timeout) = connection::target(config)?;
        let pool = Pool::builder()
            .max_size(POOL_SIZE)
            .min_idle(Some(1))
            .connection_timeout(timeout)
            .build(Manager::new(backend, url))
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let cipher = Cipher::from_key(config.encryption_key.expose());
        Ok(Self { inner: Arc::new(Inner { pool, cipher, backend }) })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The cipher for secret columns.
    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    fn conn(&self) -> Result<PooledConnection<Manager>, StorageError> {
        self.inner.pool.get().map_err(|e| StorageError::Unavailable(e.to_string()))
    }

    /// Runs `work` with a pooled connection. A failure showing that the database cannot be
    /// used now (it turned read-only, the disk failed) closes the connection instead of
    /// returning it to the pool, so that it recovers once the database does, and is
    /// reported as the database being unavailable.
    fn with_conn<T>(&self, work: impl FnOnce(&mut DbConnection) -> Result<T, StorageError>) -> Result<T, StorageError> {
        let mut conn = self.conn()?;
        let pooled: &mut Pooled = &mut conn;
        match work(&mut pooled.conn) {
            Err(StorageError::Query(e)) if connection::is_storage_fault(&e) => {
                pooled.discard();
                Err(StorageError::Unavailable(e.to_string()))
            }
            result => result,
        }
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    pub async fn run<T, F>(&self, work: F) -> Result<T, StorageError>
    where
        T: Send + 'static,
        F: FnOnce(&mut DbConnection) -> Result<T, StorageError> + Send + 'static,
    {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with_conn(work))
            .await
            .map_err(|e| StorageError::Unavailable(format!("storage task failed: {e}")))?
    }

    /// Runs `work` with a pooled connection on the current thread (startup, CLI).
    pub fn run_blocking<T>(
        &self,
        work: impl FnOnce(&mut DbConnection) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        self.with_conn(work)
    }

    /// How long to wait for a free connection before reporting the database unavailable.
    pub fn connection_timeout(&self) -> Duration {
        self.inner.pool.connection_timeout()
    }
}
