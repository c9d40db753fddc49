//! Table-driven tests of the engine, one block per criterion, then combinations.

use super::*;

fn engine(rules_yaml: &str) -> AccessControl {
    let yaml = format!(
        "definitions: {{network: {{internal: ['10.0.0.0/8', 'fd00::/8']}}}}\naccess_control:\n  default_policy: deny\n  networks: [{{name: vpn, networks: ['192.168.100.0/24']}}]\n  rules:\n{rules_yaml}"
    );
    let config: Configuration = serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    AccessControl::compile(&config).unwrap()
}

struct Who {
    user: &'static str,
    groups: Vec<String>,
    ip: Option<&'static str>,
    token: Option<&'static str>,
}

fn anon() -> Who {
    Who { user: "", groups: vec![], ip: None, token: None }
}

fn user(name: &'static str, groups: &[&str]) -> Who {
    Who { user: name, groups: groups.iter().map(|g| g.to_string()).collect(), ip: None, token: None }
}

fn with_token(mut who: Who, name: &'static str) -> Who {
    who.token = Some(name);
    who
}

fn at(mut who: Who, ip: &'static str) -> Who {
    who.ip = Some(ip);
    who
}

fn decide(engine: &AccessControl, who: &Who, url: &str, method: &str) -> (Policy, Option<usize>, bool) {
    let subject = Subject {
        username: who.user,
        groups: &who.groups,
        client_id: "",
        ip: who.ip.map(|ip| ip.parse().unwrap()),
        token: who.token,
    };
    let object = Object::new(&url::Url::parse(url).unwrap(), method);
    let d = engine.evaluate(&subject, &object);
    (d.policy, d.rule, d.has_subjects)
}

use Policy::*;

#[test]
fn domains_exact_wildcard_and_case() {
    let e = engine(
        "    - {domain: public.example.com, policy: bypass}
    - {domain: '*.example.com', policy: one_factor}
    - {domain: [a.other.org, b.other.org], policy: two_factor}",
    );
    let cases = [
        ("https://public.example.com/", (Bypass, Some(1))),
        ("https://PUBLIC.Example.COM/x", (Bypass, Some(1))),
        ("https://app.example.com/", (OneFactor, Some(2))),
        ("https://deep.app.example.com/", (OneFactor, Some(2))),
        ("https://example.com/", (Deny, None)),
        ("https://badexample.com/", (Deny, None)),
        ("https://b.other.org:8443/", (TwoFactor, Some(3))),
        ("https://c.other.org/", (Deny, None)),
    ];
    for (url, expected) in cases {
        let (p, r, _) = decide(&e, &anon(), url, "GET");
        assert_eq!((p, r), expected, "{url}");
    }
}

#[test]
fn user_and_group_placeholders() {
    let e = engine(
        "    - {domain: '{user}.home.example.com', policy: one_factor}
    - {domain: '{group}.teams.example.com', policy: two_factor}",
    );
    let john = user("john", &["dev"]);
    assert_eq!(decide(&e, &john, "https://john.home.example.com/", "GET"), (OneFactor, Some(1), true));
    assert_eq!(decide(&e, &john, "https://mary.home.example.com/", "GET"), (Deny, None, false));
    assert_eq!(decide(&e, &john, "https://dev.teams.example.com/", "GET"), (TwoFactor, Some(2), true));
    assert_eq!(decide(&e, &john, "https://ops.teams.example.com/", "GET"), (Deny, None, false));
    // Anonymous: it could be the right user, so the rule applies with has_subjects.
    assert_eq!(decide(&e, &anon(), "https://mary.home.example.com/", "GET"), (OneFactor, Some(1), true));
    assert_eq!(decide(&e, &anon(), "https://home.example.com/", "GET"), (Deny, None, false));
}

#[test]
fn domain_regex_with_named_groups() {
    let e = engine(
        r"    - {domain_regex: '^(?P<User>\w+)\.files\.example\.com$', policy: one_factor}
    - {domain_regex: '^(?P<Group>\w+)\.g\.example\.com$', policy: two_factor}
    - {domain_regex: '^api\d+\.example\.com$', policy: bypass}",
    );
    let john = user("john", &["admins"]);
    assert_eq!(decide(&e, &john, "https://JOHN.files.example.com/", "GET"), (OneFactor, Some(1), true));
    assert_eq!(decide(&e, &john, "https://mary.files.example.com/", "GET"), (Deny, None, false));
    assert_eq!(decide(&e, &john, "https://admins.g.example.com/", "GET"), (TwoFactor, Some(2), true));
    assert_eq!(decide(&e, &anon(), "https://mary.files.example.com/", "GET"), (OneFactor, Some(1), true));
    assert_eq!(decide(&e, &anon(), "https://api42.example.com/", "GET"), (Bypass, Some(3), false));
    assert_eq!(decide(&e, &anon(), "https://apix.example.com/", "GET"), (Deny, None, false));
}

