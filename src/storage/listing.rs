//! Listings for the command line (`storage user totp export`).

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::totp_configurations as tc;
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
}
