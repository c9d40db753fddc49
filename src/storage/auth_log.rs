//! The authentication log: every attempt, for regulation and for auditing.
//!
//! Regulation reserves an attempt before the secret is checked
//! ([`Storage::reserve_attempt`]): under a lock on the user (and client address), the
//! recent attempts are read, the ban decided, and the attempt written — as banned, or as
//! failed until [`Storage::settle_attempt`] says it succeeded. So concurrent guesses are
//! each counted before the next is judged, on every instance sharing the database.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::bans::explicit_ban_expiries;
use super::connection::per_backend;
use super::schema::authentication_logs as log;
use super::{Storage, StorageError};

/// Which step of authentication an attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// Username and password.
    FirstFactor,
    /// Time-based one-time password.
    Totp,
    /// Security key.
    WebAuthn,
    /// Passwordless passkey.
    Passkey,
    /// One-time recovery code.
    RecoveryCode,
    /// Emailed one-time code.
    EmailCode,
    /// Basic credentials on an authz endpoint.
    BasicAuth,
    /// A sign-in through the upstream OpenID provider (nothing to guess here, but bans hold
    /// and the success is logged like any other).
    UpstreamOidc,
    /// Not an attempt: an administrator lifted a ban (a success that clears both kinds).
    Unban,
}

impl AuthType {
    /// The value stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstFactor => "1FA",
            Self::Totp => "TOTP",
            Self::WebAuthn => "WebAuthn",
            Self::Passkey => "Passkey",
            Self::RecoveryCode => "Recovery",
            Self::EmailCode => "EmailCode",
            Self::BasicAuth => "Basic",
            Self::UpstreamOidc => "UpstreamOIDC",
            Self::Unban => "Unban",
        }
    }

    /// The type stored as `text`, if it is one.
    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::FirstFactor,
            Self::Totp,
            Self::WebAuthn,
            Self::Passkey,
            Self::RecoveryCode,
            Self::EmailCode,
            Self::BasicAuth,
            Self::UpstreamOidc,
            Self::Unban,
        ]
        .into_iter()
        .find(|t| t.as_str() == text)
    }

    /// Whether this is a second factor (counted by regulation apart from passwords).
    pub fn is_second_factor(self) -> bool {
        matches!(self, Self::Totp | Self::WebAuthn | Self::RecoveryCode | Self::EmailCode)
    }

    /// The stored names of every first-factor type, or every second-factor type (with the
    /// lifted bans, which count as both).
    fn kinds(second_factor: bool) -> Vec<&'static str> {
        let all = [
            Self::FirstFactor,
            Self::Totp,
            Self::WebAuthn,
            Self::Passkey,
            Self::RecoveryCode,
            Self::EmailCode,
            Self::BasicAuth,
        ];
        let mut kinds: Vec<_> =
            all.into_iter().filter(|t| t.is_second_factor() == second_factor).map(Self::as_str).collect();
        kinds.push(Self::Unban.as_str());
        kinds
    }
}

/// One authentication attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    /// Unix seconds.
    pub time: i64,
    /// Whether it succeeded.
    pub successful: bool,
    /// Whether it was refused because the user was banned (the password was not checked).
    pub banned: bool,
    /// Who it was for.
    pub username: String,
    /// Which step.
    pub auth_type: AuthType,
    /// Client address.
    pub remote_ip: String,
    /// Target URL the user was going to, if any.
    pub request_uri: String,
    /// Method of the original request, if any.
    pub request_method: String,
}

#[derive(Insertable)]
#[diesel(table_name = log)]
struct NewAttempt {
    time: i64,
    successful: bool,
    banned: bool,
    username: String,
    auth_type: String,
    remote_ip: String,
    request_uri: String,
    request_method: String,
}

/// When an attempt happened and how it went (what regulation needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttemptOutcome {
    /// Unix seconds.
    pub time: i64,
    /// Whether it succeeded.
    pub successful: bool,
    /// Whether it was a second factor (a code or key) rather than a password or passkey.
    pub second_factor: bool,
    /// A lifted ban: a success of both kinds.
    pub unban: bool,
}

