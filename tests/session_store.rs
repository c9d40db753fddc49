//! The session store contract, run against the memory store and a real redis-server,
//! plus the session rules (expiry, inactivity, remember-me, regeneration) and Redis outages.

mod common;

use std::time::{Duration, Instant};

use common::redis::RedisServer;
use portcullis::config::schema::{Redis, RedisHighAvailability, Session, SessionCookie};
use portcullis::config::types::{AbsoluteUrl, Duration as ConfigDuration, Secret};
use portcullis::session::memory::MemoryStore;
use portcullis::session::redis::RedisStore;
use portcullis::session::{CookieSettings, SessionData, SessionId, SessionStore, Sessions, Store, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

fn user(name: &str) -> SessionData {
    SessionData {
        username: name.into(),
        display_name: format!("{name} Doe"),
        emails: vec![format!("{name}@example.com")],
        groups: vec!["admins".into(), "dev".into()],
        first_factor_at: Some(1_700_000_000),
        ..Default::default()
    }
}

fn redis_config(port: u16) -> Redis {
    Redis { host: Some("127.0.0.1".into()), port, timeout: ConfigDuration::from_secs(1), ..Default::default() }
}

/// What every store must do.
async fn contract<S: SessionStore>(store: &S) {
    let a = SessionId::generate();
    let b = SessionId::generate();
    let other = SessionId::generate();
    assert!(store.load(&a).await.unwrap().is_none(), "unknown IDs load nothing");

    store.save(&a, &user("john"), Duration::from_secs(60)).await.unwrap();
    store.save(&b, &user("john"), Duration::from_secs(60)).await.unwrap();
    store.save(&other, &user("mary"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(*store.load(&a).await.unwrap().unwrap(), user("john"), "data round-trips");

    let mut changed = user("john");
    changed.second_factor_at = Some(1_700_000_100);
    store.save(&a, &changed, Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.load(&a).await.unwrap().unwrap().second_factor_at, Some(1_700_000_100), "save replaces");

    store.delete(&b).await.unwrap();
    assert!(store.load(&b).await.unwrap().is_none(), "delete removes");
    store.delete(&b).await.unwrap();

    // A user's sessions are listed by storage key with where they came from; one is
    // ended by its key, only by its own user.
    let mut from_laptop = user("john");
    from_laptop.ip = "192.0.2.7".into();
    from_laptop.user_agent = "Laptop/1.0".into();
    from_laptop.last_activity_at = 1_700_000_050;
    let d = SessionId::generate();
    store.save(&d, &from_laptop, Duration::from_secs(60)).await.unwrap();
    let listed = store.sessions_of("john").await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let laptop = listed.iter().find(|s| s.key == d.storage_key()).expect("d is listed by its storage key");
    assert_eq!(
        (laptop.ip.as_str(), laptop.user_agent.as_str(), laptop.last_activity_at),
        ("192.0.2.7", "Laptop/1.0", 1_700_000_050)
    );
    assert_eq!(laptop.level, 1);
    assert!(store.sessions_of("nobody").await.unwrap().is_empty());
    assert!(!store.delete_key("mary", &d.storage_key()).await.unwrap(), "not mary's to end");
    assert!(store.load(&d).await.unwrap().is_some());
    assert!(store.delete_key("john", &d.storage_key()).await.unwrap());
    assert!(store.load(&d).await.unwrap().is_none(), "ended by its key");
    assert_eq!(store.sessions_of("john").await.unwrap().len(), 1);

    let c = SessionId::generate();
    store.save(&c, &user("john"), Duration::from_secs(60)).await.unwrap();
    assert_eq!(store.delete_user("john", Some(&a)).await.unwrap(), 1, "only c goes");
    assert!(store.load(&a).await.unwrap().is_some(), "the kept session stays");
    assert!(store.load(&c).await.unwrap().is_none());
    assert!(store.load(&other).await.unwrap().is_some(), "other users are untouched");
    assert_eq!(store.delete_user("john", None).await.unwrap(), 1);
    assert!(store.load(&a).await.unwrap().is_none());

    // A key is claimed once until it expires; concurrent claims: exactly one wins.
    let key = rand_key();
    assert!(store.claim_once(&key, Duration::from_millis(1200)).await.unwrap());
    assert!(!store.claim_once(&key, Duration::from_secs(60)).await.unwrap(), "claimed already");
    assert!(store.claim_once(&rand_key(), Duration::from_secs(60)).await.unwrap(), "other keys are free");
    let contested = rand_key();
    let claims = futures_util::future::join_all((0..20).map(|_| store.claim_once(&contested, Duration::from_secs(60))));
    assert_eq!(claims.await.into_iter().filter(|c| *c.as_ref().unwrap()).count(), 1, "one claim wins");

    let short = SessionId::generate();
    store.save(&short, &user("kim"), Duration::from_millis(1200)).await.unwrap();
    assert!(store.load(&short).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(store.load(&short).await.unwrap().is_none(), "sessions expire with their TTL");
    assert!(store.claim_once(&key, Duration::from_secs(60)).await.unwrap(), "a claim expires with its TTL");
}

fn rand_key() -> [u8; 32] {
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    key
}

#[test]
fn memory_store_contract() {
    runtime().block_on(contract(&MemoryStore::new()));
}

#[test]
fn redis_store_contract() {
    let redis = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("a-session-secret")).await.unwrap();
        contract(&store).await;
    });
}

#[test]
fn redis_holds_no_usable_ids_or_plaintext() {
    let redis = RedisServer::start();
    let id = SessionId::generate();
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("secret-one")).await.unwrap();
        store.save(&id, &user("john"), Duration::from_secs(60)).await.unwrap();
    });
    let keys = redis.cli(&["--scan"]);
    assert!(keys.contains("portcullis:session:"), "{keys}");
    assert!(!keys.contains(id.as_str()), "the cookie value must not be a key");
    let key = keys.lines().find(|k| k.starts_with("portcullis:session:")).unwrap();
    let value = redis.cli(&["--no-raw", "GET", key]);
    assert!(!value.contains("john") && !value.contains("admins"), "session data must be encrypted: {value}");

    // A value copied under another session's key does not read as that session.
    let thief = SessionId::generate();
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("secret-one")).await.unwrap();
        store.save(&thief, &user("mallory"), Duration::from_secs(60)).await.unwrap();
    });
    let keys_after = redis.cli(&["--scan"]);
    let thief_key = keys_after
        .lines()
        .find(|k| k.starts_with("portcullis:session:") && *k != key)
        .expect("the second session's key")
        .to_string();
    redis.cli(&["COPY", key, &thief_key, "REPLACE"]);
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("secret-one")).await.unwrap();
        assert!(store.load(&thief).await.unwrap().is_none(), "a copied value must not become the session");
        assert_eq!(store.load(&id).await.unwrap().unwrap().username, "john", "the original still reads");
    });

    // A different secret cannot read it: the session is treated as absent, not an error.
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("secret-two")).await.unwrap();
        assert!(store.load(&id).await.unwrap().is_none());
    });
}