#[test]
fn resources_see_the_normalized_path_and_query() {
    let e = engine(
        "    - {domain: app.example.com, resources: ['^/admin'], policy: deny}
    - {domain: app.example.com, resources: ['^/public/', '^/health$', 'debug=1'], policy: bypass}
    - {domain: app.example.com, policy: one_factor}",
    );
    let cases = [
        ("https://app.example.com/admin", Deny),
        ("https://app.example.com/public/../admin", Deny),
        ("https://app.example.com/public/%2e%2e/admin", Deny),
        ("https://app.example.com/%61dmin/x", Deny),
        ("https://app.example.com//admin", Deny),
        ("https://app.example.com/public/..%2Fadmin", Deny),
        ("https://app.example.com/public/file", Bypass),
        ("https://app.example.com/health", Bypass),
        ("https://app.example.com/health/", OneFactor),
        ("https://app.example.com/x?debug=1", Bypass),
        ("https://app.example.com/x", OneFactor),
    ];
    for (url, expected) in cases {
        assert_eq!(decide(&e, &anon(), url, "GET").0, expected, "{url}");
    }
}

#[test]
fn the_strictest_reading_of_the_path_decides() {
    let e = engine(
        "    - {domain: app.example.com, resources: ['^/admin'], policy: deny}
    - {domain: app.example.com, resources: ['^/public/'], policy: bypass}
    - {domain: app.example.com, resources: ['^/team/'], subject: 'group:team', policy: two_factor}
    - {domain: app.example.com, policy: one_factor}",
    );
    let anonymous = Subject::default();
    let judge = |raw: &str| {
        let object = e.object("app.example.com", raw, None, "GET").unwrap();
        let d = e.evaluate(&anonymous, &object);
        let explained = e.explain(&anonymous, &object);
        let decided = explained.iter().find(|r| r.decided).map(|r| r.position);
        assert_eq!(decided, d.rule, "explain reports the deciding rule for {raw}");
        (d.policy, d.rule)
    };
    assert_eq!(judge("/public/x"), (Bypass, Some(2)));
    // `/public/admin` to RFC 3986, `/admin` to Go and NGINX: the stricter.
    assert_eq!(judge("/public//../admin"), (Deny, Some(1)));
    assert_eq!(judge("/public/..;/admin"), (Deny, Some(1)));
    assert_eq!(judge("/public/..;/x"), (OneFactor, Some(4)));
    assert_eq!(judge("/public/..;/team/x"), (TwoFactor, Some(3)));
}

#[test]
fn on_equal_policies_a_decision_for_everyone_is_stricter() {
    let for_everyone = Decision { policy: Deny, rule: Some(2), has_subjects: false };
    let for_some = Decision { policy: Deny, rule: Some(1), has_subjects: true };
    assert!(stricter(&for_everyone, &for_some));
    assert!(!stricter(&for_some, &for_everyone));
    assert!(!stricter(&Decision { policy: TwoFactor, rule: None, has_subjects: true }, &for_everyone));
    assert!(stricter(&for_some, &Decision { policy: TwoFactor, rule: None, has_subjects: false }));
}

#[test]
fn ambiguous_paths_are_refused_before_any_rule() {
    let strict = engine("    - {domain: app.example.com, policy: one_factor}");
    for raw in ["/a/%252e%252e/b", "/a/%2e%2e/b", "/a\\b", "/a%5Cb", "/a%2Fb"] {
        assert!(strict.object("app.example.com", raw, None, "GET").is_err(), "{raw}");
    }
    assert!(strict.object("app.example.com", "/a/b%20c", Some("x=%2F"), "GET").is_ok());
    let config: Configuration = serde_yaml::from_str(
        "access_control:\n  allow_encoded_slashes: true\n  rules: [{domain: app.example.com, policy: one_factor}]",
    )
    .unwrap();
    let lenient = AccessControl::compile(&config).unwrap();
    let object = lenient.object("app.example.com", "/a%2Fb/..%2Fc", None, "GET").unwrap();
    assert_eq!((object.path.as_str(), object.other_readings.as_slice()), ("/a/c", &["/a/b/../c".to_string()][..]));
    assert!(lenient.object("app.example.com", "/a%252Fb", None, "GET").is_err());
}

