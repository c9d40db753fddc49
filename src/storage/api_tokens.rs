//! Personal API tokens: one row per token, found by the keyed hash of the token (the
//! proxy's check) or by its owner (listing, revoking). The token itself is never stored,
//! so a copy of the database yields no usable token. Revocation is a conditional update
//! of `revoked_at`, never a delete, so the audit trail's token IDs keep meaning something.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::api_tokens as at;
use super::{Storage, StorageError};

/// One personal API token as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct ApiTokenRecord {
    /// Row ID (0 for a token not yet stored).
    pub id: i32,
    /// The owner.
    pub username: String,
    /// The owner's label for it.
    pub name: String,
    /// The token's first characters, to tell tokens apart (not enough to use it).
    pub prefix: String,
    /// Keyed hash of the token (`Cipher::keyed_hash`).
    pub token_hash: String,
    /// Space-separated scope labels.
    pub scopes: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Last seen at an endpoint (recorded at most once a minute).
    pub last_used_at: Option<i64>,
    /// Not valid from this time on; `None`: no expiry.
    pub expires_at: Option<i64>,
    /// Revoked at; `None` while in force.
    pub revoked_at: Option<i64>,
}

impl ApiTokenRecord {
    /// Whether the token is neither revoked nor expired at `now`.
    pub fn in_force(&self, now: i64) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|at| at > now)
    }

    /// The scopes as a list.
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_ascii_whitespace().map(str::to_string).collect()
    }
}

macro_rules! token_columns {
    () => {
        (
            at::id,
            at::username,
            at::name,
            at::prefix,
            at::token_hash,
            at::scopes,
            at::created_at,
            at::last_used_at,
            at::expires_at,
            at::revoked_at,
        )
    };
}

impl Storage {
    /// Stores a new token and returns its ID; [`StorageError::Duplicate`] when the hash is
    /// taken (a token drawn twice: the caller draws again).
    pub async fn api_token_insert(&self, r: ApiTokenRecord) -> Result<i32, StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(at::table).values((
                    at::username.eq(&r.username),
                    at::name.eq(&r.name),
                    at::prefix.eq(&r.prefix),
                    at::token_hash.eq(&r.token_hash),
                    at::scopes.eq(&r.scopes),
                    at::created_at.eq(r.created_at),
                    at::expires_at.eq(r.expires_at),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                // The hash is unique: it names the row just written on every backend
                // (MySQL has no RETURNING).
                let query = at::table.filter(at::token_hash.eq(&r.token_hash)).select(at::id);
                Ok(per_backend!(conn, |c| query.first::<i32>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// The token whose keyed hash is `token_hash`, in whatever state.
    pub async fn api_token_by_hash(&self, token_hash: &str) -> Result<Option<ApiTokenRecord>, StorageError> {
        let token_hash = token_hash.to_string();
        self.run(move |conn| {
            async move {
                let query = at::table.filter(at::token_hash.eq(&token_hash)).select(token_columns!());
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// The user's tokens that are not revoked (expired ones included, so the owner sees
    /// them end), oldest first.
    pub async fn api_tokens_of(&self, username: &str) -> Result<Vec<ApiTokenRecord>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = at::table
                    .filter(at::username.eq(&username))
                    .filter(at::revoked_at.is_null())
                    .order(at::id.asc())
                    .select(token_columns!());
                Ok(per_backend!(conn, |c| query.load(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// How many of the user's tokens are in force at `now`.
    pub async fn api_tokens_in_force(&self, username: &str, now: i64) -> Result<i64, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = at::table
                    .filter(at::username.eq(&username))
                    .filter(at::revoked_at.is_null())
                    .filter(at::expires_at.is_null().or(at::expires_at.gt(now)))
                    .count();
                Ok(per_backend!(conn, |c| query.get_result::<i64>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Revokes the user's token `id` if it is theirs and not revoked yet; true when this
    /// call revoked it.
    pub async fn api_token_revoke(&self, username: &str, id: i32, now: i64) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    at::table.filter(at::id.eq(id)).filter(at::username.eq(&username)).filter(at::revoked_at.is_null()),
                )
                .set(at::revoked_at.eq(now));
                Ok(per_backend!(conn, |c| update.execute(c).await)? == 1)
            }
            .boxed()
        })
        .await
    }

    /// Revokes every token of the user (a deleted user: a new account of the same name
    /// must not inherit them); returns how many.
    pub async fn api_tokens_revoke_all(&self, username: &str, now: i64) -> Result<usize, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let update =
                    diesel::update(at::table.filter(at::username.eq(&username)).filter(at::revoked_at.is_null()))
                        .set(at::revoked_at.eq(now));
                Ok(per_backend!(conn, |c| update.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Records that token `id` was used at `now` (only forward in time).
    pub async fn api_token_used(&self, id: i32, now: i64) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    at::table.filter(at::id.eq(id)).filter(at::last_used_at.is_null().or(at::last_used_at.lt(now))),
                )
                .set(at::last_used_at.eq(now));
                per_backend!(conn, |c| update.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }
}
