//! Embedded migrations per backend, the encryption-key check, and the status report for
//! `portcullis storage migrate`.
//!
//! diesel_migrations is synchronous: migrations run on a blocking thread, on a connection
//! taken out of the pool and wrapped in diesel-async's `AsyncConnectionWrapper`, which
//! drives the async connection from that thread.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::encryption;
use super::{DbConnection, Storage, StorageError};

const SQLITE: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("migrations/postgres");
const MYSQL: EmbeddedMigrations = embed_migrations!("migrations/mysql");

/// Name of the row that proves which key encrypted this database.
const CHECK_ROW: &str = "encryption_key_check";
const CHECK_PLAINTEXT: &[u8] = b"portcullis encryption key check v1";

/// Applied and pending migrations, oldest first.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct MigrationStatus {
    /// Versions already applied.
    pub applied: Vec<String>,
    /// Migrations not yet applied.
    pub pending: Vec<String>,
}

/// Runs `$body` with `$c` bound to the backend's connection as a synchronous diesel
/// connection and `$m` to its migrations.
macro_rules! with_migrations {
    ($conn:expr, |$c:ident, $m:ident| $body:expr) => {
        match $conn {
            DbConnection::Sqlite(conn) => {
                let $c = &mut AsyncConnectionWrapper::<_>::from(conn);
                let $m = SQLITE;
                $body
            }
            DbConnection::Postgresql(conn) => {
                let $c = &mut AsyncConnectionWrapper::<_>::from(conn);
                let $m = POSTGRES;
                $body
            }
            DbConnection::Mysql(conn) => {
                let $c = &mut AsyncConnectionWrapper::<_>::from(conn);
                let $m = MYSQL;
                $body
            }
        }
    };
}

/// A database-wide lock held while migrations run, so that replicas started together
/// against a fresh database apply them once between them: the first takes the lock and
/// migrates, the others wait, then find nothing pending. (Without it, two create the same
/// tables at once and one dies on a duplicate key in the catalog.) PostgreSQL: a
/// session-level advisory lock; MySQL and MariaDB: a named lock; SQLite: none needed, a
/// migration's transaction already locks the file and the replicas of one host share it.
struct MigrationLock {
    take: &'static str,
    release: &'static str,
}

impl MigrationLock {
    fn of(conn: &DbConnection) -> Option<Self> {
        match conn {
            DbConnection::Sqlite(_) => None,
            // The key is "portcull" in ASCII.
            DbConnection::Postgresql(_) => Some(Self {
                take: "SELECT pg_advisory_lock(8101820098873224300)",
                release: "SELECT pg_advisory_unlock(8101820098873224300)",
            }),
            // Waits up to ten minutes: a replica migrating a large database for longer
            // than that leaves the others to fail clearly rather than wait forever.
            DbConnection::Mysql(_) => Some(Self {
                take: "SELECT GET_LOCK('portcullis.migrations', 600)",
                release: "SELECT RELEASE_LOCK('portcullis.migrations')",
            }),
        }
    }

    /// Runs `work` with the lock held on `c` (released after, whatever the outcome; the
    /// database also releases it if the connection dies).
    fn held<C: diesel::Connection, T>(
        lock: Option<Self>,
        c: &mut C,
        work: impl FnOnce(&mut C) -> Result<T, StorageError>,
    ) -> Result<T, StorageError> {
        let Some(lock) = lock else { return work(c) };
        c.batch_execute(lock.take).map_err(migration_error)?;
        let result = work(c);
        if let Err(e) = c.batch_execute(lock.release) {
            tracing::warn!(error = %e, "cannot release the migration lock (the connection's end will)");
        }
        result
    }
}

fn migration_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Migration(e.to_string())
}

impl Storage {
    /// Runs `work` on a connection of its own on a blocking thread.
    async fn migrating<T: Send + 'static>(
        &self,
        work: impl FnOnce(DbConnection) -> Result<T, StorageError> + Send + 'static,
    ) -> Result<T, StorageError> {
        let conn = self.detached().await?;
        tokio::task::spawn_blocking(move || work(conn))
            .await
            .map_err(|e| StorageError::Unavailable(format!("migration task failed: {e}")))?
    }

    /// Applies pending migrations; returns the versions applied.
    pub async fn migrate_up(&self) -> Result<Vec<String>, StorageError> {
        self.migrating(|conn| {
            let lock = MigrationLock::of(&conn);
            with_migrations!(conn, |c, m| {
                MigrationLock::held(lock, c, |c| {
                    let done = c.run_pending_migrations(m).map_err(migration_error)?;
                    Ok(done.iter().map(ToString::to_string).collect())
                })
            })
        })
        .await
    }

    /// Reverts the newest applied migration; returns its version, if there was one.
    pub async fn migrate_down(&self) -> Result<Option<String>, StorageError> {
        self.migrating(|conn| {
            let lock = MigrationLock::of(&conn);
            with_migrations!(conn, |c, m| {
                MigrationLock::held(lock, c, |c| {
                    if c.applied_migrations().map_err(migration_error)?.is_empty() {
                        return Ok(None);
                    }
                    let reverted = c.revert_last_migration(m).map_err(migration_error)?;
                    Ok(Some(reverted.to_string()))
                })
            })
        })
        .await
    }

    /// Which migrations are applied and which are pending.
    pub async fn migration_status(&self) -> Result<MigrationStatus, StorageError> {
        self.migrating(|conn| {
            with_migrations!(conn, |c, m| {
                let mut applied: Vec<String> =
                    c.applied_migrations().map_err(migration_error)?.iter().map(ToString::to_string).collect();
                applied.sort();
                let pending =
                    c.pending_migrations(m).map_err(migration_error)?.iter().map(|p| p.name().to_string()).collect();
                Ok(MigrationStatus { applied, pending })
            })
        })
        .await
    }

    /// Writes the key check row on first use; afterwards, fails with
    /// [`StorageError::KeyMismatch`] if the configured key cannot read it.
    pub async fn check_encryption_key(&self) -> Result<(), StorageError> {
        let cipher = self.cipher().clone();
        self.run(move |conn| {
            async move {
                let existing: Option<Vec<u8>> = per_backend!(conn, |c| encryption::table
                    .filter(encryption::name.eq(CHECK_ROW))
                    .select(encryption::value)
                    .first(c)
                    .await
                    .optional())?;
                match existing {
                    Some(sealed) => match cipher.decrypt(&sealed) {
                        Ok(plain) if plain == CHECK_PLAINTEXT => Ok(()),
                        _ => Err(StorageError::KeyMismatch),
                    },
                    None => {
                        let sealed = cipher.encrypt(CHECK_PLAINTEXT)?;
                        let inserted = per_backend!(conn, |c| diesel::insert_into(encryption::table)
                            .values((encryption::name.eq(CHECK_ROW), encryption::value.eq(&sealed)))
                            .execute(c)
                            .await);
                        if let Err(e) = inserted {
                            // Replicas started together race to write the row: the loser
                            // reads the winner's, which must open with the same key.
                            let written: Option<Vec<u8>> = per_backend!(conn, |c| encryption::table
                                .filter(encryption::name.eq(CHECK_ROW))
                                .select(encryption::value)
                                .first(c)
                                .await
                                .optional())?;
                            return match written.map(|sealed| cipher.decrypt(&sealed)) {
                                Some(Ok(plain)) if plain == CHECK_PLAINTEXT => Ok(()),
                                Some(_) => Err(StorageError::KeyMismatch),
                                None => Err(e.into()),
                            };
                        }
                        Ok(())
                    }
                }
            }
            .boxed()
        })
        .await
    }
}
