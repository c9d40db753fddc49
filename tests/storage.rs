//! The storage layer against real SQLite, PostgreSQL and MariaDB: migrations, the
//! encryption-key check, the authentication log, preferences, and the second-factor
//! tables (TOTP and its used steps, recovery codes, WebAuthn, one-time codes, reset
//! tokens), whose single-use guarantees rest on each database's unique indexes and
//! conditional updates. Then TLS to servers that accept nothing else, with certificate
//! authorities made by the test: the right one is accepted, any other refused.

mod common;

use common::databases::{MariaDbServer, PostgresServer, ServerTls};
use common::pki::TestCa;
use portcullis::config::schema::{LocalStorage, SqlStorage, Storage as StorageConfig, Tls};
use portcullis::config::types::Secret;
use portcullis::storage::{
    ApiTokenRecord, AttemptsBy, AuthAttempt, AuthType, Backend, DeviceLinkRecord, OneTimeCode, Storage, StorageError,
    TotpRecord, WebAuthnCredential,
};

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
    runtime().block_on(async {
        let storage = Storage::open(&config, None).await.unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        assert_eq!(storage.backend(), backend);
        let status = storage.migration_status().await.unwrap();
        assert!(status.pending.is_empty() && !status.applied.is_empty(), "{status:?}");

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
        second_factor_contract(&storage, backend).await;
        regulation_contract(&storage, backend).await;
        users_contract(&storage, backend).await;
        audit_contract(&storage, backend).await;
        oidc_contract(&storage, backend).await;
        device_contract(&storage, backend).await;
        api_token_contract(&storage, backend).await;
        bootstrap_contract(&storage, backend).await;
        device_link_contract(&storage, backend).await;

        // Reopening with the same key works and keeps the data; a different key is refused.
        drop(storage);
        let again = Storage::open(&config, None).await.unwrap();
        let kept = again.recent_attempts(AttemptsBy::User("mary"), 0, 10).await.unwrap();
        assert_eq!(kept.len(), 1);
        drop(again);
        let wrong = StorageConfig { encryption_key: Secret::new("a-completely-different-key-value"), ..config.clone() };
        let refused = Storage::open(&wrong, None).await.err();
        assert!(matches!(refused, Some(StorageError::KeyMismatch)), "{backend:?}: {refused:?}");

        // Changing the key re-seals every secret in one transaction; back again afterwards.
        let storage = Storage::open(&config, None).await.unwrap();
        let mut record = common::totp_record("JBSWY3DPEHPK3PXP");
        record.username = "rekeyed".into();
        storage.totp_save(record.clone()).await.unwrap();
        storage.recovery_replace("rekeyed", vec!["h".into()], 0).await.unwrap();
        let refused = storage.change_encryption_key(wrong.encryption_key.expose(), false).await;
        assert!(matches!(refused, Err(portcullis::storage::RekeyError::RecoveryCodesExist(..))), "{backend:?}");
        let report = storage.change_encryption_key(wrong.encryption_key.expose(), true).await.unwrap();
        assert!(report.totp >= 1 && report.recovery_codes_removed >= 1, "{backend:?}: {report:?}");
        drop(storage);
        assert!(matches!(Storage::open(&config, None).await.err(), Some(StorageError::KeyMismatch)), "{backend:?}");
        let rekeyed = Storage::open(&wrong, None).await.unwrap();
        assert_eq!(rekeyed.totp_get("rekeyed").await.unwrap().map(|r| r.secret), Some(record.secret), "{backend:?}");
        rekeyed.change_encryption_key(KEY, true).await.unwrap();
        drop(rekeyed);

        // Down and up again, one migration at a time.
        let storage = Storage::connect(&config, None).unwrap();
        let applied = storage.migration_status().await.unwrap().applied.len();
        for left in (0..applied).rev() {
            assert!(storage.migrate_down().await.unwrap().is_some());
            let status = storage.migration_status().await.unwrap();
            assert_eq!((status.applied.len(), status.pending.len()), (left, applied - left), "{status:?}");
        }
        assert_eq!(storage.migrate_up().await.unwrap().len(), applied);
    });
}

/// Bootstrap tokens: found by hash only; taken once (the claim written with it); expired
/// and unknown ones refused; of concurrent completions with different tokens exactly one
/// claims; a released claim lets the token be used again.
async fn bootstrap_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::BootstrapClaim;
    assert!(matches!(storage.bootstrap_token_insert("boot-a", 1000, 2000, Some("startup")).await, Ok(())));
    assert!(
        matches!(storage.bootstrap_token_insert("boot-a", 1000, 2000, None).await, Err(StorageError::Duplicate)),
        "{backend:?}: one row per hash"
    );
    storage.bootstrap_token_insert("boot-old", 1000, 1100, Some("cli")).await.unwrap();
    assert_eq!(storage.bootstrap_claim("boot-wrong", 1500).await.unwrap(), BootstrapClaim::Unknown, "{backend:?}");
    assert_eq!(storage.bootstrap_claim("boot-old", 1500).await.unwrap(), BootstrapClaim::Expired, "{backend:?}");
    assert_eq!(storage.bootstrap_claim("boot-old", 1100).await.unwrap(), BootstrapClaim::Expired, "ends at expires_at");
    let BootstrapClaim::Claimed(id) = storage.bootstrap_claim("boot-a", 1500).await.unwrap() else {
        panic!("{backend:?}: a valid token claims");
    };
    assert_eq!(storage.bootstrap_claim("boot-a", 1500).await.unwrap(), BootstrapClaim::Used, "{backend:?}: once");
    // Creating the administrator failed: the claim goes, the token works again.
    storage.bootstrap_release(id, true).await.unwrap();
    assert_eq!(storage.bootstrap_claim("boot-a", 1501).await.unwrap(), BootstrapClaim::Claimed(id), "{backend:?}");
    storage.bootstrap_release(id, true).await.unwrap();

    // Eight completions at once, each with its own valid token: exactly one claims; the
    // others leave their tokens unused.
    for n in 0..8 {
        storage.bootstrap_token_insert(&format!("boot-race-{n}"), 1000, 3000, Some("cli")).await.unwrap();
    }
    let hashes: Vec<String> = (0..8).map(|n| format!("boot-race-{n}")).collect();
    let claims = futures_util::future::join_all(hashes.iter().map(|h| storage.bootstrap_claim(h, 1600))).await;
    let claims: Vec<BootstrapClaim> = claims.into_iter().map(|c| c.unwrap()).collect();
    let winners: Vec<usize> = (0..8).filter(|n| matches!(claims[*n], BootstrapClaim::Claimed(_))).collect();
    assert_eq!(winners.len(), 1, "{backend:?}: {claims:?}");
    assert_eq!(claims.iter().filter(|c| **c == BootstrapClaim::Taken).count(), 7, "{backend:?}: {claims:?}");
    let loser = (0..8).find(|n| !winners.contains(n)).unwrap();
    assert_eq!(
        storage.bootstrap_claim(&hashes[loser], 1600).await.unwrap(),
        BootstrapClaim::Taken,
        "{backend:?}: a loser's token stays unused, the claim holds"
    );
    // A claim that went stale (its holder died) no longer blocks.
    let later = 1600 + portcullis::storage::BOOTSTRAP_CLAIM_STALE_AFTER + 1;
    assert!(later < 3000, "the loser's token is still valid then");
    assert!(
        matches!(storage.bootstrap_claim(&hashes[loser], later).await.unwrap(), BootstrapClaim::Claimed(_)),
        "{backend:?}: a stale claim is replaced"
    );
}

