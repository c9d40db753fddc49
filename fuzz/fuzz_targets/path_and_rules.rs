//! Path normalization and rule matching on arbitrary hosts, paths, queries and methods.
//! Oracles: normalizing a path the rules accept is idempotent, and the decision for the
//! raw path is never weaker than the one for the resource a typical server serves for it
//! (the path decoded once, then cleaned).
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::access_control::path::{ambiguity, normalize};
use portcullis::access_control::{AccessControl, Object, Subject};
use portcullis::config::Configuration;

fn rules() -> &'static AccessControl {
    static RULES: OnceLock<AccessControl> = OnceLock::new();
    RULES.get_or_init(|| {
        let yaml = "access_control:\n  default_policy: one_factor\n  rules:\n    - domain: ['*.example.com', 'example.com']\n      resources: ['^/admin([/?].*)?$']\n      policy: deny\n    - domain: app.example.com\n      resources: ['^/public/.*$']\n      methods: [GET, HEAD]\n      policy: bypass\n    - domain_regex: '^(?P<User>\\w+)\\.users\\.example\\.com$'\n      policy: one_factor\n    - domain: api.example.com\n      query:\n        - - key: token\n            operator: present\n      policy: two_factor\n";
        let config: Configuration = serde_yaml::from_str(yaml).expect("fuzz rules");
        AccessControl::compile(&config).expect("fuzz rules compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(4, '\n');
    let (host, path, query, method) =
        (parts.next().unwrap_or(""), parts.next().unwrap_or("/"), parts.next(), parts.next().unwrap_or("GET"));
    let once = normalize(path, None);
    if ambiguity(path, true).is_none() {
        assert_eq!(normalize(&once, None), once, "normalizing is idempotent");
    }
    let subject = Subject { username: "john", groups: &[], client_id: "", ip: None, token: None };
    let raw = Object::from_parts(host, path, query, method);
    let served = Object { path: normalize(path, query), other_readings: Vec::new(), ..raw.clone() };
    let judged = rules().evaluate(&subject, &raw);
    let backend = rules().evaluate(&subject, &served);
    assert!(judged.policy >= backend.policy, "{path:?}: judged {judged:?}, the served resource {backend:?}");
});
