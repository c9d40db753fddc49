//! WebAuthn user handles and credentials (the credential itself encrypted).

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::{webauthn_credentials as wc, webauthn_users as wu};
use super::{Storage, StorageError};

/// A stored security key or passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebAuthnCredential {
    /// Row ID (what the API calls the credential ID).
    pub id: i32,
    /// Owner.
    pub username: String,
    /// The user's name for it.
    pub description: String,
    /// Credential ID, base64url.
    pub kid: String,
    /// Relying party it was registered for (the cookie domain).
    pub rp_id: String,
    /// Whether it can log in without a username (a passkey).
    pub discoverable: bool,
    /// Authenticator model, when known.
    pub aaguid: String,
    /// Attestation format it was registered with.
    pub attestation_type: String,
    /// Last signature counter seen.
    pub sign_count: i64,
    /// The counter went backwards once: the key may have been cloned.
    pub clone_warning: bool,
    /// Registered (Unix seconds).
    pub created_at: i64,
    /// Last successful use.
    pub last_used_at: Option<i64>,
    /// The credential as the WebAuthn library serializes it (decrypted JSON).
    pub credential: Vec<u8>,
}

#[derive(Queryable)]
struct Row {
    id: i32,
    username: String,
    description: String,
    kid: String,
    rp_id: String,
    discoverable: bool,
    aaguid: String,
    attestation_type: String,
    sign_count: i64,
    clone_warning: bool,
    created_at: i64,
    last_used_at: Option<i64>,
    credential: Vec<u8>,
}

impl Row {
    fn decode(self, cipher: &super::Cipher) -> Result<WebAuthnCredential, StorageError> {
        Ok(WebAuthnCredential {
            id: self.id,
            username: self.username,
            description: self.description,
            kid: self.kid,
            rp_id: self.rp_id,
            discoverable: self.discoverable,
            aaguid: self.aaguid,
            attestation_type: self.attestation_type,
            sign_count: self.sign_count,
            clone_warning: self.clone_warning,
            created_at: self.created_at,
            last_used_at: self.last_used_at,
            credential: cipher.decrypt(&self.credential)?,
        })
    }
}

