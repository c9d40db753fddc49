//! Changing `storage.encryption_key` (`storage encryption change-key`): every sealed value
//! (TOTP secrets, WebAuthn credentials, the rows of `encryption` including the key check)
//! is decrypted with the current key and sealed with the new one, in one transaction, so
//! a failure leaves the database as it was.
//!
//! Recovery codes and emailed one-time codes are stored as keyed hashes under a key derived
//! from the encryption key: they cannot be re-hashed without the codes themselves. Pending
//! one-time codes (minutes-lived) are removed; recovery codes are removed only when the
//! caller allows it, otherwise the change is refused before anything is written.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::{
    encryption as en, one_time_codes as otc, recovery_codes as rc, totp_configurations as tc,
    webauthn_credentials as wc,
};
use super::{Cipher, Storage, StorageError};

/// What changing the key did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RekeyReport {
    /// TOTP secrets re-sealed.
    pub totp: usize,
    /// WebAuthn credentials re-sealed.
    pub webauthn: usize,
    /// Rows of the `encryption` table re-sealed (the key check among them).
    pub sealed: usize,
    /// Recovery codes removed (their hashes depend on the key).
    pub recovery_codes_removed: usize,
    /// Pending emailed codes removed.
    pub one_time_codes_removed: usize,
}

/// Why the key was not changed.
#[derive(Debug)]
pub enum RekeyError {
    /// Recovery codes exist and the caller did not allow removing them (how many, of how
    /// many users).
    RecoveryCodesExist(i64, i64),
    /// A storage error (nothing was changed).
    Storage(StorageError),
}

impl From<StorageError> for RekeyError {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<diesel::result::Error> for RekeyError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Storage(e.into())
    }
}

impl std::fmt::Display for RekeyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::RecoveryCodesExist(codes, users) => write!(
                f,
                "{codes} unused recovery code(s) of {users} user(s) are hashed under the current key and would stop \
                 working; pass --discard-recovery-codes to remove them (the users then generate new ones)"
            ),
            Self::Storage(e) => write!(f, "{e}"),
        }
    }
}

impl Storage {
    /// Re-seals every encrypted value under `new_key`; see the module documentation.
    pub async fn change_encryption_key(
        &self,
        new_key: &str,
        discard_recovery_codes: bool,
    ) -> Result<RekeyReport, RekeyError> {
        let old = self.cipher().clone();
        let new = Cipher::from_key(new_key);
        let outcome = self
            .run(move |conn| {
                async move {
                    let (old, new) = (&old, &new);
                    let result = per_backend!(conn, |c| c
                        .transaction(async |c| {
                            let mut report = RekeyReport::default();
                            let unused = rc::table.filter(rc::used_at.is_null());
                            let codes: i64 = unused.count().get_result(c).await?;
                            if codes > 0 && !discard_recovery_codes {
                                let users: i64 =
                                    unused.select(rc::username).distinct().load::<String>(c).await?.len() as i64;
                                return Err(RekeyError::RecoveryCodesExist(codes, users));
                            }
                            let totp: Vec<(i32, Vec<u8>)> = tc::table.select((tc::id, tc::secret)).load(c).await?;
                            for (id, sealed) in &totp {
                                let resealed = new.encrypt(&old.decrypt(sealed)?)?;
                                diesel::update(tc::table.filter(tc::id.eq(id)))
                                    .set(tc::secret.eq(&resealed))
                                    .execute(c)
                                    .await?;
                            }
                            report.totp = totp.len();
                            let keys: Vec<(i32, Vec<u8>)> = wc::table.select((wc::id, wc::credential)).load(c).await?;
                            for (id, sealed) in &keys {
                                let resealed = new.encrypt(&old.decrypt(sealed)?)?;
                                diesel::update(wc::table.filter(wc::id.eq(id)))
                                    .set(wc::credential.eq(&resealed))
                                    .execute(c)
                                    .await?;
                            }
                            report.webauthn = keys.len();
                            let sealed: Vec<(i32, Vec<u8>)> = en::table.select((en::id, en::value)).load(c).await?;
                            for (id, value) in &sealed {
                                let resealed = new.encrypt(&old.decrypt(value)?)?;
                                diesel::update(en::table.filter(en::id.eq(id)))
                                    .set(en::value.eq(&resealed))
                                    .execute(c)
                                    .await?;
                            }
                            report.sealed = sealed.len();
                            report.recovery_codes_removed = diesel::delete(rc::table).execute(c).await?;
                            report.one_time_codes_removed = diesel::delete(otc::table).execute(c).await?;
                            Ok::<_, RekeyError>(report)
                        })
                        .await);
                    // Storage errors go back through `run` (which retires faulty connections).
                    match result {
                        Err(RekeyError::Storage(e)) => Err(e),
                        other => Ok(other),
                    }
                }
                .boxed()
            })
            .await;
        outcome.map_err(RekeyError::Storage)?
    }
}
