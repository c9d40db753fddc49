//! The connection type for all three databases, how to reach each, and how the pool
//! opens, checks and discards connections.

use std::path::{Path, PathBuf};
use std::time::Duration;

use diesel::ConnectionError;
use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{ConnectionManager, Error as R2d2Error, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;

use super::StorageError;
use crate::config::schema::{SqlStorage, Storage as StorageConfig};
use crate::config::validate::parse_service_address;

/// One connection to whichever database is configured.
#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    /// SQLite.
    Sqlite(SqliteConnection),
    /// PostgreSQL.
    Postgresql(PgConnection),
    /// MySQL or MariaDB.
    Mysql(MysqlConnection),
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

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The backend, connection URL and connect timeout for `config`.
pub fn target(config: &StorageConfig) -> Result<(Backend, String, Duration), StorageError> {
    if let Some(local) = &config.local {
        let path = local.path.clone().unwrap_or_default();
        if let Some(dir) = std::path::Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::config::embedded::create_private_dir(dir).map_err(StorageError::Unavailable)?;
        }
        create_private_file(&path)?;
        return Ok((Backend::Sqlite, path, DEFAULT_TIMEOUT));
    }
    if let Some(pg) = &config.postgres {
        return sql_url(pg, Backend::Postgres);
    }
    if let Some(my) = &config.mysql {
        return sql_url(my, Backend::Mysql);
    }
    Err(StorageError::Unavailable("no storage backend is configured".into()))
}

/// Creates the SQLite file readable by its owner only (SQLite would create it world-readable),
/// leaving an existing file as it is.
fn create_private_file(path: &str) -> Result<(), StorageError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(StorageError::Unavailable(format!("cannot create database file '{path}': {e}"))),
    }
}

fn sql_url(config: &SqlStorage, backend: Backend) -> Result<(Backend, String, Duration), StorageError> {
    let address = config.address.as_deref().unwrap_or_default();
    let parsed = parse_service_address(address, &["tcp", "tcp4", "tcp6"]).map_err(StorageError::Unavailable)?;
    let (scheme, default_port) = match backend {
        Backend::Postgres => ("postgres", 5432),
        _ => ("mysql", 3306),
    };
    let timeout = config.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get());
    let mut url =
        url::Url::parse(&format!("{scheme}://placeholder/")).map_err(|e| StorageError::Unavailable(e.to_string()))?;
    let invalid = |what: &str| StorageError::Unavailable(format!("invalid database {what}"));
    url.set_host(parsed.host_str()).map_err(|_| invalid("host"))?;
    url.set_port(Some(parsed.port().unwrap_or(default_port))).map_err(|_| invalid("port"))?;
    url.set_username(config.username.as_deref().unwrap_or_default()).map_err(|_| invalid("username"))?;
    if !config.password.is_empty() {
        url.set_password(Some(config.password.expose())).map_err(|_| invalid("password"))?;
    }
    url.path_segments_mut().map_err(|_| invalid("name"))?.clear().push(config.database.as_deref().unwrap_or_default());
    {
        let mut query = url.query_pairs_mut();
        match (backend, &config.tls) {
            (Backend::Postgres, tls) => {
                query.append_pair("connect_timeout", &timeout.as_secs().max(1).to_string());
                let mode = match tls {
                    None => "disable",
                    Some(t) if t.skip_verify => "require",
                    Some(_) => "verify-full",
                };
                query.append_pair("sslmode", mode);
                if let Some(schema) = config.schema.as_deref().filter(|s| !s.is_empty()) {
                    query.append_pair("options", &format!("-c search_path={schema}"));
                }
            }
            (_, Some(t)) => {
                query.append_pair("ssl_mode", if t.skip_verify { "required" } else { "verify_identity" });
            }
            (_, None) => {}
        }
    }
    Ok((backend, url.to_string(), timeout))
}

/// Opens pooled connections with the per-connection settings, and keeps connections that
/// can no longer write out of the pool.
pub struct Manager {
    inner: ConnectionManager<DbConnection>,
    backend: Backend,
    /// The SQLite database file (`None` for the network databases).
    sqlite_path: Option<PathBuf>,
}

