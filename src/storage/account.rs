//! What the account API keeps: each user's token cutoff (bearer tokens issued before it
//! are refused: the password changed), verified email addresses, and referral tokens
//! (by keyed hash, with an expiry and a number of uses).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::{account_token_cutoffs as cut, email_verifications as ev, referral_tokens as rt};
use super::{Storage, StorageError};

impl Storage {
    /// The user's token cutoff (milliseconds), if one was set.
    pub async fn token_cutoff(&self, username: &str) -> Result<Option<i64>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = cut::table.filter(cut::username.eq(&username)).select(cut::not_before_ms);
                Ok(per_backend!(conn, |c| query.first::<i64>(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Refuses the user's bearer tokens issued before `not_before_ms` (never moves back).
    pub async fn set_token_cutoff(&self, username: &str, not_before_ms: i64) -> Result<(), StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let username = &username;
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let updated = diesel::update(
                            cut::table.filter(cut::username.eq(username)).filter(cut::not_before_ms.lt(not_before_ms)),
                        )
                        .set(cut::not_before_ms.eq(not_before_ms))
                        .execute(c)
                        .await?;
                        if updated == 0 {
                            let insert = diesel::insert_into(cut::table)
                                .values((cut::username.eq(username), cut::not_before_ms.eq(not_before_ms)))
                                .execute(c)
                                .await;
                            match insert {
                                // A later cutoff is there already.
                                Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {}
                                Err(e) => return Err(e),
                            }
                        }
                        Ok::<_, DieselError>(())
                    })
                    .await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Records that `username` received mail at `email`.
    pub async fn email_verified_set(&self, username: &str, email: &str, now: i64) -> Result<(), StorageError> {
        let (username, email) = (username.to_string(), email.to_ascii_lowercase());
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(ev::table).values((
                    ev::username.eq(&username),
                    ev::email.eq(&email),
                    ev::verified_at.eq(now),
                ));
                match per_backend!(conn, |c| insert.execute(c).await) {
                    Ok(_) | Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(()),
                    Err(e) => Err(e.into()),
                }
            }
            .boxed()
        })
        .await
    }

    /// The addresses of `username` that are verified (lowercase).
    pub async fn emails_verified(&self, username: &str) -> Result<Vec<String>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = ev::table.filter(ev::username.eq(&username)).select(ev::email).order(ev::email.asc());
                Ok(per_backend!(conn, |c| query.load::<String>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Stores a referral token by its keyed hash.
    pub async fn referral_insert(
        &self,
        token_hash: &str,
        created_by: &str,
        now: i64,
        expires_at: i64,
        uses: i32,
    ) -> Result<(), StorageError> {
        let (token_hash, created_by) = (token_hash.to_string(), created_by.to_string());
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(rt::table).values((
                    rt::token_hash.eq(&token_hash),
                    rt::created_by.eq(&created_by),
                    rt::created_at.eq(now),
                    rt::expires_at.eq(expires_at),
                    rt::uses_left.eq(uses),
                ));
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// How many usable referral tokens `created_by` has at `now`.
    pub async fn referrals_valid(&self, created_by: &str, now: i64) -> Result<i64, StorageError> {
        let created_by = created_by.to_string();
        self.run(move |conn| {
            async move {
                let query = rt::table
                    .filter(rt::created_by.eq(&created_by))
                    .filter(rt::expires_at.gt(now))
                    .filter(rt::uses_left.gt(0))
                    .count();
                Ok(per_backend!(conn, |c| query.get_result::<i64>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Takes one use of the referral token with `token_hash`, if it is valid at `now`;
    /// returns who issued it. One conditional update: of concurrent signups with a
    /// single-use token, one wins.
    pub async fn referral_take(&self, token_hash: &str, now: i64) -> Result<Option<String>, StorageError> {
        let token_hash = token_hash.to_string();
        self.run(move |conn| {
            async move {
                let take = diesel::update(
                    rt::table
                        .filter(rt::token_hash.eq(&token_hash))
                        .filter(rt::expires_at.gt(now))
                        .filter(rt::uses_left.gt(0)),
                )
                .set(rt::uses_left.eq(rt::uses_left - 1));
                if per_backend!(&mut *conn, |c| take.execute(c).await)? == 0 {
                    return Ok(None);
                }
                let who = rt::table.filter(rt::token_hash.eq(&token_hash)).select(rt::created_by);
                Ok(per_backend!(conn, |c| who.first::<String>(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Gives back a use taken by [`Storage::referral_take`] (the signup failed after it).
    pub async fn referral_give_back(&self, token_hash: &str) -> Result<(), StorageError> {
        let token_hash = token_hash.to_string();
        self.run(move |conn| {
            async move {
                let back = diesel::update(rt::table.filter(rt::token_hash.eq(&token_hash)))
                    .set(rt::uses_left.eq(rt::uses_left + 1));
                per_backend!(conn, |c| back.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }
}
