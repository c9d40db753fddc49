//! Per-user preferences.

use diesel::prelude::*;

use super::schema::user_preferences as prefs;
use super::{Storage, StorageError};

impl Storage {
    /// The user's preferred second-factor method, if they chose one.
    pub async fn preferred_method(&self, username: &str) -> Result<Option<String>, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            Ok(prefs::table
                .filter(prefs::username.eq(username))
                .select(prefs::second_factor_method)
                .first(conn)
                .optional()?)
        })
        .await
    }

    /// Records the user's preferred second-factor method.
    pub async fn set_preferred_method(&self, username: &str, method: &str) -> Result<(), StorageError> {
        let (username, method) = (username.to_string(), method.to_string());
        self.run(move |conn| {
            conn.transaction(|conn| {
                let updated = diesel::update(prefs::table.filter(prefs::username.eq(&username)))
                    .set(prefs::second_factor_method.eq(&method))
                    .execute(conn)?;
                if updated == 0 {
                    diesel::insert_into(prefs::table)
                        .values((prefs::username.eq(&username), prefs::second_factor_method.eq(&method)))
                        .execute(conn)?;
                }
                Ok(())
            })
        })
        .await
    }
}