/// A pooled connection and what the pool knows about it.
pub struct Pooled {
    /// The connection itself.
    pub conn: DbConnection,
    /// SQLite could not open the database for writing when this connection was opened. SQLite
    /// then opens it read-only without an error, and the connection stays read-only for its
    /// whole life, even once the file is writable again.
    read_only: bool,
    /// A failure showed the connection cannot be trusted any more.
    broken: bool,
}

impl Pooled {
    /// Closes the connection when it goes back to the pool instead of reusing it.
    pub fn discard(&mut self) {
        self.broken = true;
    }
}

impl Manager {
    /// A manager for the database at `url` (for SQLite, the file's path).
    pub fn new(backend: Backend, url: String) -> Self {
        let sqlite_path = (backend == Backend::Sqlite).then(|| PathBuf::from(&url));
        Self { inner: ConnectionManager::new(url), backend, sqlite_path }
    }

    fn settings(&self) -> &'static str {
        match self.backend {
            // WAL lets readers proceed during a write; the busy timeout turns lock
            // contention into a short wait instead of an error, so it comes first (a
            // connection opened while another closes would otherwise fail on journal_mode).
            Backend::Sqlite => {
                "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            }
            Backend::Postgres => "SET TIME ZONE 'UTC';",
            Backend::Mysql => "SET time_zone = '+00:00';",
        }
    }
}

impl ManageConnection for Manager {
    type Connection = Pooled;
    type Error = R2d2Error;

    fn connect(&self) -> Result<Pooled, R2d2Error> {
        // Checked before opening: if the file becomes writable in between, the connection
        // is merely replaced at its first checkout.
        let read_only = self.sqlite_path.as_deref().is_some_and(|path| !sqlite_writable(path));
        let mut conn = self.inner.connect()?;
        conn.batch_execute(self.settings()).map_err(R2d2Error::QueryError)?;
        Ok(Pooled { conn, read_only, broken: false })
    }

    fn is_valid(&self, conn: &mut Pooled) -> Result<(), R2d2Error> {
        if conn.read_only && self.sqlite_path.as_deref().is_some_and(sqlite_writable) {
            return Err(R2d2Error::ConnectionError(ConnectionError::BadConnection(
                "opened while the database was read-only; it is writable again".into(),
            )));
        }
        self.inner.is_valid(&mut conn.conn)
    }

    fn has_broken(&self, conn: &mut Pooled) -> bool {
        conn.broken || self.inner.has_broken(&mut conn.conn)
    }
}

/// Whether this process may write the SQLite database at `path`, its write-ahead log and its
/// shared-memory index (a missing file counts as writable: SQLite creates it).
///
/// `access(2)` rather than opening the files: closing any descriptor of the database file
/// would release the POSIX locks SQLite's own connections hold on it.
fn sqlite_writable(path: &Path) -> bool {
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

/// What SQLite answers (`sqlite3_errmsg`) when the database cannot be written or read at
/// the file level: it turned read-only, the disk failed or is full, the file went away.
const SQLITE_STORAGE_FAULTS: &[&str] = &[
    "attempt to write a readonly database",
    "disk I/O error",
    "unable to open database file",
    "database or disk is full",
];

/// Whether `e` says the database itself cannot be used now (rather than that a query was
/// wrong or a constraint refused it): such a connection is not reused, and the error is
/// reported as the database being unavailable.
pub fn is_storage_fault(e: &DieselError) -> bool {
    match e {
        DieselError::DatabaseError(DatabaseErrorKind::ReadOnlyTransaction | DatabaseErrorKind::ClosedConnection, _) => {
            true
        }
        DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
            SQLITE_STORAGE_FAULTS.iter().any(|fault| info.message().starts_with(fault))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
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
    fn missing_sqlite_files_count_as_writable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db.sqlite3");
        assert!(sqlite_writable(&path), "nothing exists yet: SQLite creates the files");
        std::fs::write(&path, b"").unwrap();
        assert!(sqlite_writable(&path));
    }
}
