//! The connection type for all three databases and how to reach each.

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::mysql::MysqlConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{CustomizeConnection, Error as R2d2Error};
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

/// Per-connection settings applied when the pool opens a connection.
#[derive(Debug)]
pub struct Customizer {
    /// The database kind.
    pub backend: Backend,
}

impl CustomizeConnection<DbConnection, R2d2Error> for Customizer {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), R2d2Error> {
        let sql = match self.backend {
            // WAL lets readers proceed during a write; the busy timeout turns lock
            // contention into a short wait instead of an error.
            Backend::Sqlite => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
            }
            Backend::Postgres => "SET TIME ZONE 'UTC';",
            Backend::Mysql => "SET time_zone = '+00:00';",
        };
        conn.batch_execute(sql).map_err(R2d2Error::QueryError)
    }
}
