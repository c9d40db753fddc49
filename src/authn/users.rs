//! Where users live: the users file (Authelia's format), the storage database
//! (`authentication_backend.database`) or an LDAP directory. One async interface over
//! them, so logins, the proxy's Basic check, password changes and the admin API do not
//! care which. The LDAP operations' futures are boxed: they are large, and every caller's
//! future would otherwise carry them even with another backend.

use std::sync::Arc;

use super::ldap::LdapUsers;
use super::users_file::{User, UsersFile, UsersFileError};
use crate::config::Configuration;
use crate::storage::{Storage, StorageError, StoredUser, UserChanges, UserFilter, UserKey};

/// Why the users backend could not do it.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    /// The backend cannot be read or written now.
    #[error("users backend unavailable: {0}")]
    Unavailable(String),
    /// No such user.
    #[error("no such user '{0}'")]
    UnknownUser(String),
    /// A user with that name exists already.
    #[error("user '{0}' already exists")]
    UserExists(String),
    /// The backend does not do that (users in LDAP are managed in the directory).
    #[error("not supported by the {0} users backend")]
    NotSupported(&'static str),
    /// The backend refused a new password (the directory's own policy).
    #[error("the new password was refused: {0}")]
    Refused(String),
}

impl From<StorageError> for UsersError {
    fn from(e: StorageError) -> Self {
        Self::Unavailable(e.to_string())
    }
}

impl From<UsersFileError> for UsersError {
    fn from(e: UsersFileError) -> Self {
        match e {
            UsersFileError::UnknownUser(name) => Self::UnknownUser(name),
            UsersFileError::UserExists(name) => Self::UserExists(name),
            other => Self::Unavailable(other.to_string()),
        }
    }
}

/// The configured users backend (cheap to clone: both variants share their state).
#[derive(Clone)]
pub enum Users {
    /// The users file.
    File(Arc<UsersFile>),
    /// The storage database.
    Database {
        /// The database.
        storage: Storage,
        /// Usernames match ignoring case.
        case_insensitive: bool,
        /// Users may log in with an address.
        allow_email_login: bool,
    },
    /// An LDAP directory (read-only but for passwords).
    Ldap(Arc<LdapUsers>),
}

/// What the LDAP backend answers to administrative writes.
const LDAP: UsersError = UsersError::NotSupported("LDAP");

impl Users {
    /// The backend `config` selects over `storage`.
    pub fn open(config: &Configuration, storage: &Storage) -> Result<Self, UsersError> {
        let backend = &config.authentication_backend;
        if let Some(ldap) = &backend.ldap {
            let certificates = config.certificates_directory.as_deref().map(std::path::Path::new);
            return Ok(Self::Ldap(Arc::new(LdapUsers::new(ldap, certificates).map_err(UsersError::Unavailable)?)));
        }
        if let Some(db) = &backend.database {
            return Ok(Self::Database {
                storage: storage.clone(),
                case_insensitive: db.search.case_insensitive,
                allow_email_login: db.search.email,
            });
        }
        let file = backend.file.clone().unwrap_or_default();
        let path = file.path.clone().unwrap_or_default();
        Ok(Self::File(Arc::new(UsersFile::open(path, file.search.case_insensitive, file.search.email)?)))
    }

    /// The users file, when that is the backend.
    pub fn file(&self) -> Option<&Arc<UsersFile>> {
        match self {
            Self::File(file) => Some(file),
            Self::Database { .. } | Self::Ldap(_) => None,
        }
    }

    /// The LDAP directory, when that is the backend: passwords are checked by binding and
    /// set in the directory rather than hashed here.
    pub fn ldap(&self) -> Option<&Arc<LdapUsers>> {
        match self {
            Self::Ldap(ldap) => Some(ldap),
            Self::File(_) | Self::Database { .. } => None,
        }
    }

