//! The connection type for all three databases, the macro that runs a query on whichever
//! one is configured, and which failures mean the database itself cannot be used.
//!
//! diesel-async has no multi-backend connection in its released versions (diesel's
//! `MultiConnection` derive is synchronous), so [`DbConnection`] is a plain enum and
//! [`per_backend!`](crate::storage::connection::per_backend) expands each query once per
//! backend.

use std::path::Path;

use diesel::SqliteConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncMysqlConnection, AsyncPgConnection};

/// One connection to whichever database is configured.
#[expect(
    clippy::large_enum_variant,
    reason = "at most eight exist, each in its pool slot; a boxed variant would not be an AsyncConnection"
)]
pub enum DbConnection {
    /// SQLite (bundled), whose calls run on tokio's blocking pool: SQLite has no network
    /// protocol to wait on, only the disk.
    Sqlite(SyncConnectionWrapper<SqliteConnection>),
    /// PostgreSQL, through tokio-postgres.
    Postgresql(AsyncPgConnection),
    /// MySQL or MariaDB, through mysql_async.
    Mysql(AsyncMysqlConnection),
}

/// Which database a [`DbConnection`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// SQLite.
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
}

impl Backend {
    /// Its name in reports (`sqlite`, `postgres`, `mysql`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
            Self::Mysql => "mysql",
        }
    }
}

/// Evaluates `$body` with `$c` bound to the backend's own connection (`$conn` is a
/// `&mut DbConnection`): the body is compiled once for each backend.
macro_rules! per_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::storage::DbConnection::Sqlite($c) => $body,
            $crate::storage::DbConnection::Postgresql($c) => $body,
            $crate::storage::DbConnection::Mysql($c) => $body,
        }
    };
}
pub(crate) use per_backend;

/// `result`, with a unique-key collision as [`StorageError::Duplicate`]: what an insert or
/// rename of something that must be unique (a credential, a token, a signature) answers
/// when it exists already.
pub(crate) fn duplicate_on_conflict<T>(result: Result<T, DieselError>) -> Result<T, super::StorageError> {
    match result {
        Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Err(super::StorageError::Duplicate),
        other => other.map_err(Into::into),
    }
}

/// What SQLite answers (`sqlite3_errmsg`) when the database cannot be written or read at
/// the file level: it turned read-only, the disk failed or is full, the file went away.
const SQLITE_STORAGE_FAULTS: &[&str] = &[
    "attempt to write a readonly database",
    "disk I/O error",
    "unable to open database file",
    "database or disk is full",
];

/// How mysql_async reports a broken connection (as opposed to an error from the server).
const MYSQL_TRANSPORT_FAULTS: &[&str] = &["Input/output error", "Driver error", "TLS error"];

/// Whether `e` says the database itself cannot be used now (rather than that a query was
/// wrong or a constraint refused it): such a connection is not reused, and the error is
/// reported as the database being unavailable.
pub fn is_storage_fault(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(
            DatabaseErrorKind::ReadOnlyTransaction
            | DatabaseErrorKind::ClosedConnection
            | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            let message = info.message();
            SQLITE_STORAGE_FAULTS.iter().chain(MYSQL_TRANSPORT_FAULTS).any(|fault| message.starts_with(fault))
        }
        _ => false,
    }
}

/// Whether this process may write the SQLite database at `path`, its write-ahead log and its
/// shared-memory index (a missing file counts as writable: SQLite creates it).
///
/// `access(2)` rather than opening the files: closing any descriptor of the database file
/// would release the POSIX locks SQLite's own connections hold on it.
pub fn sqlite_writable(path: &Path) -> bool {
    ["", "-wal", "-shm"].iter().all(|suffix| {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        may_write(Path::new(&file))
    })
}

#[cfg(unix)]
fn may_write(path: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; access(2)
    // only reads it.
    if unsafe { libc::access(c_path.as_ptr(), libc::W_OK) } == 0 {
        return true;
    }
    std::io::Error::last_os_error().kind() == std::io::ErrorKind::NotFound
}

#[cfg(not(unix))]
fn may_write(path: &Path) -> bool {
    std::fs::metadata(path).map_or(true, |m| !m.permissions().readonly())
}

#[cfg(test)]
mod tests {
    use diesel::connection::SimpleConnection;
    use diesel::prelude::*;

    use super::*;

    #[test]
    fn read_only_sqlite_is_a_storage_fault_and_constraints_are_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        let path = path.to_str().unwrap();
        let mut writer = SqliteConnection::establish(path).unwrap();
        writer.batch_execute("CREATE TABLE t (x INTEGER PRIMARY KEY); INSERT INTO t VALUES (1);").unwrap();
        let duplicate = diesel::sql_query("INSERT INTO t VALUES (1)").execute(&mut writer).unwrap_err();
        assert!(!is_storage_fault(&duplicate), "{duplicate}");
        let syntax = diesel::sql_query("INSERT INTO nowhere VALUES (1)").execute(&mut writer).unwrap_err();
        assert!(!is_storage_fault(&syntax), "{syntax}");

        let mut reader = SqliteConnection::establish(&format!("file:{path}?mode=ro")).unwrap();
        let refused = diesel::sql_query("INSERT INTO t VALUES (2)").execute(&mut reader).unwrap_err();
        assert!(is_storage_fault(&refused), "{refused}");
    }

    #[test]
    fn broken_network_connections_are_storage_faults() {
        let unsent = DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, Box::new("closed".to_string()));
        assert!(is_storage_fault(&unsent));
        let io = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new("Input/output error: broken pipe".to_string()),
        );
        assert!(is_storage_fault(&io));
        let server = DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new("Unknown column".to_string()));
        assert!(!is_storage_fault(&server));
    }

    #[test]
    fn missing_sqlite_files_count_as_writable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        assert!(sqlite_writable(&path), "nothing exists yet: SQLite creates the files");
        std::fs::write(&path, b"").unwrap();
        assert!(sqlite_writable(&path));
    }
}
