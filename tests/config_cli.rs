//! `validate-config` and `serve` on broken and valid configurations: every problem is
//! listed with its key path and both commands exit non-zero.

mod common;

use std::path::Path;

use common::*;

fn write(dir: &Path, name: &str, yaml: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, yaml).unwrap();
    path.display().to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// (what, YAML appended to a valid base, expected `error:` line fragments)
const BROKEN: &[(&str, &str, &[&str])] = &[
    (
        "address scheme",
        "server: {address: 'http://127.0.0.1:9091/'}",
        &["server.address: unsupported address scheme 'http'"],
    ),
    ("buffer type", "server: {buffers: {read: lots}}", &["server.buffers.read: invalid type: string \"lots\""]),
    (
        "portal URL over http",
        "session: {cookies: [{domain: example.com, authelia_url: 'http://auth.example.com/'}]}",
        &["session.cookies[0].authelia_url: must be https and under domain example.com"],
    ),
    (
        "portal URL on another domain",
        "session: {cookies: [{domain: example.com, authelia_url: 'https://auth.other.org/'}]}",
        &["session.cookies[0].authelia_url: must be https and under domain example.com"],
    ),
    (
        "unknown default policy",
        "access_control: {default_policy: allow}",
        &["access_control.default_policy: 'allow' is not allowed"],
    ),
    (
        "unknown rule policy",
        "access_control: {rules: [{domain: a.example.com, policy: maybe}]}",
        &["access_control.rules[0].policy: 'maybe' is not allowed"],
    ),
    (
        "bad regex and missing domain",
        "access_control: {rules: [{domain: a.example.com, policy: deny}, {policy: deny, resources: ['^/api/(']}]}",
        &[
            "access_control.rules[1]: a rule needs 'domain' or 'domain_regex'",
            "access_control.rules[1].resources[0]: invalid regular expression",
        ],
    ),
    (
        "bypass with subject",
        "access_control: {rules: [{domain: a.example.com, policy: bypass, subject: 'group:admins'}]}",
        &["access_control.rules[0].subject: a bypass rule cannot have subjects"],
    ),
    (
        "bad network and subject",
        "access_control: {rules: [{domain: a.example.com, policy: deny, networks: ['10.0.0.0/33', internal], subject: [['admins']]}]}",
        &[
            "access_control.rules[0].networks[0]: '10.0.0.0/33' is neither",
            "access_control.rules[0].networks[1]: 'internal' is neither",
            "access_control.rules[0].subject[0][0]: 'admins' must be",
        ],
    ),
    (
        "short encryption key",
        "storage: {encryption_key: short}",
        &["storage.encryption_key: must be at least 20 characters long"],
    ),
    ("duration syntax", "regulation: {find_time: soon}", &["regulation.find_time: invalid duration 'soon'"]),
    ("negative number", "regulation: {max_retries: -1}", &["regulation.max_retries: invalid value: integer `-1`"]),
    ("log level", "log: {level: verbose}", &["log.level: 'verbose' is not allowed"]),
    ("totp digits", "totp: {digits: 7}", &["totp.digits: 7 is not allowed; use 6 or 8"]),
    (
        "two storage backends",
        "storage: {postgres: {address: 'tcp://db:5432', database: p, username: u}}",
        &["storage: configure only one of"],
    ),
    (
        "redis needs host and secret",
        "session: {redis: {port: 6379}}",
        &["session.redis.host: required", "session.secret: required when session.redis is configured"],
    ),
    (
        "authz implementation",
        "server: {endpoints: {authz: {mine: {implementation: Nginx}}}}",
        &["server.endpoints.authz.mine.implementation: 'Nginx' is not allowed"],
    ),
    (
        "listener TLS files missing",
        "server: {tls: {key: /k.pem, certificate: /c.pem}}",
        &["server.tls.certificate: cannot read '/c.pem'"],
    ),
    (
        "storage TLS",
        "storage: {mysql: {address: 'tcp://db:3306', database: p, username: u, tls: {minimum_version: TLS1.3, certificate_chain: 'not pem', private_key: k}}}",
        &[
            "storage.mysql.tls.minimum_version: TLS1.3 cannot be enforced for MySQL",
            "storage.mysql.tls.certificate_chain: holds no PEM certificate",
        ],
    ),
    (
        "unsupported Redis TLS options",
        "session: {secret: 'a-session-secret-value', redis: {host: r.example.com, tls: {skip_verify: true, server_name: x, private_key: k}}}",
        &[
            "session.redis.tls.skip_verify: not supported for Redis",
            "session.redis.tls.server_name: not supported for Redis yet",
            "session.redis.tls: client certificates",
        ],
    ),
];

