//! Device authorization sessions (RFC 8628): one row per device code, found by the HMAC
//! of the device code (the device polling) or of the normalized user code (the user at
//! the portal). Every change of state is one conditional update, so that of two
//! concurrent decisions, or two concurrent polls of an approved code, exactly one wins.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::oidc_device_codes as dc;
use super::{Storage, StorageError};
use crate::oidc::device::Status;

/// One device session.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct DeviceCodeRecord {
    /// HMAC of the device code.
    pub device_signature: String,
    /// HMAC of the normalized user code.
    pub user_code_signature: String,
    /// The client that asked.
    pub client_id: String,
    /// Everything issued from this session shares it (revoked together on replay).
    pub chain_id: String,
    /// `pending`, `approved`, `denied` or `used`.
    pub status: String,
    /// The user who decided (empty while pending).
    pub subject: String,
    /// JSON: the request while pending, the grant once approved.
    pub data: String,
    /// Seconds the device must wait between polls.
    pub poll_interval: i64,
    /// When the device last polled.
    pub last_polled_at: Option<i64>,
    /// Issued (Unix seconds).
    pub created_at: i64,
    /// Neither code is valid from this time on.
    pub expires_at: i64,
    /// When the user decided.
    pub decided_at: Option<i64>,
    /// When the tokens were issued.
    pub consumed_at: Option<i64>,
}

macro_rules! device_columns {
    () => {
        (
            dc::device_signature,
            dc::user_code_signature,
            dc::client_id,
            dc::chain_id,
            dc::status,
            dc::subject,
            dc::data,
            dc::poll_interval,
            dc::last_polled_at,
            dc::created_at,
            dc::expires_at,
            dc::decided_at,
            dc::consumed_at,
        )
    };
}

impl Storage {
    /// Stores a new device session; [`StorageError::Duplicate`] when either signature is
    /// taken (a user code drawn twice: the caller draws again).
    pub async fn oidc_device_insert(&self, r: DeviceCodeRecord) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(dc::table).values((
                    dc::device_signature.eq(&r.device_signature),
                    dc::user_code_signature.eq(&r.user_code_signature),
                    dc::client_id.eq(&r.client_id),
                    dc::chain_id.eq(&r.chain_id),
                    dc::status.eq(&r.status),
                    dc::subject.eq(&r.subject),
                    dc::data.eq(&r.data),
                    dc::poll_interval.eq(r.poll_interval),
                    dc::created_at.eq(r.created_at),
                    dc::expires_at.eq(r.expires_at),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// The session of a device code (by its signature), in whatever state.
    pub async fn oidc_device_by_device_code(&self, signature: &str) -> Result<Option<DeviceCodeRecord>, StorageError> {
        let signature = signature.to_string();
        self.run(move |conn| {
            async move {
                let query = dc::table.filter(dc::device_signature.eq(&signature)).select(device_columns!());
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// The session of a user code (by its signature), in whatever state.
    pub async fn oidc_device_by_user_code(&self, signature: &str) -> Result<Option<DeviceCodeRecord>, StorageError> {
        let signature = signature.to_string();
        self.run(move |conn| {
            async move {
                let query = dc::table.filter(dc::user_code_signature.eq(&signature)).select(device_columns!());
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Records the user's decision on the session of a user code: `status` (approved or
    /// denied), who decided and the grant, only while it is pending and unexpired at
    /// `now`. True when this call decided it.
    pub async fn oidc_device_decide(
        &self,
        user_code_signature: &str,
        status: &str,
        subject: &str,
        data: &str,
        now: i64,
    ) -> Result<bool, StorageError> {
        let (signature, status, subject, data) =
            (user_code_signature.to_string(), status.to_string(), subject.to_string(), data.to_string());
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    dc::table
                        .filter(dc::user_code_signature.eq(&signature))
                        .filter(dc::status.eq(Status::Pending.as_str()))
                        .filter(dc::expires_at.gt(now)),
                )
                .set((
                    dc::status.eq(&status),
                    dc::subject.eq(&subject),
                    dc::data.eq(&data),
                    dc::decided_at.eq(now),
                ));
                Ok(per_backend!(conn, |c| update.execute(c).await)? == 1)
            }
            .boxed()
        })
        .await
    }

    /// Records a poll at `now`; with `slow_down`, the interval grows by `step` seconds.
    pub async fn oidc_device_polled(
        &self,
        device_signature: &str,
        now: i64,
        slow_down: bool,
        step: i64,
    ) -> Result<(), StorageError> {
        let signature = device_signature.to_string();
        let step = if slow_down { step } else { 0 };
        self.run(move |conn| {
            async move {
                let update = diesel::update(dc::table.filter(dc::device_signature.eq(&signature)))
                    .set((dc::last_polled_at.eq(now), dc::poll_interval.eq(dc::poll_interval + step)));
                per_backend!(conn, |c| update.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Spends an approved, unexpired device code: true for the one call that did.
    pub async fn oidc_device_take(&self, device_signature: &str, now: i64) -> Result<bool, StorageError> {
        let signature = device_signature.to_string();
        self.run(move |conn| {
            async move {
                let update = diesel::update(
                    dc::table
                        .filter(dc::device_signature.eq(&signature))
                        .filter(dc::status.eq(Status::Approved.as_str()))
                        .filter(dc::expires_at.gt(now)),
                )
                .set((dc::status.eq(Status::Used.as_str()), dc::consumed_at.eq(now)));
                Ok(per_backend!(conn, |c| update.execute(c).await)? == 1)
            }
            .boxed()
        })
        .await
    }

    /// Deletes sessions that expired before `before`; returns how many.
    pub async fn oidc_device_purge_expired(&self, before: i64) -> Result<usize, StorageError> {
        self.run(move |conn| {
            async move {
                let delete = diesel::delete(dc::table.filter(dc::expires_at.lt(before)));
                Ok(per_backend!(conn, |c| delete.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }
}