/// Device-addition links: found by their hash only, one row per hash, taken once while
/// unexpired, counted while open; of eight concurrent takes of one link exactly one wins.
async fn device_link_contract(storage: &Storage, backend: Backend) {
    let link = |username: &str, hash: &str, expires_at: i64| DeviceLinkRecord {
        id: 0,
        token_hash: hash.into(),
        username: username.into(),
        created_by: "admin".into(),
        created_at: 1000,
        expires_at,
        used_at: None,
    };
    let a = storage.device_link_insert(link("john", &"1".repeat(64), 2000)).await.unwrap();
    let b = storage.device_link_insert(link("john", &"2".repeat(64), 1200)).await.unwrap();
    assert_ne!(a, b);
    let duplicate = storage.device_link_insert(link("mary", &"1".repeat(64), 2000)).await;
    assert!(matches!(duplicate, Err(StorageError::Duplicate)), "{backend:?}: {duplicate:?}");
    let found = storage.device_link_by_hash(&"1".repeat(64)).await.unwrap().unwrap();
    assert_eq!(found, DeviceLinkRecord { id: a, ..link("john", &"1".repeat(64), 2000) }, "{backend:?}");
    assert!(found.usable(1500) && !found.usable(2000));
    assert_eq!(storage.device_link_by_hash(&"3".repeat(64)).await.unwrap(), None);
    assert_eq!(storage.device_links_open("john", 1100).await.unwrap(), 2);
    assert_eq!(storage.device_links_open("john", 1300).await.unwrap(), 1, "{backend:?}: the expired one is out");

    assert!(!storage.device_link_take(&"2".repeat(64), 1300).await.unwrap(), "{backend:?}: expired is refused");
    assert!(!storage.device_link_take(&"2".repeat(64), 1200).await.unwrap(), "{backend:?}: ends at expires_at");
    assert!(!storage.device_link_take(&"3".repeat(64), 1100).await.unwrap(), "{backend:?}: unknown");
    assert!(storage.device_link_take(&"1".repeat(64), 1100).await.unwrap());
    assert!(!storage.device_link_take(&"1".repeat(64), 1101).await.unwrap(), "{backend:?}: taken once");
    let used = storage.device_link_by_hash(&"1".repeat(64)).await.unwrap().unwrap();
    assert_eq!(used.used_at, Some(1100));
    assert!(!used.usable(1101));
    assert_eq!(storage.device_links_open("john", 1100).await.unwrap(), 1);

    // Eight uses of one link at once: exactly one wins.
    storage.device_link_insert(link("mary", &"4".repeat(64), 3000)).await.unwrap();
    let hash = "4".repeat(64);
    let takes = futures_util::future::join_all((0..8).map(|_| storage.device_link_take(&hash, 1500))).await;
    let wins = takes.into_iter().map(|t| t.unwrap()).filter(|won| *won).count();
    assert_eq!(wins, 1, "{backend:?}");

    storage.device_link_insert(link("mary", &"5".repeat(64), 3000)).await.unwrap();
    assert_eq!(storage.device_links_end_all("mary", 1600).await.unwrap(), 1);
    assert_eq!(storage.device_links_open("mary", 1600).await.unwrap(), 0);
}

/// Personal API tokens: found by their hash only, one row per hash, listed per owner
/// without the revoked ones, revoked once and only by their owner, counted in force.
async fn api_token_contract(storage: &Storage, backend: Backend) {
    let token = |username: &str, hash: &str, expires_at: Option<i64>| ApiTokenRecord {
        id: 0,
        username: username.into(),
        name: "ci".into(),
        prefix: "pcat_abcdefgh".into(),
        token_hash: hash.into(),
        scopes: "read write".into(),
        created_at: 1000,
        last_used_at: None,
        expires_at,
        revoked_at: None,
    };
    let a = storage.api_token_insert(token("john", &"a".repeat(64), None)).await.unwrap();
    let b = storage.api_token_insert(token("john", &"b".repeat(64), Some(2000))).await.unwrap();
    let m = storage.api_token_insert(token("mary", &"c".repeat(64), None)).await.unwrap();
    assert!(a > 0 && b > a && m > b, "{backend:?}: IDs of the rows written");
    let duplicate = storage.api_token_insert(token("kim", &"a".repeat(64), None)).await;
    assert!(matches!(duplicate, Err(StorageError::Duplicate)), "{backend:?}: {duplicate:?}");

    let found = storage.api_token_by_hash(&"b".repeat(64)).await.unwrap().unwrap();
    assert_eq!((found.id, found.username.as_str(), found.expires_at), (b, "john", Some(2000)), "{backend:?}");
    assert_eq!(found.scope_list(), ["read", "write"]);
    assert!(found.in_force(1999) && !found.in_force(2000), "{backend:?}");
    assert_eq!(storage.api_token_by_hash(&"d".repeat(64)).await.unwrap(), None);
    assert_eq!(storage.api_tokens_in_force("john", 1500).await.unwrap(), 2);
    assert_eq!(storage.api_tokens_in_force("john", 2500).await.unwrap(), 1, "{backend:?}: the expired one is out");

    storage.api_token_used(a, 1100).await.unwrap();
    storage.api_token_used(a, 1050).await.unwrap();
    let listed = storage.api_tokens_of("john").await.unwrap();
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), [a, b], "{backend:?}: oldest first");
    assert_eq!(listed[0].last_used_at, Some(1100), "{backend:?}: the last use only moves forward");

    assert!(!storage.api_token_revoke("mary", a, 1200).await.unwrap(), "{backend:?}: not hers");
    assert!(storage.api_token_revoke("john", a, 1200).await.unwrap());
    assert!(!storage.api_token_revoke("john", a, 1201).await.unwrap(), "{backend:?}: revoked once");
    let revoked = storage.api_token_by_hash(&"a".repeat(64)).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(1200));
    assert!(!revoked.in_force(1300));
    assert_eq!(storage.api_tokens_of("john").await.unwrap().len(), 1, "{backend:?}: revoked ones are not listed");
    assert_eq!(storage.api_tokens_revoke_all("mary", 1300).await.unwrap(), 1);
    assert_eq!(storage.api_tokens_of("mary").await.unwrap(), Vec::new());
    assert_eq!(storage.api_tokens_in_force("mary", 1300).await.unwrap(), 0);
}

