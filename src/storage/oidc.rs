//! The OpenID Connect provider's records: codes, access and refresh tokens, pending
//! authorizations and pushed requests (by HMAC signature, with the chain that links
//! everything one authorization produced), consent decisions, each user's opaque subject
//! per sector, and the generated signing key (sealed).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::{encryption, oidc_consents as oc, oidc_sessions as os, oidc_subjects as osub};
use super::{Storage, StorageError};

/// One code, token or pending request.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct OidcRecord {
    /// HMAC signature of the value.
    pub signature: String,
    /// `ac`, `at`, `rt`, `fl`, `par`.
    pub kind: String,
    /// Everything issued from one authorization shares this.
    pub chain_id: String,
    /// The client it was issued to.
    pub client_id: String,
    /// The user (empty for client credentials and pending requests).
    pub subject: String,
    /// The request and grant, JSON.
    pub data: String,
    /// Issued (Unix seconds).
    pub created_at: i64,
    /// Not valid from this time on.
    pub expires_at: i64,
    /// When it was used (codes, rotated refresh tokens).
    pub consumed_at: Option<i64>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

impl OidcRecord {
    /// True while the value can be used.
    pub fn usable(&self, now: i64) -> bool {
        self.consumed_at.is_none() && self.revoked_at.is_none() && now < self.expires_at
    }
}

/// What consuming a single-use value found.
#[derive(Debug, PartialEq, Eq)]
pub enum Consumed {
    /// It was usable and is now used.
    Taken(OidcRecord),
    /// It was used (or revoked, or expired) before.
    Spent(OidcRecord),
    /// No such value.
    Missing,
}

/// A consent decision.
#[derive(Clone, Debug, PartialEq, Eq, Queryable)]
pub struct OidcConsent {
    /// The user.
    pub username: String,
    /// The client.
    pub client_id: String,
    /// Scopes granted, space-separated.
    pub scopes: String,
    /// Granted (or refused).
    pub granted: bool,
    /// When it was given.
    pub created_at: i64,
    /// Until when it is remembered (`None`: this once).
    pub expires_at: Option<i64>,
}

macro_rules! record_columns {
    () => {
        (
            os::signature,
            os::kind,
            os::chain_id,
            os::client_id,
            os::subject,
            os::data,
            os::created_at,
            os::expires_at,
            os::consumed_at,
            os::revoked_at,
        )
    };
}

