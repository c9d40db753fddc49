//! The users database file in Authelia's format:
//!
//! ```yaml
//! users:
//!   john:
//!     displayname: John Doe
//!     password: $argon2id$v=19$...
//!     email: john@example.com
//!     groups: [admins, dev]
//!     disabled: false
//! ```
//!
//! The file is read into an immutable index that lookups share without locking; a reload
//! swaps in a new index. Writes edit the parsed YAML tree and replace the file atomically
//! (temporary file, fsync, rename), so other users and unknown keys survive untouched.
//! A file that fails to parse on reload is reported with its line and column and the
//! previous users stay in force.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::Deserialize;

/// One user as the rest of the server sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    /// Login name, as written in the file.
    pub username: String,
    /// Name to show.
    pub display_name: String,
    /// Stored password hash (PHC or crypt form).
    pub password_hash: String,
    /// Email addresses, primary first.
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// A disabled user cannot log in.
    pub disabled: bool,
}

/// Why the users file could not be used.
#[derive(Debug, thiserror::Error)]
pub enum UsersFileError {
    /// Reading or writing failed.
    #[error("users file '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The YAML is malformed or has the wrong shape.
    #[error("users file '{path}' is invalid: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// The user to change does not exist.
    #[error("no such user '{0}'")]
    UnknownUser(String),
    /// The user to create exists already.
    #[error("user '{0}' already exists")]
    UserExists(String),
}

#[derive(Deserialize)]
struct FileShape {
    #[serde(default)]
    users: Option<HashMap<String, UserShape>>,
}

#[derive(Deserialize)]
struct UserShape {
    #[serde(default)]
    displayname: String,
    password: String,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    emails: Vec<String>,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

/// The parsed users, indexed for lookup by name and by email.
#[derive(Debug, Default)]
pub struct UsersIndex {
    by_name: HashMap<String, Arc<User>>,
    by_email: HashMap<String, Arc<User>>,
    case_insensitive: bool,
}

impl UsersIndex {
    fn build(users: Vec<User>, case_insensitive: bool) -> Self {
        let mut index = Self { case_insensitive, ..Default::default() };
        for user in users {
            let user = Arc::new(user);
            for email in &user.emails {
                index.by_email.insert(email.to_ascii_lowercase(), user.clone());
            }
            let key = if case_insensitive { user.username.to_lowercase() } else { user.username.clone() };
            index.by_name.insert(key, user);
        }
        index
    }

    /// The user named `username`.
    pub fn by_name(&self, username: &str) -> Option<&Arc<User>> {
        if self.case_insensitive { self.by_name.get(&username.to_lowercase()) } else { self.by_name.get(username) }
    }

    /// The user with email address `email` (always case-insensitive).
    pub fn by_email(&self, email: &str) -> Option<&Arc<User>> {
        self.by_email.get(&email.to_ascii_lowercase())
    }

    /// Every user, ordered by username.
    pub fn all(&self) -> Vec<Arc<User>> {
        let mut all: Vec<Arc<User>> = self.by_name.values().cloned().collect();
        all.sort_by(|a, b| a.username.cmp(&b.username));
        all
    }

    /// Number of users.
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    /// True when the file has no users.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// The users file and its current contents.
pub struct UsersFile {
    path: PathBuf,
    case_insensitive: bool,
    allow_email_login: bool,
    current: RwLock<Arc<UsersIndex>>,
    /// Serializes writers, and remembers what the file looked like when last read.
    write_state: Mutex<Fingerprint>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Fingerprint {
    modified: Option<SystemTime>,
    len: u64,
}

fn fingerprint(path: &Path) -> Fingerprint {
    std::fs::metadata(path).map(|m| Fingerprint { modified: m.modified().ok(), len: m.len() }).unwrap_or_default()
}

impl UsersFile {
    /// Opens `path`, creating an empty users file (mode 0600) when it does not exist.
    pub fn open(
        path: impl Into<PathBuf>,
        case_insensitive: bool,
        allow_email_login: bool,
    ) -> Result<Self, UsersFileError> {
        let path = path.into();
        if !path.exists() {
            write_atomically(&path, "users: {}\n")?;
            tracing::info!(path = %path.display(), "created an empty users file");
        }
        let (users, seen) = read_users(&path)?;
        Ok(Self {
            current: RwLock::new(Arc::new(UsersIndex::build(users, case_insensitive))),
            write_state: Mutex::new(seen),
            path,
            case_insensitive,
            allow_email_login,
        })
    }

