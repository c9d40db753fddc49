//! The two per-request string jobs of an allowed authz request around the session lookup:
//! finding the session ID in the browser's `Cookie` header, and rendering the `Remote-*`
//! identity headers of the 200 reply.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use portcullis::config::Configuration;
use portcullis::handlers::authz::allowed_as;
use portcullis::session::{CookieSettings, SessionId};

fn settings() -> CookieSettings {
    let yaml = "session:\n  cookies:\n    - {domain: example.com, authelia_url: 'https://auth.example.com/'}\n";
    let config: Configuration = serde_yaml::from_str(yaml).unwrap();
    CookieSettings::from_config(&config.session).remove(0)
}

/// A browser's `Cookie` header on a site with analytics, preferences and a CSRF token,
/// with the session cookie at `position` among them (or absent).
fn cookie_header(id: &SessionId, position: Option<usize>) -> String {
    let mut cookies = vec![
        "_ga=GA1.2.1234567890.1700000000".to_string(),
        "_gid=GA1.2.987654321.1700000000".to_string(),
        "theme=dark".to_string(),
        "lang=en-GB".to_string(),
        "csrftoken=4kq9Zr2vXbW8yTn1LmPq7sD3fGh6JkLa".to_string(),
        "consent=%7B%22analytics%22%3Atrue%2C%22ads%22%3Afalse%7D".to_string(),
    ];
    if let Some(i) = position {
        cookies.insert(i, format!("authelia_session={}", id.as_str()));
    }
    cookies.join("; ")
}

fn bench(c: &mut Criterion) {
    let settings = settings();
    let id = SessionId::generate();
    let mut group = c.benchmark_group("cookies");
    for (name, position) in [("session_id/first", Some(0)), ("session_id/last", Some(6)), ("session_id/absent", None)] {
        let header = cookie_header(&id, position);
        assert!(settings.session_id(&header) == position.map(|_| id.clone()), "{name}");
        group.bench_function(name, |b| b.iter(|| settings.session_id(black_box(&header))));
    }
    group.finish();

    let groups = vec!["admins".to_string(), "dev".to_string(), "family".to_string()];
    let mut group = c.benchmark_group("headers");
    group.bench_function("allow_remote_headers", |b| {
        b.iter(|| {
            allowed_as(black_box("john"), black_box(&groups), black_box("John Doe"), black_box("john@example.com"))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
