//! Keys Authelia has deprecated, rewritten into their current form with a warning each,
//! as Authelia does: the same keys, the same replacements, the version that deprecated
//! them. A renamed key whose replacement is also set is left alone (the replacement wins)
//! with a warning; keys Authelia removed without replacement only warn.

use serde_json::{Map, Value};

use super::load::Problem;

/// `(deprecated key, replacement, version)`: moved as they are. `[]` stands for every
/// item of a list.
const RENAMED: &[(&str, &str, &str)] = &[
    ("logs_level", "log.level", "4.7"),
    ("logs_file", "log.file_path", "4.7"),
    ("authentication_backend.ldap.skip_verify", "authentication_backend.ldap.tls.skip_verify", "4.25"),
    ("authentication_backend.ldap.minimum_tls_version", "authentication_backend.ldap.tls.minimum_version", "4.25"),
    ("notifier.smtp.disable_verify_cert", "notifier.smtp.tls.skip_verify", "4.25"),
    ("host", "server.host", "4.30"),
    ("port", "server.port", "4.30"),
    ("tls_key", "server.tls.key", "4.30"),
    ("tls_cert", "server.tls.certificate", "4.30"),
    ("log_level", "log.level", "4.30"),
    ("log_file_path", "log.file_path", "4.30"),
    ("log_format", "log.format", "4.30"),
    ("storage.postgres.sslmode", "storage.postgres.ssl.mode", "4.36"),
    ("authentication_backend.disable_reset_password", "authentication_backend.password_reset.disable", "4.36"),
    ("server.read_buffer_size", "server.buffers.read", "4.36"),
    ("server.write_buffer_size", "server.buffers.write", "4.36"),
    ("session.remember_me_duration", "session.remember_me", "4.38"),
    ("server.enable_pprof", "server.endpoints.enable_pprof", "4.38"),
    ("server.enable_expvars", "server.endpoints.enable_expvars", "4.38"),
    (
        "identity_providers.oidc.clients[].userinfo_signing_algorithm",
        "identity_providers.oidc.clients[].userinfo_signed_response_alg",
        "4.38",
    ),
    ("identity_providers.oidc.clients[].id", "identity_providers.oidc.clients[].client_id", "4.38"),
    ("identity_providers.oidc.clients[].secret", "identity_providers.oidc.clients[].client_secret", "4.38"),
    ("identity_providers.oidc.clients[].description", "identity_providers.oidc.clients[].client_name", "4.38"),
    (
        "identity_providers.oidc.clients[].sector_identifier",
        "identity_providers.oidc.clients[].sector_identifier_uri",
        "4.38",
    ),
    ("identity_providers.oidc.access_token_lifespan", "identity_providers.oidc.lifespans.access_token", "4.38"),
    ("identity_providers.oidc.authorize_code_lifespan", "identity_providers.oidc.lifespans.authorize_code", "4.38"),
    ("identity_providers.oidc.id_token_lifespan", "identity_providers.oidc.lifespans.id_token", "4.38"),
    ("identity_providers.oidc.refresh_token_lifespan", "identity_providers.oidc.lifespans.refresh_token", "4.38"),
    ("authentication_backend.ldap.url", "authentication_backend.ldap.address", "4.38"),
    ("authentication_backend.ldap.username_attribute", "authentication_backend.ldap.attributes.username", "4.38"),
    ("authentication_backend.ldap.mail_attribute", "authentication_backend.ldap.attributes.mail", "4.38"),
    (
        "authentication_backend.ldap.display_name_attribute",
        "authentication_backend.ldap.attributes.display_name",
        "4.38",
    ),
    ("authentication_backend.ldap.group_name_attribute", "authentication_backend.ldap.attributes.group_name", "4.38"),
    ("jwt_secret", "identity_validation.reset_password.jwt_secret", "4.38"),
    ("webauthn.user_verification", "webauthn.selection_criteria.user_verification", "4.39"),
];