    /// The users as of the last successful read.
    pub fn snapshot(&self) -> Arc<UsersIndex> {
        self.current.read().map(|g| g.clone()).unwrap_or_default()
    }

    /// Finds the user for a login name: the username, or the email address when
    /// `authentication_backend.file.search.email` allows it.
    pub fn find_login(&self, login: &str) -> Option<Arc<User>> {
        let users = self.snapshot();
        users
            .by_name(login)
            .or_else(|| if self.allow_email_login && login.contains('@') { users.by_email(login) } else { None })
            .cloned()
    }

    /// Re-reads the file if it changed since the last read. On a parse error the current
    /// users stay and the error is returned (and should be logged).
    pub fn reload_if_changed(&self) -> Result<bool, UsersFileError> {
        let mut seen = self.write_state.lock().unwrap_or_else(|p| p.into_inner());
        if fingerprint(&self.path) == *seen {
            return Ok(false);
        }
        let (users, now_seen) = match read_users(&self.path) {
            Ok(ok) => ok,
            Err(e) => {
                // Remember the broken version so the error is reported once per change.
                *seen = fingerprint(&self.path);
                return Err(e);
            }
        };
        *seen = now_seen;
        self.install(users);
        Ok(true)
    }

    fn install(&self, users: Vec<User>) {
        let index = Arc::new(UsersIndex::build(users, self.case_insensitive));
        if let Ok(mut current) = self.current.write() {
            *current = index;
        }
    }

    /// Replaces `username`'s password hash in the file (other content is kept).
    pub fn set_password_hash(&self, username: &str, hash: &str) -> Result<(), UsersFileError> {
        self.edit(|users| {
            let key = self.key_of(users, username)?;
            if let Some(serde_yaml::Value::Mapping(user)) = users.get_mut(&key) {
                user.insert("password".into(), hash.into());
            }
            Ok(())
        })
    }

    /// Adds a user to the file.
    pub fn add_user(&self, user: &User) -> Result<(), UsersFileError> {
        self.edit(|users| {
            if users.keys().any(|k| k.as_str().is_some_and(|k| self.same_name(k, &user.username))) {
                return Err(UsersFileError::UserExists(user.username.clone()));
            }
            let mut entry = serde_yaml::Mapping::new();
            entry.insert("disabled".into(), user.disabled.into());
            entry.insert("displayname".into(), user.display_name.clone().into());
            entry.insert("password".into(), user.password_hash.clone().into());
            match user.emails.as_slice() {
                [] => {}
                [one] => {
                    entry.insert("email".into(), one.clone().into());
                }
                many => {
                    let list = many.iter().map(|e| e.clone().into()).collect();
                    entry.insert("emails".into(), serde_yaml::Value::Sequence(list));
                }
            }
            entry.insert(
                "groups".into(),
                serde_yaml::Value::Sequence(user.groups.iter().map(|g| g.clone().into()).collect()),
            );
            users.insert(user.username.clone().into(), serde_yaml::Value::Mapping(entry));
            Ok(())
        })
    }

    /// Applies `changes` to `username`'s entry; keys it does not name (and unknown keys)
    /// stay as written.
    pub fn update_user(&self, username: &str, changes: &crate::storage::UserChanges) -> Result<(), UsersFileError> {
        self.edit(|users| {
            let key = self.key_of(users, username)?;
            let Some(serde_yaml::Value::Mapping(entry)) = users.get_mut(&key) else {
                return Err(UsersFileError::UnknownUser(username.to_string()));
            };
            if let Some(name) = &changes.display_name {
                entry.insert("displayname".into(), name.clone().into());
            }
            if let Some(disabled) = changes.disabled {
                entry.insert("disabled".into(), disabled.into());
            }
            if let Some(hash) = &changes.password_hash {
                entry.insert("password".into(), hash.clone().into());
            }
            if let Some(emails) = &changes.emails {
                // Authelia's form: `email` for one address, `emails` for several.
                entry.remove("email");
                entry.remove("emails");
                match emails.as_slice() {
                    [] => {}
                    [one] => {
                        entry.insert("email".into(), one.clone().into());
                    }
                    many => {
                        let list = many.iter().map(|e| e.clone().into()).collect();
                        entry.insert("emails".into(), serde_yaml::Value::Sequence(list));
                    }
                }
            }
            if let Some(groups) = &changes.groups {
                let list = groups.iter().map(|g| g.clone().into()).collect();
                entry.insert("groups".into(), serde_yaml::Value::Sequence(list));
            }
            Ok(())
        })
    }

