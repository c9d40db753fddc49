//! Loading: embedded default or YAML files (merged in order; a directory stands for its
//! `*.yml`/`*.yaml` files in name order; each file passed through the configured filters)
//! → `AUTHELIA_*` environment → `PORTCULLIS_*` environment (which wins over Authelia's
//! for the same key) → `*_file` secrets → deprecated keys rewritten → schema, then
//! validation.
//!
//! figment does the layering. The merged tree is then deserialized with the key path of
//! every error tracked; after an error the offending key is dropped (its default applies)
//! and deserialization runs again, so one run reports every type error, not just the first.

use std::fmt;
use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Yaml};
use serde_json::{Map, Value};

use super::embedded;
use super::keys::{SECRET_KEYS, authelia_env_key_to_path, env_key_to_path, unsupported_prefix};
use super::schema::Configuration;
use super::validate::validate;

/// The environment variable prefix for configuration keys.
pub const ENV_PREFIX: &str = "PORTCULLIS_";

/// Authelia's environment variable prefix, read too (Portcullis' own wins for a key both set).
pub const AUTHELIA_ENV_PREFIX: &str = "AUTHELIA_";

/// Environment variables with the prefix that are not configuration keys.
const ENV_RESERVED: &[&str] = &["CONFIG"];

/// One problem (or warning) about the configuration, tied to the key it concerns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Key path such as `session.cookies[0].authelia_url`; empty for file-level problems.
    pub path: String,
    /// What is wrong and, where possible, what is expected.
    pub message: String,
}

impl Problem {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() { f.write_str(&self.message) } else { write!(f, "{}: {}", self.path, self.message) }
    }
}

/// The configuration could not be used; every problem found is listed.
#[derive(Debug)]
pub struct LoadError {
    /// Everything that must be fixed.
    pub problems: Vec<Problem>,
    /// Things worth knowing that did not stop loading.
    pub warnings: Vec<Problem>,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "the configuration has {} problem(s):", self.problems.len())?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadError {}

/// A usable configuration plus the warnings met while loading it.
#[derive(Debug)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Configuration,
    /// Unknown or deprecated keys and similar notes.
    pub warnings: Vec<Problem>,
    /// True when no file was given and the embedded default is in use.
    pub embedded: bool,
    /// Where the configuration came from: files, filters, environment variables used.
    pub sources: Vec<String>,
}

/// How to load.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// YAML files or directories of them, merged in order; empty selects the embedded
    /// default.
    pub files: Vec<PathBuf>,
    /// Filters applied to each file's text before parsing (`template`, `expand-env`).
    pub filters: Vec<String>,
    /// Unknown keys are errors rather than warnings.
    pub strict: bool,
    /// Read `AUTHELIA_*` and `PORTCULLIS_*` variables from the process environment.
    pub use_env: bool,
    /// With `use_env`: read only the `AUTHELIA_*` variables (a configuration of an
    /// Authelia instance, such as the source of `storage import-authelia`).
    pub authelia_env_only: bool,
    /// For the embedded default: where generated secrets are kept. `None` generates
    /// throw-away secrets (used when only validating).
    pub embedded_data_dir: Option<PathBuf>,
}

/// Loads and validates the configuration.
pub fn load(options: &LoadOptions) -> Result<Loaded, LoadError> {
    load_checking(options, None)
}

/// Loads the configuration but reports only problems of the access-control rules (and the
/// network definitions they use), as Authelia's `access-control check-policy` does: a
/// file holding only `access_control` is enough.
pub fn load_access_control(options: &LoadOptions) -> Result<Loaded, LoadError> {
    load_checking(options, Some(&["access_control", "definitions"]))
}

/// Loads an Authelia configuration for its `storage` section only (the database and the
/// encryption key), with the `AUTHELIA_*` environment: problems elsewhere in the file do
/// not matter to reading its database.
pub fn load_storage_of_authelia(file: PathBuf, filters: Vec<String>) -> Result<Loaded, LoadError> {
    let options =
        LoadOptions { files: vec![file], filters, use_env: true, authelia_env_only: true, ..Default::default() };
    load_checking(&options, Some(&["storage"]))
}