#[test]
fn every_broken_configuration_fails_with_key_paths() {
    let dir = tempfile::tempdir().unwrap();
    for (i, (what, extra, expected)) in BROKEN.iter().enumerate() {
        let yaml = merge(&config_yaml(9091, dir.path(), ""), extra);
        let file = write(dir.path(), &format!("broken-{i}.yml"), &yaml);

        let validated = run(&["validate-config", "--config", &file], dir.path(), &[]);
        let out = stdout(&validated);
        assert_eq!(validated.status.code(), Some(1), "{what}: validate-config must exit 1\n{out}");
        for fragment in *expected {
            assert!(
                out.lines().any(|l| l.starts_with("error: ") && l.contains(fragment)),
                "{what}: missing '{fragment}' in:\n{out}"
            );
        }

        let served = run(&["serve", "--config", &file], dir.path(), &[]);
        let err = stderr(&served);
        assert_eq!(served.status.code(), Some(1), "{what}: serve must exit 1\n{err}");
        for fragment in *expected {
            assert!(err.contains(fragment), "{what}: serve did not report '{fragment}':\n{err}");
        }
        assert!(err.contains("cannot start"), "{what}: {err}");
    }
}

/// Merges `extra` (YAML) into `base` (YAML), deeply, `extra` winning.
fn merge(base: &str, extra: &str) -> String {
    fn deep(a: &mut serde_yaml::Value, b: serde_yaml::Value) {
        match (a, b) {
            (serde_yaml::Value::Mapping(a), serde_yaml::Value::Mapping(b)) => {
                for (k, v) in b {
                    match a.get_mut(&k) {
                        Some(existing) => deep(existing, v),
                        None => {
                            a.insert(k, v);
                        }
                    }
                }
            }
            (a, b) => *a = b,
        }
    }
    let mut value: serde_yaml::Value = serde_yaml::from_str(base).unwrap();
    deep(&mut value, serde_yaml::from_str(extra).unwrap());
    serde_yaml::to_string(&value).unwrap()
}

#[test]
fn all_problems_of_a_file_are_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = config_yaml(9091, dir.path(), "");
    for (_, extra, _) in &BROKEN[..6] {
        yaml = merge(&yaml, extra);
    }
    let file = write(dir.path(), "many.yml", &yaml);
    let out = stdout(&run(&["validate-config", "--config", &file], dir.path(), &[]));
    let errors = out.lines().filter(|l| l.starts_with("error: ")).count();
    // The two cookie cases overwrite each other, so five distinct problems remain.
    assert!(errors >= 5, "expected every problem at once:\n{out}");
}

#[test]
fn syntax_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "syntax.yml", "server:\n  address: 'tcp://127.0.0.1:9091/'\n   bad: [\n");
    let o = run(&["validate-config", "--config", &file], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("syntax.yml") && out.contains("line"), "{out}");
}

#[test]
fn unknown_keys_warn_and_fail_when_strict() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(9091, dir.path(), "sesion: {name: typo}\nntp: {address: 'udp://time.example.com:123'}");
    let file = write(dir.path(), "unknown.yml", &yaml);
    let lenient = run(&["validate-config", "--config", &file], dir.path(), &[]);
    let out = stdout(&lenient);
    assert_eq!(lenient.status.code(), Some(0), "{out}");
    assert!(out.contains("warning: sesion: unknown key"), "{out}");
    assert!(out.contains("warning: ntp: Authelia setting not supported"), "{out}");
    assert!(out.contains("OK"), "{out}");

    let strict = run(&["validate-config", "--strict", "--config", &file], dir.path(), &[]);
    let out = stdout(&strict);
    assert_eq!(strict.status.code(), Some(1), "{out}");
    assert!(out.contains("error: sesion: unknown key"), "{out}");
}

#[test]
fn files_merge_in_order_and_environment_wins() {
    let dir = tempfile::tempdir().unwrap();
    let first = write(dir.path(), "a.yml", &config_yaml(9091, dir.path(), "log: {level: debug}"));
    let second = write(dir.path(), "b.yml", "log: {level: verbose}\n");
    // The second file's bad value is reported: it overrides the first.
    let o = run(&["validate-config", "--config", &first, "--config", &second], dir.path(), &[]);
    assert!(stdout(&o).contains("error: log.level: 'verbose'"), "{}", stdout(&o));
    // Comma-separated works too, and the environment overrides both files.
    let both = format!("{first},{second}");
    let o = run(&["validate-config", "--config", &both], dir.path(), &[("PORTCULLIS_LOG_LEVEL", "warn")]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(&["validate-config", "--config", &first], dir.path(), &[("PORTCULLIS_TOTP_DIGITS", "9")]);
    assert!(stdout(&o).contains("error: totp.digits: 9 is not allowed"), "{}", stdout(&o));
    // PORTCULLIS_CONFIG names the files when --config is absent.
    let o = run(&["validate-config"], dir.path(), &[("PORTCULLIS_CONFIG", &both)]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).contains("log.level"), "{}", stdout(&o));
}