/// `(deprecated key, what to do instead, version)`: not mapped; a warning says what to do.
const NOT_MAPPED: &[(&str, &str, &str)] = &[
    ("notifier.smtp.trusted_cert", "put the certificate in certificates_directory", "4.25"),
    ("identity_providers.oidc.issuer_private_key", "use identity_providers.oidc.jwks", "4.38"),
    ("identity_providers.oidc.issuer_certificate_chain", "use identity_providers.oidc.jwks", "4.38"),
];
// Authelia 4.39 also deprecates `authentication_backend.ldap.permit_feature_detection_failure`
// as having no effect; Portcullis' LDAP backend still honours it, so it is not listed.

/// Every deprecated key Authelia knows, so that an environment variable naming one
/// (`AUTHELIA_LOG_LEVEL`) is recognised.
pub fn deprecated_keys() -> impl Iterator<Item = &'static str> {
    RENAMED.iter().map(|(old, _, _)| *old).chain(MULTI.iter().flat_map(|(keys, _)| keys.iter().copied()))
}

/// Groups of keys that became one address.
const MULTI: &[(&[&str], &str)] = &[
    (&["server.host", "server.port", "server.path"], "server.address"),
    (&["notifier.smtp.host", "notifier.smtp.port"], "notifier.smtp.address"),
    (&["storage.postgres.host", "storage.postgres.port"], "storage.postgres.address"),
    (&["storage.mysql.host", "storage.mysql.port"], "storage.mysql.address"),
];

/// Rewrites every deprecated key of `tree`, pushing one warning per key.
pub fn migrate(tree: &mut Value, warnings: &mut Vec<Problem>) {
    let Some(root) = tree.as_object_mut() else {
        return;
    };
    for (old, new, version) in RENAMED {
        rename(root, old, new, version, warnings);
    }
    for (old, instead, version) in NOT_MAPPED {
        if take(root, &split(old)).is_some() {
            warnings.push(Problem::new(*old, format!("deprecated in Authelia {version} and not mapped: {instead}")));
        }
    }
    addresses(root, warnings);
    legacy_session(root, warnings);
    legacy_values(root, warnings);
    authelia_values(root);
}

/// Values Authelia accepts whose meaning Portcullis spells differently: `remember_me: -1`
/// (remember-me off, which is a zero duration here) and empty strings that mean "not set"
/// (`certificates_directory`, `password_reset.custom_url`, `webauthn.selection_criteria.*`).
fn authelia_values(root: &mut Map<String, Value>) {
    let disabled = |v: &Value| v.as_i64() == Some(-1) || v.as_str().is_some_and(|s| s.trim() == "-1");
    if let Some(Value::Object(session)) = root.get_mut("session") {
        if session.get("remember_me").is_some_and(disabled) {
            session.insert("remember_me".into(), Value::from(0));
        }
        if let Some(Value::Array(cookies)) = session.get_mut("cookies") {
            for cookie in cookies.iter_mut().filter_map(Value::as_object_mut) {
                if cookie.get("remember_me").is_some_and(disabled) {
                    cookie.insert("remember_me".into(), Value::from(0));
                }
            }
        }
    }
    let empty = |v: &Value| v.as_str().is_some_and(|s| s.trim().is_empty()) || v.is_null();
    if root.get("certificates_directory").is_some_and(empty) {
        root.remove("certificates_directory");
    }
    for section in [&["authentication_backend", "password_reset"][..], &["webauthn", "selection_criteria"][..]] {
        if let Some(Value::Object(map)) = get_mut(root, section) {
            map.retain(|key, v| !(empty(v) && (section[0] == "webauthn" || key == "custom_url")));
        }
    }
}

fn split(path: &str) -> Vec<&str> {
    path.split('.').collect()
}

/// Moves `old` to `new` (each item of a list for paths with `[]`).
fn rename(root: &mut Map<String, Value>, old: &str, new: &str, version: &str, warnings: &mut Vec<Problem>) {
    if let (Some((list, old_rest)), Some((_, new_rest))) = (old.split_once("[]."), new.split_once("[]."))
        && let Some(Value::Array(items)) = get_mut(root, &split(list))
    {
        let mut renamed = false;
        for item in items.iter_mut().filter_map(Value::as_object_mut) {
            let before = warnings.len();
            rename(item, old_rest, new_rest, version, warnings);
            // One warning for the whole list, with the full key names.
            if warnings.len() > before {
                warnings.truncate(before);
                renamed = true;
            }
        }
        if renamed {
            warnings.push(moved(old, new, version));
        }
        return;
    }
    let Some(value) = take(root, &split(old)) else { return };
    let target = split(new);
    let (leaf, parents) = target.split_last().unwrap_or((&"", &[]));
    let parent = object_at(root, parents);
    if parent.get(*leaf).is_some_and(|v| !v.is_null()) {
        warnings.push(Problem::new(
            old,
            format!("deprecated in Authelia {version} and replaced by '{new}', which is also set; '{old}' is ignored"),
        ));
    } else {
        parent.insert((*leaf).to_string(), value);
        warnings.push(moved(old, new, version));
    }
}

