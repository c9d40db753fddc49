//! Where the configured database is and how to open one connection to it: the SQLite file
//! (created private), or a PostgreSQL or MySQL/MariaDB server over TCP, with TLS through
//! rustls when `storage.*.tls` is set. Per-connection settings (SQLite pragmas, UTC, the
//! PostgreSQL schema) are applied here, so every pooled connection has them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::{Connection, SqliteConnection};
use diesel_async::sync_connection_wrapper::SyncConnectionWrapper;
use diesel_async::{AsyncMysqlConnection, AsyncPgConnection};
use mysql_async::{ClientIdentity, OptsBuilder, SslOpts};
use tokio_postgres::config::SslMode;
use tokio_postgres::tls::MakeTlsConnect;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::StorageError;
use super::connection::{Backend, DbConnection, sqlite_writable};
use crate::config::schema::{SqlStorage, Storage as StorageConfig, Tls};
use crate::config::validate::parse_service_address;

/// Connect timeout when `storage.*.timeout` is not set (and always for SQLite).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// SQLite settings, run on every new connection. The busy timeout turns lock contention into
/// a short wait instead of an error, so it comes first (a connection opened while another
/// closes would otherwise fail on journal_mode); WAL lets readers proceed during a write.
const SQLITE_PRAGMAS: &str =
    "PRAGMA busy_timeout = 5000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;";

/// How to open a connection to the configured database.
#[expect(clippy::large_enum_variant, reason = "one exists per pool")]
pub enum Target {
    /// The SQLite database file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres { config: tokio_postgres::Config, tls: Option<PgTls> },
    /// A MySQL or MariaDB server.
    Mysql(mysql_async::Opts),
}

/// A connection and what was true when it was opened.
pub struct Opened {
    /// The connection.
    pub conn: DbConnection,
    /// SQLite could not open the database for writing. SQLite then opens it read-only
    /// without an error, and the connection stays read-only for its whole life, even once
    /// the file is writable again.
    pub read_only: bool,
}

impl Target {
    /// The target `config` describes, with its connect timeout. TLS material (trusted
    /// certificates, client certificate) is read here, once.
    pub fn from_config(
        config: &StorageConfig,
        certificates_directory: Option<&Path>,
    ) -> Result<(Self, Duration), StorageError> {
        if let Some(local) = &config.local {
            let path = local.path.clone().unwrap_or_default();
            if let Some(dir) = Path::new(&path).parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::config::embedded::create_private_dir(dir).map_err(StorageError::Unavailable)?;
            }
            create_private_file(&path)?;
            return Ok((Self::Sqlite(PathBuf::from(path)), DEFAULT_TIMEOUT));
        }
        let (sql, backend) = match (&config.postgres, &config.mysql) {
            (Some(pg), _) => (pg, Backend::Postgres),
            (None, Some(my)) => (my, Backend::Mysql),
            (None, None) => return Err(StorageError::Unavailable("no storage backend is configured".into())),
        };
        let timeout = sql.timeout.map_or(DEFAULT_TIMEOUT, |t| t.get());
        let server = Server::from_config(sql, backend)?;
        let target = match backend {
            Backend::Postgres => postgres(sql, &server, timeout, certificates_directory)?,
            _ => mysql(sql, &server, certificates_directory)?,
        };
        Ok((target, timeout))
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres { .. } => Backend::Postgres,
            Self::Mysql(_) => Backend::Mysql,
        }
    }

    /// The SQLite database file, if this is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match self {
            Self::Sqlite(path) => Some(path),
            _ => None,
        }
    }

    /// Opens one connection with the per-connection settings applied.
    pub async fn connect(&self) -> Result<Opened, StorageError> {
        let unavailable = |e: &dyn std::error::Error| StorageError::Unavailable(explain(with_causes(e)));
        match self {
            Self::Sqlite(path) => {
                // Checked before opening: if the file becomes writable in between, the
                // connection is merely replaced at its first checkout.
                let read_only = !sqlite_writable(path);
                let path = path.clone();
                let conn = tokio::task::spawn_blocking(move || {
                    let url = path.to_str().ok_or_else(|| "the database path is not UTF-8".to_string())?;
                    let mut conn = SqliteConnection::establish(url).map_err(|e| e.to_string())?;
                    conn.batch_execute(SQLITE_PRAGMAS).map_err(|e| e.to_string())?;
                    Ok::<_, String>(conn)
                })
                .await
                .map_err(|e| unavailable(&e))?
                .map_err(StorageError::Unavailable)?;
                Ok(Opened { conn: DbConnection::Sqlite(SyncConnectionWrapper::new(conn)), read_only })
            }
            Self::Postgres { config, tls } => {
                let conn = match tls {
                    None => {
                        let (client, connection) =
                            config.connect(tokio_postgres::NoTls).await.map_err(|e| unavailable(&e))?;
                        AsyncPgConnection::try_from_client_and_connection(client, connection).await
                    }
                    Some(tls) => {
                        let (client, connection) = config.connect(tls.clone()).await.map_err(|e| unavailable(&e))?;
                        AsyncPgConnection::try_from_client_and_connection(client, connection).await
                    }
                }
                .map_err(|e| unavailable(&e))?;
                Ok(Opened { conn: DbConnection::Postgresql(conn), read_only: false })
            }
            Self::Mysql(opts) => {
                let conn = mysql_async::Conn::new(opts.clone()).await.map_err(|e| unavailable(&e))?;
                let conn = AsyncMysqlConnection::try_from(conn).await.map_err(|e| unavailable(&e))?;
                Ok(Opened { conn: DbConnection::Mysql(conn), read_only: false })
            }
        }
    }
}

