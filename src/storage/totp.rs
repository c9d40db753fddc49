//! TOTP configurations (secrets encrypted), used time steps, and recovery codes.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::{recovery_codes as rc, totp_configurations as tc, totp_history as th};
use super::{Storage, StorageError};

/// How long used time steps are remembered (far beyond any allowed skew).
const HISTORY_KEEP_SECS: i64 = 24 * 3600;

/// A user's confirmed TOTP setup.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TotpRecord {
    /// Owner.
    pub username: String,
    /// When it was confirmed (Unix seconds).
    pub created_at: i64,
    /// Last successful use.
    pub last_used_at: Option<i64>,
    /// Issuer shown by the authenticator app.
    pub issuer: String,
    /// SHA1, SHA256 or SHA512.
    pub algorithm: String,
    /// 6 or 8.
    pub digits: u32,
    /// Seconds per code.
    pub period: u32,
    /// The shared secret (decrypted).
    pub secret: Vec<u8>,
}

#[derive(Queryable)]
struct Row {
    username: String,
    created_at: i64,
    last_used_at: Option<i64>,
    issuer: String,
    algorithm: String,
    digits: i32,
    period: i32,
    secret: Vec<u8>,
}

impl Storage {
    /// The user's TOTP setup, if any.
    pub async fn totp_get(&self, username: &str) -> Result<Option<TotpRecord>, StorageError> {
        let username = username.to_string();
        let cipher = self.cipher().clone();
        self.run(move |conn| {
            async move {
                let query = tc::table.filter(tc::username.eq(&username)).select((
                    tc::username,
                    tc::created_at,
                    tc::last_used_at,
                    tc::issuer,
                    tc::algorithm,
                    tc::digits,
                    tc::period,
                    tc::secret,
                ));
                let row: Option<Row> = per_backend!(conn, |c| query.first(c).await.optional())?;
                row.map(|r| {
                    Ok(TotpRecord {
                        username: r.username,
                        created_at: r.created_at,
                        last_used_at: r.last_used_at,
                        issuer: r.issuer,
                        algorithm: r.algorithm,
                        digits: u32::try_from(r.digits).unwrap_or(6),
                        period: u32::try_from(r.period).unwrap_or(30),
                        secret: cipher.decrypt(&r.secret)?,
                    })
                })
                .transpose()
            }
            .boxed()
        })
        .await
    }

    /// True when the user has TOTP set up.
    pub async fn totp_exists(&self, username: &str) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = tc::table.filter(tc::username.eq(&username)).count();
                let n: i64 = per_backend!(conn, |c| query.get_result(c).await)?;
                Ok(n > 0)
            }
            .boxed()
        })
        .await
    }

    /// Saves `record`, replacing any earlier setup of the same user.
    pub async fn totp_save(&self, record: TotpRecord) -> Result<(), StorageError> {
        let sealed = self.cipher().encrypt(&record.secret)?;
        self.run(move |conn| {
            async move {
                let (record, sealed) = (&record, &sealed);
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        diesel::delete(tc::table.filter(tc::username.eq(&record.username))).execute(c).await?;
                        diesel::insert_into(tc::table)
                            .values((
                                tc::username.eq(&record.username),
                                tc::created_at.eq(record.created_at),
                                tc::last_used_at.eq(record.last_used_at),
                                tc::issuer.eq(&record.issuer),
                                tc::algorithm.eq(&record.algorithm),
                                tc::digits.eq(i32::try_from(record.digits).unwrap_or(6)),
                                tc::period.eq(i32::try_from(record.period).unwrap_or(30)),
                                tc::secret.eq(sealed),
                            ))
                            .execute(c)
                            .await?;
                        Ok::<_, StorageError>(())
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Removes the user's TOTP setup; false when there was none.
    pub async fn totp_delete(&self, username: &str) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = diesel::delete(tc::table.filter(tc::username.eq(&username)));
                Ok(per_backend!(conn, |c| query.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }

    /// Records that the code of time step `step` was used. Returns false when that step was
    /// already used (a replayed code). The unique index makes this atomic across servers.
    pub async fn totp_use_step(&self, username: &str, step: i64, now: i64) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let expired = diesel::delete(
                    th::table.filter(th::username.eq(&username)).filter(th::created_at.lt(now - HISTORY_KEEP_SECS)),
                );
                per_backend!(&mut *conn, |c| expired.execute(c).await)?;
                let insert = diesel::insert_into(th::table).values((
                    th::username.eq(&username),
                    th::step.eq(step),
                    th::created_at.eq(now),
                ));
                match per_backend!(&mut *conn, |c| insert.execute(c).await) {
                    Ok(_) => {}
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => return Ok(false),
                    Err(e) => return Err(e.into()),
                }
                let used = diesel::update(tc::table.filter(tc::username.eq(&username))).set(tc::last_used_at.eq(now));
                per_backend!(conn, |c| used.execute(c).await)?;
                Ok(true)
            }
            .boxed()
        })
        .await
    }

    /// Replaces the user's recovery codes with `hashes` (keyed hashes, never the codes).
    pub async fn recovery_replace(&self, username: &str, hashes: Vec<String>, now: i64) -> Result<(), StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let (username, hashes) = (&username, &hashes);
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        diesel::delete(rc::table.filter(rc::username.eq(username))).execute(c).await?;
                        for hash in hashes {
                            diesel::insert_into(rc::table)
                                .values((rc::username.eq(username), rc::code_hash.eq(hash), rc::created_at.eq(now)))
                                .execute(c)
                                .await?;
                        }
                        Ok::<_, StorageError>(())
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Burns the unused recovery code with keyed hash `hash`; true when one was burned.
    /// The conditional update makes a code usable once even under concurrent attempts.
    pub async fn recovery_burn(&self, username: &str, hash: &str, now: i64) -> Result<bool, StorageError> {
        let (username, hash) = (username.to_string(), hash.to_string());
        self.run(move |conn| {
            async move {
                let burn = diesel::update(
                    rc::table
                        .filter(rc::username.eq(&username))
                        .filter(rc::code_hash.eq(&hash))
                        .filter(rc::used_at.is_null()),
                )
                .set(rc::used_at.eq(now));
                Ok(per_backend!(conn, |c| burn.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }

    /// How many unused recovery codes the user has.
    pub async fn recovery_remaining(&self, username: &str) -> Result<i64, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = rc::table.filter(rc::username.eq(&username)).filter(rc::used_at.is_null()).count();
                Ok(per_backend!(conn, |c| query.get_result(c).await)?)
            }
            .boxed()
        })
        .await
    }
}
