//! Device-addition links: one row per link, found by the keyed hash of its token (the
//! token itself is never stored, so a copy of the database yields no usable link). Using
//! a link is a conditional update of `used_at` on a row that is unused and unexpired, so
//! of concurrent uses exactly one wins.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::device_links as dl;
use super::{Storage, StorageError};

/// One device-addition link as stored.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct DeviceLinkRecord {
    /// Row ID (0 for a link not yet stored).
    pub id: i32,
    /// Keyed hash of the token (`Cipher::keyed_hash`).
    pub token_hash: String,
    /// The account a new device may add a passkey to.
    pub username: String,
    /// Who made the link (the user themself or an administrator).
    pub created_by: String,
    /// Created (Unix seconds).
    pub created_at: i64,
    /// Not valid from this time on.
    pub expires_at: i64,
    /// Used at; `None` while unused.
    pub used_at: Option<i64>,
}

impl DeviceLinkRecord {
    /// Whether the link is unused and unexpired at `now`.
    pub fn usable(&self, now: i64) -> bool {
        self.used_at.is_none() && self.expires_at > now
    }
}

macro_rules! link_columns {
    () => {
        (dl::id, dl::token_hash, dl::username, dl::created_by, dl::created_at, dl::expires_at, dl::used_at)
    };
}

impl Storage {
    /// Stores a new link and returns its ID; [`StorageError::Duplicate`] when the hash is
    /// taken (a token drawn twice: the caller draws again).
    pub async fn device_link_insert(&self, r: DeviceLinkRecord) -> Result<i32, StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(dl::table).values((
                    dl::token_hash.eq(&r.token_hash),
                    dl::username.eq(&r.username),
                    dl::created_by.eq(&r.created_by),
                    dl::created_at.eq(r.created_at),
                    dl::expires_at.eq(r.expires_at),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                // The hash is unique: it names the row just written on every backend
                // (MySQL has no RETURNING).
                let query = dl::table.filter(dl::token_hash.eq(&r.token_hash)).select(dl::id);
                Ok(per_backend!(conn, |c| query.first::<i32>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// The link whose keyed hash is `token_hash`, in whatever state.
    pub async fn device_link_by_hash(&self, token_hash: &str) -> Result<Option<DeviceLinkRecord>, StorageError> {
        let token_hash = token_hash.to_string();
        self.run(move |conn| {
            async move {
                let query = dl::table.filter(dl::token_hash.eq(&token_hash)).select(link_columns!());
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// How many of the user's links are unused and unexpired at `now`.
    pub async fn device_links_open(&self, username: &str, now: i64) -> Result<i64, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = dl::table
                    .filter(dl::username.eq(&username))
                    .filter(dl::used_at.is_null())
                    .filter(dl::expires_at.gt(now))
                    .count();
                Ok(per_backend!(conn, |c| query.get_result::<i64>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Uses the link whose keyed hash is `token_hash` if it is unused and unexpired at
    /// `now`; true when this call used it (of concurrent calls, exactly one).
    pub async fn device_link_take(&self, token_hash: &str, now: i64) -> Result<bool, StorageError> {
        let token_hash = token_hash.to_string();
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    dl::table
                        .filter(dl::token_hash.eq(&token_hash))
                        .filter(dl::used_at.is_null())
                        .filter(dl::expires_at.gt(now)),
                )
                .set(dl::used_at.eq(now));
                Ok(per_backend!(conn, |c| update.execute(c).await)? == 1)
            }
            .boxed()
        })
        .await
    }

    /// Ends every unused link of the user (a deleted user: a new account of the same name
    /// must not inherit them); returns how many.
    pub async fn device_links_end_all(&self, username: &str, now: i64) -> Result<usize, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let update = diesel::update(dl::table.filter(dl::username.eq(&username)).filter(dl::used_at.is_null()))
                    .set(dl::used_at.eq(now));
                Ok(per_backend!(conn, |c| update.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }
}