fn moved(old: &str, new: &str, version: &str) -> Problem {
    Problem::new(old, format!("deprecated in Authelia {version}; replaced by '{new}' (mapped automatically)"))
}

/// The `host`/`port`(/`path`) groups that became `address`.
fn addresses(root: &mut Map<String, Value>, warnings: &mut Vec<Problem>) {
    for (keys, new) in MULTI {
        let (section, _) = new.rsplit_once('.').unwrap_or(("", new));
        let Some(Value::Object(parent)) = get_mut(root, &split(section)) else { continue };
        let leaf = |key: &str| key.rsplit_once('.').map_or(key, |(_, l)| l).to_string();
        let values: Vec<Option<Value>> = keys.iter().map(|k| parent.remove(&leaf(k))).collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        let text = |v: &Option<Value>| match v {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Null) | None => String::new(),
            Some(other) => other.to_string(),
        };
        let host = text(&values[0]);
        let port = text(&values[1]);
        let path = values.get(2).map(text).unwrap_or_default();
        let address = match *new {
            "server.address" => {
                let port = if port.is_empty() { "9091".to_string() } else { port };
                let path = path.trim_matches('/');
                format!("tcp://{}:{port}/{path}", bracket(&host))
            }
            "notifier.smtp.address" => {
                let host = if host.is_empty() { "localhost".to_string() } else { host };
                match port.as_str() {
                    "" | "25" => format!("smtp://{}:25", bracket(&host)),
                    "465" => format!("submissions://{}:465", bracket(&host)),
                    "587" => format!("submission://{}:587", bracket(&host)),
                    port => format!("smtp://{}:{port}", bracket(&host)),
                }
            }
            _ => {
                let default = if new.contains("postgres") { "5432" } else { "3306" };
                let host = if host.is_empty() { "localhost".to_string() } else { host };
                let port = if port.is_empty() { default.to_string() } else { port };
                if host.starts_with('/') {
                    format!("unix://{host}")
                } else {
                    format!("tcp://{}:{port}", bracket(&host))
                }
            }
        };
        let names = keys.iter().map(|k| format!("'{k}'")).collect::<Vec<_>>().join(", ");
        if parent.get(&leaf(new)).is_some_and(|v| !v.is_null()) {
            warnings.push(Problem::new(
                keys[0],
                format!("{names} are deprecated in Authelia 4.38 and replaced by '{new}', which is also set; they are ignored"),
            ));
        } else {
            warnings.push(Problem::new(
                keys[0],
                format!(
                    "{names} are deprecated in Authelia 4.38; replaced by '{new}' (mapped automatically to '{address}')"
                ),
            ));
            parent.insert(leaf(new), Value::String(address));
        }
    }
}

fn bracket(host: &str) -> String {
    if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_string() }
}

/// `session.domain` (and the top-level `default_redirection_url`) became `session.cookies`.
fn legacy_session(root: &mut Map<String, Value>, warnings: &mut Vec<Problem>) {
    let legacy_redirect = root.remove("default_redirection_url");
    if legacy_redirect.is_some() {
        warnings.push(Problem::new(
            "default_redirection_url",
            "deprecated in Authelia 4.38; use session.cookies[].default_redirection_url",
        ));
    }
    if let Some(Value::Object(session)) = root.get_mut("session")
        && let Some(domain) = session.remove("domain")
    {
        warnings.push(Problem::new("session.domain", "deprecated in Authelia 4.38; use session.cookies"));
        let has_cookies = session.get("cookies").and_then(Value::as_array).is_some_and(|c| !c.is_empty());
        if !has_cookies {
            let mut cookie = Map::new();
            cookie.insert("domain".into(), domain);
            if let Some(url) = legacy_redirect {
                cookie.insert("default_redirection_url".into(), url);
            }
            session.insert("cookies".into(), Value::Array(vec![Value::Object(cookie)]));
        }
    }
}

