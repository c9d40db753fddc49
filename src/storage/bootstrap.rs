//! First-run bootstrap tokens: one row per token, found by the keyed hash of the token
//! (never the token itself), so every replica accepts a token any of them issued. Using a
//! token is a conditional update of `used_at`; the completion that may create the first
//! administrator is the one whose row in `bootstrap_claim` (a fixed primary key) was
//! written in the same transaction, so concurrent completions with different tokens, on
//! different replicas, still make exactly one.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::{bootstrap_claim as bc, bootstrap_tokens as bt};
use super::{Storage, StorageError};

/// The one key of `bootstrap_claim`.
const CLAIM_ID: i32 = 1;

/// A claim older than this (seconds) no longer blocks a new one: its holder died between
/// claiming and creating the administrator (creating one takes well under a second), or
/// the administrator it made was deleted since. Completions check that no user exists
/// after claiming, so a stale claim never lets a second administrator in.
pub const CLAIM_STALE_AFTER: i64 = 600;

/// What presenting a bootstrap token led to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BootstrapClaim {
    /// The token was valid: it is now used and this caller holds the claim (token row ID).
    Claimed(i32),
    /// No token has that hash.
    Unknown,
    /// The token's lifetime is over.
    Expired,
    /// The token was used before.
    Used,
    /// Another completion holds the claim (the token stays unused).
    Taken,
}

impl Storage {
    /// Stores a token by its keyed hash; [`StorageError::Duplicate`] when the hash is taken
    /// (a token drawn twice: the caller draws again).
    pub async fn bootstrap_token_insert(
        &self,
        token_hash: &str,
        created_at: i64,
        expires_at: i64,
        created_by: Option<&str>,
    ) -> Result<(), StorageError> {
        let (token_hash, created_by) = (token_hash.to_string(), created_by.map(str::to_string));
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(bt::table).values((
                    bt::token_hash.eq(&token_hash),
                    bt::created_at.eq(created_at),
                    bt::expires_at.eq(expires_at),
                    bt::created_by.eq(&created_by),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Uses the token whose keyed hash is `token_hash` and claims the bootstrap, in one
    /// transaction: either both happen or neither does.
    pub async fn bootstrap_claim(&self, token_hash: &str, now: i64) -> Result<BootstrapClaim, StorageError> {
        let token_hash = token_hash.to_string();
        let outcome = self
            .run(move |conn| {
                async move {
                    // A claim left by a completion that never finished stops blocking.
                    let stale = diesel::delete(bc::table.filter(bc::claimed_at.lt(now - CLAIM_STALE_AFTER)));
                    per_backend!(&mut *conn, |c| stale.execute(c).await)?;
                    let token_hash = &token_hash;
                    per_backend!(conn, |c| c
                        .transaction(async |c| {
                            // Write first: SQLite then holds its write lock, so no
                            // read-to-write upgrade can fail half-way.
                            let used = diesel::update(
                                bt::table
                                    .filter(bt::token_hash.eq(token_hash))
                                    .filter(bt::used_at.is_null())
                                    .filter(bt::expires_at.gt(now)),
                            )
                            .set(bt::used_at.eq(now))
                            .execute(c)
                            .await?;
                            let row = bt::table
                                .filter(bt::token_hash.eq(token_hash))
                                .select((bt::id, bt::expires_at))
                                .first::<(i32, i64)>(c)
                                .await
                                .optional()?;
                            let (id, expires_at) = match row {
                                None => return Ok(BootstrapClaim::Unknown),
                                Some(row) => row,
                            };
                            if used == 0 {
                                return Ok(if expires_at <= now {
                                    BootstrapClaim::Expired
                                } else {
                                    BootstrapClaim::Used
                                });
                            }
                            let claim = diesel::insert_into(bc::table).values((
                                bc::id.eq(CLAIM_ID),
                                bc::token_id.eq(id),
                                bc::claimed_at.eq(now),
                            ));
                            // A collision rolls the token's use back with it.
                            duplicate_on_conflict(claim.execute(c).await)?;
                            Ok::<_, StorageError>(BootstrapClaim::Claimed(id))
                        })
                        .await)
                }
                .boxed()
            })
            .await;
        match outcome {
            Err(StorageError::Duplicate) => Ok(BootstrapClaim::Taken),
            other => other,
        }
    }

    /// Gives back a claim taken with token `token_id` (creating the administrator failed):
    /// the claim goes and the token may be used again, when `give_back_token`.
    pub async fn bootstrap_release(&self, token_id: i32, give_back_token: bool) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        diesel::delete(bc::table.filter(bc::id.eq(CLAIM_ID)).filter(bc::token_id.eq(token_id)))
                            .execute(c)
                            .await?;
                        if give_back_token {
                            diesel::update(bt::table.filter(bt::id.eq(token_id)))
                                .set(bt::used_at.eq(None::<i64>))
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
}