fn load_checking(options: &LoadOptions, only: Option<&[&str]>) -> Result<Loaded, LoadError> {
    let mut problems = Vec::new();
    let mut warnings = Vec::new();
    let embedded = options.files.is_empty();

    let mut figment = Figment::new();
    if embedded {
        figment = figment.merge(Yaml::string(embedded::DEFAULT_YAML));
        match embedded::secrets_yaml(options.embedded_data_dir.as_deref()) {
            Ok(yaml) => figment = figment.merge(Yaml::string(&yaml)),
            Err(e) => problems.push(Problem::new("", e)),
        }
    }
    let mut sources = Vec::new();
    let filters = match super::filters::parse(&options.filters) {
        Ok(filters) => filters,
        Err(e) => {
            problems.push(Problem::new("", e));
            Vec::new()
        }
    };
    if !filters.is_empty() {
        sources.push(format!("file filters: {}", filters.join(", ")));
    }
    for file in expand_directories(&options.files, &mut problems) {
        match read_yaml_file(&file, &filters) {
            Ok(text) => {
                sources.push(format!("file: {}", file.display()));
                figment = figment.merge(Yaml::string(&text));
            }
            Err(message) => problems.push(Problem::new("", message)),
        }
    }
    if options.use_env {
        let ours = if options.authelia_env_only { Vec::new() } else { portcullis_env_paths() };
        let (authelia, used, ignored) = authelia_env(&ours);
        figment = figment.merge(authelia);
        sources.extend(used);
        warnings.extend(ignored);
        if !options.authelia_env_only {
            figment = figment.merge(env_provider());
            for (name, path) in ours {
                sources.push(format!("environment: {name} sets {path}"));
            }
            warnings.extend(unknown_env_vars());
        }
    }
    if !problems.is_empty() {
        return Err(LoadError { problems, warnings });
    }

    let mut tree = match figment.extract::<Value>() {
        Ok(Value::Object(map)) => Value::Object(map),
        Ok(Value::Null) => Value::Object(Map::new()),
        Ok(_) => {
            problems.push(Problem::new("", "the configuration must be a YAML mapping of keys"));
            return Err(LoadError { problems, warnings });
        }
        Err(e) => {
            problems.push(Problem::new("", format!("cannot merge configuration sources: {e}")));
            return Err(LoadError { problems, warnings });
        }
    };

    super::deprecated::migrate(&mut tree, &mut warnings);
    resolve_secret_files(&mut tree, &mut problems);

    let mut unknown = Vec::new();
    let mut config = deserialize_collecting(tree, &mut problems, &mut unknown);
    if embedded {
        embedded::align_portal_url(&mut config);
    }
    for path in unknown {
        let problem = match (unsupported_prefix(&path), options.strict) {
            (Some(prefix), false) => {
                Problem::new(prefix, "Authelia setting not supported by Portcullis yet; it is ignored")
            }
            (Some(prefix), true) => Problem::new(
                prefix,
                "Authelia setting not supported by Portcullis yet; refused under --strict (remove it or drop --strict)",
            ),
            (None, false) => Problem::new(path, "unknown key; it is ignored (check the spelling)"),
            (None, true) => Problem::new(path, "unknown key (check the spelling); refused under --strict"),
        };
        let sink = if options.strict { &mut problems } else { &mut warnings };
        if !sink.contains(&problem) {
            sink.push(problem);
        }
    }
    problems.extend(validate(&config));
    warnings.extend(super::validate::notes(&config));
    if let Some(sections) = only {
        let keep = |p: &Problem| {
            p.path.is_empty()
                || sections.iter().any(|s| {
                    p.path == *s || p.path.starts_with(&format!("{s}.")) || p.path.starts_with(&format!("{s}["))
                })
        };
        problems.retain(|p| keep(p));
        warnings.retain(|p| keep(p));
    }

    if problems.is_empty() {
        Ok(Loaded { config, warnings, embedded, sources })
    } else {
        Err(LoadError { problems, warnings })
    }
}