/// The OpenID Connect provider's records: single use under concurrency, chains revoked at
/// once, consents by expiry, one stable subject per user and sector, the sealed key row.
async fn oidc_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::{Consumed, OidcConsent, OidcRecord};
    let record = |signature: &str, kind: &str, chain: &str, expires_at| OidcRecord {
        signature: signature.into(),
        kind: kind.into(),
        chain_id: chain.into(),
        client_id: "app".into(),
        subject: "john".into(),
        data: "{}".into(),
        created_at: 100,
        expires_at,
        consumed_at: None,
        revoked_at: None,
    };
    storage.oidc_insert(record("code-1", "ac", "chain-1", 200)).await.unwrap();
    storage.oidc_insert(record("at-1", "at", "chain-1", 200)).await.unwrap();
    storage.oidc_insert(record("rt-1", "rt", "chain-1", 200)).await.unwrap();
    storage.oidc_insert(record("at-2", "at", "chain-2", 200)).await.unwrap();
    assert!(
        matches!(storage.oidc_insert(record("at-2", "at", "chain-3", 200)).await, Err(StorageError::Duplicate)),
        "{backend:?}: signatures are unique"
    );
    // Of ten concurrent uses of one code, exactly one takes it.
    let uses = (0..10).map(|_| storage.oidc_consume("ac", "code-1", 150));
    let outcomes = futures_util::future::join_all(uses).await;
    let taken = outcomes.iter().filter(|o| matches!(o, Ok(Consumed::Taken(_)))).count();
    assert_eq!(taken, 1, "{backend:?}: {outcomes:?}");
    assert!(matches!(storage.oidc_consume("ac", "code-1", 151).await.unwrap(), Consumed::Spent(_)));
    assert_eq!(storage.oidc_consume("ac", "nothing", 151).await.unwrap(), Consumed::Missing);
    assert_eq!(storage.oidc_consume("at", "code-1", 151).await.unwrap(), Consumed::Missing, "{backend:?}: by kind");
    assert!(matches!(storage.oidc_consume("at", "at-2", 300).await.unwrap(), Consumed::Spent(_)), "expired");
    // Revoking a chain (or only its access tokens) leaves other chains alone.
    assert_eq!(storage.oidc_revoke_chain("chain-1", &["at"], 160).await.unwrap(), 1);
    assert_eq!(storage.oidc_revoke_chain("chain-1", &[], 161).await.unwrap(), 2, "{backend:?}: the rest");
    let at1 = storage.oidc_get("at", "at-1").await.unwrap().unwrap();
    assert_eq!(at1.revoked_at, Some(160));
    assert!(storage.oidc_get("at", "at-2").await.unwrap().unwrap().revoked_at.is_none());
    storage.oidc_revoke_signature("at-2", 170).await.unwrap();
    assert!(!storage.oidc_get("at", "at-2").await.unwrap().unwrap().usable(171));
    assert_eq!(storage.oidc_purge_expired(201).await.unwrap(), 4);
    // Consents: only granted ones still valid.
    let consent = |scopes: &str, granted, expires_at| OidcConsent {
        username: "john".into(),
        client_id: "app".into(),
        scopes: scopes.into(),
        granted,
        created_at: 100,
        expires_at,
    };
    storage.oidc_consent_insert(consent("openid email", true, Some(500))).await.unwrap();
    storage.oidc_consent_insert(consent("openid", true, Some(150))).await.unwrap();
    storage.oidc_consent_insert(consent("openid groups", false, Some(500))).await.unwrap();
    storage.oidc_consent_insert(consent("openid profile", true, None)).await.unwrap();
    let valid = storage.oidc_consents_valid("john", "app", 200).await.unwrap();
    assert_eq!(valid.iter().map(|c| c.scopes.as_str()).collect::<Vec<_>>(), ["openid email"], "{backend:?}");
    // Subjects: stable per user and sector, different across sectors and users.
    let a = storage.oidc_subject("", "john").await.unwrap();
    assert_eq!(storage.oidc_subject("", "john").await.unwrap(), a);
    assert_ne!(storage.oidc_subject("sector.example.com", "john").await.unwrap(), a);
    assert_ne!(storage.oidc_subject("", "mary").await.unwrap(), a);
    // A sealed value is created once and read back.
    let first = storage.sealed_value_or_create("oidc_test_key", || Ok(b"one".to_vec())).await.unwrap();
    let second = storage.sealed_value_or_create("oidc_test_key", || Ok(b"two".to_vec())).await.unwrap();
    assert_eq!((first.as_slice(), second.as_slice()), (b"one".as_slice(), b"one".as_slice()));
}