#[test]
fn secrets_can_come_from_files_through_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(9091, dir.path(), "")
        .replace("  encryption_key: 'a-test-encryption-key-that-is-long-enough'\n", "");
    let file = write(dir.path(), "c.yml", &yaml);
    let missing = run(&["validate-config", "--config", &file], dir.path(), &[]);
    assert!(stdout(&missing).contains("error: storage.encryption_key: required"), "{}", stdout(&missing));

    let key = write(dir.path(), "key.txt", "0123456789abcdefghijklmnop\n");
    let env = [("PORTCULLIS_STORAGE_ENCRYPTION_KEY_FILE", key.as_str())];
    let ok = run(&["validate-config", "--config", &file], dir.path(), &env);
    assert_eq!(ok.status.code(), Some(0), "{}", stdout(&ok));

    let unreadable = [("PORTCULLIS_STORAGE_ENCRYPTION_KEY_FILE", "/nonexistent/key")];
    let bad = run(&["validate-config", "--config", &file], dir.path(), &unreadable);
    assert!(stdout(&bad).contains("error: storage.encryption_key_file: cannot read secret file"), "{}", stdout(&bad));
}

#[test]
fn unknown_environment_variables_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yml", &config_yaml(9091, dir.path(), ""));
    let o = run(&["validate-config", "--config", &file], dir.path(), &[("PORTCULLIS_SESION_NAME", "x")]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        stdout(&o).contains("warning: environment variable PORTCULLIS_SESION_NAME does not name"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn missing_configuration_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["serve", "--config", "/nonexistent/configuration.yml"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("cannot read configuration file '/nonexistent/configuration.yml'"), "{}", stderr(&o));
}

#[test]
fn an_authelia_style_file_loads() {
    // Deprecated single-domain keys and Authelia's names load with warnings only.
    let dir = tempfile::tempdir().unwrap();
    let yaml = format!(
        "
theme: dark
jwt_secret: 'a-legacy-jwt-secret-that-is-long-enough'
default_redirection_url: 'https://home.example.com/'
server: {{host: 127.0.0.1, port: 9091}}
log: {{level: info}}
totp: {{issuer: example.com}}
authentication_backend: {{file: {{path: '{d}/users.yml'}}}}
access_control:
  default_policy: deny
  rules:
    - domain: public.example.com
      policy: bypass
    - domain: '*.example.com'
      policy: one_factor
session:
  name: authelia_session
  secret: 'a-session-secret-that-is-long-enough'
  expiration: 3600
  inactivity: 300
  cookies:
    - domain: example.com
      authelia_url: 'https://auth.example.com'
regulation: {{max_retries: 3, find_time: 120, ban_time: 300}}
storage: {{encryption_key: 'an-encryption-key-that-is-long-enough', local: {{path: '{d}/db.sqlite3'}}}}
notifier: {{filesystem: {{filename: '{d}/notification.txt'}}}}
",
        d = dir.path().display()
    );
    let file = write(dir.path(), "authelia.yml", &yaml);
    let o = run(&["validate-config", "--config", &file], dir.path(), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(out.contains("warning: jwt_secret: deprecated"), "{out}");
    assert!(out.contains("warning: server.host"), "{out}");
}

#[test]
fn example_configuration_is_valid_and_strict_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = root.join("config/configuration.example.yml");
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["validate-config", "--strict", "--config", example.to_str().unwrap()], dir.path(), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("warning:"), "{out}");
}

/// The commented-out `authentication_backend.ldap` block of the example, uncommented in
/// place of the users file, validates too: every documented key is a real one.
#[test]
fn example_ldap_block_is_valid() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let example = std::fs::read_to_string(root.join("config/configuration.example.yml")).unwrap();
    let lines: Vec<&str> = example.lines().collect();
    let start = lines.iter().position(|l| *l == "  # ldap:").expect("an ldap block");
    let block: Vec<String> =
        lines[start..].iter().take_while(|l| l.starts_with("  # ")).map(|l| format!("  {}", &l[4..])).collect();
    let file_start = lines.iter().position(|l| *l == "  file:").unwrap();
    let file_end = file_start + 1 + lines[file_start + 1..].iter().take_while(|l| l.starts_with("    ")).count();
    let mut yaml: Vec<String> = lines[..file_start].iter().map(|l| l.to_string()).collect();
    yaml.extend(block);
    yaml.extend(lines[file_end..].iter().map(|l| l.to_string()));
    let yaml = yaml.join("\n");
    assert!(yaml.contains("\n  ldap:\n") && !yaml.contains("\n  file:\n"), "{yaml}");
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "ldap.yml", &yaml);
    let o = run(&["validate-config", "--strict", "--config", &file], dir.path(), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(0), "{out}");
    assert!(!out.contains("warning:"), "{out}");
}

#[test]
fn embedded_default_validates() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["validate-config"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("embedded default"));
    assert!(!dir.path().join("data").exists(), "validating must not create files");
}

#[test]
fn command_line_errors_exit_two() {
    let dir = tempfile::tempdir().unwrap();
    let o = run(&["no-such-command"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    let o = run(&["--version"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).starts_with("portcullis "));
}
