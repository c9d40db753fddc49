//! `portcullis access-control check-policy`: the JSON form prints exactly one object with
//! the deciding policy and 1-based rule (or null), for every kind of criterion.

mod common;

use common::run;

const RULES: &str = "
access_control:
  default_policy: deny
  networks: [{name: internal, networks: ['10.0.0.0/8', 'fd00::/8']}]
  rules:
    - {domain: public.example.com, policy: bypass}
    - {domain: app.example.com, resources: ['^/admin'], subject: 'group:admins', policy: two_factor}
    - {domain: app.example.com, resources: ['^/admin'], policy: deny}
    - {domain: app.example.com, methods: [POST], policy: two_factor}
    - {domain: '*.example.com', networks: [internal], policy: one_factor}
    - {domain: '{user}.home.example.com', policy: one_factor}
    - {domain: app.example.com, query: [[{key: token, operator: present}]], policy: one_factor}
";

fn check(dir: &std::path::Path, config: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["access-control", "check-policy", "--config", config, "--output", "json"];
    all.extend_from_slice(args);
    let out = run(&all, dir, &[]);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1, "exactly one line: {stdout}");
    serde_json::from_str(&stdout).unwrap()
}

#[test]
fn json_output_for_every_kind_of_case() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, common::config_yaml(9091, dir.path(), RULES)).unwrap();
    let config = path.to_str().unwrap();
    let cases: &[(&[&str], serde_json::Value)] = &[
        (&["--url", "https://public.example.com/"], serde_json::json!({"policy": "bypass", "rule": 1})),
        (&["--url", "https://app.example.com/admin"], serde_json::json!({"policy": "two_factor", "rule": 2})),
        (
            &["--url", "https://app.example.com/admin", "--username", "john", "--groups", "dev"],
            serde_json::json!({"policy": "deny", "rule": 3}),
        ),
        (
            &["--url", "https://app.example.com/admin", "--username", "john", "--groups", "dev,admins"],
            serde_json::json!({"policy": "two_factor", "rule": 2}),
        ),
        (
            &["--url", "https://app.example.com/x/../admin/", "--username", "john"],
            serde_json::json!({"policy": "deny", "rule": 3}),
        ),
        (
            &["--url", "https://app.example.com/%61dmin", "--username", "john"],
            serde_json::json!({"policy": "deny", "rule": 3}),
        ),
        (
            &["--url", "https://app.example.com/", "--method", "POST"],
            serde_json::json!({"policy": "two_factor", "rule": 4}),
        ),
        (
            &["--url", "https://app.example.com/", "--ip", "10.2.3.4"],
            serde_json::json!({"policy": "one_factor", "rule": 5}),
        ),
        (
            &["--url", "https://app.example.com/", "--ip", "fd00::7"],
            serde_json::json!({"policy": "one_factor", "rule": 5}),
        ),
        (
            &["--url", "https://app.example.com/", "--ip", "8.8.8.8"],
            serde_json::json!({"policy": "deny", "rule": null}),
        ),
        (
            &["--url", "https://john.home.example.com/", "--username", "john"],
            serde_json::json!({"policy": "one_factor", "rule": 6}),
        ),
        (
            &["--url", "https://mary.home.example.com/", "--username", "john"],
            serde_json::json!({"policy": "deny", "rule": null}),
        ),
        (&["--url", "https://app.example.com/?token=1"], serde_json::json!({"policy": "one_factor", "rule": 7})),
        (&["--url", "https://APP.example.com:8443/?token=1"], serde_json::json!({"policy": "one_factor", "rule": 7})),
        (&["--url", "https://elsewhere.org/"], serde_json::json!({"policy": "deny", "rule": null})),
    ];
    for (args, expected) in cases {
        assert_eq!(&check(dir.path(), config, args), expected, "{args:?}");
    }
}

#[test]
fn table_output_names_the_deciding_rule() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yml");
    std::fs::write(&path, common::config_yaml(9091, dir.path(), RULES)).unwrap();
    let out = run(
        &[
            "access-control",
            "check-policy",
            "--config",
            path.to_str().unwrap(),
            "--url",
            "https://app.example.com/admin",
        ],
        dir.path(),
        &[],
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let deciding = stdout.lines().find(|l| l.contains("<- decides")).unwrap_or_else(|| panic!("{stdout}"));
    assert!(deciding.trim_start().starts_with("2 "), "{deciding}");
    assert!(stdout.contains("Policy: two_factor (rule 2); an anonymous request is asked to log in"), "{stdout}");

    let bad = run(
        &["access-control", "check-policy", "--config", path.to_str().unwrap(), "--url", "not a url"],
        dir.path(),
        &[],
    );
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn a_file_with_only_access_rules_is_enough() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rules.yml");
    std::fs::write(&path, RULES).unwrap();
    let config = path.to_str().unwrap();
    let decided = check(dir.path(), config, &["--url", "https://public.example.com/"]);
    assert_eq!(decided, serde_json::json!({"policy": "bypass", "rule": 1}));

    // Authelia's --verbose is accepted.
    let out = run(
        &["access-control", "check-policy", "--config", config, "--url", "https://app.example.com/", "--verbose"],
        dir.path(),
        &[],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // Problems in the rules still fail, with their key path.
    std::fs::write(&path, "access_control: {default_policy: allow}\n").unwrap();
    let out = run(
        &["access-control", "check-policy", "--config", config, "--url", "https://a.example.com/"],
        dir.path(),
        &[],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("access_control.default_policy"));
}