/// `files` with each directory replaced by its `*.yml` and `*.yaml` files (not recursive),
/// in name order, as Authelia reads a configuration directory.
fn expand_directories(files: &[PathBuf], problems: &mut Vec<Problem>) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for path in files {
        if !path.is_dir() {
            out.push(path.clone());
            continue;
        }
        match std::fs::read_dir(path) {
            Ok(entries) => {
                let mut found: Vec<PathBuf> = entries
                    .filter_map(Result::ok)
                    .map(|e| e.path())
                    .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
                    .collect();
                found.sort();
                out.extend(found);
            }
            Err(e) => problems
                .push(Problem::new("", format!("cannot read configuration directory '{}': {e}", path.display()))),
        }
    }
    out
}

/// Reads a YAML file, applies `filters` and checks its syntax, so that errors name the
/// file, line and column.
fn read_yaml_file(path: &Path, filters: &[String]) -> Result<String, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read configuration file '{}': {e}", path.display()))?;
    let text = super::filters::apply(filters, &text).map_err(|e| format!("'{}': {e}", path.display()))?;
    match serde_yaml::from_str::<serde_yaml::Value>(&text) {
        Ok(serde_yaml::Value::Mapping(_) | serde_yaml::Value::Null) => Ok(text),
        Ok(_) => Err(format!("configuration file '{}' must be a YAML mapping of keys", path.display())),
        Err(e) => Err(format!("configuration file '{}' is not valid YAML: {e}", path.display())),
    }
}

/// The key paths `PORTCULLIS_*` variables set (`_file` removed), with the variable names.
fn portcullis_env_paths() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| {
            let rest = k.strip_prefix(ENV_PREFIX)?;
            if ENV_RESERVED.iter().any(|r| rest.eq_ignore_ascii_case(r)) {
                return None;
            }
            let path = env_key_to_path(rest)?;
            Some((k, path))
        })
        .collect();
    out.sort();
    out
}

/// The provider for Authelia's `AUTHELIA_*` variables (and `AUTHELIA_*_FILE` secrets),
/// skipping keys a `PORTCULLIS_*` variable sets; what was used, and warnings for
/// variables skipped or not naming a key.
fn authelia_env(ours: &[(String, String)]) -> (Env, Vec<String>, Vec<Problem>) {
    let base = |path: &str| path.strip_suffix("_file").unwrap_or(path).to_string();
    let overridden: std::collections::HashSet<String> = ours.iter().map(|(_, p)| base(p)).collect();
    let mut used = Vec::new();
    let mut warnings = Vec::new();
    let mut skipped = std::collections::HashSet::new();
    let mut names: Vec<String> = std::env::vars_os().filter_map(|(k, _)| k.into_string().ok()).collect();
    names.sort();
    for name in names {
        let Some(rest) = name.strip_prefix(AUTHELIA_ENV_PREFIX) else { continue };
        match authelia_env_key_to_path(rest) {
            // Kubernetes adds AUTHELIA_PORT=tcp://10.0.0.1:9091 (and AUTHELIA_SERVICE_HOST)
            // for a Service named authelia; Authelia reads it as the deprecated `port`
            // and fails. It is not configuration: skip it.
            Some(path) if is_service_link(&path, &name) => {
                skipped.insert(path.clone());
                warnings.push(Problem::new(
                    "",
                    format!("environment variable {name} looks like a Kubernetes service link, not configuration; it is ignored"),
                ));
            }
            Some(path) if overridden.contains(&base(&path)) => warnings.push(Problem::new(
                "",
                format!("environment variable {name} is ignored: a PORTCULLIS_ variable sets {}", base(&path)),
            )),
            Some(path) => used.push(format!("environment: {name} sets {path}")),
            None => warnings.push(Problem::new(
                "",
                format!(
                    "environment variable {name} does not name a configuration key Portcullis knows; it is ignored"
                ),
            )),
        }
    }
    let provider = Env::prefixed(AUTHELIA_ENV_PREFIX).filter_map(move |key| {
        let path = authelia_env_key_to_path(key.as_str())?;
        (!overridden.contains(&base(&path)) && !skipped.contains(&path)).then(|| path.into())
    });
    (provider, used, warnings)
}

/// The deprecated top-level `port` set to a URL (`tcp://10.0.0.1:9091`): a Kubernetes
/// service link, not a port.
fn is_service_link(path: &str, name: &str) -> bool {
    path == "port" && std::env::var(name).is_ok_and(|v| v.contains("://"))
}

