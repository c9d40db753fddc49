//! Which changed keys a reload cannot apply: everything but the access rules (with the
//! network definitions they name) and the mail templates' directory. Those keys keep their
//! running values until a restart, and the reload names them so the operator knows.

use serde_json::Value;

/// Key paths a reload applies; a change under any of them needs no restart.
const RELOADABLE: [&str; 3] = ["access_control", "definitions", "notifier.template_path"];

/// The key paths whose values differ between `running` and `loaded` (both the
/// configuration as serialized), outside the reloadable parts, sorted. Values
/// are never returned, only where they differ, so secrets do not reach the log.
pub fn keys_needing_restart(running: &Value, loaded: &Value) -> Vec<String> {
    let mut changed = Vec::new();
    differences("", running, loaded, &mut changed);
    changed.retain(|path| !RELOADABLE.iter().any(|r| under(path, r)));
    changed.sort();
    changed
}

/// True when `path` is `prefix` or a key or index below it.
fn under(path: &str, prefix: &str) -> bool {
    path.strip_prefix(prefix).is_some_and(|rest| rest.is_empty() || rest.starts_with('.') || rest.starts_with('['))
}

fn differences(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().collect();
            keys.extend(b.keys().filter(|k| !a.contains_key(*k)));
            for key in keys {
                let below = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
                differences(&below, a.get(key).unwrap_or(&Value::Null), b.get(key).unwrap_or(&Value::Null), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (x, y)) in x.iter().zip(y).enumerate() {
                differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(path.to_string()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_changed_keys_outside_the_reloadable_parts() {
        let running = json!({
            "server": {"address": "tcp://:9091"},
            "session": {"secret": "a", "cookies": [{"domain": "example.com"}]},
            "access_control": {"default_policy": "deny", "rules": []},
            "definitions": {"network": {}},
            "notifier": {"template_path": "", "smtp": {"host": "mail"}},
            "log": {"level": "info"},
        });
        let loaded = json!({
            "server": {"address": "tcp://:9092"},
            "session": {"secret": "b", "cookies": [{"domain": "example.org"}]},
            "access_control": {"default_policy": "bypass", "rules": [{"domain": "x"}]},
            "definitions": {"network": {"lan": ["10.0.0.0/8"]}},
            "notifier": {"template_path": "/templates", "smtp": {"host": "mail"}},
            "log": {"level": "info"},
            "totp": {"period": 60},
        });
        assert_eq!(
            keys_needing_restart(&running, &loaded),
            ["server.address", "session.cookies[0].domain", "session.secret", "totp"]
        );
        assert!(keys_needing_restart(&running, &running).is_empty());
    }

    #[test]
    fn a_list_that_grew_is_named_whole() {
        let running = json!({"session": {"cookies": [1]}});
        let loaded = json!({"session": {"cookies": [1, 2]}});
        assert_eq!(keys_needing_restart(&running, &loaded), ["session.cookies"]);
    }

    #[test]
    fn prefixes_match_whole_keys_only() {
        assert!(under("access_control.rules[3].policy", "access_control"));
        assert!(under("access_control", "access_control"));
        assert!(!under("access_control_extra", "access_control"));
    }
}