impl Storage {
    /// The user's WebAuthn user handle (a random UUID), created on first use when
    /// `create` is set. It is random rather than derived from the username so that
    /// authenticators learn nothing about the account.
    pub async fn webauthn_user_id(&self, username: &str, create: bool) -> Result<Option<String>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let find = wu::table.filter(wu::username.eq(&username)).select(wu::user_id);
                let found: Option<String> = per_backend!(&mut *conn, |c| find.first(c).await.optional())?;
                if found.is_some() || !create {
                    return Ok(found);
                }
                let id = uuid::Uuid::new_v4().to_string();
                let insert = diesel::insert_into(wu::table).values((wu::username.eq(&username), wu::user_id.eq(&id)));
                match per_backend!(&mut *conn, |c| insert.execute(c).await) {
                    Ok(_) => Ok(Some(id)),
                    // Created concurrently: use the winner's.
                    Err(DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)) => {
                        Ok(per_backend!(conn, |c| find.first(c).await.optional())?)
                    }
                    Err(e) => Err(e.into()),
                }
            }
            .boxed()
        })
        .await
    }

    /// Who registered the credential `kid` (base64url) for the relying party `rp_id`. A
    /// passwordless login finds its user this way rather than by the user handle, which
    /// for credentials carried over from Authelia is not one of ours.
    pub async fn webauthn_owner(&self, rp_id: &str, kid: &str) -> Result<Option<String>, StorageError> {
        let (rp_id, kid) = (rp_id.to_string(), kid.to_string());
        self.run(move |conn| {
            async move {
                let query = wc::table.filter(wc::kid.eq(&kid)).filter(wc::rp_id.eq(&rp_id)).select(wc::username);
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// The user's credentials, oldest first.
    pub async fn webauthn_credentials(&self, username: &str) -> Result<Vec<WebAuthnCredential>, StorageError> {
        let username = username.to_string();
        let cipher = self.cipher().clone();
        self.run(move |conn| {
            async move {
                let query = wc::table.filter(wc::username.eq(&username)).order(wc::id.asc()).select((
                    wc::id,
                    wc::username,
                    wc::description,
                    wc::kid,
                    wc::rp_id,
                    wc::discoverable,
                    wc::aaguid,
                    wc::attestation_type,
                    wc::sign_count,
                    wc::clone_warning,
                    wc::created_at,
                    wc::last_used_at,
                    wc::credential,
                ));
                let rows: Vec<Row> = per_backend!(conn, |c| query.load(c).await)?;
                rows.into_iter().map(|r| r.decode(&cipher)).collect()
            }
            .boxed()
        })
        .await
    }

    /// How many credentials the user has.
    pub async fn webauthn_count(&self, username: &str) -> Result<i64, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = wc::table.filter(wc::username.eq(&username)).count();
                Ok(per_backend!(conn, |c| query.get_result(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Stores a new credential; [`StorageError::Duplicate`] when the user already has one
    /// with that description or the credential is registered already.
    pub async fn webauthn_insert(&self, c: WebAuthnCredential) -> Result<(), StorageError> {
        let sealed = self.cipher().encrypt(&c.credential)?;
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(wc::table).values((
                    wc::username.eq(&c.username),
                    wc::description.eq(&c.description),
                    wc::kid.eq(&c.kid),
                    wc::rp_id.eq(&c.rp_id),
                    wc::discoverable.eq(c.discoverable),
                    wc::aaguid.eq(&c.aaguid),
                    wc::attestation_type.eq(&c.attestation_type),
                    wc::sign_count.eq(c.sign_count),
                    wc::clone_warning.eq(c.clone_warning),
                    wc::created_at.eq(c.created_at),
                    wc::last_used_at.eq(c.last_used_at),
                    wc::credential.eq(&sealed),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Records a successful use: the updated credential, its counter and the time.
    pub async fn webauthn_used(
        &self,
        id: i32,
        credential: Vec<u8>,
        sign_count: i64,
        now: i64,
    ) -> Result<(), StorageError> {
        let sealed = self.cipher().encrypt(&credential)?;
        self.run(move |conn| {
            async move {
                let update = diesel::update(wc::table.filter(wc::id.eq(id))).set((
                    wc::credential.eq(&sealed),
                    wc::sign_count.eq(sign_count),
                    wc::last_used_at.eq(now),
                ));
                per_backend!(conn, |c| update.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Flags a credential whose counter went backwards.
    pub async fn webauthn_flag_clone(&self, id: i32) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let update = diesel::update(wc::table.filter(wc::id.eq(id))).set(wc::clone_warning.eq(true));
                per_backend!(conn, |c| update.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Renames one of the user's credentials; false when the user has no such credential,
    /// [`StorageError::Duplicate`] when the name is taken.
    pub async fn webauthn_rename(&self, username: &str, id: i32, description: &str) -> Result<bool, StorageError> {
        let (username, description) = (username.to_string(), description.to_string());
        self.run(move |conn| {
            async move {
                let update = diesel::update(wc::table.filter(wc::id.eq(id)).filter(wc::username.eq(&username)))
                    .set(wc::description.eq(&description));
                Ok(duplicate_on_conflict(per_backend!(conn, |c| update.execute(c).await))? > 0)
            }
            .boxed()
        })
        .await
    }

    /// Deletes one of the user's credentials; false when there was no such credential.
    pub async fn webauthn_delete(&self, username: &str, id: i32) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let delete = diesel::delete(wc::table.filter(wc::id.eq(id)).filter(wc::username.eq(&username)));
                Ok(per_backend!(conn, |c| delete.execute(c).await)? > 0)
            }
            .boxed()
        })
        .await
    }
}