/// Reservations judge concurrent attempts one after another: of 30 wrong codes sent at
/// once with a limit of 3, exactly 3 are checked; banned ones are recorded as such; a
/// settled success and an unchecked attempt are recorded as what they were.
/// Device authorization sessions: unique signatures, a decision only while pending and
/// unexpired (one winner among concurrent ones), polls that widen the interval, a single
/// take of an approved code under concurrency, purging by expiry.
async fn device_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::DeviceCodeRecord;
    let record = |device: &str, user: &str, expires_at| DeviceCodeRecord {
        device_signature: device.into(),
        user_code_signature: user.into(),
        client_id: "tv".into(),
        chain_id: format!("chain-{device}"),
        status: "pending".into(),
        subject: String::new(),
        data: "{}".into(),
        poll_interval: 10,
        last_polled_at: None,
        created_at: 100,
        expires_at,
        decided_at: None,
        consumed_at: None,
    };
    storage.oidc_device_insert(record("dc-1", "uc-1", 700)).await.unwrap();
    storage.oidc_device_insert(record("dc-2", "uc-2", 150)).await.unwrap();
    let dup = storage.oidc_device_insert(record("dc-3", "uc-1", 700)).await;
    assert!(matches!(dup, Err(StorageError::Duplicate)), "{backend:?}: a user code is unique: {dup:?}");
    let dup = storage.oidc_device_insert(record("dc-1", "uc-3", 700)).await;
    assert!(matches!(dup, Err(StorageError::Duplicate)), "{backend:?}: a device code is unique: {dup:?}");

    let found = storage.oidc_device_by_user_code("uc-1").await.unwrap().unwrap();
    assert_eq!(found, record("dc-1", "uc-1", 700), "{backend:?}");
    assert_eq!(storage.oidc_device_by_device_code("dc-1").await.unwrap(), Some(found));
    assert_eq!(storage.oidc_device_by_user_code("dc-1").await.unwrap(), None, "{backend:?}: by the right column");

    storage.oidc_device_polled("dc-1", 110, false, 5).await.unwrap();
    storage.oidc_device_polled("dc-1", 112, true, 5).await.unwrap();
    let polled = storage.oidc_device_by_device_code("dc-1").await.unwrap().unwrap();
    assert_eq!((polled.last_polled_at, polled.poll_interval), (Some(112), 15), "{backend:?}");

    assert!(!storage.oidc_device_decide("uc-2", "approved", "john", "{\"g\":1}", 160).await.unwrap(), "expired");
    let decisions = (0..5).map(|_| storage.oidc_device_decide("uc-1", "approved", "john", "{\"g\":1}", 120));
    let won = futures_util::future::join_all(decisions).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "{backend:?}: one decision");
    assert!(!storage.oidc_device_decide("uc-1", "denied", "mary", "{}", 121).await.unwrap(), "decided already");
    let decided = storage.oidc_device_by_device_code("dc-1").await.unwrap().unwrap();
    assert_eq!(
        (decided.status.as_str(), decided.subject.as_str(), decided.data.as_str(), decided.decided_at),
        ("approved", "john", "{\"g\":1}", Some(120)),
        "{backend:?}"
    );

    assert!(!storage.oidc_device_take("dc-1", 700).await.unwrap(), "{backend:?}: not once expired");
    let takes = (0..10).map(|_| storage.oidc_device_take("dc-1", 130));
    let won = futures_util::future::join_all(takes).await.into_iter().filter(|r| *r.as_ref().unwrap()).count();
    assert_eq!(won, 1, "{backend:?}: one take");
    let used = storage.oidc_device_by_device_code("dc-1").await.unwrap().unwrap();
    assert_eq!((used.status.as_str(), used.consumed_at), ("used", Some(130)));
    assert!(!storage.oidc_device_take("dc-2", 120).await.unwrap(), "{backend:?}: a pending code is not taken");

    assert_eq!(storage.oidc_device_purge_expired(200).await.unwrap(), 1, "{backend:?}");
    assert_eq!(storage.oidc_device_by_device_code("dc-2").await.unwrap(), None);
    assert_eq!(storage.oidc_device_purge_expired(800).await.unwrap(), 1);
}

async fn regulation_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::{RegulationWindow, Settlement};
    let window = RegulationWindow { since: 0, limit: 3, by_user: true, by_ip: true };
    let code = |who: &str, time| AuthAttempt { auth_type: AuthType::Totp, ..attempt(who, time, false) };
    // Banned once the three newest codes all failed.
    let decide = |by_user: &[portcullis::storage::AttemptOutcome], _: &[portcullis::storage::AttemptOutcome]| {
        (by_user.len() == 3 && by_user.iter().all(|a| !a.successful && a.second_factor)).then_some(9_999)
    };
    let reservations = futures_util::future::join_all(
        (0..30).map(|i| storage.reserve_attempt(code("guesser", 1_000 + i), window, decide)),
    )
    .await;
    let proceeded = reservations.iter().filter(|r| r.as_ref().unwrap().banned_until.is_none()).count();
    assert_eq!(proceeded, 3, "{backend:?}: exactly max_retries concurrent attempts are checked");
    let checked = storage.recent_attempts(AttemptsBy::User("guesser"), 0, 100).await.unwrap();
    assert_eq!(checked.len(), 3, "{backend:?}: the others are recorded as banned (not counted)");
    assert!(checked.iter().all(|a| a.second_factor && !a.successful));

    // Settling: a success is recorded, an unchecked attempt disappears; a password
    // success does not count among codes.
    let first = storage.reserve_attempt(attempt("settler", 2_000, false), window, decide).await.unwrap();
    storage.settle_attempt(first.id, Settlement::Succeeded).await.unwrap();
    let second = storage.reserve_attempt(code("settler", 2_001), window, decide).await.unwrap();
    storage.settle_attempt(second.id, Settlement::NotChecked).await.unwrap();
    let third = storage.reserve_attempt(code("settler", 2_002), window, decide).await.unwrap();
    storage.settle_attempt(third.id, Settlement::Failed).await.unwrap();
    let seen: Vec<(i64, bool, bool)> = storage
        .recent_attempts(AttemptsBy::User("settler"), 0, 10)
        .await
        .unwrap()
        .iter()
        .map(|a| (a.time, a.successful, a.second_factor))
        .collect();
    assert_eq!(seen, vec![(2_002, false, true), (2_000, true, false)], "{backend:?}");
}

