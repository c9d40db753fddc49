//! Durable storage: SQLite (bundled, the default), PostgreSQL or MySQL/MariaDB through
//! diesel-async with pure-Rust drivers (tokio-postgres, mysql_async), a deadpool pool, and
//! migrations embedded in the binary.
//!
//! A call, once started, finishes even if the request that asked for it goes away
//! ([`Storage::run`]), as a write to the authentication log must. Network databases are
//! awaited without holding a thread; SQLite, which only waits on the disk, runs on tokio's
//! blocking pool. Secret columns are encrypted with AES-256-GCM under
//! `storage.encryption_key`; a check row written on first use makes a server with a
//! different key refuse to start instead of corrupting data.

mod account;
mod api_tokens;
mod audit;
mod auth_log;
pub mod authelia;
mod bans;
mod bootstrap;
mod completion;
mod connection;
mod crypto;
mod device_links;
mod listing;
mod migrations;
mod oidc;
mod oidc_device;
mod one_time;
mod pool;
mod preferences;
mod rekey;
pub mod schema;
mod target;
mod totp;
mod upstream_oidc;
mod users;
mod webauthn;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use deadpool::managed::{Object, Pool, PoolError};
use futures_util::future::BoxFuture;

pub use api_tokens::ApiTokenRecord;
pub use audit::{AuditFilter, AuditRecord};
pub use auth_log::{AttemptOutcome, AttemptsBy, AuthAttempt, AuthType, RegulationWindow, Reservation, Settlement};
pub use bans::{BanTarget, ExplicitBan, PERMANENT_BAN_UNTIL};
pub use bootstrap::{BootstrapClaim, CLAIM_STALE_AFTER as BOOTSTRAP_CLAIM_STALE_AFTER};
pub use connection::{Backend, DbConnection};
pub use crypto::Cipher;
pub use device_links::DeviceLinkRecord;
pub use migrations::MigrationStatus;
pub use oidc::{Consumed, OidcConsent, OidcRecord};
pub use oidc_device::DeviceCodeRecord;
pub use one_time::OneTimeCode;
use pool::Manager;
pub use rekey::{RekeyError, RekeyReport};
use target::Target;
pub use totp::TotpRecord;
pub use users::{StoredUser, UserChanges, UserFilter, UserKey};
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
const POOL_SIZE: usize = 8;

/// The database, shared by all handlers.
#[derive(Clone)]
pub struct Storage {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool<Manager>,
    cipher: Cipher,
    backend: Backend,
    /// Longest wait for a connection (`storage.*.timeout`).
    timeout: Duration,
}

impl Storage {
    /// Connects, applies pending migrations, and checks the encryption key.
    /// `certificates_directory` adds trusted certificate authorities for TLS.
    pub async fn open(config: &StorageConfig, certificates_directory: Option<&Path>) -> Result<Self, StorageError> {
        let storage = Self::connect(config, certificates_directory)?;
        storage.migrate_up().await?;
        storage.check_encryption_key().await?;
        Ok(storage)
    }

    /// Prepares the pool without migrating (for `storage migrate` commands). Connections
    /// are opened when first needed, so an unreachable database shows at the first call.
    pub fn connect(config: &StorageConfig, certificates_directory: Option<&Path>) -> Result<Self, StorageError> {
        let (target, timeout) = Target::from_config(config, certificates_directory)?;
        let backend = target.backend();
        let pool = Pool::builder(Manager::new(target))
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| StorageError::Unavailable(e.to_string()))?;
        let cipher = Cipher::from_key(config.encryption_key.expose());
        Ok(Self { inner: Arc::new(Inner { pool, cipher, backend, timeout }) })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.inner.backend
    }

    /// The cipher for secret columns.
    pub fn cipher(&self) -> &Cipher {
        &self.inner.cipher
    }

    /// How long to wait for a free connection before reporting the database unavailable.
    pub fn connection_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// A pooled connection, waiting at most the configured timeout for one to be free or
    /// to be opened.
    async fn checkout(&self) -> Result<Object<Manager>, StorageError> {
        match tokio::time::timeout(self.inner.timeout, self.inner.pool.get()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(PoolError::Backend(e))) => Err(e),
            Ok(Err(e)) => Err(StorageError::Unavailable(e.to_string())),
            Err(_) => Err(StorageError::Unavailable(format!(
                "no database connection could be had within {}",
                humantime::format_duration(self.inner.timeout)
            ))),
        }
    }

    /// Runs `work` with a pooled connection. Once started it completes even if the caller
    /// stops waiting (see `completion.rs`). A failure showing that the database
    /// cannot be used now (it turned read-only, the disk failed, the server went away)
    /// closes the connection instead of returning it to the pool, so that the pool recovers
    /// once the database does, and is reported as the database being unavailable.
    pub fn run<T, F>(&self, work: F) -> impl Future<Output = Result<T, StorageError>> + Send + use<T, F>
    where
        T: Send + 'static,
        F: for<'c> FnOnce(&'c mut DbConnection) -> BoxFuture<'c, Result<T, StorageError>> + Send + 'static,
    {
        let this = self.clone();
        crate::telemetry::storage_call(completion::Completing::new(async move {
            let mut pooled = this.checkout().await?;
            pooled.in_use = true;
            let result = work(&mut pooled.conn).await;
            pooled.in_use = false;
            match result {
                Err(StorageError::Query(e)) if connection::is_storage_fault(&e) => {
                    drop(Object::take(pooled));
                    Err(StorageError::Unavailable(e.to_string()))
                }
                result => result,
            }
        }))
    }

    /// Answers when the database does (`SELECT 1` on a pooled connection): the readiness
    /// check.
    pub async fn ping(&self) -> Result<(), StorageError> {
        self.run(|conn| {
            Box::pin(async move {
                use diesel_async::RunQueryDsl;
                connection::per_backend!(conn, |c| diesel::sql_query("SELECT 1").execute(c).await)?;
                Ok(())
            })
        })
        .await
    }

    /// A connection of its own, outside the pool (for migrations, which run on a blocking
    /// thread and hold the connection throughout).
    async fn detached(&self) -> Result<DbConnection, StorageError> {
        Ok(Object::take(self.checkout().await?).conn)
    }
}
