//! Authelia's configuration as Authelia users have it: its own test-suite and example
//! files (tests/fixtures/authelia), `AUTHELIA_*` variables and `*_FILE` secrets,
//! `X_AUTHELIA_CONFIG` (files and directories), the template and expand-env filters,
//! deprecated keys, and `--strict` wording.

mod common;

use std::path::Path;

use common::pki::TestCa;
use common::*;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn validate(file: &str, dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let o = run(&["validate-config", "--config", file], dir, env);
    (o.status.code(), stdout(&o))
}

/// What validating an Authelia fixture must give.
enum Expect {
    /// Valid.
    Valid,
    /// Valid, with a warning that names an Authelia feature Portcullis ignores.
    ValidIgnoring(&'static str),
}

/// Every fixture, with what it needs from the environment (as its compose file gives it).
const FIXTURES: &[(&str, Expect, &[&str])] = &[
    ("compose-lite.yml", Expect::Valid, &[]),
    ("compose-local.yml", Expect::Valid, &[]),
    ("kube.yml", Expect::Valid, &["secrets", "kube"]),
    ("suite-ActiveDirectory.yml", Expect::Valid, &[]),
    ("suite-BypassAll.yml", Expect::ValidIgnoring("duo_api"), &[]),
    ("suite-CLI.nocerts.yml", Expect::Valid, &[]),
    ("suite-CLI.yml", Expect::Valid, &[]),
    ("suite-Caddy.yml", Expect::Valid, &[]),
    ("suite-Docker.yml", Expect::Valid, &[]),
    ("suite-DuoPush.yml", Expect::ValidIgnoring("duo_api"), &[]),
    ("suite-Envoy.yml", Expect::Valid, &[]),
    ("suite-HAProxy.yml", Expect::Valid, &[]),
    ("suite-HighAvailability.yml", Expect::Valid, &[]),
    ("suite-LDAP.yml", Expect::Valid, &[]),
    ("suite-MariaDB.yml", Expect::Valid, &[]),
    ("suite-MultiCookieDomain.yml", Expect::Valid, &[]),
    ("suite-MySQL.yml", Expect::Valid, &[]),
    ("suite-NetworkACL.yml", Expect::Valid, &["template"]),
    ("suite-OIDC.yml", Expect::Valid, &["template"]),
    ("suite-OIDCTraefik.yml", Expect::Valid, &["template"]),
    ("suite-OneFactorOnly.yml", Expect::Valid, &[]),
    ("suite-PAM.yml", Expect::Valid, &["template"]),
    ("suite-PathPrefix.yml", Expect::Valid, &[]),
    ("suite-Postgres.yml", Expect::Valid, &[]),
    ("suite-ShortTimeouts.yml", Expect::Valid, &[]),
    ("suite-Standalone.yml", Expect::Valid, &["secrets"]),
    ("suite-Traefik.yml", Expect::Valid, &[]),
    ("suite-TwoFactor.yml", Expect::Valid, &[]),
];

#[test]
fn authelia_suite_and_example_files_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/authelia");
    let listed: Vec<&str> = FIXTURES.iter().map(|(name, _, _)| *name).collect();
    let mut present: Vec<String> = std::fs::read_dir(&root)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    present.sort();
    assert_eq!(present, listed, "every fixture has an expectation");

    // The container paths, with real certificates where the files name them.
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path();
    for sub in ["pki", "certs", "config"] {
        std::fs::create_dir(base.join(sub)).unwrap();
    }
    let ca = TestCa::new("fixture CA");
    let backend = ca.server(&["authelia-backend"]);
    write(&base.join("pki"), "public.backend.crt", &backend.cert_pem);
    write(&base.join("pki"), "private.backend.pem", &backend.key_pem);
    write(&base.join("pki"), "private.oidc.pem", &backend.key_pem);
    write(&base.join("pki"), "public.oidc.chain.pem", &backend.cert_pem);
    write(&base.join("certs"), "public.crt", &ca.cert_pem());
    let secret = write(base, "secret", "a-secret-from-a-file-that-is-long-enough\n");
    let secrets = [
        ("AUTHELIA_JWT_SECRET_FILE", secret.as_str()),
        ("AUTHELIA_SESSION_SECRET_FILE", secret.as_str()),
        ("AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE", secret.as_str()),
        ("AUTHELIA_STORAGE_MYSQL_PASSWORD_FILE", secret.as_str()),
        ("AUTHELIA_AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE", secret.as_str()),
    ];

