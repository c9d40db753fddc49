//! Reading an Authelia database (SQLite, PostgreSQL or MySQL, schema of Authelia 4.38 to
//! 4.39), for `storage import-authelia`. Only reads: the database is opened without
//! running our migrations, and nothing is written to it. Secret columns come back as
//! Authelia sealed them; the importer opens them with Authelia's key.
//!
//! The queries are plain SQL because the tables are Authelia's, not ours; only how a
//! timestamp becomes Unix seconds and how an integer is cast differ between the backends.

use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};
use diesel_async::RunQueryDsl;

use super::StorageError;
use super::connection::{Backend, DbConnection, per_backend};
use super::target::Target;
use crate::config::schema::Storage as StorageConfig;

/// The oldest schema read: 12 (Authelia 4.38) brought `webauthn_credentials`.
pub const OLDEST_SCHEMA: i64 = 12;
/// The newest schema read: 24 (Authelia 4.39). Later ones seal values differently.
pub const NEWEST_SCHEMA: i64 = 24;
/// Schema that brought `banned_user` and `banned_ip`.
const BANS_SCHEMA: i64 = 20;
/// Schema that renamed `attestation_type` to `attestation_format`.
const ATTESTATION_FORMAT_SCHEMA: i64 = 24;

/// An open Authelia database.
pub struct AutheliaDatabase {
    conn: DbConnection,
    backend: Backend,
    /// Its schema version (`migrations.version_after` of the newest row).
    pub schema: i64,
}

/// A TOTP configuration (`totp_configurations`).
#[derive(Debug, QueryableByName)]
pub struct AutheliaTotp {
    /// Owner.
    #[diesel(sql_type = Text)]
    pub username: String,
    /// Issuer, when set.
    #[diesel(sql_type = Nullable<Text>)]
    pub issuer: Option<String>,
    /// SHA1, SHA256 or SHA512.
    #[diesel(sql_type = Text)]
    pub algorithm: String,
    /// Digits per code.
    #[diesel(sql_type = BigInt)]
    pub digits: i64,
    /// Seconds per code.
    #[diesel(sql_type = BigInt)]
    pub period: i64,
    /// The base32 secret, sealed.
    #[diesel(sql_type = Binary)]
    pub secret: Vec<u8>,
    /// Created (Unix seconds).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    /// Last used.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_used_at: Option<i64>,
}

/// A WebAuthn credential (`webauthn_credentials`).
#[derive(Debug, QueryableByName)]
pub struct AutheliaWebAuthn {
    /// Owner.
    #[diesel(sql_type = Text)]
    pub username: String,
    /// Relying party ID.
    #[diesel(sql_type = Text)]
    pub rpid: String,
    /// The user's name for it.
    #[diesel(sql_type = Text)]
    pub description: String,
    /// Credential ID, standard base64.
    #[diesel(sql_type = Text)]
    pub kid: String,
    /// Authenticator model.
    #[diesel(sql_type = Nullable<Text>)]
    pub aaguid: Option<String>,
    /// Attestation format.
    #[diesel(sql_type = Nullable<Text>)]
    pub attestation_format: Option<String>,
    /// Transports, comma-separated.
    #[diesel(sql_type = Nullable<Text>)]
    pub transport: Option<String>,
    /// Signature counter.
    #[diesel(sql_type = BigInt)]
    pub sign_count: i64,
    /// The counter went backwards once.
    #[diesel(sql_type = Bool)]
    pub clone_warning: bool,
    /// Migrated from U2F.
    #[diesel(sql_type = Bool)]
    pub legacy: bool,
    /// A passkey.
    #[diesel(sql_type = Bool)]
    pub discoverable: bool,
    /// User verified at registration.
    #[diesel(sql_type = Bool)]
    pub verified: bool,
    /// May be synced.
    #[diesel(sql_type = Bool)]
    pub backup_eligible: bool,
    /// Is synced.
    #[diesel(sql_type = Bool)]
    pub backup_state: bool,
    /// The COSE public key, sealed.
    #[diesel(sql_type = Binary)]
    pub public_key: Vec<u8>,
    /// Registered (Unix seconds).
    #[diesel(sql_type = Nullable<BigInt>)]
    pub created_at: Option<i64>,
    /// Last used.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub last_used_at: Option<i64>,
}

