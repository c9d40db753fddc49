//! Properties of path normalization and rule matching, checked on generated inputs:
//! normalizing an accepted path is idempotent, no spelling of a path (dot segments,
//! repeated slashes, percent-encoding, letter case in the scheme or host) reaches a
//! weaker policy than the plain path, and no spelling reaches a weaker policy than the
//! resource a backend serves for it.

use std::sync::OnceLock;

use portcullis::access_control::path::{ambiguity, normalize};
use portcullis::access_control::{AccessControl, Object, Policy, Subject};
use portcullis::config::Configuration;
use proptest::prelude::*;

fn rules() -> &'static AccessControl {
    static RULES: OnceLock<AccessControl> = OnceLock::new();
    RULES.get_or_init(compile_rules)
}

fn compile_rules() -> AccessControl {
    let yaml = r#"
session:
  cookies:
    - domain: example.com
      authelia_url: https://auth.example.com/
access_control:
  default_policy: one_factor
  rules:
    - domain: app.example.com
      resources: ['^/admin([/?].*)?$']
      policy: deny
    - domain: app.example.com
      resources: ['^/secure/.*$']
      policy: two_factor
    - domain: app.example.com
      resources: ['^/public/.*$']
      policy: bypass
"#;
    let config: Configuration = serde_yaml::from_str(yaml).unwrap();
    AccessControl::compile(&config).unwrap()
}

fn decide(rules: &AccessControl, url: &str) -> Policy {
    let url = url::Url::parse(url).unwrap();
    let subject = Subject { username: "", groups: &[], client_id: "", ip: None, token: None };
    rules.evaluate(&subject, &Object::new(&url, "GET")).policy
}

/// Strength of a policy: a spelling must never get a smaller one than the plain path.
fn strength(p: Policy) -> u8 {
    match p {
        Policy::Bypass => 0,
        Policy::OneFactor => 1,
        Policy::TwoFactor => 2,
        Policy::Deny => 3,
    }
}

fn segment() -> impl Strategy<Value = String> {
    prop_oneof![Just("admin".to_string()), Just("secure".to_string()), Just("public".to_string()), "[a-z0-9]{1,6}",]
}

/// A path of 1 to 4 segments, sometimes with a trailing slash.
fn plain_path() -> impl Strategy<Value = String> {
    (prop::collection::vec(segment(), 1..4), any::<bool>())
        .prop_map(|(segs, trailing)| format!("/{}{}", segs.join("/"), if trailing { "/" } else { "" }))
}

/// The same path spelled differently: each character may be percent-encoded (once or
/// twice), and dot segments and empty segments may be inserted between segments.
fn respelled(path: &str, choices: &[u8]) -> String {
    let mut out = String::new();
    let mut i = 0;
    let mut next = || {
        i += 1;
        choices.get(i % choices.len().max(1)).copied().unwrap_or(0)
    };
    for ch in path.chars() {
        if ch == '/' {
            out.push('/');
            match next() % 5 {
                0 => out.push_str("./"),
                1 => out.push('/'),
                2 => out.push_str("zz/../"),
                3 => out.push_str("%2e/"),
                _ => {}
            }
            continue;
        }
        match next() % 4 {
            0 => out.push_str(&format!("%{:02X}", ch as u32)),
            1 => out.push_str(&format!("%25{:02X}", ch as u32)),
            _ => out.push(ch),
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Paths with an encoding of an encoding are refused (decoding once and twice differ);
    /// for the others, normalizing twice changes nothing.
    #[test]
    fn normalizing_is_idempotent(path in "(/|%2[eEfF]|%25|\\.|[a-z]|%[0-9A-F]{2}){0,24}") {
        if ambiguity(&path, true).is_none() {
            let once = normalize(&path, None);
            prop_assert_eq!(normalize(&once, None), once.clone(), "input {:?}", path);
        }
    }

    /// A spelling encoded once, with dot and empty segments, is the same path: same
    /// normalized form, same decision. One encoded twice (`%2561`) or with an encoded dot
    /// segment (`%2e/`) is refused.
    #[test]
    fn equivalent_spellings_get_the_same_decision(path in plain_path(), choices in prop::collection::vec(any::<u8>(), 1..32)) {
        let rules = rules();
        let plain = decide(rules, &format!("https://app.example.com{path}"));
        let spelled = respelled(&path, &choices);
        match judged(rules, &spelled) {
            Some(other) => {
                prop_assert_eq!(normalize(&spelled, None), normalize(&path, None), "{:?} vs {:?}", spelled, path);
                prop_assert_eq!(other, plain, "{:?} vs {:?}", spelled, path);
            }
            None => prop_assert!(spelled.contains("%25") || spelled.contains("%2e/"), "{:?} refused", spelled),
        }
    }

    #[test]
    fn no_spelling_is_weaker(path in plain_path(), choices in prop::collection::vec(any::<u8>(), 1..32), upper in prop::collection::vec(any::<bool>(), 20)) {
        let rules = rules();
        let plain = decide(rules, &format!("https://app.example.com{path}"));
        let host: String = "app.example.com".chars().zip(upper.iter().cycle()).map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c }).collect();
        let scheme = if upper[0] { "HTTPS" } else { "https" };
        let other = decide(rules, &format!("{scheme}://{host}{}", respelled(&path, &choices)));
        prop_assert!(strength(other) >= strength(plain), "{:?} got {:?}, plain {:?} got {:?}", host, other, path, plain);
    }
}

