//! Embedded migrations per backend, the encryption-key check, and the status report for
//! `portcullis storage migrate`.

use diesel::prelude::*;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

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

/// Runs `$body` with `$c` bound to the backend's own connection and `$m` to its migrations.
macro_rules! with_backend {
    ($conn:expr, |$c:ident, $m:ident| $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => {
                let $m = SQLITE;
                $body
            }
            DbConnection::Postgresql($c) => {
                let $m = POSTGRES;
                $body
            }
            DbConnection::Mysql($c) => {
                let $m = MYSQL;
                $body
            }
        }
    };
}

fn migration_error(e: impl std::fmt::Display) -> StorageError {
    StorageError::Migration(e.to_string())
}

impl Storage {
    /// Applies pending migrations; returns the versions applied.
    pub fn migrate_up_blocking(&self) -> Result<Vec<String>, StorageError> {
        self.run_blocking(|conn| {
            with_backend!(conn, |c, m| {
                let done = c.run_pending_migrations(m).map_err(migration_error)?;
                Ok(done.iter().map(ToString::to_string).collect())
            })
        })
    }

    /// Reverts the newest applied migration; returns its version, if there was one.
    pub fn migrate_down_blocking(&self) -> Result<Option<String>, StorageError> {
        self.run_blocking(|conn| {
            with_backend!(conn, |c, m| {
                if c.applied_migrations().map_err(migration_error)?.is_empty() {
                    return Ok(None);
                }
                let reverted = c.revert_last_migration(m).map_err(migration_error)?;
                Ok(Some(reverted.to_string()))
            })
        })
    }

    /// Which migrations are applied and which are pending.
    pub fn migration_status_blocking(&self) -> Result<MigrationStatus, StorageError> {
        self.run_blocking(|conn| {
            with_backend!(conn, |c, m| {
                let mut applied: Vec<String> =
                    c.applied_migrations().map_err(migration_error)?.iter().map(ToString::to_string).collect();
                applied.sort();
                let pending =
                    c.pending_migrations(m).map_err(migration_error)?.iter().map(|p| p.name().to_string()).collect();
                Ok(MigrationStatus { applied, pending })
            })
        })
    }

    /// Writes the key check row on first use; afterwards, fails with
    /// [`StorageError::KeyMismatch`] if the configured key cannot read it.
    pub fn check_encryption_key_blocking(&self) -> Result<(), StorageError> {
        let cipher = self.cipher().clone();
        self.run_blocking(move |conn| {
            let existing: Option<Vec<u8>> = encryption::table
                .filter(encryption::name.eq(CHECK_ROW))
                .select(encryption::value)
                .first(conn)
                .optional()?;
            match existing {
                Some(sealed) => match cipher.decrypt(&sealed) {
                    Ok(plain) if plain == CHECK_PLAINTEXT => Ok(()),
                    _ => Err(StorageError::KeyMismatch),
                },
                None => {
                    let sealed = cipher.encrypt(CHECK_PLAINTEXT)?;
                    diesel::insert_into(encryption::table)
                        .values((encryption::name.eq(CHECK_ROW), encryption::value.eq(sealed)))
                        .execute(conn)?;
                    Ok(())
                }
            }
        })
    }
}