impl AttemptOutcome {
    fn from_row((time, successful, auth_type): (i64, bool, String)) -> Self {
        let kind = AuthType::parse(&auth_type);
        let second_factor = kind.is_some_and(AuthType::is_second_factor);
        Self { time, successful, second_factor, unban: kind == Some(AuthType::Unban) }
    }
}

/// Which recent attempts a reservation reads before deciding.
#[derive(Clone, Copy, Debug)]
pub struct RegulationWindow {
    /// Only attempts at or after this time count.
    pub since: i64,
    /// How many of the newest attempts of each kind (first and second factor) are read.
    pub limit: i64,
    /// Read the user's attempts.
    pub by_user: bool,
    /// Read the client address's attempts.
    pub by_ip: bool,
}

/// A reserved attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reservation {
    /// Its row (to settle it).
    pub id: i32,
    /// The ban end when it was refused (recorded as banned), `None` when it may proceed.
    pub banned_until: Option<i64>,
}

/// How a reserved attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Settlement {
    /// The secret was right.
    Succeeded,
    /// The secret was wrong (the reservation already says so).
    Failed,
    /// Nothing was checked (the server was busy or failed): the attempt is forgotten.
    NotChecked,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Storage {
    /// Appends `attempt` to the log.
    pub async fn log_attempt(&self, attempt: AuthAttempt) -> Result<(), StorageError> {
        let row = NewAttempt {
            time: attempt.time,
            successful: attempt.successful,
            banned: attempt.banned,
            username: truncate(&attempt.username, 100),
            auth_type: attempt.auth_type.as_str().to_string(),
            remote_ip: truncate(&attempt.remote_ip, 47),
            request_uri: truncate(&attempt.request_uri, 2048),
            request_method: truncate(&attempt.request_method, 8),
        };
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(log::table).values(&row);
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// The newest `limit` attempts by `who` at or after `since` that were actually checked
    /// (refusals of banned users are not counted), newest first.
    pub async fn recent_attempts(
        &self,
        who: AttemptsBy<'_>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AttemptOutcome>, StorageError> {
        self.recent_attempts_of(who, since, limit, None).await
    }

    /// [`Storage::recent_attempts`] of one kind: second factors (`Some(true)`), passwords
    /// and passkeys (`Some(false)`), or both (`None`).
    pub async fn recent_attempts_of(
        &self,
        who: AttemptsBy<'_>,
        since: i64,
        limit: i64,
        second_factor: Option<bool>,
    ) -> Result<Vec<AttemptOutcome>, StorageError> {
        let kinds: Option<Vec<&'static str>> = second_factor.map(AuthType::kinds);
        let (by_ip, value) = match who {
            AttemptsBy::User(u) => (false, u.to_string()),
            AttemptsBy::Ip(ip) => (true, ip.to_string()),
        };
        self.run(move |conn| {
            async move {
                let query = log::table
                    .filter(log::time.ge(since))
                    .filter(log::banned.eq(false))
                    .order((log::time.desc(), log::id.desc()))
                    .limit(limit)
                    .select((log::time, log::successful, log::auth_type));
                // Boxed inside each arm: a boxed query is tied to one backend.
                Ok(per_backend!(conn, |c| {
                    let mut query = query.into_boxed();
                    if let Some(kinds) = &kinds {
                        query = query.filter(log::auth_type.eq_any(kinds));
                    }
                    let query = if by_ip {
                        query.filter(log::remote_ip.eq(&value))
                    } else {
                        query.filter(log::username.eq(&value))
                    };
                    query.load::<(i64, bool, String)>(c).await
                })?
                .into_iter()
                .map(AttemptOutcome::from_row)
                .collect())
            }
            .boxed()
        })
        .await
    }

    /// Reserves `attempt` under regulation: holding a lock on the user and the client
    /// address, reads their recent attempts (per `window`, each kind newest first, banned refusals
    /// not counted), asks `decide` for a ban end, and writes the attempt — banned, or
    /// failed until settled. Concurrent reservations for one user or address are judged
    /// one after another, each seeing those before it.
    pub async fn reserve_attempt<F>(
        &self,
        attempt: AuthAttempt,
        window: RegulationWindow,
        decide: F,
    ) -> Result<Reservation, StorageError>
    where
        F: FnOnce(&[AttemptOutcome], &[AttemptOutcome]) -> Option<i64> + Send + 'static,
    {
        let row = NewAttempt {
            time: attempt.time,
            successful: false,
            banned: false,
            username: truncate(&attempt.username, 100),
            auth_type: attempt.auth_type.as_str().to_string(),
            remote_ip: truncate(&attempt.remote_ip, 47),
            request_uri: truncate(&attempt.request_uri, 2048),
            request_method: truncate(&attempt.request_method, 8),
        };
        let lock_keys: Vec<String> = [
            Some(format!("portcullis-regulation-user:{}", row.username)),
            (window.by_ip && !row.remote_ip.is_empty()).then(|| format!("portcullis-regulation-ip:{}", row.remote_ip)),
        ]
        .into_iter()
        .flatten()
        .collect();
        self.run(move |conn| {
            async move {
                // Within the transaction: write first (SQLite then holds its write lock, so
                // no read-to-write upgrade can deadlock), read the attempts before this one,
                // decide, mark a refusal.
                macro_rules! reserve {
                    ($c:expr) => {{
                        let c = $c;
                        diesel::insert_into(log::table).values(&row).execute(c).await?;
                        let id: i32 = log::table
                            .filter(log::username.eq(&row.username))
                            .order(log::id.desc())
                            .select(log::id)
                            .first(c)
                            .await?;
                        let recent = |by_ip: bool, second_factor: bool| {
                            let query = log::table
                                .filter(log::time.ge(window.since))
                                .filter(log::banned.eq(false))
                                .filter(log::id.lt(id))
                                .filter(log::auth_type.eq_any(AuthType::kinds(second_factor)))
                                .order((log::time.desc(), log::id.desc()))
                                .limit(window.limit)
                                .select((log::time, log::successful, log::auth_type))
                                .into_boxed();
                            if by_ip {
                                query.filter(log::remote_ip.eq(row.remote_ip.clone()))
                            } else {
                                query.filter(log::username.eq(row.username.clone()))
                            }
                        };
                        // Each kind apart: the newest of one kind must not push the other's
                        // out of the limit.
                        let mut by_user: Vec<(i64, bool, String)> = Vec::new();
                        let mut by_ip: Vec<(i64, bool, String)> = Vec::new();
                        for second_factor in [false, true] {
                            if window.by_user {
                                by_user.extend(recent(false, second_factor).load::<(i64, bool, String)>(c).await?);
                            }
                            if window.by_ip && !row.remote_ip.is_empty() {
                                by_ip.extend(recent(true, second_factor).load::<(i64, bool, String)>(c).await?);
                            }
                        }
                        let by_user: Vec<_> = by_user.into_iter().map(AttemptOutcome::from_row).collect();
                        let by_ip: Vec<_> = by_ip.into_iter().map(AttemptOutcome::from_row).collect();
                        // Bans set by hand or imported hold whatever regulation's rules say.
                        let explicit = explicit_ban_expiries!(c, &row.username, &row.remote_ip, row.time).await?;
                        let banned_until = decide(&by_user, &by_ip).max(super::bans::longest(&explicit));
                        if banned_until.is_some() {
                            diesel::update(log::table.filter(log::id.eq(id)))
                                .set(log::banned.eq(true))
                                .execute(c)
                                .await?;
                        }
                        Ok::<_, StorageError>(Reservation { id, banned_until })
                    }};
                }
                match conn {
                    super::DbConnection::Sqlite(c) => c.transaction(async |c| reserve!(c)).await,
                    super::DbConnection::Postgresql(c) => {
                        c.transaction(async |c| {
                            // Transaction-scoped advisory locks: released at commit or rollback.
                            for key in &lock_keys {
                                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                                    .bind::<Text, _>(key)
                                    .execute(c)
                                    .await?;
                            }
                            reserve!(c)
                        })
                        .await
                    }
                    super::DbConnection::Mysql(c) => {
                        // Named locks belong to the connection: taken before the transaction,
                        // released after it whatever happened.
                        for key in &lock_keys {
                            let got: Vec<Locked> = diesel::sql_query("SELECT GET_LOCK(?, ?) AS locked")
                                .bind::<Text, _>(mysql_lock_name(key))
                                .bind::<BigInt, _>(MYSQL_LOCK_WAIT_SECS)
                                .load(c)
                                .await?;
                            if <[Locked]>::first(&got).and_then(|l| l.locked) != Some(1) {
                                release_mysql_locks(c, &lock_keys).await;
                                return Err(StorageError::Unavailable("regulation lock not granted in time".into()));
                            }
                        }
                        let result = c.transaction(async |c| reserve!(c)).await;
                        release_mysql_locks(c, &lock_keys).await;
                        result
                    }
                }
            }
            .boxed()
        })
        .await
    }

    /// Settles a reserved attempt: a success is recorded as one; an attempt that was not
    /// checked is removed.
    pub async fn settle_attempt(&self, id: i32, settlement: Settlement) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                match settlement {
                    Settlement::Failed => {}
                    Settlement::Succeeded => {
                        let update = diesel::update(log::table.filter(log::id.eq(id))).set(log::successful.eq(true));
                        per_backend!(conn, |c| update.execute(c).await)?;
                    }
                    Settlement::NotChecked => {
                        let delete = diesel::delete(log::table.filter(log::id.eq(id)));
                        per_backend!(conn, |c| delete.execute(c).await)?;
                    }
                }
                Ok(())
            }
            .boxed()
        })
        .await
    }
}

