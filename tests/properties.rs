//! Properties of path normalization and rule matching, checked on generated inputs:
//! normalizing is idempotent, and no spelling of a path (dot segments, repeated slashes,
//! percent-encoding, letter case in the scheme or host) reaches a weaker policy than the
//! plain path.

use portcullis::access_control::path::normalize;
use portcullis::access_control::{AccessControl, Object, Policy, Subject};
use portcullis::config::Configuration;
use proptest::prelude::*;

fn rules() -> AccessControl {
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
    let subject = Subject { username: "", groups: &[], client_id: "", ip: None };
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

    #[test]
    fn normalizing_is_idempotent(path in "(/|%2[eEfF]|%25|\\.|[a-z]|%[0-9A-F]{2}){0,24}") {
        let once = normalize(&path, None);
        prop_assert_eq!(normalize(&once, None), once.clone(), "input {:?}", path);
    }

    #[test]
    fn equivalent_spellings_get_the_same_decision(path in plain_path(), choices in prop::collection::vec(any::<u8>(), 1..32)) {
        let rules = rules();
        let plain = decide(&rules, &format!("https://app.example.com{path}"));
        let spelled = respelled(&path, &choices);
        let other = decide(&rules, &format!("https://app.example.com{spelled}"));
        prop_assert_eq!(normalize(&spelled, None), normalize(&path, None), "{:?} vs {:?}", spelled, path);
        prop_assert_eq!(other, plain, "{:?} vs {:?}", spelled, path);
    }

    #[test]
    fn no_spelling_is_weaker(path in plain_path(), choices in prop::collection::vec(any::<u8>(), 1..32), upper in prop::collection::vec(any::<bool>(), 20)) {
        let rules = rules();
        let plain = decide(&rules, &format!("https://app.example.com{path}"));
        let host: String = "app.example.com".chars().zip(upper.iter().cycle()).map(|(c, u)| if *u { c.to_ascii_uppercase() } else { c }).collect();
        let scheme = if upper[0] { "HTTPS" } else { "https" };
        let other = decide(&rules, &format!("{scheme}://{host}{}", respelled(&path, &choices)));
        prop_assert!(strength(other) >= strength(plain), "{:?} got {:?}, plain {:?} got {:?}", host, other, path, plain);
    }
}
