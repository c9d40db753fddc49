//! Listings for the command line (`storage user totp|webauthn|identifiers export`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::{oidc_subjects as osub, totp_configurations as tc, webauthn_credentials as wc};
use super::{Storage, StorageError};

impl Storage {
    /// Every user with a TOTP setup, in name order.
    pub async fn totp_usernames(&self) -> Result<Vec<String>, StorageError> {
        self.run(move |conn| {
            async move {
                let query = tc::table.select(tc::username).order(tc::username.asc());
                Ok(per_backend!(conn, |c| query.load::<String>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Every user with a security key or passkey, in name order.
    pub async fn webauthn_usernames(&self) -> Result<Vec<String>, StorageError> {
        self.run(move |conn| {
            async move {
                let query = wc::table.select(wc::username).distinct().order(wc::username.asc());
                Ok(per_backend!(conn, |c| query.load::<String>(c).await)?)
            }
            .boxed()
        })
        .await
    }

    /// Every OpenID Connect subject as (sector, username, identifier), by sector and user.
    pub async fn oidc_subjects(&self) -> Result<Vec<(String, String, String)>, StorageError> {
        self.run(move |conn| {
            async move {
                let query = osub::table
                    .select((osub::sector_id, osub::username, osub::identifier))
                    .order((osub::sector_id.asc(), osub::username.asc()));
                Ok(per_backend!(conn, |c| query.load::<(String, String, String)>(c).await)?)
            }
            .boxed()
        })
        .await
    }
}