/// The database users backend: found by name, folded name and address; changed, listed
/// (search, group, disabled, cursor) and deleted with their addresses and groups.
async fn users_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::{StoredUser, UserChanges, UserFilter, UserKey};
    let user = |name: &str, group: &str| StoredUser {
        username: name.into(),
        display_name: format!("{name} Smith"),
        password_hash: "$argon2id$v=19$m=8,t=1,p=1$c2FsdHNhbHQ$aGFzaA".into(),
        emails: vec![format!("{}@Example.com", name.to_lowercase()), format!("{name}@example.org")],
        groups: vec![group.into(), "all".into()],
        disabled: false,
        created_at: 10,
        updated_at: 10,
    };
    assert!(!storage.users_exist().await.unwrap(), "{backend:?}");
    for (name, group) in [("Alice", "admins"), ("bob", "dev"), ("carol_1", "dev")] {
        storage.user_insert(user(name, group)).await.unwrap();
    }
    assert!(matches!(storage.user_insert(user("bob", "x")).await, Err(StorageError::Duplicate)), "{backend:?}");
    assert!(storage.users_exist().await.unwrap());
    let alice = storage.user_find(UserKey::Name("Alice")).await.unwrap().unwrap();
    assert_eq!(alice.emails, ["alice@Example.com", "Alice@example.org"], "{backend:?}: addresses in order");
    assert_eq!(alice.groups, ["admins", "all"]);
    assert!(storage.user_find(UserKey::Name("alice")).await.unwrap().is_none(), "{backend:?}: exact by default");
    assert_eq!(storage.user_find(UserKey::FoldedName("ALICE")).await.unwrap().unwrap().username, "Alice");
    assert_eq!(storage.user_find(UserKey::Email("ALICE@example.COM")).await.unwrap().unwrap().username, "Alice");

    let changes = UserChanges {
        display_name: Some("Bob B".into()),
        emails: Some(vec!["b@example.com".into()]),
        groups: Some(vec!["ops".into()]),
        disabled: Some(true),
        password_hash: Some("$6$new".into()),
    };
    assert!(storage.user_update("bob", changes, 20).await.unwrap());
    assert!(!storage.user_update("nobody", UserChanges::default(), 20).await.unwrap());
    let bob = storage.user_find(UserKey::Name("bob")).await.unwrap().unwrap();
    assert_eq!((bob.display_name.as_str(), bob.disabled, bob.updated_at), ("Bob B", true, 20));
    assert_eq!(
        (bob.emails, bob.groups, bob.password_hash),
        (vec!["b@example.com".into()], vec!["ops".into()], "$6$new".into())
    );

    let list = |filter: UserFilter| async move {
        storage
            .user_list(UserFilter { limit: 10, ..filter })
            .await
            .unwrap()
            .into_iter()
            .map(|u| u.username)
            .collect::<Vec<_>>()
    };
    assert_eq!(list(UserFilter::default()).await, ["Alice", "bob", "carol_1"], "{backend:?}");
    assert_eq!(list(UserFilter { group: Some("dev".into()), ..Default::default() }).await, ["carol_1"]);
    assert_eq!(list(UserFilter { disabled: Some(true), ..Default::default() }).await, ["bob"]);
    assert_eq!(list(UserFilter { search: Some("SMITH".into()), ..Default::default() }).await, ["Alice", "carol_1"]);
    assert_eq!(
        list(UserFilter { search: Some("example.org".into()), ..Default::default() }).await,
        ["Alice", "carol_1"]
    );
    assert_eq!(
        list(UserFilter { search: Some("_".into()), ..Default::default() }).await,
        ["carol_1"],
        "LIKE wildcards are literal"
    );
    assert_eq!(list(UserFilter { after: Some("Alice".into()), ..Default::default() }).await, ["bob", "carol_1"]);

    storage.set_passwordless("Alice", true).await.unwrap();
    assert!(storage.passwordless("Alice").await.unwrap());
    assert!(!storage.passwordless("bob").await.unwrap());
    assert!(storage.user_delete("Alice").await.unwrap());
    assert!(!storage.user_delete("Alice").await.unwrap());
    assert!(storage.user_find(UserKey::Email("alice@example.com")).await.unwrap().is_none(), "addresses go too");
    assert!(!storage.passwordless("Alice").await.unwrap(), "settings go too");
}

