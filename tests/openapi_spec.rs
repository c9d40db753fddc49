//! The OpenAPI template: valid OpenAPI 3.1 for every feature combination (checked with the
//! openapi-spec-validator Python package, an independent implementation), and in step with
//! the routes the server really serves.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Arc;

use portcullis::config::{self, LoadOptions};
use portcullis::openapi::{self, AuthzEndpointFeature, Features};
use portcullis::server::App;
use portcullis::services::Services;

fn all_on() -> Features {
    let mut authz = BTreeMap::new();
    for (name, implementation) in [
        ("legacy", "Legacy"),
        ("forward-auth", "ForwardAuth"),
        ("auth-request", "AuthRequest"),
        ("ext-authz", "ExtAuthz"),
    ] {
        authz.insert(name.to_string(), AuthzEndpointFeature { Implementation: implementation.to_string() });
    }
    Features {
        BaseURL: Some("https://auth.example.com/".into()),
        Domain: Some("example.com".into()),
        PasswordReset: true,
        PasswordChange: true,
        TOTP: true,
        WebAuthn: true,
        Passkeys: true,
        PasskeyUpgrade: true,
        EmailOtp: true,
        OpenIDConnect: true,
        Admin: true,
        AccountApi: true,
        Signup: true,
        ApiTokens: true,
        EndpointsAuthz: authz,
    }
}

fn combinations() -> Vec<(&'static str, Features)> {
    let on = all_on();
    vec![
        ("all features", on.clone()),
        ("no features", Features::default()),
        ("second factor only", Features { TOTP: true, WebAuthn: false, ..Features::default() }),
        ("email codes only", Features { EmailOtp: true, ..Features::default() }),
        ("no password features", Features { PasswordReset: false, PasswordChange: false, ..on.clone() }),
        ("odd base URL", Features { BaseURL: Some("https://auth.example.com/a'b\"c/".into()), ..on }),
    ]
}

fn validate_with_python(name: &str, document: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.yml");
    std::fs::write(&path, document).unwrap();
    let output = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&path)
        .output()
        .expect("python3 must be installed (integration/test-all installs what it needs)");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named"),
        "openapi-spec-validator is missing; run integration/test-all or `pip install openapi-spec-validator`"
    );
    assert!(output.status.success(), "{name}: not valid OpenAPI:\n{stdout}\n{stderr}\n--- document ---\n{document}");
}

#[test]
fn every_feature_combination_renders_valid_openapi_3_1() {
    for (name, features) in combinations() {
        let document = openapi::render(&features).unwrap_or_else(|e| panic!("{name}: {e}"));
        let parsed: serde_yaml::Value = serde_yaml::from_str(&document).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(parsed["openapi"].as_str(), Some("3.1.0"), "{name}");
        validate_with_python(name, &document);
    }
}

#[test]
fn the_validator_really_rejects_a_broken_document() {
    // Guards the test above against a validator that accepts anything.
    let document = openapi::render(&all_on()).unwrap().replace("openapi: 3.1.0", "openapi: 3.1.0\nbogus_root_key: 1");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yml");
    std::fs::write(&path, document).unwrap();
    let output = Command::new("python3").args(["-m", "openapi_spec_validator"]).arg(&path).output().unwrap();
    assert!(!output.status.success(), "a document with an unknown root key must be refused");
}

#[test]
fn disabled_features_remove_their_tags() {
    let tags = |f: &Features| -> Vec<String> {
        let doc: serde_yaml::Value = serde_yaml::from_str(&openapi::render(f).unwrap()).unwrap();
        doc["tags"].as_sequence().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_string()).collect()
    };
    let on = tags(&all_on());
    for tag in ["Password Reset", "Password Change", "Second Factor", "First Factor", "OpenID Connect 1.0"] {
        assert!(on.contains(&tag.to_string()), "{tag} missing with all features on");
    }
    let off = tags(&Features::default());
    assert_eq!(off, vec!["State", "Authentication", "Authorization", "User Information", "Account Sessions"]);
}

fn app_for(yaml: Option<&str>, dir: &std::path::Path) -> App {
    let files = match yaml {
        Some(y) => {
            let p = dir.join("c.yml");
            std::fs::write(&p, y).unwrap();
            vec![p]
        }
        None => Vec::new(),
    };
    let mut config =
        config::load(&LoadOptions { files, ..Default::default() }).unwrap_or_else(|e| panic!("{e}")).config;
    // Keep the files the services open inside the test's directory.
    config.storage = portcullis::config::schema::Storage {
        local: Some(portcullis::config::schema::LocalStorage {
            path: Some(dir.join("db.sqlite3").display().to_string()),
        }),
        postgres: None,
        mysql: None,
        ..config.storage
    };
    // No mail leaves a test: SMTP examples are not contacted.
    config.notifier.disable_startup_check = true;
    if let Some(fs) = config.notifier.filesystem.as_mut() {
        fs.filename = Some(dir.join("notifications.txt").display().to_string());
    }
    let mut file = config.authentication_backend.file.clone().unwrap_or_default();
    file.path = Some(dir.join("users.yml").display().to_string());
    config.authentication_backend.file = Some(file);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let services = runtime.block_on(Services::open(&config)).unwrap();
    App::new(Arc::new(config), services).unwrap()
}

#[test]
fn served_api_paths_and_spec_paths_match() {
    let example = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/config/configuration.example.yml"))
        .expect("config/configuration.example.yml");
    // Every switch on: passkey login with the password as a second factor.
    let passkeys = example
        .replace("  enable_passkey_login: false", "  enable_passkey_login: true")
        .replace("  experimental_enable_passkey_upgrade: false", "  experimental_enable_passkey_upgrade: true")
        .replace("account_api:\n  enabled: false", "account_api:\n  enabled: true");
    assert_ne!(passkeys, example);
    // Signup too: it needs the database users backend.
    let signup = passkeys
        .replace("signup:\n  enabled: false", "signup:\n  enabled: true")
        .replace("  file:\n    # The users database (Authelia's users_database.yml format). Created empty when missing.\n    path: '/config/users.yml'", "  database: {}\n  _unused:\n    path: ''");
    assert!(signup.contains("  database: {}") && signup.contains("signup:\n  enabled: true"));
    for yaml in [None, Some(example.as_str()), Some(passkeys.as_str()), Some(signup.as_str())] {
        let dir = tempfile::tempdir().unwrap();
        let app = app_for(yaml, dir.path());
        let spec = openapi::declared_operations(std::str::from_utf8(&app.openapi_spec).unwrap()).unwrap();
        let served: BTreeMap<String, Vec<String>> = app
            .router
            .routes()
            .into_iter()
            // The API, and the provider's paths outside it (discovery, keys).
            .filter(|r| r.path.starts_with("/api/") || spec.contains_key(&r.path))
            .map(|r| {
                let mut methods: Vec<String> = r.methods().map(|m| m.as_str().to_ascii_lowercase()).collect();
                methods.sort();
                (r.path.clone(), methods)
            })
            .collect();
        assert_eq!(served, spec, "router (left) and OpenAPI paths (right) differ");
    }
}
