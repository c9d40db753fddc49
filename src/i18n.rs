//! The translation tables (`web/i18n/<code>.yml`), shared by the portal's pages and the
//! JSON API's error messages: a refusal reads the same in both, and a new language
//! translates both at once. The first shipped language is the fallback for missing keys.

use std::collections::HashMap;
use std::sync::LazyLock;

/// Shipped languages: code and table source. The first is the fallback.
const LANGUAGES: &[(&str, &str)] = &[("en", include_str!("../web/i18n/en.yml"))];

type Table = HashMap<String, String>;

/// Every shipped table, parsed once. A table that does not parse is a build mistake that
/// the unit tests catch; at run time it is treated as empty (keys show as themselves).
static TABLES: LazyLock<HashMap<&'static str, Table>> = LazyLock::new(|| {
    LANGUAGES
        .iter()
        .map(|(code, source)| {
            let table = serde_yaml::from_str::<Table>(source).unwrap_or_else(|e| {
                tracing::error!(language = code, error = %e, "translation table is invalid");
                Table::new()
            });
            (*code, table)
        })
        .collect()
});

/// The fallback language.
pub const FALLBACK: &str = LANGUAGES[0].0;

/// The text for `key` in `lang`, else in the fallback language, else the key itself.
pub fn text(lang: &str, key: &str) -> String {
    TABLES
        .get(lang)
        .and_then(|t| t.get(key))
        .or_else(|| TABLES.get(FALLBACK).and_then(|t| t.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

/// Whether the fallback table has `key`.
pub fn has(key: &str) -> bool {
    TABLES.get(FALLBACK).is_some_and(|t| t.contains_key(key))
}

/// The shipped language the client prefers most (`Accept-Language` with q-values), or the
/// fallback.
pub fn negotiate(accept_language: Option<&str>) -> &'static str {
    let mut best: Option<(f32, &'static str)> = None;
    for part in accept_language.unwrap_or_default().split(',') {
        let mut pieces = part.trim().split(';');
        let tag = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
        let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
        let primary = tag.split('-').next().unwrap_or_default();
        if let Some((code, _)) = LANGUAGES.iter().find(|(c, _)| *c == primary)
            && best.is_none_or(|(bq, _)| q > bq)
        {
            best = Some((q, code));
        }
    }
    best.map_or(FALLBACK, |(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_parses() {
        for (code, source) in LANGUAGES {
            serde_yaml::from_str::<Table>(source).unwrap_or_else(|e| panic!("{code}: {e}"));
        }
    }

    #[test]
    fn negotiation_and_fallback() {
        assert_eq!(negotiate(Some("fr-CH, fr;q=0.9, en;q=0.8")), "en");
        assert_eq!(negotiate(None), "en");
        assert_eq!(text("fr", "login.title"), text("en", "login.title"));
        assert_eq!(text("en", "no.such.key"), "no.such.key");
        assert!(has("login.title"));
    }
}