#[test]
fn resource_named_groups() {
    let e = engine(r"    - {domain: app.example.com, resources: ['^/users/(?P<User>\w+)/'], policy: one_factor}");
    assert_eq!(
        decide(&e, &user("john", &[]), "https://app.example.com/users/john/x", "GET"),
        (OneFactor, Some(1), true)
    );
    assert_eq!(decide(&e, &user("john", &[]), "https://app.example.com/users/mary/x", "GET").0, Deny);
    assert_eq!(decide(&e, &anon(), "https://app.example.com/users/mary/x", "GET"), (OneFactor, Some(1), true));
}

#[test]
fn query_operators() {
    let e = engine(
        "    - domain: app.example.com
      query:
        - [{key: a, operator: present}, {key: b, operator: absent}]
        - [{key: c, operator: equal, value: yes}]
        - [{key: d, operator: not equal, value: no}, {key: d, operator: present}]
        - [{key: e, operator: pattern, value: '^[0-9]+$'}]
        - [{key: f, operator: not pattern, value: '^x'}, {key: f, operator: present}]
        - [{key: g, value: 42}]
      policy: bypass",
    );
    let cases = [
        ("?a=1", Bypass),
        ("?a=1&b=2", Deny),
        ("?c=yes", Bypass),
        ("?c=no", Deny),
        ("?d=maybe", Bypass),
        ("?d=no", Deny),
        ("?e=123", Bypass),
        ("?e=12a", Deny),
        ("?f=abc", Bypass),
        ("?f=xyz", Deny),
        ("?g=42", Bypass),
        ("?c=yes%20", Deny),
        ("", Deny),
    ];
    for (query, expected) in cases {
        let url = format!("https://app.example.com/{query}");
        assert_eq!(decide(&e, &anon(), &url, "GET").0, expected, "{url}");
    }
}

#[test]
fn methods_and_networks() {
    let e = engine(
        "    - {domain: app.example.com, methods: [GET, head], resources: ['^/ro/'], policy: bypass}
    - {domain: app.example.com, networks: [internal, vpn, '203.0.113.7'], policy: one_factor}
    - {domain: app.example.com, networks: ['2001:db8::/32'], policy: two_factor}",
    );
    assert_eq!(decide(&e, &anon(), "https://app.example.com/ro/x", "get").0, Bypass);
    assert_eq!(decide(&e, &anon(), "https://app.example.com/ro/x", "HEAD").0, Bypass);
    assert_eq!(decide(&e, &anon(), "https://app.example.com/ro/x", "POST").0, Deny);
    for ip in ["10.1.2.3", "192.168.100.9", "203.0.113.7", "fd00::1"] {
        assert_eq!(decide(&e, &at(anon(), ip), "https://app.example.com/", "GET").0, OneFactor, "{ip}");
    }
    assert_eq!(decide(&e, &at(anon(), "2001:db8::5"), "https://app.example.com/", "GET").0, TwoFactor);
    assert_eq!(decide(&e, &at(anon(), "8.8.8.8"), "https://app.example.com/", "GET").0, Deny);
    assert_eq!(decide(&e, &anon(), "https://app.example.com/", "GET").0, Deny, "no address: no network matches");
}

#[test]
fn subjects_inner_and_outer_lists() {
    let e = engine(
        "    - domain: app.example.com
      subject: [['group:admins', 'user:john'], 'group:security', 'oauth2:client:ci']
      policy: two_factor
    - {domain: app.example.com, policy: deny}",
    );
    assert_eq!(decide(&e, &user("john", &["admins"]), "https://app.example.com/", "GET"), (TwoFactor, Some(1), true));
    assert_eq!(decide(&e, &user("mary", &["admins"]), "https://app.example.com/", "GET"), (Deny, Some(2), false));
    assert_eq!(decide(&e, &user("kim", &["security"]), "https://app.example.com/", "GET").0, TwoFactor);
    assert_eq!(decide(&e, &user("john", &["dev"]), "https://app.example.com/", "GET").0, Deny);
    // Anonymous might be john: the subject rule applies and says who may pass.
    assert_eq!(decide(&e, &anon(), "https://app.example.com/", "GET"), (TwoFactor, Some(1), true));
}