/// The audit trail: appended, filtered (user, event prefix, times), paged newest first.
async fn audit_contract(storage: &Storage, backend: Backend) {
    use portcullis::storage::{AuditFilter, AuditRecord};
    let record = |time, event: &str, actor: &str, subject: &str| AuditRecord {
        id: 0,
        time,
        event: event.into(),
        outcome: "success".into(),
        actor: actor.into(),
        subject: subject.into(),
        remote_ip: "192.0.2.1".into(),
        user_agent: "test".into(),
        request_id: "r".into(),
        detail: "{}".into(),
    };
    for (t, e, a, s) in [
        (1, "authentication", "", "bob"),
        (2, "admin.user.created", "root", "bob"),
        (3, "admin.user_deleted", "root", "eve"),
        (4, "password.changed", "bob", "bob"),
    ] {
        storage.audit_append(record(t, e, a, s)).await.unwrap();
    }
    let events = |filter: AuditFilter| async move {
        storage
            .audit_list(AuditFilter { limit: 10, ..filter })
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.time)
            .collect::<Vec<_>>()
    };
    assert_eq!(events(AuditFilter::default()).await, [4, 3, 2, 1], "{backend:?}");
    assert_eq!(events(AuditFilter { user: Some("bob".into()), ..Default::default() }).await, [4, 2, 1]);
    assert_eq!(
        events(AuditFilter { event: Some("admin.user.*".into()), ..Default::default() }).await,
        [2],
        "{backend:?}: '_' is literal"
    );
    assert_eq!(events(AuditFilter { since: Some(2), until: Some(4), ..Default::default() }).await, [3, 2]);
    let newest = storage.audit_list(AuditFilter { limit: 1, ..Default::default() }).await.unwrap();
    let page =
        storage.audit_list(AuditFilter { before: Some(newest[0].id), limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(page.iter().map(|r| r.time).collect::<Vec<_>>(), [3, 2], "{backend:?}: the page after the cursor");
    assert_eq!(storage.audit_prune(3).await.unwrap(), 2);
    assert_eq!(events(AuditFilter::default()).await, [4, 3]);
}

async fn second_factor_contract(storage: &Storage, backend: Backend) {
    // TOTP: stored encrypted, each time step usable once.
    let record = TotpRecord {
        username: "john".into(),
        created_at: 1000,
        last_used_at: None,
        issuer: "Portcullis".into(),
        algorithm: "SHA256".into(),
        digits: 8,
        period: 30,
        secret: b"0123456789abcdefghij".to_vec(),
    };
    storage.totp_save(record.clone()).await.unwrap();
    assert_eq!(storage.totp_get("john").await.unwrap(), Some(record.clone()), "{backend:?}");
    assert!(storage.totp_use_step("john", 55, 1010).await.unwrap());
    assert!(!storage.totp_use_step("john", 55, 1011).await.unwrap(), "{backend:?}: a step is used once");
    assert!(storage.totp_use_step("mary", 55, 1011).await.unwrap(), "steps are per user");
    assert_eq!(storage.totp_get("john").await.unwrap().unwrap().last_used_at, Some(1010));
    assert!(storage.totp_delete("john").await.unwrap());
    assert!(!storage.totp_exists("john").await.unwrap());

    // Recovery codes burn once.
    storage.recovery_replace("john", vec!["h1".into(), "h2".into()], 1000).await.unwrap();
    assert!(storage.recovery_burn("john", "h1", 1001).await.unwrap());
    assert!(!storage.recovery_burn("john", "h1", 1002).await.unwrap(), "{backend:?}");
    assert!(!storage.recovery_burn("mary", "h2", 1002).await.unwrap(), "codes are per user");
    assert_eq!(storage.recovery_remaining("john").await.unwrap(), 1);

    // WebAuthn: stable user handle, unique descriptions, owner-only changes.
    let handle = storage.webauthn_user_id("john", true).await.unwrap().unwrap();
    assert_eq!(storage.webauthn_user_id("john", true).await.unwrap().unwrap(), handle);
    let credential = |kid: &str, description: &str| WebAuthnCredential {
        id: 0,
        username: "john".into(),
        description: description.into(),
        kid: kid.into(),
        rp_id: "example.com".into(),
        discoverable: true,
        aaguid: String::new(),
        attestation_type: "none".into(),
        sign_count: 0,
        clone_warning: false,
        created_at: 1000,
        last_used_at: None,
        credential: b"{\"cred\":1}".to_vec(),
    };
    storage.webauthn_insert(credential("k1", "Key")).await.unwrap();
    let dup = storage.webauthn_insert(credential("k2", "Key")).await;
    assert!(matches!(dup, Err(StorageError::Duplicate)), "{backend:?}: {dup:?}");
    storage.webauthn_insert(credential("k2", "Phone")).await.unwrap();
    assert_eq!(storage.webauthn_owner("example.com", "k2").await.unwrap().as_deref(), Some("john"));
    assert_eq!(storage.webauthn_owner("other.example", "k2").await.unwrap(), None, "per relying party");
    // The longest credential ID WebAuthn allows (1023 bytes) fits, on every backend.
    let longest = "A".repeat(1364);
    storage.webauthn_insert(credential(&longest, "Long")).await.unwrap();
    assert_eq!(storage.webauthn_owner("example.com", &longest).await.unwrap().as_deref(), Some("john"));
    let long_id =
        storage.webauthn_credentials("john").await.unwrap().into_iter().find(|c| c.kid == longest).unwrap().id;
    assert!(storage.webauthn_delete("john", long_id).await.unwrap());
    let listed = storage.webauthn_credentials("john").await.unwrap();
    assert_eq!(listed.iter().map(|c| c.description.as_str()).collect::<Vec<_>>(), ["Key", "Phone"]);
    assert_eq!(listed[0].credential, b"{\"cred\":1}");
    assert!(matches!(storage.webauthn_rename("john", listed[1].id, "Key").await, Err(StorageError::Duplicate)));
    assert!(!storage.webauthn_rename("mary", listed[1].id, "Mine").await.unwrap(), "not mary's");
    storage.webauthn_used(listed[0].id, b"{}".to_vec(), 7, 1100).await.unwrap();
    storage.webauthn_flag_clone(listed[0].id).await.unwrap();
    let used = &storage.webauthn_credentials("john").await.unwrap()[0];
    assert_eq!((used.sign_count, used.last_used_at, used.clone_warning), (7, Some(1100), true));
    assert!(storage.webauthn_delete("john", listed[1].id).await.unwrap());
    assert_eq!(storage.webauthn_count("john").await.unwrap(), 1);

    // Account API: cutoffs only move forward; verified addresses; referral uses taken once
    // each, by one of several concurrent takers.
    assert_eq!(storage.token_cutoff("john").await.unwrap(), None);
    storage.set_token_cutoff("john", 5_000).await.unwrap();
    storage.set_token_cutoff("john", 4_000).await.unwrap();
    assert_eq!(storage.token_cutoff("john").await.unwrap(), Some(5_000), "{backend:?}: never moves back");
    storage.set_token_cutoff("john", 6_000).await.unwrap();
    assert_eq!(storage.token_cutoff("john").await.unwrap(), Some(6_000));
    storage.email_verified_set("john", "John@Example.com", 1000).await.unwrap();
    storage.email_verified_set("john", "john@example.com", 1001).await.unwrap();
    assert_eq!(storage.emails_verified("john").await.unwrap(), ["john@example.com"]);
    storage.referral_insert("hash-1", "john", 1000, 2000, 1).await.unwrap();
    assert_eq!(storage.referrals_valid("john", 1500).await.unwrap(), 1);
    let takers: Vec<_> = (0..8).map(|_| storage.referral_take("hash-1", 1500)).collect();
    let taken = futures_util::future::join_all(takers).await;
    assert_eq!(taken.iter().filter(|t| t.as_ref().unwrap().is_some()).count(), 1, "{backend:?}: one winner");
    assert_eq!(storage.referral_take("hash-1", 1500).await.unwrap(), None, "used up");
    storage.referral_give_back("hash-1").await.unwrap();
    assert_eq!(storage.referral_take("hash-1", 2500).await.unwrap(), None, "expired");
    assert_eq!(storage.referral_take("hash-1", 1500).await.unwrap().as_deref(), Some("john"), "given back");

    // One-time codes: consumed once, revoked after too many wrong guesses.
    let code = |id: &str| OneTimeCode {
        public_id: id.into(),
        username: "john".into(),
        intent: "elevation".into(),
        code_hash: "hash".into(),
        created_at: 1000,
        expires_at: 1300,
        consumed_at: None,
        revoked_at: None,
        attempts: 0,
    };
    storage.otc_insert(code("a")).await.unwrap();
    storage.otc_insert(code("b")).await.unwrap();
    assert_eq!(storage.otc_count_since("john", "elevation", 1000).await.unwrap(), 2);
    assert!(!storage.otc_consume("a", 1300).await.unwrap(), "{backend:?}: expired");
    assert!(storage.otc_consume("a", 1200).await.unwrap());
    assert!(!storage.otc_consume("a", 1200).await.unwrap(), "{backend:?}: consumed once");
    for n in 1..=3 {
        assert_eq!(storage.otc_wrong_guess("b", 3, 1100).await.unwrap(), n);
    }
    assert!(!storage.otc_get("b").await.unwrap().unwrap().usable(1100), "revoked after 3 wrong guesses");

    // Reset tokens: consumed once, revocable.
    storage.identity_token_insert("jti-1", "john", "ResetPassword", 1000, 1300).await.unwrap();
    storage.identity_token_insert("jti-2", "john", "ResetPassword", 1000, 1300).await.unwrap();
    assert!(!storage.identity_token_consume("jti-1", "Other", 1100).await.unwrap(), "action must match");
    assert!(storage.identity_token_consume("jti-1", "ResetPassword", 1100).await.unwrap());
    assert!(!storage.identity_token_consume("jti-1", "ResetPassword", 1100).await.unwrap());
    assert!(storage.identity_token_revoke("jti-2", 1100).await.unwrap());
    assert!(!storage.identity_token_consume("jti-2", "ResetPassword", 1100).await.unwrap());
    assert_eq!(storage.identity_tokens_since("john", 900).await.unwrap(), 2);
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
    let err = runtime().block_on(Storage::open(&config, None)).err().expect("no server is listening");
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
    assert!(run("status").contains("applied  20261125000002"));
    assert!(run("status").contains("applied  20261129000003"));
    assert!(run("status").contains("applied  20261129000004"));
    assert!(run("status").contains("applied  20261129000040"));
    assert!(run("status").contains("applied  20261129000050"));
    assert!(run("status").contains("applied  20261129000060"));
    assert!(run("status").contains("applied  20261129000070"));
    assert!(run("up").contains("up to date"));
    assert!(run("down").contains("Reverted 20261129000070"));
    assert!(run("down").contains("Reverted 20261129000060"));
    assert!(run("down").contains("Reverted 20261129000050"));
    assert!(run("down").contains("Reverted 20261129000040"));
    assert!(run("down").contains("Reverted 20261129000030"));
    assert!(run("down").contains("Reverted 20261129000012"));
    assert!(run("down").contains("Reverted 20261129000011"));
    assert!(run("down").contains("Reverted 20261129000010"));
    assert!(run("down").contains("Reverted 20261129000004"));
    assert!(run("down").contains("Reverted 20261129000003"));
    assert!(run("down").contains("Reverted 20261125000002"));
    assert!(run("down").contains("Reverted 20261125000001"));
    assert!(run("down").contains("No migration to revert"));
}

/// A certificate authority, a server certificate it signed, and two certificate
/// directories: one holding that authority, one holding another.
struct Pki {
    ca: TestCa,
    ca_pem: String,
    server: common::pki::Issued,
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let ca = TestCa::new("Portcullis test CA");
        let server = ca.server(&["db.test", "localhost", "127.0.0.1"]);
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("trusted")).unwrap();
        let ca_pem = ca.cert_pem();
        std::fs::write(dir.path().join("trusted/test-ca.crt"), &ca_pem).unwrap();
        std::fs::create_dir(dir.path().join("other")).unwrap();
        std::fs::write(dir.path().join("other/other-ca.pem"), TestCa::new("Another CA").cert_pem()).unwrap();
        Self { ca, ca_pem, server, dir }
    }

    fn server_tls(&self) -> ServerTls<'_> {
        ServerTls { cert_pem: &self.server.cert_pem, key_pem: &self.server.key_pem, client_ca_pem: &self.ca_pem }
    }

    fn trusted(&self) -> std::path::PathBuf {
        self.dir.path().join("trusted")
    }

    fn other(&self) -> std::path::PathBuf {
        self.dir.path().join("other")
    }
}