/// What Portcullis decides for a request whose path is `raw` exactly as the client sent
/// it; `None` when the request is refused (400).
fn judged(rules: &AccessControl, raw: &str) -> Option<Policy> {
    let object = rules.object("app.example.com", raw, None, "GET").ok()?;
    let subject = Subject { username: "", groups: &[], client_id: "", ip: None, token: None };
    Some(rules.evaluate(&subject, &object).policy)
}

/// The policy of the resource at `path`, a path as a backend has already read it (nothing
/// more is decoded or resolved).
fn policy_of_resource(rules: &AccessControl, path: &str) -> Policy {
    let object = Object {
        domain: "app.example.com".into(),
        path: path.into(),
        other_readings: Vec::new(),
        query: Vec::new(),
        method: "GET".into(),
    };
    let subject = Subject { username: "", groups: &[], client_id: "", ip: None, token: None };
    rules.evaluate(&subject, &object).policy
}

fn decode_once(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Dot segments resolved and repeated slashes merged, a trailing slash kept, as Go's
/// ServeMux does.
fn router_clean(path: &str) -> String {
    let mut out: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s),
        }
    }
    let trailing = if !out.is_empty() && path.ends_with('/') { "/" } else { "" };
    format!("/{}{trailing}", out.join("/"))
}

/// The paths backends serve for `raw`: decoded once, then cleaned (Go's ServeMux, NGINX,
/// most frameworks); split and cleaned on the raw text, then each segment decoded once
/// (routers matching raw segments, `%2F` staying inside its segment); decoded until
/// stable, then cleaned (an application decoding again).
fn backend_readings(raw: &str) -> Vec<String> {
    let mut twice = raw.to_string();
    for _ in 0..8 {
        twice = decode_once(&twice);
    }
    vec![router_clean(&decode_once(raw)), decode_once(&router_clean(raw)), router_clean(&twice)]
}

/// Pieces a path is made of: names the rules know, dot segments and their encodings,
/// encoded slashes, backslashes and percents, once and twice, and path parameters.
fn piece() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "/",
        "/",
        "/",
        "public",
        "admin",
        "secure",
        "account",
        "x",
        "..",
        ".",
        "%2e",
        "%2E",
        "%2e%2e",
        "%252e",
        "%252e%252e",
        "%2f",
        "%2F",
        "%252f",
        "%5c",
        "%5C",
        "%255c",
        "%25",
        "%2570ublic",
        "%70ublic",
        "%61dmin",
        "%2561dmin",
        ";",
        ";x=1",
        "..;",
        "%3b",
        "a%2Fb",
        "%",
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4096))]

    /// The issue's property: for any spelling, what Portcullis decides is never weaker than
    /// the policy of the resource a backend serves for it (or the request is refused).
    #[test]
    fn no_spelling_is_weaker_than_what_the_backend_serves(pieces in prop::collection::vec(piece(), 1..10)) {
        let rules = rules();
        let raw = format!("/{}", pieces.concat());
        if let Some(policy) = judged(rules, &raw) {
            for served in backend_readings(&raw) {
                let backend = policy_of_resource(rules, &served);
                prop_assert!(strength(policy) >= strength(backend), "{:?} judged {:?}, the backend serves {:?} ({:?})", raw, policy, served, backend);
            }
        }
    }

    /// The same for respellings of plain paths (percent-encoding once or twice, dot and
    /// empty segments).
    #[test]
    fn no_respelling_is_weaker_than_what_the_backend_serves(path in plain_path(), choices in prop::collection::vec(any::<u8>(), 1..32)) {
        let rules = rules();
        let raw = respelled(&path, &choices);
        if let Some(policy) = judged(rules, &raw) {
            for served in backend_readings(&raw) {
                let backend = policy_of_resource(rules, &served);
                prop_assert!(strength(policy) >= strength(backend), "{:?} judged {:?}, the backend serves {:?} ({:?})", raw, policy, served, backend);
            }
        }
    }
}