/// Values Authelia still reads in their old form: the password algorithms `argon2id` and
/// `sha512` with their parameters beside the algorithm, and short Argon2 variant names.
fn legacy_values(root: &mut Map<String, Value>, warnings: &mut Vec<Problem>) {
    const BASE: &str = "authentication_backend.file.password";
    let Some(Value::Object(password)) = get_mut(root, &split(BASE)) else { return };
    let legacy = ["iterations", "memory", "parallelism", "key_length", "salt_length"];
    let algorithm = password.get("algorithm").and_then(Value::as_str).map(str::to_string);
    let (new, moves): (&str, &[(&str, &str)]) = match algorithm.as_deref() {
        Some("argon2id") => (
            "argon2",
            &[
                ("iterations", "iterations"),
                ("memory", "memory"),
                ("parallelism", "parallelism"),
                ("key_length", "key_length"),
                ("salt_length", "salt_length"),
            ],
        ),
        Some("sha512") => ("sha2crypt", &[("iterations", "iterations"), ("salt_length", "salt_length")]),
        _ => ("", &[]),
    };
    if !new.is_empty() {
        let section = if new == "argon2" { "argon2" } else { "sha2crypt" };
        password.insert("algorithm".into(), Value::String(new.into()));
        let mut target = match password.remove(section) {
            Some(Value::Object(map)) => map,
            _ => Map::new(),
        };
        if new == "argon2" {
            target.entry("variant").or_insert_with(|| Value::String("argon2id".into()));
        } else {
            target.entry("variant").or_insert_with(|| Value::String("sha512".into()));
        }
        for (from, to) in moves {
            if let Some(mut value) = password.remove(*from) {
                // The legacy Argon2 memory was in MiB; the current one is in KiB.
                if *from == "memory"
                    && let Some(mib) = value.as_u64()
                {
                    value = Value::from(mib * 1024);
                }
                if *from == "salt_length"
                    && new == "sha2crypt"
                    && let Some(n) = value.as_u64()
                {
                    value = Value::from(n.min(16));
                }
                target.entry(*to).or_insert(value);
            }
        }
        password.insert(section.into(), Value::Object(target));
        warnings.push(Problem::new(
            format!("{BASE}.algorithm"),
            format!(
                "'{}' is the legacy form; read as algorithm '{new}' with its parameters under {BASE}.{section}",
                algorithm.unwrap_or_default()
            ),
        ));
    }
    for key in legacy {
        if password.remove(key).is_some() {
            warnings.push(Problem::new(
                format!("{BASE}.{key}"),
                "legacy parameter, only read with algorithm 'argon2id' or 'sha512'; it is ignored",
            ));
        }
    }
    if let Some(Value::Object(argon2)) = password.get_mut("argon2")
        && let Some(Value::String(variant)) = argon2.get_mut("variant")
    {
        let full = match variant.as_str() {
            "id" => Some("argon2id"),
            "i" => Some("argon2i"),
            "d" => Some("argon2d"),
            _ => None,
        };
        if let Some(full) = full {
            *variant = full.to_string();
        }
    }
}

/// The value at `path`, removed (and the emptied parents left in place).
fn take(root: &mut Map<String, Value>, path: &[&str]) -> Option<Value> {
    let (leaf, parents) = path.split_last()?;
    match parents {
        [] => root.remove(*leaf),
        _ => match get_mut(root, parents)? {
            Value::Object(map) => map.remove(*leaf),
            _ => None,
        },
    }
}

fn get_mut<'a>(root: &'a mut Map<String, Value>, path: &[&str]) -> Option<&'a mut Value> {
    let (first, rest) = path.split_first()?;
    let mut node = root.get_mut(*first)?;
    for key in rest {
        node = node.as_object_mut()?.get_mut(*key)?;
    }
    Some(node)
}