/// `e` and every error under it ("db error: FATAL: ..." rather than "db error"), leaving
/// out a cause whose text its parent already repeats.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Adds what to do about an untrusted server certificate to `message`.
fn explain(message: String) -> String {
    if message.contains("UnknownIssuer") {
        format!(
            "{message} (the certificate authority of the database server is not trusted: \
             add it to the directory named by certificates_directory)"
        )
    } else {
        message
    }
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

/// Host and port of a database server.
struct Server {
    host: String,
    port: u16,
}

impl Server {
    fn from_config(config: &SqlStorage, backend: Backend) -> Result<Self, StorageError> {
        let address = config.address.as_deref().unwrap_or_default();
        let parsed = parse_service_address(address, &["tcp", "tcp4", "tcp6"]).map_err(StorageError::Unavailable)?;
        let host = match parsed.host() {
            Some(url::Host::Domain(name)) => name.to_string(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(StorageError::Unavailable(format!("address '{address}' has no host"))),
        };
        let default_port = if backend == Backend::Postgres { 5432 } else { 3306 };
        Ok(Self { host, port: parsed.port().unwrap_or(default_port) })
    }
}

/// The configuration key of `backend`'s TLS settings.
fn tls_key(backend: Backend) -> &'static str {
    if backend == Backend::Postgres { "storage.postgres.tls" } else { "storage.mysql.tls" }
}

/// Escapes a value for the PostgreSQL `options` startup parameter (spaces separate options).
fn escape_option(value: &str) -> String {
    value.replace('\\', "\\\\").replace(' ', "\\ ")
}

fn postgres(
    config: &SqlStorage,
    server: &Server,
    timeout: Duration,
    certificates_directory: Option<&Path>,
) -> Result<Target, StorageError> {
    let mut pg = tokio_postgres::Config::new();
    pg.host(&server.host)
        .port(server.port)
        .user(config.username.as_deref().unwrap_or_default())
        .dbname(config.database.as_deref().unwrap_or_default())
        .application_name("portcullis")
        .connect_timeout(timeout);
    if !config.password.is_empty() {
        pg.password(config.password.expose());
    }
    // Set in the startup packet, so a new connection costs no extra round trip.
    let mut options = "-c TimeZone=UTC".to_string();
    if let Some(schema) = config.schema.as_deref().filter(|s| !s.is_empty()) {
        options.push_str(&format!(" -c search_path={}", escape_option(schema)));
    }
    pg.options(&options);
    let tls = match &config.tls {
        None => {
            pg.ssl_mode(SslMode::Disable);
            None
        }
        Some(tls) => {
            pg.ssl_mode(SslMode::Require);
            let key = tls_key(Backend::Postgres);
            let anchors = if tls.skip_verify {
                Vec::new()
            } else {
                crate::tls::trust_anchors(certificates_directory).map_err(StorageError::Unavailable)?
            };
            let client = crate::tls::client_config(key, tls, &anchors).map_err(StorageError::Unavailable)?;
            Some(PgTls { inner: MakeRustlsConnect::new(client), server_name: server_name(tls) })
        }
    };
    Ok(Target::Postgres { config: pg, tls })
}

/// `tls.server_name`, when set.
fn server_name(tls: &Tls) -> Option<Arc<str>> {
    Some(tls.server_name.trim()).filter(|s| !s.is_empty()).map(Arc::from)
}

/// TLS to PostgreSQL: rustls, verifying the certificate against `server_name` when set and
/// the host of `storage.postgres.address` otherwise.
#[derive(Clone)]
pub struct PgTls {
    inner: MakeRustlsConnect,
    server_name: Option<Arc<str>>,
}

impl MakeTlsConnect<tokio_postgres::Socket> for PgTls {
    type Stream = <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Stream;
    type TlsConnect = <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::TlsConnect;
    type Error = <MakeRustlsConnect as MakeTlsConnect<tokio_postgres::Socket>>::Error;

    fn make_tls_connect(&mut self, hostname: &str) -> Result<Self::TlsConnect, Self::Error> {
        let name = self.server_name.clone();
        MakeTlsConnect::<tokio_postgres::Socket>::make_tls_connect(&mut self.inner, name.as_deref().unwrap_or(hostname))
    }
}

fn mysql(config: &SqlStorage, server: &Server, certificates_directory: Option<&Path>) -> Result<Target, StorageError> {
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(server.host.clone())
        .tcp_port(server.port)
        .user(config.username.clone())
        .db_name(config.database.clone())
        // mysql_async would otherwise switch to the server's Unix socket when it runs on this
        // machine, bypassing the configured address and TLS.
        .prefer_socket(false)
        .init(vec!["SET time_zone = '+00:00'"]);
    if !config.password.is_empty() {
        opts = opts.pass(Some(config.password.expose().to_string()));
    }
    if let Some(tls) = &config.tls {
        opts = opts.ssl_opts(mysql_tls(tls, certificates_directory)?);
    }
    Ok(Target::Mysql(opts.into()))
}

/// mysql_async builds its own rustls configuration from these options: the trusted
/// certificates are handed over as DER and its built-in root list is turned off, so it
/// trusts exactly what PostgreSQL does. It offers no way to bound the TLS versions, which
/// configuration validation refuses for MySQL.
fn mysql_tls(tls: &Tls, certificates_directory: Option<&Path>) -> Result<SslOpts, StorageError> {
    let key = tls_key(Backend::Mysql);
    let mut ssl = SslOpts::default()
        // With skip_verify mysql_async still builds a verifier (it then ignores it), which
        // needs at least one root: its built-in list serves for that.
        .with_disable_built_in_roots(!tls.skip_verify)
        .with_danger_accept_invalid_certs(tls.skip_verify)
        .with_danger_tls_hostname_override(server_name(tls).map(|name| name.to_string()));
    if !tls.skip_verify {
        let anchors = crate::tls::trust_anchors(certificates_directory).map_err(StorageError::Unavailable)?;
        if anchors.is_empty() {
            return Err(StorageError::Unavailable(format!(
                "{key}: no trusted certificate authority: the system has none and certificates_directory adds none"
            )));
        }
        // DER, which mysql_async takes when a buffer holds no PEM.
        ssl = ssl.with_root_certs(anchors.into_iter().map(|der| der.to_vec().into()).collect());
    }
    if let Some((_, private_key)) = crate::tls::client_identity(key, tls).map_err(StorageError::Unavailable)? {
        // mysql_async reads PKCS#1 RSA keys only; handed over as DER, which it takes as that.
        let private_key = crate::tls::rsa_pkcs1_der(&private_key).ok_or_else(|| {
            StorageError::Unavailable(format!("{key}.private_key: MySQL client certificates need an RSA key"))
        })?;
        let chain = tls.certificate_chain.clone().into_bytes();
        ssl = ssl.with_client_identity(Some(ClientIdentity::new(chain.into(), private_key.into())));
    }
    Ok(ssl)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_are_appended_once() {
        let io = std::io::Error::other("connection refused");
        assert_eq!(with_causes(&io), "connection refused");
        #[derive(Debug, thiserror::Error)]
        #[error("db error")]
        struct Outer(#[source] std::io::Error);
        assert_eq!(with_causes(&Outer(std::io::Error::other("FATAL: no"))), "db error: FATAL: no");
    }

    #[test]
    fn options_escape_spaces() {
        assert_eq!(escape_option("a b\\c"), "a\\ b\\\\c");
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        let config = SqlStorage { address: Some("tcp://[::1]:5433".into()), ..SqlStorage::default() };
        let server = Server::from_config(&config, Backend::Postgres).unwrap();
        assert_eq!((server.host.as_str(), server.port), ("::1", 5433));
        let config = SqlStorage { address: Some("tcp://db.example.com".into()), ..SqlStorage::default() };
        assert_eq!(Server::from_config(&config, Backend::Mysql).unwrap().port, 3306);
    }
}