fn env_provider() -> Env {
    Env::prefixed(ENV_PREFIX).filter_map(|key| {
        if ENV_RESERVED.iter().any(|r| key.as_str().eq_ignore_ascii_case(r)) {
            return None;
        }
        env_key_to_path(key.as_str()).map(Into::into)
    })
}

fn unknown_env_vars() -> Vec<Problem> {
    std::env::vars_os()
        .filter_map(|(k, _)| k.into_string().ok())
        .filter_map(|k| {
            let rest = k.strip_prefix(ENV_PREFIX)?;
            let reserved = ENV_RESERVED.iter().any(|r| rest.eq_ignore_ascii_case(r));
            (!reserved && env_key_to_path(rest).is_none()).then(|| {
                Problem::new("", format!("environment variable {k} does not name a configuration key; it is ignored"))
            })
        })
        .collect()
}

/// Replaces every `<secret>_file` key with the contents of the file it names.
fn resolve_secret_files(tree: &mut Value, problems: &mut Vec<Problem>) {
    for key in SECRET_KEYS {
        let (parent_path, leaf) = key.rsplit_once('.').unwrap_or(("", key));
        let pointer: String = parent_path.split('.').filter(|p| !p.is_empty()).map(|p| format!("/{p}")).collect();
        let Some(parent) = tree.pointer_mut(&pointer).and_then(Value::as_object_mut) else {
            continue;
        };
        let file_key = format!("{leaf}_file");
        let Some(file_value) = parent.remove(&file_key) else {
            continue;
        };
        let file_path_key = format!("{key}_file");
        let Some(file) = file_value.as_str() else {
            problems.push(Problem::new(file_path_key, "must be the path of a file"));
            continue;
        };
        if parent.get(leaf).is_some_and(|v| !v.is_null()) {
            problems.push(Problem::new(file_path_key, format!("both {key} and {key}_file are set; keep one")));
            continue;
        }
        match std::fs::read_to_string(file) {
            Ok(content) => {
                parent.insert(leaf.to_string(), Value::String(content.trim_end_matches(['\r', '\n']).to_string()));
            }
            Err(e) => problems.push(Problem::new(file_path_key, format!("cannot read secret file '{file}': {e}"))),
        }
    }
}

/// Deserializes `tree`, recording each error with its key path and retrying without the
/// offending value until the rest deserializes.
fn deserialize_collecting(mut tree: Value, problems: &mut Vec<Problem>, unknown: &mut Vec<String>) -> Configuration {
    // Each round removes or replaces one value, so this bound is never reached in practice.
    for _ in 0..500 {
        let mut ignored = Vec::new();
        let result = {
            let mut record = |path: serde_ignored::Path<'_>| ignored.push(ignored_path(&path));
            let de = serde_ignored::Deserializer::new(&tree, &mut record);
            serde_path_to_error::deserialize::<_, Configuration>(de)
        };
        match result {
            Ok(config) => {
                unknown.extend(ignored);
                return config;
            }
            Err(err) => {
                let segments: Vec<_> = err.path().iter().cloned().collect();
                let path = error_path(&segments);
                let message = plain_message(&err.into_inner().to_string());
                // Authelia reads a comma-separated string where a list is expected.
                if message.contains("expected a sequence") && split_list(&mut tree, &segments) {
                    continue;
                }
                let problem = Problem::new(path, message);
                let repeated = problems.last() == Some(&problem);
                if !repeated {
                    problems.push(problem);
                }
                if !neutralize(&mut tree, &segments, repeated) {
                    break;
                }
            }
        }
    }
    Configuration::default()
}

/// A deserializer's message in the words validation uses for the same mistake: an
/// unknown choice reads "'x' is not allowed; use one of 'a', 'b'".
fn plain_message(message: &str) -> String {
    let Some(rest) = message.strip_prefix("unknown variant `") else { return message.to_string() };
    let Some((value, choices)) = rest.split_once("`, expected one of ") else { return message.to_string() };
    format!("'{value}' is not allowed; use one of {}", choices.replace('`', "'"))
}

