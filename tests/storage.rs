//! The storage layer against real SQLite, PostgreSQL and MariaDB: migrations, the
//! encryption-key check, the authentication log and preferences.

mod common;

use common::databases::{MariaDbServer, PostgresServer};
use portcullis::config::schema::{LocalStorage, SqlStorage, Storage as StorageConfig};
use portcullis::config::types::Secret;
use portcullis::storage::{AttemptsBy, AuthAttempt, AuthType, Backend, Storage, StorageError};

const KEY: &str = "an-encryption-key-for-the-storage-tests";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn sqlite_config(dir: &std::path::Path) -> StorageConfig {
    StorageConfig {
        encryption_key: Secret::new(KEY),
        local: Some(LocalStorage { path: Some(dir.join("db/portcullis.sqlite3").display().to_string()) }),
        ..Default::default()
    }
}

fn sql(port: u16, username: &str) -> SqlStorage {
    SqlStorage {
        address: Some(format!("tcp://127.0.0.1:{port}")),
        database: Some("portcullis".into()),
        username: Some(username.into()),
        ..Default::default()
    }
}

fn attempt(username: &str, time: i64, successful: bool) -> AuthAttempt {
    AuthAttempt {
        time,
        successful,
        banned: false,
        username: username.into(),
        auth_type: AuthType::FirstFactor,
        remote_ip: "192.0.2.1".into(),
        request_uri: "https://app.example.com/".into(),
        request_method: "GET".into(),
    }
}

/// What every backend must do.
fn contract(config: StorageConfig, backend: Backend) {
    let storage = Storage::open(&config).unwrap_or_else(|e| panic!("{backend:?}: {e}"));
    assert_eq!(storage.backend(), backend);
    let status = storage.migration_status_blocking().unwrap();
    assert!(status.pending.is_empty() && !status.applied.is_empty(), "{status:?}");

    runtime().block_on(async {
        for (t, ok) in [(100, false), (110, false), (120, true), (130, false), (140, false)] {
            storage.log_attempt(attempt("john", t, ok)).await.unwrap();
        }
        storage.log_attempt(attempt("mary", 135, false)).await.unwrap();
        let mut banned = attempt("john", 145, false);
        banned.banned = true;
        storage.log_attempt(banned).await.unwrap();

        let recent = storage.recent_attempts(AttemptsBy::User("john"), 105, 3).await.unwrap();
        let seen: Vec<(i64, bool)> = recent.iter().map(|a| (a.time, a.successful)).collect();
        assert_eq!(seen, vec![(140, false), (130, false), (120, true)], "{backend:?}: newest first, banned excluded");
        assert!(storage.recent_attempts(AttemptsBy::User("nobody"), 0, 10).await.unwrap().is_empty());
        let from_ip = storage.recent_attempts(AttemptsBy::Ip("192.0.2.1"), 0, 100).await.unwrap();
        assert_eq!(from_ip.len(), 6, "{backend:?}: every checked attempt from the address");

        assert_eq!(storage.preferred_method("john").await.unwrap(), None);
        storage.set_preferred_method("john", "totp").await.unwrap();
        storage.set_preferred_method("john", "webauthn").await.unwrap();
        assert_eq!(storage.preferred_method("john").await.unwrap().as_deref(), Some("webauthn"));
    });

    // Reopening with the same key works and keeps the data; a different key is refused.
    drop(storage);
    let again = Storage::open(&config).unwrap();
    let kept = runtime().block_on(again.recent_attempts(AttemptsBy::User("mary"), 0, 10)).unwrap();
    assert_eq!(kept.len(), 1);
    drop(again);
    let wrong = StorageConfig { encryption_key: Secret::new("a-completely-different-key-value"), ..config.clone() };
    let refused = Storage::open(&wrong).err();
    assert!(matches!(refused, Some(StorageError::KeyMismatch)), "{backend:?}: {refused:?}");

    // Down and up again.
    let storage = Storage::connect(&config).unwrap();
    let reverted = storage.migrate_down_blocking().unwrap();
    assert!(reverted.is_some());
    let status = storage.migration_status_blocking().unwrap();
    assert!(status.applied.is_empty() && status.pending.len() == 1, "{status:?}");
    assert_eq!(storage.migrate_up_blocking().unwrap().len(), 1);
}

#[test]
fn sqlite_backend() {
    let dir = tempfile::tempdir().unwrap();
    contract(sqlite_config(dir.path()), Backend::Sqlite);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("db")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "the database directory is private");
        let mode = std::fs::metadata(dir.path().join("db/portcullis.sqlite3")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the database file is private");
    }
}

#[test]
fn postgres_backend() {
    let pg = PostgresServer::start();
    let config = StorageConfig {
        encryption_key: Secret::new(KEY),
        postgres: Some(sql(pg.port, "portcullis")),
        ..Default::default()
    };
    contract(config, Backend::Postgres);
}

#[test]
fn mariadb_backend() {
    let db = MariaDbServer::start();
    let config =
        StorageConfig { encryption_key: Secret::new(KEY), mysql: Some(sql(db.port, "root")), ..Default::default() };
    contract(config, Backend::Mysql);
}

#[test]
fn unreachable_database_is_a_clear_error() {
    let port = common::free_port();
    let mut pg = sql(port, "portcullis");
    pg.timeout = Some(portcullis::config::types::Duration::from_secs(1));
    let config = StorageConfig { encryption_key: Secret::new(KEY), postgres: Some(pg), ..Default::default() };
    let err = Storage::open(&config).err().expect("no server is listening");
    assert!(matches!(err, StorageError::Unavailable(_)), "{err:?}");
}

#[test]
fn migrate_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yml");
    std::fs::write(&config, common::config_yaml(9091, dir.path(), "")).unwrap();
    let config = config.display().to_string();
    let run = |action: &str| {
        let o = common::run(&["storage", "migrate", action, "--config", &config], dir.path(), &[]);
        assert!(o.status.success(), "{action}: {}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).to_string()
    };
    assert!(run("status").contains("pending  2026-11-25-000001_initial"));
    assert!(run("up").contains("Applied 20261125000001"));
    assert!(run("status").contains("applied  20261125000001"));
    assert!(run("up").contains("up to date"));
    assert!(run("down").contains("Reverted 20261125000001"));
    assert!(run("down").contains("No migration to revert"));
}
