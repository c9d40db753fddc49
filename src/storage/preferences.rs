//! Per-user preferences.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::user_preferences as prefs;
use super::{Storage, StorageError};

impl Storage {
    /// The user's preferred second-factor method, if they chose one.
    pub async fn preferred_method(&self, username: &str) -> Result<Option<String>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = prefs::table.filter(prefs::username.eq(username)).select(prefs::second_factor_method);
                Ok(per_backend!(conn, |c| query.first(c).await.optional())?)
            }
            .boxed()
        })
        .await
    }

    /// Records the user's preferred second-factor method.
    pub async fn set_preferred_method(&self, username: &str, method: &str) -> Result<(), StorageError> {
        let (username, method) = (username.to_string(), method.to_string());
        self.run(move |conn| {
            async move {
                let (username, method) = (&username, &method);
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let updated = diesel::update(prefs::table.filter(prefs::username.eq(username)))
                            .set(prefs::second_factor_method.eq(method))
                            .execute(c)
                            .await?;
                        if updated == 0 {
                            diesel::insert_into(prefs::table)
                                .values((prefs::username.eq(username), prefs::second_factor_method.eq(method)))
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