    let mut failures = Vec::new();
    for (name, expect, needs) in FIXTURES {
        let mut text = std::fs::read_to_string(root.join(name)).unwrap();
        for sub in ["pki", "certs", "config"] {
            for quote in [" ", "'", "\""] {
                text = text.replace(&format!("{quote}/{sub}/"), &format!("{quote}{}/{sub}/", base.display()));
            }
        }
        let file = write(base, name, &text);
        let mut env = vec![("SUITE_SUBNET", "192.168.240")];
        if needs.contains(&"template") {
            env.push(("X_AUTHELIA_CONFIG_FILTERS", "template"));
        }
        if needs.contains(&"secrets") {
            env.extend(&secrets[..2]);
        }
        if needs.contains(&"kube") {
            env.extend(&secrets[2..]);
        }
        let (code, out) = validate(&file, base, &env);
        let ok = match expect {
            Expect::Valid => code == Some(0),
            Expect::ValidIgnoring(feature) => {
                code == Some(0)
                    && out.contains(&format!("warning: {feature}: Authelia setting not supported by Portcullis yet"))
            }
        };
        if !ok {
            failures.push(format!("{name}:\n{out}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A valid configuration without the three secrets (storage key, JWT and session secret).
fn without_secrets(dir: &Path) -> String {
    config_yaml(9091, dir, "").replace("  encryption_key: 'a-test-encryption-key-that-is-long-enough'\n", "").replace(
        "identity_validation:\n  reset_password:\n    jwt_secret: 'a-test-jwt-secret-that-is-long-enough'\n",
        "",
    )
}

#[test]
fn authelia_variables_and_secret_files_are_used() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yml", &without_secrets(dir.path()));
    let (code, out) = validate(&file, dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: storage.encryption_key: required"), "{out}");

    let key = write(dir.path(), "key", "0123456789abcdefghijklmnopqrstuv\n");
    let jwt = write(dir.path(), "jwt", "a-jwt-secret-read-from-a-file-000\n");
    let env = [("AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE", key.as_str()), ("AUTHELIA_JWT_SECRET_FILE", jwt.as_str())];
    let (code, out) = validate(&file, dir.path(), &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("source: environment: AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE sets storage.encryption_key_file"),
        "the variables used are listed: {out}"
    );
    assert!(out.contains("AUTHELIA_JWT_SECRET_FILE sets identity_validation.reset_password.jwt_secret_file"), "{out}");

    // The value set is the one used: a bad one is reported at its key.
    let (code, out) = validate(&file, dir.path(), &[env[0], env[1], ("AUTHELIA_TOTP_DIGITS", "9")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: totp.digits: 9 is not allowed"), "{out}");

    // An unreadable secret file names its key.
    let (code, out) = validate(&file, dir.path(), &[("AUTHELIA_STORAGE_ENCRYPTION_KEY_FILE", "/nonexistent/key")]);
    assert_eq!(code, Some(1));
    assert!(out.contains("error: storage.encryption_key_file: cannot read secret file"), "{out}");

    // A secret both in the file and in a *_FILE variable is refused, as Authelia does.
    let full = write(dir.path(), "full.yml", &config_yaml(9091, dir.path(), ""));
    let (code, out) = validate(&full, dir.path(), &[env[0]]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: storage.encryption_key_file: both"), "{out}");
}

#[test]
fn portcullis_variables_win_over_authelia_ones() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yml", &config_yaml(9091, dir.path(), ""));
    let (code, out) = validate(&file, dir.path(), &[("AUTHELIA_LOG_LEVEL", "chatty")]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: log.level: 'chatty'"), "{out}");

    let env = [("AUTHELIA_LOG_LEVEL", "chatty"), ("PORTCULLIS_LOG_LEVEL", "debug")];
    let (code, out) = validate(&file, dir.path(), &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("AUTHELIA_LOG_LEVEL is ignored: a PORTCULLIS_ variable sets log.level"), "{out}");
    assert!(out.contains("source: environment: PORTCULLIS_LOG_LEVEL sets log.level"), "{out}");

    // Kubernetes service links are not configuration.
    let (code, out) = validate(&file, dir.path(), &[("AUTHELIA_PORT", "tcp://10.0.0.1:9091")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("AUTHELIA_PORT looks like a Kubernetes service link"), "{out}");

    let (code, out) = validate(&file, dir.path(), &[("AUTHELIA_NOT_A_KEY", "x")]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("warning: environment variable AUTHELIA_NOT_A_KEY does not name"), "{out}");
}

#[test]
fn x_authelia_config_reads_files_and_directories_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("conf.d");
    std::fs::create_dir(&conf).unwrap();
    write(&conf, "00-base.yml", &config_yaml(9091, dir.path(), ""));
    write(&conf, "10-log.yaml", "log: {level: debug}\n");
    write(&conf, "README.txt", "not: [yaml\n");
    let conf_text = conf.display().to_string();
    let (code, out) = validate_env(dir.path(), &[("X_AUTHELIA_CONFIG", &conf_text)]);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.find("00-base.yml").unwrap() < out.find("10-log.yaml").unwrap(), "{out}");
    assert!(!out.contains("README"), "{out}");

    // Later files win; a plain file after the directory overrides it.
    write(&conf, "20-bad.yml", "log: {level: loud}\n");
    let (code, out) = validate_env(dir.path(), &[("X_AUTHELIA_CONFIG", &conf_text)]);
    assert_eq!(code, Some(1));
    assert!(out.contains("error: log.level: 'loud'"), "{out}");
    let fix = write(dir.path(), "fix.yml", "log: {level: info}\n");
    let (code, out) = validate_env(dir.path(), &[("X_AUTHELIA_CONFIG", &format!("{conf_text},{fix}"))]);
    assert_eq!(code, Some(0), "{out}");

    // --config wins over X_AUTHELIA_CONFIG.
    let o = run(&["validate-config", "--config", &fix], dir.path(), &[("X_AUTHELIA_CONFIG", &conf_text)]);
    assert_eq!(o.status.code(), Some(1), "fix.yml alone lacks everything: {}", stdout(&o));
}

fn validate_env(dir: &Path, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let o = run(&["validate-config"], dir, env);
    (o.status.code(), stdout(&o))
}

#[test]
fn template_and_expand_env_filters() {
    let dir = tempfile::tempdir().unwrap();
    let key = write(dir.path(), "key", "0123456789abcdefghijklmnopqrstuv\n");
    let base = config_yaml(9091, dir.path(), "").replace(
        "  encryption_key: 'a-test-encryption-key-that-is-long-enough'\n",
        &format!("  encryption_key: '{{{{ secret \"{key}\" }}}}'\n"),
    );
    let templated = base
        .replace("domain: example.com", "domain: '{{ env \"PCT_DOMAIN\" }}'")
        .replace("https://auth.example.com/", "https://auth.{{ env \"PCT_DOMAIN\" | lower }}/")
        .replace("https://www.example.com/", "https://www.{{ env \"PCT_DOMAIN\" | lower }}/");
    let file = write(dir.path(), "t.yml", &templated);
    // Another domain in the variable: the portal URL (lowered) is checked against it.
    let env = [("X_AUTHELIA_CONFIG_FILTERS", "template"), ("PCT_DOMAIN", "Example.ORG")];
    let (code, out) = validate(&file, dir.path(), &env);
    assert_eq!(code, Some(0), "{out}");
    let env = [("X_AUTHELIA_CONFIG_FILTERS", "template"), ("PCT_DOMAIN", "")];
    let (code, out) = validate(&file, dir.path(), &env);
    assert_eq!(code, Some(1), "an empty domain must be refused: {out}");
    let env = [("X_AUTHELIA_CONFIG_FILTERS", "template"), ("PCT_DOMAIN", "example.org")];
    let (code, out) = validate(&file, dir.path(), &env);
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("source: file filters: template"), "{out}");

    // Without the filter the action is text, which YAML reads but validation refuses.
    let (code, _) = validate(&file, dir.path(), &[("PCT_DOMAIN", "example.org")]);
    assert_eq!(code, Some(1));

    // Unsupported template syntax names the action; unknown filters are refused.
    let bad = write(dir.path(), "bad.yml", "theme: '{{ if true }}dark{{ end }}'\n");
    let (code, out) = validate(&bad, dir.path(), &[("X_AUTHELIA_CONFIG_FILTERS", "template")]);
    assert_eq!(code, Some(1));
    assert!(out.contains("'if' is not supported"), "{out}");
    let (code, out) = validate(&file, dir.path(), &[("X_AUTHELIA_CONFIG_FILTERS", "jinja")]);
    assert_eq!(code, Some(1));
    assert!(out.contains("invalid configuration filter 'jinja'"), "{out}");

    // expand-env, through the command-line flag.
    let expanded = config_yaml(9091, dir.path(), "").replace("domain: example.com", "domain: '${PCT_DOMAIN}'");
    let file = write(dir.path(), "e.yml", &expanded);
    let o = run(
        &["validate-config", "--config.experimental.filters", "expand-env", "--config", &file],
        dir.path(),
        &[("PCT_DOMAIN", "example.com")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

#[test]
fn deprecated_keys_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    // Password reset off through the deprecated key: the reset JWT secret is then not needed.
    let yaml = config_yaml(9091, dir.path(), "")
        .replace(
            "identity_validation:\n  reset_password:\n    jwt_secret: 'a-test-jwt-secret-that-is-long-enough'\n",
            "",
        )
        .replace("authentication_backend:\n", "authentication_backend:\n  disable_reset_password: true\n");
    let file = write(dir.path(), "c.yml", &yaml);
    let (code, out) = validate(&file, dir.path(), &[]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("warning: authentication_backend.disable_reset_password: deprecated in Authelia 4.36; replaced by 'authentication_backend.password_reset.disable'"),
        "{out}"
    );

    let legacy = config_yaml(9091, dir.path(), "log_level: chatty");
    let file = write(dir.path(), "l.yml", &legacy);
    let (code, out) = validate(&file, dir.path(), &[]);
    assert_eq!(code, Some(1), "{out}");
    assert!(out.contains("error: log.level: 'chatty'"), "the deprecated key's value is used: {out}");
}

#[test]
fn strict_errors_do_not_claim_the_key_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yml", &config_yaml(9091, dir.path(), "ntp: {address: 'udp://x:123'}\nsesion: {}"));
    let o = run(&["validate-config", "--strict", "--config", &file], dir.path(), &[]);
    let out = stdout(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    let errors: Vec<&str> = out.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 2, "{out}");
    assert!(errors.iter().all(|e| !e.contains("ignored") && e.contains("--strict")), "{out}");
}

#[test]
fn config_validate_and_build_info() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "c.yml", &config_yaml(9091, dir.path(), ""));
    let o = run(&["config", "validate", "--config", &file], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    assert!(stdout(&o).contains("OK"));
    // Authelia's short option for the configuration.
    let o = run(&["config", "validate", "-c", &file], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = run(&["build-info"], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))), "{}", stdout(&o));
}

#[test]
fn storage_commands_with_authelia_names() {
    use portcullis::storage::{AuthAttempt, AuthType, Storage};
    let dir = tempfile::tempdir().unwrap();
    let yaml =
        config_yaml(9091, dir.path(), "regulation: {max_retries: 3, find_time: 2m, ban_time: 5m, modes: [user, ip]}");
    let file = write(dir.path(), "c.yml", &yaml);
    let cli = |args: &[&str]| {
        let mut all = vec!["storage"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", &file]);
        let o = run(&all, dir.path(), &[]);
        (o.status.code(), stdout(&o), String::from_utf8_lossy(&o.stderr).to_string())
    };

    let (code, out, err) = cli(&["encryption", "check"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("SUCCESS"), "{out}");

    // A TOTP setup and failed logins, written through the storage layer.
    let config = portcullis::config::load(&portcullis::config::LoadOptions {
        files: vec![file.clone().into()],
        ..Default::default()
    })
    .unwrap()
    .config;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let storage = Storage::open(&config.storage, None).await.unwrap();
        storage.totp_save(totp_record("JBSWY3DPEHPK3PXP")).await.unwrap();
        for _ in 0..3 {
            let attempt = AuthAttempt {
                time: portcullis::clock::now(),
                successful: false,
                banned: false,
                username: "mallory".into(),
                auth_type: AuthType::FirstFactor,
                remote_ip: "192.0.2.7".into(),
                request_uri: String::new(),
                request_method: String::new(),
            };
            storage.log_attempt(attempt).await.unwrap();
        }
    });

    let (code, out, err) = cli(&["user", "totp", "delete", "john"]);
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, _, err) = cli(&["user", "totp", "delete", "john"]);
    assert_eq!(code, Some(1), "deleting twice fails");
    assert!(err.contains("no TOTP configuration"), "{err}");

    // generate: refused over an existing setup unless forced; the URI carries the secret;
    // export prints it again and writes the CSV.
    let (code, out, err) =
        cli(&["user", "totp", "generate", "mary", "--secret", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "--digits", "8"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("otpauth://totp/")
            && out.contains("secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")
            && out.contains("digits=8"),
        "{out}"
    );
    let (code, _, err) = cli(&["user", "totp", "generate", "mary"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--force"), "{err}");
    let (code, _, _) = cli(&["user", "totp", "generate", "mary", "--force"]);
    assert_eq!(code, Some(0));
    let (code, out, _) = cli(&["user", "totp", "export", "uri"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().filter(|l| l.starts_with("otpauth://totp/")).count(), 1, "{out}");
    let csv = dir.path().join("totp.csv");
    let (code, _, err) = cli(&["user", "totp", "export", "csv", "--file", csv.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let text = std::fs::read_to_string(&csv).unwrap();
    assert!(
        text.starts_with("issuer,username,algorithm,digits,period,secret\n") && text.contains(",mary,SHA1,6,30,"),
        "{text}"
    );

    // Authelia's YAML export, and importing it back.
    let yaml_export = dir.path().join("totp.yml");
    let (code, _, err) = cli(&["user", "totp", "export", "--file", yaml_export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{err}");
    let exported = std::fs::read_to_string(&yaml_export).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for file in [&yaml_export, &csv] {
            let mode = std::fs::metadata(file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "exports of TOTP secrets are private: {}", file.display());
        }
    }
    assert!(exported.contains("totp_configurations:") && exported.contains("username: mary"), "{exported}");
    let (code, _, _) = cli(&["user", "totp", "delete", "mary"]);
    assert_eq!(code, Some(0));
    let (code, out, err) = cli(&["user", "totp", "import", yaml_export.to_str().unwrap()]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("imported mary") && out.contains("Imported 1"), "{out}");
    let (_, again, _) = cli(&["user", "totp", "export", "uri"]);
    assert!(again.contains("secret="), "{again}");
    let (code, out, _) = cli(&["user", "totp", "import", yaml_export.to_str().unwrap()]);
    assert_eq!(code, Some(0));
    assert!(out.contains("exists   mary"), "{out}");

    let (code, out, _) = cli(&["user", "webauthn", "list", "john"]);
    assert_eq!(code, Some(0));
    assert_eq!(out.lines().count(), 1, "only the header: {out}");

    let (_, out, _) = cli(&["bans", "user", "list"]);
    assert!(out.contains("mallory"), "{out}");
    let (_, out, _) = cli(&["bans", "ip", "list"]);
    assert!(out.contains("192.0.2.7"), "{out}");
    let (code, _, _) = cli(&["bans", "user", "revoke", "mallory"]);
    assert_eq!(code, Some(0));
    let (_, out, _) = cli(&["bans", "user", "list"]);
    assert!(!out.contains("mallory"), "{out}");
    let (code, _, err) = cli(&["bans", "ip", "revoke", "not-an-ip"]);
    assert_eq!(code, Some(1));
    assert!(err.contains("not an IP address"), "{err}");

    // Another key: the check fails, naming the key.
    let new_key = "another-encryption-key-that-is-long-enough";
    let other = write(dir.path(), "other.yml", &yaml.replace("a-test-encryption-key-that-is-long-enough", new_key));
    let o = run(&["storage", "encryption", "check", "--config", &other], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("storage.encryption_key"), "{err}");

    // change-key: refused while recovery codes exist, unless they may be discarded; then
    // the new key opens the database and reads the TOTP secret, the old one no longer does.
    let record = totp_record("JBSWY3DPEHPK3PXP");
    runtime.block_on(async {
        let storage = Storage::open(&config.storage, None).await.unwrap();
        storage.totp_save(record.clone()).await.unwrap();
        storage.recovery_replace("john", vec!["h1".into(), "h2".into()], 0).await.unwrap();
    });
    let (code, _, err) = cli(&["encryption", "change-key", "--new-encryption-key", new_key]);
    assert_eq!(code, Some(1));
    assert!(err.contains("--discard-recovery-codes"), "{err}");
    let (code, _, _) = cli(&["encryption", "check"]);
    assert_eq!(code, Some(0), "a refused change leaves the key as it was");
    let (code, out, err) =
        cli(&["encryption", "change-key", "--new-encryption-key", new_key, "--discard-recovery-codes"]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("Re-encrypted 2 TOTP secret(s)") && out.contains("removed 2 recovery"), "{out}");
    assert!(out.contains("Personal API tokens"), "the operator is told which tokens stop working: {out}");
    let (code, _, _) = cli(&["encryption", "check"]);
    assert_eq!(code, Some(1), "the old key no longer opens the database");
    let o = run(&["storage", "encryption", "check", "--config", &other], dir.path(), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", String::from_utf8_lossy(&o.stderr));
    let new_config = portcullis::config::load(&portcullis::config::LoadOptions {
        files: vec![other.clone().into()],
        ..Default::default()
    })
    .unwrap()
    .config;
    let secret = runtime.block_on(async {
        let storage = Storage::open(&new_config.storage, None).await.unwrap();
        storage.totp_get("john").await.unwrap().map(|r| r.secret)
    });
    assert_eq!(secret, Some(record.secret));
}