/// The object at `path` under `root`, created (replacing non-objects) as needed.
pub fn object_at<'a>(root: &'a mut Map<String, Value>, path: &[&str]) -> &'a mut Map<String, Value> {
    let mut current = root;
    for key in path {
        let entry = current.entry(key.to_string()).or_insert_with(|| Value::Object(Map::new()));
        if !entry.is_object() {
            *entry = Value::Object(Map::new());
        }
        current = match entry {
            Value::Object(map) => map,
            _ => unreachable!("just replaced with an object"),
        };
    }
    current
}

#[cfg(test)]
mod tests {
    use super::*;

    const NL: &str = "\n";

    fn migrated(yaml: &str) -> (Value, Vec<String>) {
        let mut tree: Value = serde_yaml::from_str(yaml).unwrap();
        let mut warnings = Vec::new();
        migrate(&mut tree, &mut warnings);
        (tree, warnings.into_iter().map(|w| w.path).collect())
    }

    #[test]
    fn renamed_keys_move_with_a_warning() {
        let (tree, warned) = migrated(
            "log_level: debug\nauthentication_backend: {disable_reset_password: true}\n\
             server: {read_buffer_size: 8192}\nsession: {remember_me_duration: 1h}\n",
        );
        assert_eq!(tree["log"]["level"], "debug");
        assert_eq!(tree["authentication_backend"]["password_reset"]["disable"], true);
        assert_eq!(tree["server"]["buffers"]["read"], 8192);
        assert_eq!(tree["session"]["remember_me"], "1h");
        assert_eq!(warned.len(), 4, "{warned:?}");
    }

    #[test]
    fn the_current_key_wins_over_the_deprecated_one() {
        let (tree, warned) = migrated("log_level: debug\nlog: {level: warn}\n");
        assert_eq!(tree["log"]["level"], "warn");
        assert_eq!(warned, ["log_level"]);
    }

    #[test]
    fn list_items_are_renamed() {
        let (tree, warned) = migrated("identity_providers: {oidc: {clients: [{id: a}, {id: b, secret: s}]}}");
        assert_eq!(tree["identity_providers"]["oidc"]["clients"][1]["client_id"], "b");
        assert_eq!(tree["identity_providers"]["oidc"]["clients"][1]["client_secret"], "s");
        assert_eq!(warned.len(), 2, "{warned:?}");
    }

    #[test]
    fn host_and_port_become_addresses() {
        let (tree, _) = migrated(
            "host: 0.0.0.0\nport: 9092\nnotifier: {smtp: {host: mail.example.com, port: 465}}\n\
             storage: {postgres: {host: db, port: 5433}, mysql: {host: /run/mysqld.sock}}\n",
        );
        assert_eq!(tree["server"]["address"], "tcp://0.0.0.0:9092/");
        assert_eq!(tree["notifier"]["smtp"]["address"], "submissions://mail.example.com:465");
        assert_eq!(tree["storage"]["postgres"]["address"], "tcp://db:5433");
        assert_eq!(tree["storage"]["mysql"]["address"], "unix:///run/mysqld.sock");
    }

    #[test]
    fn authelia_spellings_of_off_and_unset() {
        let yaml = [
            "session: {remember_me: -1, cookies: [{domain: a.com, remember_me: '-1'}]}",
            "authentication_backend: {password_reset: {custom_url: ''}}",
            "webauthn: {selection_criteria: {attachment: '', discoverability: preferred}}",
        ];
        let (tree, _) = migrated(&yaml.join(NL));
        assert_eq!(tree["session"]["remember_me"], 0);
        assert_eq!(tree["session"]["cookies"][0]["remember_me"], 0);
        assert!(tree["authentication_backend"]["password_reset"].get("custom_url").is_none());
        assert!(tree["webauthn"]["selection_criteria"].get("attachment").is_none());
        assert_eq!(tree["webauthn"]["selection_criteria"]["discoverability"], "preferred");
    }

    #[test]
    fn legacy_password_algorithms_are_read() {
        let (tree, warned) = migrated(
            "authentication_backend: {file: {password: {algorithm: argon2id, iterations: 3, memory: 64, salt_length: 16}}}",
        );
        let p = &tree["authentication_backend"]["file"]["password"];
        assert_eq!(p["algorithm"], "argon2");
        assert_eq!(p["argon2"]["memory"], 65536);
        assert_eq!(p["argon2"]["iterations"], 3);
        assert_eq!(warned, ["authentication_backend.file.password.algorithm"]);
    }
}