    /// The user a login name names: the username, or an address when the backend allows
    /// logins by address.
    pub async fn find_login(&self, login: &str) -> Result<Option<Arc<User>>, UsersError> {
        match self {
            Self::File(file) => Ok(file.find_login(login)),
            Self::Database { storage, case_insensitive, allow_email_login } => {
                let key = if *case_insensitive { UserKey::FoldedName(login) } else { UserKey::Name(login) };
                let mut found = storage.user_find(key).await?;
                if found.is_none() && *allow_email_login && login.contains('@') {
                    found = storage.user_find(UserKey::Email(login)).await?;
                }
                Ok(found.map(|u| Arc::new(user_of(u))))
            }
            Self::Ldap(ldap) => Box::pin(ldap.find_login(login)).await,
        }
    }

    /// The one user with the address `email` (compared ignoring case), whatever the
    /// backend's login settings; none when nobody or several users have it.
    pub async fn find_by_email(&self, email: &str) -> Result<Option<Arc<User>>, UsersError> {
        let has = |u: &User| u.emails.iter().any(|e| e.eq_ignore_ascii_case(email));
        match self {
            Self::File(file) => {
                let matching: Vec<_> = file.snapshot().all().into_iter().filter(|u| has(u)).collect();
                Ok(if matching.len() == 1 { matching.into_iter().next() } else { None })
            }
            Self::Database { storage, .. } => {
                Ok(storage.user_find(UserKey::Email(email)).await?.map(|u| Arc::new(user_of(u))))
            }
            Self::Ldap(ldap) => {
                let matching: Vec<_> = Box::pin(ldap.list()).await?.into_iter().filter(|u| has(u)).collect();
                Ok(if matching.len() == 1 { matching.into_iter().next() } else { None })
            }
        }
    }

    /// The user named exactly `username` (as the backend matches names).
    pub async fn get(&self, username: &str) -> Result<Option<Arc<User>>, UsersError> {
        match self {
            Self::File(file) => Ok(file.snapshot().by_name(username).cloned()),
            Self::Database { storage, case_insensitive, .. } => {
                let key = if *case_insensitive { UserKey::FoldedName(username) } else { UserKey::Name(username) };
                Ok(storage.user_find(key).await?.map(|u| Arc::new(user_of(u))))
            }
            Self::Ldap(ldap) => Box::pin(ldap.get(username)).await,
        }
    }

    /// Whether any user exists.
    pub async fn any(&self) -> Result<bool, UsersError> {
        match self {
            Self::File(file) => Ok(!file.snapshot().is_empty()),
            Self::Database { storage, .. } => Ok(storage.users_exist().await?),
            // The directory's users: no first administrator to bootstrap here.
            Self::Ldap(_) => Ok(true),
        }
    }

    /// Whether users can be created, changed and deleted here (not in LDAP: the directory
    /// is managed with its own tools).
    pub fn writable(&self) -> Result<(), UsersError> {
        match self {
            Self::Ldap(_) => Err(LDAP),
            Self::File(_) | Self::Database { .. } => Ok(()),
        }
    }

    /// Adds `user`.
    pub async fn create(&self, user: User, now: i64) -> Result<(), UsersError> {
        match self {
            Self::File(file) => {
                let file = file.clone();
                blocking(move || file.add_user(&user)).await
            }
            Self::Database { storage, .. } => {
                if self.get(&user.username).await?.is_some() {
                    return Err(UsersError::UserExists(user.username));
                }
                let stored = StoredUser {
                    username: user.username.clone(),
                    display_name: user.display_name,
                    password_hash: user.password_hash,
                    emails: user.emails,
                    groups: user.groups,
                    disabled: user.disabled,
                    created_at: now,
                    updated_at: now,
                };
                match storage.user_insert(stored).await {
                    Err(StorageError::Duplicate) => Err(UsersError::UserExists(user.username)),
                    other => Ok(other?),
                }
            }
            Self::Ldap(_) => Err(LDAP),
        }
    }

