//! Sign-in through an upstream OpenID provider: which upstream account (issuer, subject)
//! is which local user, and the provider's settings as one sealed value of the encryption
//! table (so that changing the storage key re-seals them with everything else).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::{encryption, upstream_oidc_identities as ui};
use super::{Storage, StorageError};

impl Storage {
    /// The local user the upstream account `(issuer, subject)` is linked to.
    pub async fn upstream_link(&self, issuer: &str, subject: &str) -> Result<Option<String>, StorageError> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        self.run(move |conn| {
            async move {
                let query =
                    ui::table.filter(ui::issuer.eq(&issuer)).filter(ui::subject.eq(&subject)).select(ui::username);
                Ok(per_backend!(conn, |c| query.first::<String>(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Links the upstream account to `username`; [`StorageError::Duplicate`] when it is
    /// linked already (to anyone).
    pub async fn upstream_link_add(
        &self,
        issuer: &str,
        subject: &str,
        username: &str,
        now: i64,
    ) -> Result<(), StorageError> {
        let (issuer, subject, username) = (issuer.to_string(), subject.to_string(), username.to_string());
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(ui::table).values((
                    ui::issuer.eq(&issuer),
                    ui::subject.eq(&subject),
                    ui::username.eq(&username),
                    ui::created_at.eq(now),
                    ui::last_used_at.eq(now),
                ));
                duplicate_on_conflict(per_backend!(conn, |c| insert.execute(c).await))?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Records a sign-in through the link.
    pub async fn upstream_link_used(&self, issuer: &str, subject: &str, now: i64) -> Result<(), StorageError> {
        let (issuer, subject) = (issuer.to_string(), subject.to_string());
        self.run(move |conn| {
            async move {
                let rows = ui::table.filter(ui::issuer.eq(&issuer)).filter(ui::subject.eq(&subject));
                per_backend!(conn, |c| diesel::update(rows).set(ui::last_used_at.eq(now)).execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// Removes every link to `username` (the user was deleted: a new account of the same
    /// name must not be reachable through them).
    pub async fn upstream_links_remove(&self, username: &str) -> Result<usize, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let rows = ui::table.filter(ui::username.eq(&username));
                Ok(per_backend!(conn, |c| diesel::delete(rows).execute(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// The value sealed under `name` in the encryption table, decrypted, if any.
    pub async fn sealed_value(&self, name: &str) -> Result<Option<Vec<u8>>, StorageError> {
        let cipher = self.cipher().clone();
        let name = name.to_string();
        self.run(move |conn| {
            async move {
                let find = encryption::table.filter(encryption::name.eq(&name)).select(encryption::value);
                match per_backend!(conn, |c| find.first::<Vec<u8>>(c).await.optional())? {
                    Some(sealed) => Ok(Some(cipher.decrypt(&sealed)?)),
                    None => Ok(None),
                }
            }
            .boxed()
        })
        .await
    }

    /// Seals `plain` under `name` in the encryption table, replacing any value there.
    pub async fn sealed_value_put(&self, name: &str, plain: &[u8]) -> Result<(), StorageError> {
        let sealed = self.cipher().encrypt(plain)?;
        let name = name.to_string();
        self.run(move |conn| {
            async move {
                let rows = encryption::table.filter(encryption::name.eq(&name));
                let updated =
                    per_backend!(conn, |c| diesel::update(rows).set(encryption::value.eq(&sealed)).execute(c).await)?;
                if updated == 0 {
                    let insert = diesel::insert_into(encryption::table)
                        .values((encryption::name.eq(&name), encryption::value.eq(&sealed)));
                    per_backend!(conn, |c| insert.execute(c).await)?;
                }
                Ok(())
            }
            .boxed()
        })
        .await
    }
}