    /// Removes `username` from the file.
    pub fn delete_user(&self, username: &str) -> Result<(), UsersFileError> {
        self.edit(|users| {
            let key = self.key_of(users, username)?;
            users.remove(&key);
            Ok(())
        })
    }

    fn key_of(&self, users: &serde_yaml::Mapping, username: &str) -> Result<serde_yaml::Value, UsersFileError> {
        users
            .keys()
            .find(|k| k.as_str().is_some_and(|k| self.same_name(k, username)))
            .cloned()
            .ok_or_else(|| UsersFileError::UnknownUser(username.to_string()))
    }

    fn same_name(&self, a: &str, b: &str) -> bool {
        if self.case_insensitive { a.to_lowercase() == b.to_lowercase() } else { a == b }
    }

    /// Reads the file fresh, applies `change` to its `users` mapping, writes it back
    /// atomically and installs the result. Writers are serialized.
    fn edit(
        &self,
        change: impl FnOnce(&mut serde_yaml::Mapping) -> Result<(), UsersFileError>,
    ) -> Result<(), UsersFileError> {
        let mut seen = self.write_state.lock().unwrap_or_else(|p| p.into_inner());
        let text = read_text(&self.path)?;
        let mut tree: serde_yaml::Value = parse_yaml(&self.path, &text)?;
        if tree.is_null() {
            tree = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
        }
        let root = tree.as_mapping_mut().ok_or_else(|| invalid(&self.path, "the top level must be a mapping"))?;
        let users =
            root.entry("users".into()).or_insert_with(|| serde_yaml::Value::Mapping(serde_yaml::Mapping::new()));
        if users.is_null() {
            *users = serde_yaml::Value::Mapping(serde_yaml::Mapping::new());
        }
        let users = users.as_mapping_mut().ok_or_else(|| invalid(&self.path, "'users' must be a mapping"))?;
        change(users)?;
        let out = serde_yaml::to_string(&tree).map_err(|e| invalid(&self.path, &e.to_string()))?;
        // Check that what is written reads back before replacing the file.
        let users = users_from_text(&self.path, &out)?;
        write_atomically(&self.path, &out)?;
        *seen = fingerprint(&self.path);
        self.install(users);
        Ok(())
    }
}

fn invalid(path: &Path, message: &str) -> UsersFileError {
    UsersFileError::Invalid { path: path.to_path_buf(), message: message.to_string() }
}

fn read_text(path: &Path) -> Result<String, UsersFileError> {
    std::fs::read_to_string(path).map_err(|source| UsersFileError::Io { path: path.to_path_buf(), source })
}

fn parse_yaml(path: &Path, text: &str) -> Result<serde_yaml::Value, UsersFileError> {
    serde_yaml::from_str(text).map_err(|e| invalid(path, &e.to_string()))
}

fn read_users(path: &Path) -> Result<(Vec<User>, Fingerprint), UsersFileError> {
    let before = fingerprint(path);
    let text = read_text(path)?;
    Ok((users_from_text(path, &text)?, before))
}

fn users_from_text(path: &Path, text: &str) -> Result<Vec<User>, UsersFileError> {
    let shape: FileShape = serde_yaml::from_str(text).map_err(|e| invalid(path, &e.to_string()))?;
    let mut users = Vec::new();
    for (username, u) in shape.users.unwrap_or_default() {
        if username.is_empty() {
            return Err(invalid(path, "a user has an empty name"));
        }
        let mut emails = Vec::new();
        emails.extend(u.email.filter(|e| !e.is_empty()));
        emails.extend(u.emails.into_iter().filter(|e| !e.is_empty()));
        emails.dedup();
        users.push(User {
            display_name: if u.displayname.is_empty() { username.clone() } else { u.displayname },
            username,
            password_hash: u.password,
            emails,
            groups: u.groups,
            disabled: u.disabled,
        });
    }
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(users)
}

/// Replaces `path` with `text`: write a temporary file beside it, fsync, rename over,
/// fsync the directory. Readers see the old or the new file, never half of one. An
/// existing file's permissions are kept; a new file is readable by its owner only.
fn write_atomically(path: &Path, text: &str) -> Result<(), UsersFileError> {
    let io = |source| UsersFileError::Io { path: path.to_path_buf(), source };
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("users.yml");
    let tmp = dir.join(format!(".{name}.tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        if let Ok(meta) = std::fs::metadata(path) {
            file.set_permissions(meta.permissions())?;
        }
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# users
users:
  john:
    displayname: John Doe
    password: '$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g'
    email: john@example.com
    groups: [admins, dev]
    given_name: John
  mary:
    password: '$6$rounds=5000$salt$hash'
    emails: [mary@example.com, m@example.org]
    disabled: true
";

    fn open(text: &str, case_insensitive: bool, email: bool) -> (tempfile::TempDir, UsersFile) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yml");
        std::fs::write(&path, text).unwrap();
        let file = UsersFile::open(&path, case_insensitive, email).unwrap();
        (dir, file)
    }

    #[test]
    fn reads_authelia_format() {
        let (_d, file) = open(SAMPLE, false, true);
        let john = file.find_login("john").unwrap();
        assert_eq!(john.display_name, "John Doe");
        assert_eq!(john.emails, vec!["john@example.com"]);
        assert_eq!(john.groups, vec!["admins", "dev"]);
        assert!(!john.disabled);
        let mary = file.find_login("MARY@example.com").unwrap();
        assert_eq!(mary.username, "mary");
        assert_eq!(mary.display_name, "mary");
        assert!(mary.disabled);
        assert!(file.find_login("John").is_none(), "case-sensitive by default");
        assert!(file.find_login("nobody").is_none());
    }

    #[test]
    fn search_options() {
        let (_d, file) = open(SAMPLE, true, false);
        assert!(file.find_login("JOHN").is_some());
        assert!(file.find_login("john@example.com").is_none(), "email login is off");
    }

    #[test]
    fn missing_file_is_created_empty() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/users.yml");
        let file = UsersFile::open(&path, false, false).unwrap();
        assert!(file.snapshot().is_empty());
        assert!(path.exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn writes_keep_unrelated_content() {
        let (dir, file) = open(SAMPLE, false, false);
        file.set_password_hash("john", "$argon2id$new").unwrap();
        assert_eq!(file.find_login("john").unwrap().password_hash, "$argon2id$new");
        let text = std::fs::read_to_string(dir.path().join("users.yml")).unwrap();
        let tree: serde_yaml::Value = serde_yaml::from_str(&text).unwrap();
        assert_eq!(tree["users"]["john"]["given_name"].as_str(), Some("John"), "unknown keys survive");
        assert_eq!(tree["users"]["mary"]["emails"][1].as_str(), Some("m@example.org"), "other users survive");
        assert!(matches!(file.set_password_hash("nobody", "x"), Err(UsersFileError::UnknownUser(_))));
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().filter_map(Result::ok).collect();
        assert_eq!(leftovers.len(), 1, "no temporary files are left behind");
    }

    #[test]
    fn add_user_refuses_duplicates() {
        let (_d, file) = open("users: {}\n", false, true);
        let admin = User {
            username: "admin".into(),
            display_name: "Admin".into(),
            password_hash: "$argon2id$x".into(),
            emails: vec!["admin@example.com".into()],
            groups: vec!["admins".into()],
            disabled: false,
        };
        file.add_user(&admin).unwrap();
        assert_eq!(*file.find_login("admin@example.com").unwrap(), admin);
        assert!(matches!(file.add_user(&admin), Err(UsersFileError::UserExists(_))));
    }

    #[test]
    fn reload_picks_up_changes_and_survives_broken_files() {
        let (dir, file) = open(SAMPLE, false, false);
        let path = dir.path().join("users.yml");
        assert!(!file.reload_if_changed().unwrap(), "unchanged file: nothing to do");

        std::fs::write(&path, SAMPLE.replace("John Doe", "Johnny")).unwrap();
        bump_mtime(&path);
        assert!(file.reload_if_changed().unwrap());
        assert_eq!(file.find_login("john").unwrap().display_name, "Johnny");

        std::fs::write(&path, "users:\n  john: [unclosed\n").unwrap();
        bump_mtime(&path);
        let err = file.reload_if_changed().unwrap_err().to_string();
        assert!(err.contains("line"), "{err}");
        assert_eq!(file.find_login("john").unwrap().display_name, "Johnny", "previous users stay");
        assert!(!file.reload_if_changed().unwrap(), "the same broken file is reported once");
    }

    fn bump_mtime(path: &Path) {
        use std::time::Duration;
        let later = SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options().write(true).open(path).unwrap().set_modified(later).unwrap();
    }

    #[test]
    fn missing_password_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("users.yml");
        std::fs::write(&path, "users:\n  john:\n    displayname: John\n").unwrap();
        let err = UsersFile::open(&path, false, false).err().unwrap().to_string();
        assert!(err.contains("password"), "{err}");
    }
}