    /// Applies `changes` to `username`.
    pub async fn update(&self, username: &str, changes: UserChanges, now: i64) -> Result<(), UsersError> {
        match self {
            Self::File(file) => {
                let (file, name) = (file.clone(), username.to_string());
                blocking(move || file.update_user(&name, &changes)).await
            }
            Self::Database { storage, .. } => {
                let name = self.canonical(username).await?;
                if storage.user_update(&name, changes, now).await? {
                    Ok(())
                } else {
                    Err(UsersError::UnknownUser(username.to_string()))
                }
            }
            Self::Ldap(_) => Err(LDAP),
        }
    }

    /// Replaces `username`'s password hash.
    pub async fn set_password_hash(&self, username: &str, hash: &str, now: i64) -> Result<(), UsersError> {
        let changes = UserChanges { password_hash: Some(hash.to_string()), ..Default::default() };
        self.update(username, changes, now).await
    }

    /// Removes `username`.
    pub async fn delete(&self, username: &str) -> Result<(), UsersError> {
        match self {
            Self::File(file) => {
                let (file, name) = (file.clone(), username.to_string());
                blocking(move || file.delete_user(&name)).await
            }
            Self::Database { storage, .. } => {
                let name = self.canonical(username).await?;
                if storage.user_delete(&name).await? {
                    Ok(())
                } else {
                    Err(UsersError::UnknownUser(username.to_string()))
                }
            }
            Self::Ldap(_) => Err(LDAP),
        }
    }

    /// A page of users per `filter`, ordered by username.
    pub async fn list(&self, filter: UserFilter) -> Result<Vec<Arc<User>>, UsersError> {
        match self {
            Self::File(file) => Ok(page(file.snapshot().all(), &filter)),
            Self::Ldap(ldap) => Ok(page(Box::pin(ldap.list()).await?, &filter)),
            Self::Database { storage, .. } => {
                Ok(storage.user_list(filter).await?.into_iter().map(|u| Arc::new(user_of(u))).collect())
            }
        }
    }

    /// The stored name of `username` (names may match ignoring case).
    async fn canonical(&self, username: &str) -> Result<String, UsersError> {
        self.get(username)
            .await?
            .map(|u| u.username.clone())
            .ok_or_else(|| UsersError::UnknownUser(username.to_string()))
    }
}

/// The page of `all` (ordered by username) that `filter` selects.
fn page(all: Vec<Arc<User>>, filter: &UserFilter) -> Vec<Arc<User>> {
    let search = filter.search.as_deref().map(str::to_lowercase);
    let limit = usize::try_from(filter.limit).unwrap_or(0);
    all.into_iter()
        .filter(|u| filter.after.as_ref().is_none_or(|after| u.username.as_str() > after.as_str()))
        .filter(|u| filter.disabled.is_none_or(|d| u.disabled == d))
        .filter(|u| filter.group.as_ref().is_none_or(|g| u.groups.contains(g)))
        .filter(|u| search.as_ref().is_none_or(|s| matches_search(u, s)))
        .take(limit)
        .collect()
}

fn matches_search(user: &User, search: &str) -> bool {
    user.username.to_lowercase().contains(search)
        || user.display_name.to_lowercase().contains(search)
        || user.emails.iter().any(|e| e.to_lowercase().contains(search))
}

fn user_of(u: StoredUser) -> User {
    User {
        username: u.username,
        display_name: u.display_name,
        password_hash: u.password_hash,
        emails: u.emails,
        groups: u.groups,
        disabled: u.disabled,
    }
}

/// Runs a users-file write on the blocking pool (it reads, writes and fsyncs the file).
async fn blocking(work: impl FnOnce() -> Result<(), UsersFileError> + Send + 'static) -> Result<(), UsersError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| UsersError::Unavailable(e.to_string()))?.map_err(Into::into)
}
