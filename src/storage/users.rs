//! Users of the database users backend: one row per user, their addresses and groups in
//! ordered side tables (indexed for logins by address and listings by group), and
//! per-user settings that hold for any backend.

use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};
use futures_util::FutureExt;

use super::connection::{duplicate_on_conflict, per_backend};
use super::schema::{user_emails as ue, user_groups as ug, user_settings as us, users as u};
use super::{Storage, StorageError};

/// A user as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredUser {
    /// Login name.
    pub username: String,
    /// Name to show.
    pub display_name: String,
    /// Password hash (PHC or crypt form).
    pub password_hash: String,
    /// Addresses, primary first.
    pub emails: Vec<String>,
    /// Groups, in order.
    pub groups: Vec<String>,
    /// Cannot log in.
    pub disabled: bool,
    /// When created (Unix seconds).
    pub created_at: i64,
    /// When last changed.
    pub updated_at: i64,
}

/// Which user to find.
#[derive(Clone, Copy, Debug)]
pub enum UserKey<'a> {
    /// By username, exactly.
    Name(&'a str),
    /// By username, ignoring case.
    FoldedName(&'a str),
    /// By email address (always ignoring case).
    Email(&'a str),
}

/// Changes to a user; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct UserChanges {
    /// New display name.
    pub display_name: Option<String>,
    /// New addresses.
    pub emails: Option<Vec<String>>,
    /// New groups.
    pub groups: Option<Vec<String>>,
    /// Disable or enable.
    pub disabled: Option<bool>,
    /// New password hash.
    pub password_hash: Option<String>,
}

/// Which users to list: ordered by username, after `after`.
#[derive(Clone, Debug, Default)]
pub struct UserFilter {
    /// A substring of the username, display name or an address (case-insensitive).
    pub search: Option<String>,
    /// Members of this group only.
    pub group: Option<String>,
    /// Only disabled (`Some(true)`) or enabled (`Some(false)`) users.
    pub disabled: Option<bool>,
    /// Users whose name sorts after this one (the cursor).
    pub after: Option<String>,
    /// At most this many.
    pub limit: i64,
}

type Row = (String, String, String, bool, i64, i64);

/// Replaces a user's addresses inside a transaction on connection `$c`.
macro_rules! replace_emails {
    ($c:expr, $username:expr, $emails:expr) => {{
        diesel::delete(ue::table.filter(ue::username.eq($username))).execute($c).await?;
        for (i, email) in $emails.iter().enumerate() {
            diesel::insert_into(ue::table)
                .values((
                    ue::username.eq($username),
                    ue::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    ue::email.eq(email),
                    ue::email_key.eq(fold(email)),
                ))
                .execute($c)
                .await?;
        }
    }};
}

/// Replaces a user's groups inside a transaction on connection `$c`.
macro_rules! replace_groups {
    ($c:expr, $username:expr, $groups:expr) => {{
        diesel::delete(ug::table.filter(ug::username.eq($username))).execute($c).await?;
        for (i, group) in $groups.iter().enumerate() {
            diesel::insert_into(ug::table)
                .values((
                    ug::username.eq($username),
                    ug::position.eq(i32::try_from(i).unwrap_or(i32::MAX)),
                    ug::group_name.eq(group),
                ))
                .execute($c)
                .await?;
        }
    }};
}

fn fold(text: &str) -> String {
    text.to_lowercase()
}

impl Storage {
    /// The user `key` names, with addresses and groups.
    pub async fn user_find(&self, key: UserKey<'_>) -> Result<Option<StoredUser>, StorageError> {
        let (by, value) = match key {
            UserKey::Name(n) => (0, n.to_string()),
            UserKey::FoldedName(n) => (1, fold(n)),
            UserKey::Email(e) => (2, fold(e)),
        };
        let found = self
            .run(move |conn| {
                async move {
                    let value = &value;
                    let columns =
                        (u::username, u::display_name, u::password_hash, u::disabled, u::created_at, u::updated_at);
                    Ok(per_backend!(conn, |c| {
                        let query = u::table.select(columns).into_boxed();
                        let query = match by {
                            0 => query.filter(u::username.eq(value)),
                            1 => query.filter(u::username_key.eq(value)),
                            _ => query.filter(
                                u::username.eq_any(ue::table.filter(ue::email_key.eq(value)).select(ue::username)),
                            ),
                        };
                        query.order(u::username).first::<Row>(c).await.optional()
                    })?)
                }
                .boxed()
            })
            .await?;
        match found {
            Some(row) => Ok(self.with_details(vec![row]).await?.pop()),
            None => Ok(None),
        }
    }

    /// Adds addresses and groups to user rows, in one query each.
    async fn with_details(&self, rows: Vec<Row>) -> Result<Vec<StoredUser>, StorageError> {
        let names: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let (emails, groups) = self
            .run(move |conn| {
                async move {
                    let names = &names;
                    let emails: Vec<(String, String)> = per_backend!(conn, |c| ue::table
                        .filter(ue::username.eq_any(names))
                        .order((ue::username, ue::position))
                        .select((ue::username, ue::email))
                        .load(c)
                        .await)?;
                    let groups: Vec<(String, String)> = per_backend!(conn, |c| ug::table
                        .filter(ug::username.eq_any(names))
                        .order((ug::username, ug::position))
                        .select((ug::username, ug::group_name))
                        .load(c)
                        .await)?;
                    Ok((emails, groups))
                }
                .boxed()
            })
            .await?;
        let mut users: Vec<StoredUser> = rows
            .into_iter()
            .map(|(username, display_name, password_hash, disabled, created_at, updated_at)| StoredUser {
                username,
                display_name,
                password_hash,
                emails: Vec::new(),
                groups: Vec::new(),
                disabled,
                created_at,
                updated_at,
            })
            .collect();
        let index: std::collections::HashMap<String, usize> =
            users.iter().enumerate().map(|(i, u)| (u.username.clone(), i)).collect();
        for (name, email) in emails {
            if let Some(i) = index.get(&name) {
                users[*i].emails.push(email);
            }
        }
        for (name, group) in groups {
            if let Some(i) = index.get(&name) {
                users[*i].groups.push(group);
            }
        }
        Ok(users)
    }

    /// Stores a new user; [`StorageError::Duplicate`] when the name is taken.
    pub async fn user_insert(&self, user: StoredUser) -> Result<(), StorageError> {
        self.run(move |conn| {
            async move {
                let user = &user;
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let inserted = diesel::insert_into(u::table)
                            .values((
                                u::username.eq(&user.username),
                                u::username_key.eq(fold(&user.username)),
                                u::display_name.eq(&user.display_name),
                                u::password_hash.eq(&user.password_hash),
                                u::disabled.eq(user.disabled),
                                u::created_at.eq(user.created_at),
                                u::updated_at.eq(user.updated_at),
                            ))
                            .execute(c)
                            .await;
                        duplicate_on_conflict(inserted)?;
                        replace_emails!(c, &user.username, &user.emails);
                        replace_groups!(c, &user.username, &user.groups);
                        Ok::<_, StorageError>(())
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Applies `changes` to `username`; `false` when there is no such user.
    pub async fn user_update(&self, username: &str, changes: UserChanges, now: i64) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let (username, changes) = (&username, &changes);
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let found = diesel::update(u::table.filter(u::username.eq(username)))
                            .set(u::updated_at.eq(now))
                            .execute(c)
                            .await?;
                        if found == 0 {
                            return Ok::<_, StorageError>(false);
                        }
                        let row = u::table.filter(u::username.eq(username));
                        if let Some(name) = &changes.display_name {
                            diesel::update(row).set(u::display_name.eq(name)).execute(c).await?;
                        }
                        if let Some(disabled) = changes.disabled {
                            diesel::update(row).set(u::disabled.eq(disabled)).execute(c).await?;
                        }
                        if let Some(hash) = &changes.password_hash {
                            diesel::update(row).set(u::password_hash.eq(hash)).execute(c).await?;
                        }
                        if let Some(emails) = &changes.emails {
                            replace_emails!(c, username, emails);
                        }
                        if let Some(groups) = &changes.groups {
                            replace_groups!(c, username, groups);
                        }
                        Ok(true)
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Removes `username` with its addresses, groups and settings; `false` when absent.
    pub async fn user_delete(&self, username: &str) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let username = &username;
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        diesel::delete(ue::table.filter(ue::username.eq(username))).execute(c).await?;
                        diesel::delete(ug::table.filter(ug::username.eq(username))).execute(c).await?;
                        diesel::delete(us::table.filter(us::username.eq(username))).execute(c).await?;
                        let removed = diesel::delete(u::table.filter(u::username.eq(username))).execute(c).await?;
                        Ok::<_, StorageError>(removed > 0)
                    })
                    .await)
            }
            .boxed()
        })
        .await
    }

    /// Whether any user exists.
    pub async fn users_exist(&self) -> Result<bool, StorageError> {
        self.run(move |conn| {
            async move {
                let any = u::table.select(u::username).limit(1);
                Ok(!per_backend!(conn, |c| any.load::<String>(c).await)?.is_empty())
            }
            .boxed()
        })
        .await
    }

    /// A page of users per `filter`, ordered by username.
    pub async fn user_list(&self, filter: UserFilter) -> Result<Vec<StoredUser>, StorageError> {
        let rows = self
            .run(move |conn| {
                async move {
                    let f = &filter;
                    let pattern = f.search.as_ref().map(|s| format!("%{}%", escape_like(&fold(s))));
                    let columns =
                        (u::username, u::display_name, u::password_hash, u::disabled, u::created_at, u::updated_at);
                    Ok(per_backend!(conn, |c| {
                        let mut query = u::table.select(columns).order(u::username).limit(f.limit).into_boxed();
                        if let Some(after) = &f.after {
                            query = query.filter(u::username.gt(after));
                        }
                        if let Some(disabled) = f.disabled {
                            query = query.filter(u::disabled.eq(disabled));
                        }
                        if let Some(group) = &f.group {
                            query = query.filter(
                                u::username.eq_any(ug::table.filter(ug::group_name.eq(group)).select(ug::username)),
                            );
                        }
                        if let Some(pattern) = &pattern {
                            query = query.filter(
                                u::username_key
                                    .like(pattern)
                                    .escape('\\')
                                    .or(lower(u::display_name).like(pattern).escape('\\'))
                                    .or(u::username.eq_any(
                                        ue::table.filter(ue::email_key.like(pattern).escape('\\')).select(ue::username),
                                    )),
                            );
                        }
                        query.load::<Row>(c).await
                    })?)
                }
                .boxed()
            })
            .await?;
        self.with_details(rows).await
    }

    /// Whether `username` may log in by passkey only.
    pub async fn passwordless(&self, username: &str) -> Result<bool, StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let query = us::table.filter(us::username.eq(username)).select(us::passwordless);
                Ok(per_backend!(conn, |c| query.first::<bool>(c).await.optional())?.unwrap_or(false))
            }
            .boxed()
        })
        .await
    }

    /// Turns passkey-only login on or off for `username`.
    pub async fn set_passwordless(&self, username: &str, on: bool) -> Result<(), StorageError> {
        let username = username.to_string();
        self.run(move |conn| {
            async move {
                let username = &username;
                per_backend!(conn, |c| c
                    .transaction(async |c| {
                        let updated = diesel::update(us::table.filter(us::username.eq(username)))
                            .set(us::passwordless.eq(on))
                            .execute(c)
                            .await?;
                        if updated == 0 {
                            diesel::insert_into(us::table)
                                .values((us::username.eq(username), us::passwordless.eq(on)))
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

diesel::define_sql_function! {
    /// SQL `LOWER`.
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text;
}

/// `text` with LIKE's wildcards escaped (`\` is the escape character).
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}