/// Opens the storage and writes and reads one row through it.
fn open_and_use(config: &StorageConfig, certificates: Option<&std::path::Path>) -> Result<(), StorageError> {
    runtime().block_on(async {
        let storage = Storage::open(config, certificates).await?;
        storage.log_attempt(attempt("tls", 100, true)).await?;
        assert!(!storage.recent_attempts(AttemptsBy::User("tls"), 0, 10).await?.is_empty());
        Ok(())
    })
}

fn refused(config: &StorageConfig, certificates: Option<&std::path::Path>) -> String {
    match open_and_use(config, certificates) {
        Err(StorageError::Unavailable(message)) => {
            println!("refused: {message}");
            message
        }
        other => panic!("expected the connection to be refused, got {other:?}"),
    }
}

fn with_tls(config: &StorageConfig, tls: Tls) -> StorageConfig {
    let mut config = config.clone();
    for sql in [&mut config.postgres, &mut config.mysql].into_iter().flatten() {
        sql.tls = Some(tls.clone());
    }
    config
}

#[test]
fn postgres_tls_verifies_the_server_against_certificates_directory() {
    let pki = Pki::new();
    let pg = PostgresServer::start_tls(&pki.server_tls());
    let plain = StorageConfig {
        encryption_key: Secret::new(KEY),
        postgres: Some(sql(pg.port, "portcullis")),
        ..Default::default()
    };
    let verified = with_tls(&plain, Tls::default());

    // The server takes nothing but TLS, so every success below went over TLS.
    let message = refused(&plain, None);
    assert!(message.contains("no encryption"), "{message}");

    open_and_use(&verified, Some(&pki.trusted())).unwrap();

    let message = refused(&verified, Some(&pki.other()));
    assert!(message.contains("invalid peer certificate") && message.contains("UnknownIssuer"), "{message}");
    let message = refused(&verified, None);
    assert!(message.contains("UnknownIssuer"), "the system roots do not include the test CA: {message}");

    // The name checked is server_name when set, else the address's host (127.0.0.1 here).
    let named = with_tls(&plain, Tls { server_name: "db.test".into(), ..Tls::default() });
    open_and_use(&named, Some(&pki.trusted())).unwrap();
    let misnamed = with_tls(&plain, Tls { server_name: "elsewhere.test".into(), ..Tls::default() });
    let message = refused(&misnamed, Some(&pki.trusted()));
    assert!(message.contains("invalid peer certificate") && message.contains("elsewhere.test"), "{message}");

    let tls13 = with_tls(&plain, Tls { minimum_version: "TLS1.3".into(), ..Tls::default() });
    open_and_use(&tls13, Some(&pki.trusted())).unwrap();

    // skip_verify connects to a server whose certificate nothing vouches for.
    let unverified = with_tls(&plain, Tls { skip_verify: true, ..Tls::default() });
    open_and_use(&unverified, None).unwrap();

    // A client certificate for a user the server authenticates by certificate.
    let client = pki.ca.client("certuser");
    let mut cert_user = sql(pg.port, "certuser");
    cert_user.database = Some("certdb".into());
    let without = StorageConfig { encryption_key: Secret::new(KEY), postgres: Some(cert_user), ..Default::default() };
    let without = with_tls(&without, Tls::default());
    let message = refused(&without, Some(&pki.trusted()));
    assert!(message.contains("certificate"), "{message}");
    let with = with_tls(
        &without,
        Tls { certificate_chain: client.cert_pem.clone(), private_key: Secret::new(&client.key_pem), ..Tls::default() },
    );
    open_and_use(&with, Some(&pki.trusted())).unwrap();
}

