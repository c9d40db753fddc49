//! Emailed one-time codes and password-reset token IDs: issued, consumed once, revocable.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::{identity_verification as iv, one_time_codes as otc};
use super::{Storage, StorageError};

/// A one-time code as stored (its keyed hash, never the code).
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct OneTimeCode {
    /// Public identifier (in the session and in the revoke link).
    pub public_id: String,
    /// Owner.
    pub username: String,
    /// What the code is for (`elevation`, `sign_in`).
    pub intent: String,
    /// Keyed hash of the code.
    pub code_hash: String,
    /// Issued (Unix seconds).
    pub created_at: i64,
    /// Not valid from this time on.
    pub expires_at: i64,
    /// When it was used.
    pub consumed_at: Option<i64>,
    /// When it was cancelled.
    pub revoked_at: Option<i64>,
    /// Wrong guesses so far.
    pub attempts: i32,
}

impl OneTimeCode {
    /// True while the code can still be used.
    pub fn usable(&self, now: i64) -> bool {
        self.consumed_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

impl Storage {
    /// Stores a new one-time code.
    pub async fn otc_insert(&self, code: OneTimeCode) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(otc::table).values((
                    otc::public_id.eq(&code.public_id),
                    otc::username.eq(&code.username),
                    otc::intent.eq(&code.intent),
                    otc::code_hash.eq(&code.code_hash),
                    otc::created_at.eq(code.created_at),
                    otc::expires_at.eq(code.expires_at),
                    otc::attempts.eq(0),
                ));
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// How many codes with `intent` the user was sent since `since` (rate limiting).
    pub async fn otc_count_since(&self, username: &str, intent: &str, since: i64) -> Result<i64, StorageError> {
        let (username, intent) = (username.to_string(), intent.to_string());
        self.run(move |conn| {
            async move {
                let query = otc::table
                    .filter(otc::username.eq(&username))
                    .filter(otc::intent.eq(&intent))
                    .filter(otc::created_at.ge(since))
                    .count();
                Ok(per_backend!(conn, |c| query.get_result(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// The code with `public_id`, if any.
    pub async fn otc_get(&self, public_id: &str) -> Result<Option<OneTimeCode>, StorageError> {
        let public_id = public_id.to_string();
        self.run(move |conn| {
            async move {
                let query = otc::table.filter(otc::public_id.eq(&public_id)).select((
                    otc::public_id,
                    otc::username,
                    otc::intent,
                    otc::code_hash,
                    otc::created_at,
                    otc::expires_at,
                    otc::consumed_at,
                    otc::revoked_at,
                    otc::attempts,
                ));
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Counts a wrong guess; past `max_attempts` the code is revoked. Returns the new count.
    pub async fn otc_wrong_guess(&self, public_id: &str, max_attempts: i32, now: i64) -> Result<i32, StorageError> {
        let public_id = public_id.to_string();
        self.run(move |conn| {
            async move {
                let public_id = &public_id;
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        diesel::update(otc::table.filter(otc::public_id.eq(public_id)))
                            .set(otc::attempts.eq(otc::attempts + 1))
                            .execute(c)
                            .await?;
                        let attempts: i32 =
                            otc::table.filter(otc::public_id.eq(public_id)).select(otc::attempts).first(c).await?;
                        if attempts >= max_attempts {
                            diesel::update(
                                otc::table.filter(otc::public_id.eq(public_id)).filter(otc::revoked_at.is_null()),
                            )
                            .set(otc::revoked_at.eq(now))
                            .execute(c)
                            .await?;
                        }
                        Ok::<_, StorageError>(attempts)
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Marks the code used if it still can be; true when this call consumed it (so two
    /// concurrent requests cannot both succeed).
    pub async fn otc_consume(&self, public_id: &str, now: i64) -> Result<bool, StorageError> {
        let public_id = public_id.to_string();
        self.run(move |conn| {
            async move {
                let consume = diesel::update(
                    otc::table
                        .filter(otc::public_id.eq(&public_id))
                        .filter(otc::consumed_at.is_null())
                        .filter(otc::revoked_at.is_null())
                        .filter(otc::expires_at.gt(now)),
                )
                .set(otc::consumed_at.eq(now));
                Ok(per_backend!(conn, |c| consume.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }

    /// Cancels an unused code; true when one was cancelled.
    pub async fn otc_revoke(&self, public_id: &str, now: i64) -> Result<bool, StorageError> {
        let public_id = public_id.to_string();
        self.run(move |conn| {
            async move {
                let revoke = diesel::update(
                    otc::table
                        .filter(otc::public_id.eq(&public_id))
                        .filter(otc::consumed_at.is_null())
                        .filter(otc::revoked_at.is_null()),
                )
                .set(otc::revoked_at.eq(now));
                Ok(per_backend!(conn, |c| revoke.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }

    /// Records an issued identity-verification token (password reset link).
    pub async fn identity_token_insert(
        &self,
        jti: &str,
        username: &str,
        action: &str,
        issued_at: i64,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let (jti, username, action) = (jti.to_string(), username.to_string(), action.to_string());
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(iv::table).values((
                    iv::jti.eq(&jti),
                    iv::username.eq(&username),
                    iv::action.eq(&action),
                    iv::issued_at.eq(issued_at),
                    iv::expires_at.eq(expires_at),
                ));
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// How many tokens were issued for the user since `since` (rate limiting).
    pub async fn identity_tokens_since(&self, username: &str, since: i64) -> Result<i64, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = iv::table.filter(iv::username.eq(&username)).filter(iv::issued_at.ge(since)).count();
                Ok(per_backend!(conn, |c| query.get_result(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Consumes the token `jti` for `action` if it is still valid; true when this call did.
    pub async fn identity_token_consume(&self, jti: &str, action: &str, now: i64) -> Result<bool, StorageError> {
        let (jti, action) = (jti.to_string(), action.to_string());
        self.run(move |conn| {
            async move {
                let consume = diesel::update(
                    iv::table
                        .filter(iv::jti.eq(&jti))
                        .filter(iv::action.eq(&action))
                        .filter(iv::consumed_at.is_null())
                        .filter(iv::revoked_at.is_null())
                        .filter(iv::expires_at.gt(now)),
                )
                .set(iv::consumed_at.eq(now));
                Ok(per_backend!(conn, |c| consume.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }

    /// Revokes the unused token `jti`; true when one was revoked.
    pub async fn identity_token_revoke(&self, jti: &str, now: i64) -> Result<bool, StorageError> {
        let jti = jti.to_string();
        self.run(move |conn| {
            async move {
                let revoke = diesel::update(
                    iv::table
                        .filter(iv::jti.eq(&jti))
                        .filter(iv::consumed_at.is_null())
                        .filter(iv::revoked_at.is_null()),
                )
                .set(iv::revoked_at.eq(now));
                Ok(per_backend!(conn, |c| revoke.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }
}