#[test]
fn redis_outage_fails_closed_and_recovers() {
    let mut redis = RedisServer::start();
    runtime().block_on(async {
        let store = RedisStore::connect(&redis_config(redis.port), &Secret::new("s")).await.unwrap();
        let id = SessionId::generate();
        store.save(&id, &user("john"), Duration::from_secs(600)).await.unwrap();

        redis.kill();
        let started = Instant::now();
        let failed = store.load(&id).await;
        assert!(
            matches!(failed, Err(StoreError::Unavailable(_))),
            "an unreachable store is an error, never 'no session': {failed:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(3), "failing must be quick, took {:?}", started.elapsed());
        assert!(store.save(&id, &user("john"), Duration::from_secs(60)).await.is_err());

        redis.restart();
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match store.save(&id, &user("john"), Duration::from_secs(60)).await {
                Ok(()) => break,
                Err(e) => assert!(Instant::now() < deadline, "no recovery within 5 s: {e}"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(store.load(&id).await.unwrap().is_some(), "works again after Redis returns");
    });
}

fn settings(inactivity: u64, expiration: u64, remember: u64) -> CookieSettings {
    let session = Session {
        cookies: vec![SessionCookie {
            domain: Some("example.com".into()),
            authelia_url: Some(AbsoluteUrl(url::Url::parse("https://auth.example.com/").unwrap())),
            inactivity: Some(ConfigDuration::from_secs(inactivity)),
            expiration: Some(ConfigDuration::from_secs(expiration)),
            remember_me: Some(ConfigDuration::from_secs(remember)),
            ..Default::default()
        }],
        ..Default::default()
    };
    CookieSettings::from_config(&session).remove(0)
}

fn cookie_header(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_string()
}

#[test]
fn session_rules_expiry_inactivity_remember_me_and_regeneration() {
    runtime().block_on(async {
        let s = settings(300, 3600, 86400);
        let sessions = Sessions::new(Store::Memory(MemoryStore::new()), vec![s.clone()]);
        let now = 1_000_000;

        // Anonymous → 1FA: a new ID.
        let (anon_id, anon_cookie) = sessions.issue(&s, None, SessionData::default(), now).await.unwrap();
        let (id, cookie) = sessions.issue(&s, Some(&anon_id), user("john"), now).await.unwrap();
        assert_ne!(anon_id, id);
        assert!(
            sessions.load(&s, Some(&cookie_header(&anon_cookie)), now).await.unwrap().is_none(),
            "the pre-login ID is dead"
        );
        let header = cookie_header(&cookie);
        let loaded = sessions.load(&s, Some(&header), now + 10).await.unwrap().unwrap();
        assert_eq!(loaded.data.username, "john");
        assert_eq!(loaded.data.domain, "example.com");

        // Inactivity: idle past 300 s ends it.
        assert!(sessions.load(&s, Some(&header), now + 299).await.unwrap().is_some());
        sessions.touch(&s, &loaded, now + 200, Duration::from_secs(10)).await.unwrap();
        assert!(sessions.load(&s, Some(&header), now + 450).await.unwrap().is_some(), "touch extends inactivity");
        assert!(sessions.load(&s, Some(&header), now + 501).await.unwrap().is_none(), "idle sessions end");

        // Expiration bounds even an active session; remember-me outlives inactivity.
        let mut remembered = user("mary");
        remembered.remember_me = true;
        let (_, cookie) = sessions.issue(&s, None, remembered, now).await.unwrap();
        assert!(cookie.contains("Max-Age=86400"));
        let header = cookie_header(&cookie);
        assert!(
            sessions.load(&s, Some(&header), now + 7200).await.unwrap().is_some(),
            "remembered sessions ignore inactivity"
        );
        assert!(sessions.load(&s, Some(&header), now + 86401).await.unwrap().is_none());

        // A session is only valid on its own cookie domain.
        let other = settings(300, 3600, 0);
        let other = CookieSettings { domain: "other.org".into(), ..other };
        let (_, cookie) = sessions.issue(&s, None, user("kim"), now).await.unwrap();
        assert!(
            sessions
                .load(&other, Some(&cookie_header(&cookie).replace("authelia_session", &other.name)), now)
                .await
                .unwrap()
                .is_none()
        );

        // Ending clears the cookie and the stored session.
        let (id, cookie) = sessions.issue(&s, None, user("lee"), now).await.unwrap();
        let clear = sessions.end(&s, &id).await.unwrap();
        assert!(clear.contains("Max-Age=0"));
        assert!(sessions.load(&s, Some(&cookie_header(&cookie)), now).await.unwrap().is_none());
    });
}

#[test]
fn most_specific_cookie_domain_wins() {
    let mut a = settings(300, 3600, 0);
    a.domain = "example.com".into();
    let mut b = settings(300, 3600, 0);
    b.domain = "internal.example.com".into();
    let sessions = Sessions::new(Store::Memory(MemoryStore::new()), vec![a, b]);
    assert_eq!(sessions.cookie_for_host("app.internal.example.com").unwrap().domain, "internal.example.com");
    assert_eq!(sessions.cookie_for_host("app.example.com").unwrap().domain, "example.com");
    assert!(sessions.cookie_for_host("example.org").is_none());
}

#[test]
fn redis_with_password_and_database_index() {
    let redis = RedisServer::start_with(&["--requirepass", "redis-pass-123"]);
    let mut config = redis_config(redis.port);
    config.password = Secret::new("redis-pass-123");
    config.database_index = 3;
    runtime().block_on(async {
        let store = RedisStore::connect(&config, &Secret::new("s")).await.unwrap();
        contract(&store).await;
        store.save(&SessionId::generate(), &user("dbuser"), Duration::from_secs(60)).await.unwrap();
    });
    let keyspace = redis.cli(&["INFO", "keyspace"]);
    assert!(redis.cli(&["-n", "3", "--scan"]).contains("portcullis:session:"), "sessions go to database 3: {keyspace}");
    assert!(!redis.cli(&["-n", "0", "--scan"]).contains("portcullis:session:"), "not database 0");

    let mut wrong = config.clone();
    wrong.password = Secret::new("not-the-password");
    runtime().block_on(async {
        let store = RedisStore::connect(&wrong, &Secret::new("s")).await.unwrap();
        assert!(store.load(&SessionId::generate()).await.is_err(), "a wrong password fails closed");
    });
}

#[test]
fn redis_through_sentinel() {
    let master = RedisServer::start();
    let sentinel = RedisServer::sentinel(&master, "portcullis-master", None);
    let config = Redis {
        host: Some("127.0.0.1".into()),
        port: sentinel.port,
        timeout: ConfigDuration::from_secs(2),
        high_availability: Some(RedisHighAvailability {
            sentinel_name: Some("portcullis-master".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    runtime().block_on(async {
        let store = RedisStore::connect(&config, &Secret::new("s")).await.unwrap();
        contract(&store).await;
        store.save(&SessionId::generate(), &user("via-sentinel"), Duration::from_secs(60)).await.unwrap();
    });
    assert!(master.cli(&["--scan"]).contains("portcullis:session:"), "the sentinel led us to the master");
}