impl Storage {
    /// Stores a new code, token or pending request; [`StorageError::Duplicate`] when one
    /// with the same signature exists (a replayed client assertion).
    pub async fn oidc_insert(&self, r: OidcRecord) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(os::table).values((
                    os::signature.eq(&r.signature),
                    os::kind.eq(&r.kind),
                    os::chain_id.eq(&r.chain_id),
                    os::client_id.eq(&r.client_id),
                    os::subject.eq(&r.subject),
                    os::data.eq(&r.data),
                    os::created_at.eq(r.created_at),
                    os::expires_at.eq(r.expires_at),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// The record of `kind` with `signature`, if any (usable or not).
    pub async fn oidc_get(&self, kind: &str, signature: &str) -> Result<Option<OidcRecord>, StorageError> {
        let (kind, signature) = (kind.to_string(), signature.to_string());
        self.run(move |conn| {
            async move {
                let query =
                    os::table.filter(os::signature.eq(&signature)).filter(os::kind.eq(&kind)).select(record_columns!());
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Uses a single-use value (a code, a refresh token, a pending request): marks it
    /// consumed if it is usable at `now`, in one conditional update, so that of two
    /// concurrent uses exactly one succeeds.
    pub async fn oidc_consume(&self, kind: &str, signature: &str, now: i64) -> Result<Consumed, StorageError> {
        let (kind, signature) = (kind.to_string(), signature.to_string());
        self.run(move |conn| {
            async move {
                let (kind, signature) = (&kind, &signature);
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let taken = diesel::update(
                            os::table
                                .filter(os::signature.eq(signature))
                                .filter(os::kind.eq(kind))
                                .filter(os::consumed_at.is_null())
                                .filter(os::revoked_at.is_null())
                                .filter(os::expires_at.gt(now)),
                        )
                        .set(os::consumed_at.eq(now))
                        .execute(c)
                        .await?;
                        let record: Option<OidcRecord> = os::table
                            .filter(os::signature.eq(signature))
                            .filter(os::kind.eq(kind))
                            .select(record_columns!())
                            .first(c)
                            .await
                            .optional()?;
                        Ok::<_, StorageError>(match record {
                            Some(r) if taken == 1 => Consumed::Taken(r),
                            Some(r) => Consumed::Spent(r),
                            None => Consumed::Missing,
                        })
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Revokes everything of the chain (`kinds`, or every kind when empty) not revoked yet;
    /// returns how many records it revoked.
    pub async fn oidc_revoke_chain(&self, chain_id: &str, kinds: &[&str], now: i64) -> Result<usize, StorageError> {
        let chain_id = chain_id.to_string();
        let kinds: Vec<String> = kinds.iter().map(|k| (*k).to_string()).collect();
        self.run(move |conn| {
            async move {
                let base = os::table.filter(os::chain_id.eq(&chain_id)).filter(os::revoked_at.is_null());
                let n = if kinds.is_empty() {
                    let update = diesel::update(base).set(os::revoked_at.eq(now));
                    per_backend!(conn, |c| update.execute(c).await)?
                } else {
                    let update = diesel::update(base.filter(os::kind.eq_any(&kinds))).set(os::revoked_at.eq(now));
                    per_backend!(conn, |c| update.execute(c).await)?
                };
                Ok(n)
            }
            .boxed()
        })
        .await
    }

    /// Revokes the one record with `signature`.
    pub async fn oidc_revoke_signature(&self, signature: &str, now: i64) -> Result<(), StorageError> {
        let signature = signature.to_string();
        self.run(move |conn| {
            async move {
                let update =
                    diesel::update(os::table.filter(os::signature.eq(&signature)).filter(os::revoked_at.is_null()))
                        .set(os::revoked_at.eq(now));
                per_backend!(conn, |c| update.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Deletes records that expired before `before`; returns how many.
    pub async fn oidc_purge_expired(&self, before: i64) -> Result<usize, StorageError> {
        self.run(move |conn| {
            async move {
                let delete = diesel::delete(os::table.filter(os::expires_at.lt(before)));
                Ok(per_backend!(conn, |c| delete.execute(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Records a consent decision.
    pub async fn oidc_consent_insert(&self, consent: OidcConsent) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(oc::table).values((
                    oc::username.eq(&consent.username),
                    oc::client_id.eq(&consent.client_id),
                    oc::scopes.eq(&consent.scopes),
                    oc::granted.eq(consent.granted),
                    oc::created_at.eq(consent.created_at),
                    oc::expires_at.eq(consent.expires_at),
                ));
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// The remembered grants of `username` to `client_id` still valid at `now`.
    pub async fn oidc_consents_valid(
        &self,
        username: &str,
        client_id: &str,
        now: i64,
    ) -> Result<Vec<OidcConsent>, StorageError> {
        let (username, client_id) = (username.to_string(), client_id.to_string());
        self.run(move |conn| {
            async move {
                let query = oc::table
                    .filter(oc::username.eq(&username))
                    .filter(oc::client_id.eq(&client_id))
                    .filter(oc::granted.eq(true))
                    .filter(oc::expires_at.gt(now))
                    .select((oc::username, oc::client_id, oc::scopes, oc::granted, oc::created_at, oc::expires_at));
                Ok(per_backend!(conn, |c| query.load(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// The opaque subject of `username` in `sector_id`, created on first use.
    pub async fn oidc_subject(&self, sector_id: &str, username: &str) -> Result<String, StorageError> {
        let (sector_id, username) = (sector_id.to_string(), username.to_string());
        self.run(move |conn| {
            async move {
                let find = osub::table
                    .filter(osub::sector_id.eq(&sector_id))
                    .filter(osub::username.eq(&username))
                    .select(osub::identifier);
                if let Some(id) = per_backend!(conn, |c| find.first::<String>(c).await.optional())? {
                    return Ok(id);
                }
                let identifier = uuid::Uuid::new_v4().to_string();
                let insert = diesel::insert_into(osub::table).values((
                    osub::sector_id.eq(&sector_id),
                    osub::username.eq(&username),
                    osub::identifier.eq(&identifier),
                ));
                match per_backend!(conn, |c| insert.execute(c).await) {
                    Ok(_) => Ok(identifier),
                    // Another request created it first: use theirs.
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                        Ok(per_backend!(conn, |c| find.first::<String>(c).await)?)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            .boxed()
        })
        .await
    }

    /// Records `identifier` as the subject of `username` in `sector_id` (carried over from
    /// another server, so relying parties keep knowing the user by it). `false` when the
    /// user already has a subject there, or the identifier is taken: nothing is changed.
    pub async fn oidc_subject_import(
        &self,
        sector_id: &str,
        username: &str,
        identifier: &str,
    ) -> Result<bool, StorageError> {
        let (sector_id, username, identifier) = (sector_id.to_string(), username.to_string(), identifier.to_string());
        self.run(move |conn| {
            async move {
                let taken = osub::table
                    .filter(
                        osub::identifier
                            .eq(&identifier)
                            .or(osub::sector_id.eq(&sector_id).and(osub::username.eq(&username))),
                    )
                    .count();
                if per_backend!(&mut *conn, |c| taken.get_result::<i64>(c).await)? > 0 {
                    return Ok(false);
                }
                let insert = diesel::insert_into(osub::table).values((
                    osub::sector_id.eq(&sector_id),
                    osub::username.eq(&username),
                    osub::identifier.eq(&identifier),
                ));
                match per_backend!(conn, |c| insert.execute(c).await) {
                    Ok(_) => Ok(true),
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => Ok(false),
                    Err(e) => Err(e.into()),
                }
            }
            .boxed()
        })
        .await
    }

    /// The sealed value stored under `name` in the encryption table, decrypted; or, when
    /// none is stored yet, `create()`'s value, sealed and stored (the first writer wins
    /// when several servers start at once).
    pub async fn sealed_value_or_create(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<Vec<u8>, StorageError> + Send + 'static,
    ) -> Result<Vec<u8>, StorageError> {
        let cipher = self.cipher().clone();
        let name = name.to_string();
        self.run(move |conn| {
            async move {
                let find = encryption::table.filter(encryption::name.eq(&name)).select(encryption::value);
                if let Some(sealed) = per_backend!(conn, |c| find.first::<Vec<u8>>(c).await.optional())? {
                    return cipher.decrypt(&sealed);
                }
                let plain = create()?;
                let sealed = cipher.encrypt(&plain)?;
                per_backend!(conn, |c| diesel::insert_into(encryption::table)
                    .values((encryption::name.eq(&name), encryption::value.eq(&sealed)))
                    .execute(c)
                    .await)?;
                let stored: Vec<u8> = per_backend!(conn, |c| find.first::<Vec<u8>>(c).await)?;
                cipher.decrypt(&stored)
            }
            .boxed()
        })
        .await
    }
}
