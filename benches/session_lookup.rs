//! Session lookup, the per-request cost of cookie authentication on the authz path:
//! memory store vs Redis (a real redis-server started on a free loopback port).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::config::schema::Redis;
use portcullis::config::types::{Duration as ConfigDuration, Secret};
use portcullis::session::memory::MemoryStore;
use portcullis::session::redis::RedisStore;
use portcullis::session::{SessionData, SessionId, SessionStore};

struct RedisProcess(Child);

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis() -> (RedisProcess, u16) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server");
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (RedisProcess(child), port)
}

fn session() -> SessionData {
    SessionData {
        username: "john".into(),
        display_name: "John Doe".into(),
        emails: vec!["john@example.com".into()],
        groups: vec!["admins".into(), "dev".into()],
        first_factor_at: Some(1),
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let id = SessionId::generate();
    let mut group = c.benchmark_group("session_lookup");

    let memory = MemoryStore::new();
    runtime.block_on(async {
        // A realistic population: the looked-up session among many.
        for _ in 0..10_000 {
            memory.save(&SessionId::generate(), &session(), Duration::from_secs(600)).await.unwrap();
        }
        memory.save(&id, &session(), Duration::from_secs(600)).await.unwrap();
    });
    group
        .bench_function("memory", |b| b.to_async(&runtime).iter(|| async { memory.load(&id).await.unwrap().unwrap() }));

    let (_redis, port) = start_redis();
    let config =
        Redis { host: Some("127.0.0.1".into()), port, timeout: ConfigDuration::from_secs(2), ..Default::default() };
    let redis = runtime.block_on(async {
        let store = RedisStore::connect(&config, &Secret::new("bench-secret")).await.unwrap();
        store.save(&id, &session(), Duration::from_secs(600)).await.unwrap();
        store
    });
    group.bench_function("redis", |b| b.to_async(&runtime).iter(|| async { redis.load(&id).await.unwrap().unwrap() }));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