#[test]
fn token_subjects_tell_token_requests_apart() {
    let e = engine(
        "    - {domain: api.example.com, subject: 'token:any', policy: one_factor}
    - {domain: api.example.com, policy: deny}
    - {domain: app.example.com, subject: 'token:any', policy: deny}
    - {domain: app.example.com, subject: 'user:john', policy: one_factor}
    - {domain: ci.example.com, subject: [['user:john', 'token:deploy']], policy: one_factor}
    - {domain: ci.example.com, policy: deny}",
    );
    let john = || user("john", &["dev"]);
    let api = "https://api.example.com/";
    assert_eq!(decide(&e, &with_token(john(), "laptop"), api, "GET"), (OneFactor, Some(1), true));
    assert_eq!(decide(&e, &john(), api, "GET"), (Deny, Some(2), false), "a session is not a token");
    assert_eq!(decide(&e, &anon(), api, "GET"), (OneFactor, Some(1), true), "anonymous may come with a token");
    let app = "https://app.example.com/";
    assert_eq!(decide(&e, &with_token(john(), "laptop"), app, "GET").0, Deny, "tokens refused here");
    assert_eq!(decide(&e, &john(), app, "GET").0, OneFactor, "the session passes");
    let ci = "https://ci.example.com/";
    assert_eq!(decide(&e, &with_token(john(), "deploy"), ci, "GET").0, OneFactor);
    assert_eq!(decide(&e, &with_token(john(), "laptop"), ci, "GET").0, Deny, "another token's name");
    assert_eq!(decide(&e, &with_token(user("mary", &[]), "deploy"), ci, "GET").0, Deny, "another user's");
    assert_eq!(decide(&e, &john(), ci, "GET").0, Deny);
}

#[test]
fn anonymous_on_a_deny_rule_with_subjects_must_log_in() {
    let e = engine(
        "    - {domain: app.example.com, subject: 'group:banned', policy: deny}
    - {domain: app.example.com, policy: one_factor}",
    );
    assert_eq!(decide(&e, &anon(), "https://app.example.com/", "GET"), (Deny, Some(1), true));
    assert_eq!(decide(&e, &user("x", &["banned"]), "https://app.example.com/", "GET"), (Deny, Some(1), true));
    assert_eq!(decide(&e, &user("y", &[]), "https://app.example.com/", "GET"), (OneFactor, Some(2), false));
}

#[test]
fn first_match_wins_and_the_index_keeps_order() {
    let e = engine(
        r"    - {domain_regex: '^z\.example\.com$', policy: bypass}
    - {domain: '*.example.com', resources: ['^/a'], policy: two_factor}
    - {domain: z.example.com, policy: deny}
    - {domain: '*.example.com', policy: one_factor}",
    );
    assert_eq!(decide(&e, &anon(), "https://z.example.com/a", "GET").1, Some(1));
    assert_eq!(decide(&e, &anon(), "https://y.example.com/a", "GET").1, Some(2));
    assert_eq!(decide(&e, &anon(), "https://y.example.com/b", "GET").1, Some(4));
}

#[test]
fn many_rules_decide_like_few() {
    let mut yaml = String::new();
    for i in 0..5000 {
        yaml.push_str(&format!("    - {{domain: 'app{i}.example.com', policy: one_factor}}\n"));
    }
    yaml.push_str("    - {domain: '*.example.com', resources: ['^/admin'], policy: two_factor}\n");
    let e = engine(&yaml);
    assert_eq!(e.len(), 5001);
    assert_eq!(decide(&e, &anon(), "https://app4999.example.com/", "GET"), (OneFactor, Some(5000), false));
    assert_eq!(decide(&e, &anon(), "https://other.example.com/admin", "GET"), (TwoFactor, Some(5001), false));
    assert_eq!(decide(&e, &anon(), "https://other.example.com/", "GET"), (Deny, None, false));
}

#[test]
fn explain_reports_each_criterion() {
    let e = engine(
        "    - {domain: app.example.com, methods: [POST], policy: deny}
    - {domain: app.example.com, subject: 'user:john', policy: one_factor}",
    );
    let subject = Subject::default();
    let object = Object::new(&url::Url::parse("https://app.example.com/").unwrap(), "GET");
    let report = e.explain(&subject, &object);
    assert!(report[0].domain && !report[0].methods && !report[0].decided);
    assert!(report[1].subjects && !report[1].subjects_exact && report[1].decided);
}

#[test]
fn methods_are_upper_case_and_the_defined_ones_constants() {
    for (sent, upper) in [("GET", "GET"), ("get", "GET"), ("Patch", "PATCH"), ("OPTIONS", "OPTIONS")] {
        let method = upper_case_method(sent);
        assert_eq!(method, upper);
        assert!(matches!(method, Cow::Borrowed(_)), "{sent}");
    }
    // WebDAV and other extension methods are upper-cased too, in an owned string.
    let method = upper_case_method("propfind");
    assert_eq!(method, "PROPFIND");
    assert!(matches!(method, Cow::Owned(_)));
    // A rule's methods match whatever case the request's method was given in.
    let rules = engine("    - {domain: dav.example.com, methods: [PROPFIND], policy: bypass}\n");
    assert_eq!(decide(&rules, &anon(), "https://dav.example.com/", "propfind").0, Bypass);
    assert_eq!(decide(&rules, &anon(), "https://dav.example.com/", "GET").0, Deny);
}