#[test]
fn mariadb_tls_verifies_the_server_against_certificates_directory() {
    let pki = Pki::new();
    let db = MariaDbServer::start_tls(&pki.server_tls());
    let plain =
        StorageConfig { encryption_key: Secret::new(KEY), mysql: Some(sql(db.port, "root")), ..Default::default() };

    // require_secure_transport: MariaDB turns a connection without TLS away.
    let message = refused(&plain, None);
    assert!(message.contains("insecure transport") || message.contains("Access denied"), "{message}");

    let verified = with_tls(&plain, Tls::default());
    open_and_use(&verified, Some(&pki.trusted())).unwrap();
    let message = refused(&verified, Some(&pki.other()));
    assert!(message.contains("invalid peer certificate") && message.contains("UnknownIssuer"), "{message}");

    let named = with_tls(&plain, Tls { server_name: "db.test".into(), ..Tls::default() });
    open_and_use(&named, Some(&pki.trusted())).unwrap();

    let unverified = with_tls(&plain, Tls { skip_verify: true, ..Tls::default() });
    open_and_use(&unverified, None).unwrap();

    // A user the server accepts only with a client certificate the test CA signed.
    db.execute(
        "CREATE USER certuser@'%' REQUIRE SUBJECT '/CN=certuser'; \
         CREATE DATABASE certdb; GRANT ALL ON certdb.* TO certuser@'%'",
    );
    let mut cert_user = sql(db.port, "certuser");
    cert_user.database = Some("certdb".into());
    let without = StorageConfig { encryption_key: Secret::new(KEY), mysql: Some(cert_user), ..Default::default() };
    let without = with_tls(&without, Tls::default());
    let message = refused(&without, Some(&pki.trusted()));
    assert!(message.contains("Access denied"), "{message}");
    let ecdsa = pki.ca.client("certuser");
    let unusable = with_tls(
        &without,
        Tls { certificate_chain: ecdsa.cert_pem.clone(), private_key: Secret::new(&ecdsa.key_pem), ..Tls::default() },
    );
    let message = refused(&unusable, Some(&pki.trusted()));
    assert!(message.contains("storage.mysql.tls.private_key: MySQL client certificates need an RSA key"), "{message}");
    let client = pki.ca.rsa_client("certuser");
    let with = with_tls(
        &without,
        Tls { certificate_chain: client.cert_pem.clone(), private_key: Secret::new(&client.key_pem), ..Tls::default() },
    );
    open_and_use(&with, Some(&pki.trusted())).unwrap();
}

#[test]
fn a_server_that_never_answers_is_given_up_after_the_timeout() {
    // Accepts connections and never says a word: neither driver gets its greeting.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let _held = std::thread::spawn(move || listener.incoming().filter_map(Result::ok).collect::<Vec<_>>());
    for backend in [Backend::Postgres, Backend::Mysql] {
        let mut server = sql(port, "portcullis");
        server.timeout = Some(portcullis::config::types::Duration::from_secs(1));
        let config = match backend {
            Backend::Postgres => StorageConfig { postgres: Some(server), ..Default::default() },
            _ => StorageConfig { mysql: Some(server), ..Default::default() },
        };
        let config = StorageConfig { encryption_key: Secret::new(KEY), ..config };
        let message = refused(&config, None);
        assert!(message.contains("within 1s") || message.contains("timed out"), "{backend:?}: {message}");
    }
}

/// Replicas started together against a fresh database each run the migrations: they must
/// apply them once between them, never fail on each other's tables.
fn replicas_migrate_together(storage_yaml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.yml");
    let yaml = common::config_yaml(9091, dir.path(), "");
    let local = format!("  local:\n    path: '{}/db.sqlite3'\n", dir.path().display());
    assert!(yaml.contains(&local));
    std::fs::write(&config, yaml.replace(&local, storage_yaml)).unwrap();
    let config = config.display().to_string();
    let children: Vec<_> = (0..3)
        .map(|_| {
            std::process::Command::new(common::binary())
                .args(["storage", "migrate", "up", "--config", &config])
                .current_dir(dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a replica failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let o = common::run(&["storage", "migrate", "status", "--config", &config], dir.path(), &[]);
    let status = String::from_utf8_lossy(&o.stdout);
    assert!(!status.contains("pending"), "{status}");
}

#[test]
fn postgres_replicas_started_together_migrate_once() {
    for _ in 0..3 {
        let pg = PostgresServer::start();
        replicas_migrate_together(&format!(
            "  postgres:\n    address: 'tcp://127.0.0.1:{}'\n    database: portcullis\n    username: portcullis\n",
            pg.port
        ));
    }
}

#[test]
fn mariadb_replicas_started_together_migrate_once() {
    for _ in 0..3 {
        let db = MariaDbServer::start();
        replicas_migrate_together(&format!(
            "  mysql:\n    address: 'tcp://127.0.0.1:{}'\n    database: portcullis\n    username: root\n",
            db.port
        ));
    }
}