/// A preferred second factor (`user_preferences`).
#[derive(Debug, QueryableByName)]
pub struct AutheliaPreference {
    /// The user.
    #[diesel(sql_type = Text)]
    pub username: String,
    /// `totp`, `webauthn` or `mobile_push`.
    #[diesel(sql_type = Text)]
    pub second_factor_method: String,
}

/// A ban in force (`banned_user`, `banned_ip`).
#[derive(Debug, QueryableByName)]
pub struct AutheliaBan {
    /// The username or the address.
    #[diesel(sql_type = Text)]
    pub subject: String,
    /// Its end; `None` for a permanent ban.
    #[diesel(sql_type = Nullable<BigInt>)]
    pub expires: Option<i64>,
    /// Why.
    #[diesel(sql_type = Nullable<Text>)]
    pub reason: Option<String>,
}

/// An OpenID Connect subject (`user_opaque_identifier`, service `openid`).
#[derive(Debug, QueryableByName)]
pub struct AutheliaSubject {
    /// Sector (empty: provider-wide).
    #[diesel(sql_type = Text)]
    pub sector_id: String,
    /// The user.
    #[diesel(sql_type = Text)]
    pub username: String,
    /// The `sub` relying parties know.
    #[diesel(sql_type = Text)]
    pub identifier: String,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = BigInt)]
    version: i64,
}

#[derive(QueryableByName)]
struct Sealed {
    #[diesel(sql_type = Binary)]
    value: Vec<u8>,
}

impl AutheliaDatabase {
    /// Opens the database `config` describes (an Authelia `storage` section) and reads its
    /// schema version; refuses a schema this reader does not know.
    pub async fn open(
        config: &StorageConfig,
        certificates_directory: Option<&std::path::Path>,
    ) -> Result<Self, StorageError> {
        if let Some(path) = config.local.as_ref().and_then(|l| l.path.as_deref()) {
            // Opening would create an empty file: say the database is not there instead.
            if !std::path::Path::new(path).is_file() {
                return Err(StorageError::Unavailable(format!("no SQLite database at '{path}'")));
            }
        }
        let (target, _) = Target::from_config(config, certificates_directory)?;
        let backend = target.backend();
        let mut conn = target.connect().await?.conn;
        let int = cast_int(backend, "version_after");
        let query = format!("SELECT {int} AS version FROM migrations ORDER BY id DESC LIMIT 1");
        let versions: Vec<Version> = per_backend!(&mut conn, |c| diesel::sql_query(&query).load(c).await)
            .map_err(|e| StorageError::Unavailable(format!("not an Authelia database (no migrations table): {e}")))?;
        let schema = <[Version]>::first(&versions).map(|v| v.version).ok_or_else(|| {
            StorageError::Unavailable("the Authelia database has no schema yet (Authelia never started on it)".into())
        })?;
        if !(OLDEST_SCHEMA..=NEWEST_SCHEMA).contains(&schema) {
            return Err(StorageError::Unavailable(format!(
                "Authelia schema version {schema} is not supported (versions {OLDEST_SCHEMA} to {NEWEST_SCHEMA}: \
                 Authelia 4.38 and 4.39); run Authelia 4.39 on it first"
            )));
        }
        Ok(Self { conn, backend, schema })
    }

    /// The sealed key-check value (`encryption` row `check`), if there is one.
    pub async fn key_check(&mut self) -> Result<Option<Vec<u8>>, StorageError> {
        let query = "SELECT value FROM encryption WHERE name = 'check'";
        let rows: Vec<Sealed> = per_backend!(&mut self.conn, |c| diesel::sql_query(query).load(c).await)?;
        Ok(rows.into_iter().next().map(|r| r.value))
    }