/// Longest wait for a MySQL named lock.
const MYSQL_LOCK_WAIT_SECS: i64 = 10;

#[derive(QueryableByName)]
struct Locked {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Integer>)]
    locked: Option<i32>,
}

/// MySQL named locks are at most 64 characters: long keys are hashed.
fn mysql_lock_name(key: &str) -> String {
    if key.len() <= 64 {
        return key.to_string();
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex = crate::hex::encode(&digest[..24]);
    format!("portcullis-reg:{hex}")
}

async fn release_mysql_locks(c: &mut diesel_async::AsyncMysqlConnection, keys: &[String]) {
    for key in keys {
        let released: Result<Vec<Locked>, _> =
            diesel::sql_query("SELECT RELEASE_LOCK(?) AS locked").bind::<Text, _>(mysql_lock_name(key)).load(c).await;
        if let Err(e) = released {
            tracing::warn!(error = %e, "cannot release a regulation lock; it goes with the connection");
        }
    }
}

impl Storage {
    /// The users and addresses with failed attempts at or after `since` (candidates for a
    /// ban), at most `limit` of each.
    pub async fn failed_subjects(&self, since: i64, limit: i64) -> Result<(Vec<String>, Vec<String>), StorageError> {
        self.run(move |conn| {
            async move {
                let failed = log::table
                    .filter(log::time.ge(since))
                    .filter(log::successful.eq(false))
                    .filter(log::banned.eq(false));
                let users = failed.select(log::username).filter(log::username.ne("")).distinct().limit(limit);
                let ips = failed.select(log::remote_ip).filter(log::remote_ip.ne("")).distinct().limit(limit);
                let users: Vec<String> = per_backend!(conn, |c| users.load(c).await)?;
                let ips: Vec<String> = per_backend!(conn, |c| ips.load(c).await)?;
                Ok((users, ips))
            }
            .boxed()
        })
        .await
    }
}

/// Whose attempts to read.
#[derive(Clone, Copy, Debug)]
pub enum AttemptsBy<'a> {
    /// One username.
    User(&'a str),
    /// One client address.
    Ip(&'a str),
}