fn error_path(segments: &[serde_path_to_error::Segment]) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in segments {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Enum { .. } | Segment::Unknown => {}
        }
    }
    out
}

fn ignored_path(path: &serde_ignored::Path<'_>) -> String {
    use serde_ignored::Path as P;
    match path {
        P::Root => String::new(),
        P::Seq { parent, index } => format!("{}[{index}]", ignored_path(parent)),
        P::Map { parent, key } => {
            let prefix = ignored_path(parent);
            if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") }
        }
        P::Some { parent } | P::NewtypeStruct { parent } | P::NewtypeVariant { parent } => ignored_path(parent),
    }
}

/// Replaces the string at `segments` with the list of its comma-separated items; false when
/// there is no string there.
fn split_list(tree: &mut Value, segments: &[serde_path_to_error::Segment]) -> bool {
    use serde_path_to_error::Segment;
    let mut node = tree;
    for seg in segments {
        node = match (seg, node) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Enum { .. } | Segment::Unknown, node) => node,
            _ => return false,
        };
    }
    let Value::String(text) = node else { return false };
    let items = text.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| match s.parse::<i64>() {
        Ok(n) => Value::from(n),
        Err(_) => Value::String(s.to_string()),
    });
    *node = Value::Array(items.collect());
    true
}

/// Makes the value at `segments` harmless: map entries are removed (so the default
/// applies); list items are replaced, first by `{}` and then, if the same error repeats,
/// by an empty string, so that later items keep their indices in reports.
fn neutralize(tree: &mut Value, segments: &[serde_path_to_error::Segment], repeated: bool) -> bool {
    use serde_path_to_error::Segment;
    let keyed: Vec<&Segment> =
        segments.iter().filter(|s| matches!(s, Segment::Seq { .. } | Segment::Map { .. })).collect();
    let Some((last, parents)) = keyed.split_last() else {
        return false;
    };
    let mut node = tree;
    for seg in parents {
        node = match (seg, node) {
            (Segment::Map { key }, Value::Object(map)) => match map.get_mut(key) {
                Some(v) => v,
                None => return false,
            },
            (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
                Some(v) => v,
                None => return false,
            },
            _ => return false,
        };
    }
    match (last, node) {
        (Segment::Map { key }, Value::Object(map)) => map.remove(key).is_some(),
        (Segment::Seq { index }, Value::Array(items)) => match items.get_mut(*index) {
            Some(item) if repeated && item.is_object() => {
                *item = Value::String(String::new());
                true
            }
            Some(item) if !repeated => {
                *item = Value::Object(Map::new());
                true
            }
            _ => false,
        },
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_yaml(yaml: &str, strict: bool) -> Result<Loaded, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.yml");
        std::fs::write(&path, yaml).unwrap();
        load(&LoadOptions { files: vec![path], strict, ..Default::default() })
    }

    fn problem_paths(err: &LoadError) -> Vec<&str> {
        err.problems.iter().map(|p| p.path.as_str()).collect()
    }

    const MINIMAL: &str = "
authentication_backend: {file: {path: /tmp/users.yml}}
session:
  cookies: [{domain: example.com, authelia_url: 'https://auth.example.com/'}]
storage: {encryption_key: 'a-very-long-encryption-key-value', local: {path: /tmp/db.sqlite3}}
notifier: {filesystem: {filename: /tmp/n.txt}}
identity_validation: {reset_password: {jwt_secret: 'a-very-long-jwt-secret-value-here'}}
";

    #[test]
    fn unknown_choices_read_like_validation_messages() {
        assert_eq!(
            plain_message("unknown variant `allow`, expected one of `bypass`, `deny`"),
            "'allow' is not allowed; use one of 'bypass', 'deny'"
        );
        assert_eq!(plain_message("invalid type: string"), "invalid type: string");
    }

    #[test]
    fn minimal_file_loads() {
        let loaded = load_yaml(MINIMAL, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.config.session.cookies[0].domain.as_deref(), Some("example.com"));
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    }

    #[test]
    fn every_type_error_is_reported_with_its_path() {
        let yaml = format!(
            "{MINIMAL}
server: {{address: 'http://nope', buffers: {{read: lots}}}}
regulation: {{find_time: soon, max_retries: -1}}
totp: {{allowed_digits: [6, eight, 8]}}
"
        );
        let err = load_yaml(&yaml, false).unwrap_err();
        let paths = problem_paths(&err);
        for expected in [
            "server.address",
            "server.buffers.read",
            "regulation.find_time",
            "regulation.max_retries",
            "totp.allowed_digits[1]",
        ] {
            assert!(paths.contains(&expected), "{expected} missing from {paths:?}");
        }
    }

    #[test]
    fn unknown_keys_warn_or_fail_when_strict() {
        let yaml = format!("{MINIMAL}\nsesion: {{}}\nserver: {{adress: x}}\nduo_api: {{hostname: x}}\n");
        let loaded = load_yaml(&yaml, false).unwrap_or_else(|e| panic!("{e}"));
        let warned: Vec<_> = loaded.warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(warned, vec!["duo_api", "server.adress", "sesion"]);
        let err = load_yaml(&yaml, true).unwrap_err();
        assert_eq!(problem_paths(&err), vec!["duo_api", "server.adress", "sesion"]);
    }

    #[test]
    fn secret_files_are_read_and_conflicts_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("key");
        std::fs::write(&secret, "from-a-file-0123456789abcdef\n").unwrap();
        let yaml = MINIMAL.replace(
            "encryption_key: 'a-very-long-encryption-key-value',",
            &format!("encryption_key_file: '{}',", secret.display()),
        );
        let loaded = load_yaml(&yaml, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.config.storage.encryption_key.expose(), "from-a-file-0123456789abcdef");

        let both = MINIMAL.replace(
            "encryption_key: 'a-very-long-encryption-key-value',",
            &format!("encryption_key: 'x', encryption_key_file: '{}',", secret.display()),
        );
        let err = load_yaml(&both, true).unwrap_err();
        assert!(problem_paths(&err).contains(&"storage.encryption_key_file"));
    }

    #[test]
    fn deprecated_keys_are_migrated() {
        let yaml = MINIMAL.replace(
            "session:\n  cookies: [{domain: example.com, authelia_url: 'https://auth.example.com/'}]",
            "server: {host: 127.0.0.1, port: 9999}\nsession: {domain: example.com}",
        );
        let err = load_yaml(&yaml, false).unwrap_err();
        // The legacy single-domain form has no portal URL, which must be named precisely.
        assert_eq!(problem_paths(&err), vec!["session.cookies[0].authelia_url"]);
        assert!(err.warnings.iter().any(|w| w.path == "session.domain"));
        assert!(err.warnings.iter().any(|w| w.path == "server.host"));
    }

    #[test]
    fn comma_separated_strings_are_lists() {
        let yaml =
            format!("{MINIMAL}\ntotp: {{allowed_digits: '6, 8'}}\nserver: {{trusted_proxies: '10.0.0.0/8,::1'}}\n");
        let loaded = load_yaml(&yaml, true).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(loaded.config.totp.allowed_digits, [6, 8]);
        assert_eq!(
            loaded.config.server.trusted_proxies.as_deref(),
            Some(&["10.0.0.0/8".to_string(), "::1".to_string()][..])
        );
    }

    #[test]
    fn syntax_errors_name_file_line_and_column() {
        let err = load_yaml("server:\n  address: [unclosed\n", false).unwrap_err();
        let msg = err.problems[0].message.clone();
        assert!(msg.contains("c.yml") && msg.contains("line"), "{msg}");
    }

    #[test]
    fn missing_file_is_an_error() {
        let err = load(&LoadOptions { files: vec!["/nonexistent/c.yml".into()], ..Default::default() }).unwrap_err();
        assert!(err.problems[0].message.contains("/nonexistent/c.yml"));
    }

    #[test]
    fn embedded_default_is_valid() {
        let loaded = load(&LoadOptions::default()).unwrap_or_else(|e| panic!("{e}"));
        assert!(loaded.embedded);
        assert_eq!(loaded.config.server.address.bind_target(), "127.0.0.1:9091");
        assert_eq!(loaded.config.session.cookies[0].domain.as_deref(), Some("localhost"));
        assert!(loaded.config.session.redis.is_none());
    }
}