    /// Every TOTP configuration.
    pub async fn totp(&mut self) -> Result<Vec<AutheliaTotp>, StorageError> {
        let b = self.backend;
        let query = format!(
            "SELECT username, issuer, algorithm, {digits} AS digits, {period} AS period, secret, \
             {created} AS created_at, {used} AS last_used_at FROM totp_configurations ORDER BY id",
            digits = cast_int(b, "digits"),
            period = cast_int(b, "period"),
            created = epoch(b, "created_at"),
            used = epoch(b, "last_used_at"),
        );
        Ok(per_backend!(&mut self.conn, |c| diesel::sql_query(&query).load(c).await)?)
    }

    /// Every WebAuthn credential.
    pub async fn webauthn(&mut self) -> Result<Vec<AutheliaWebAuthn>, StorageError> {
        let b = self.backend;
        let format_column =
            if self.schema >= ATTESTATION_FORMAT_SCHEMA { "attestation_format" } else { "attestation_type" };
        let query = format!(
            "SELECT username, rpid, description, kid, aaguid, {format_column} AS attestation_format, transport, \
             {count} AS sign_count, clone_warning, legacy, discoverable, verified, backup_eligible, backup_state, \
             public_key, {created} AS created_at, {used} AS last_used_at FROM webauthn_credentials ORDER BY id",
            count = cast_int(b, "COALESCE(sign_count, 0)"),
            created = epoch(b, "created_at"),
            used = epoch(b, "last_used_at"),
        );
        Ok(per_backend!(&mut self.conn, |c| diesel::sql_query(&query).load(c).await)?)
    }

    /// Every preferred second factor.
    pub async fn preferences(&mut self) -> Result<Vec<AutheliaPreference>, StorageError> {
        let query = "SELECT username, second_factor_method FROM user_preferences ORDER BY id";
        Ok(per_backend!(&mut self.conn, |c| diesel::sql_query(query).load(c).await)?)
    }

    /// The bans in force at `now` on users (`ip` false) or addresses; none before schema 20.
    pub async fn bans(&mut self, ip: bool, now: i64) -> Result<Vec<AutheliaBan>, StorageError> {
        if self.schema < BANS_SCHEMA {
            return Ok(Vec::new());
        }
        let b = self.backend;
        let (table, column) = if ip { ("banned_ip", "ip") } else { ("banned_user", "username") };
        let expires = epoch(b, "expires");
        let query = format!(
            "SELECT {column} AS subject, {expires} AS expires, reason FROM {table} \
             WHERE revoked = FALSE AND expired IS NULL ORDER BY id"
        );
        let rows: Vec<AutheliaBan> = per_backend!(&mut self.conn, |c| diesel::sql_query(&query).load(c).await)?;
        Ok(rows.into_iter().filter(|r| r.expires.is_none_or(|e| e > now)).collect())
    }

    /// Every OpenID Connect subject.
    pub async fn subjects(&mut self) -> Result<Vec<AutheliaSubject>, StorageError> {
        let query =
            "SELECT sector_id, username, identifier FROM user_opaque_identifier WHERE service = 'openid' ORDER BY id";
        Ok(per_backend!(&mut self.conn, |c| diesel::sql_query(query).load(c).await)?)
    }
}

/// `column` (a timestamp) as Unix seconds, NULL staying NULL.
fn epoch(backend: Backend, column: &str) -> String {
    match backend {
        Backend::Sqlite => format!("CAST(strftime('%s', {column}) AS BIGINT)"),
        Backend::Postgres => format!("CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"),
        Backend::Mysql => format!("CAST(UNIX_TIMESTAMP({column}) AS SIGNED)"),
    }
}

/// `expr` as a 64-bit integer.
fn cast_int(backend: Backend, expr: &str) -> String {
    match backend {
        Backend::Mysql => format!("CAST({expr} AS SIGNED)"),
        Backend::Sqlite | Backend::Postgres => format!("CAST({expr} AS BIGINT)"),
    }
}
