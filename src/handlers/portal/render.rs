//! Page rendering: minijinja templates from `web/templates` and the translation tables
//! from `web/i18n`, both embedded. Templates say `{{ t("login.title") }}`; the language is
//! chosen per request from `Accept-Language` among the shipped ones.

use std::collections::HashMap;
use std::sync::Arc;

use http::StatusCode;
use minijinja::{Environment, State, Value};

use super::assets::Assets;
use crate::server::response::{self, HttpResponse};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../../../web/templates/base.html")),
    ("login.html", include_str!("../../../web/templates/login.html")),
    ("second_factor.html", include_str!("../../../web/templates/second_factor.html")),
    ("message.html", include_str!("../../../web/templates/message.html")),
    ("form.html", include_str!("../../../web/templates/form.html")),
    ("profile.html", include_str!("../../../web/templates/profile.html")),
    ("totp_enroll.html", include_str!("../../../web/templates/totp_enroll.html")),
    ("recovery_codes.html", include_str!("../../../web/templates/recovery_codes.html")),
    ("register_passkey.html", include_str!("../../../web/templates/register_passkey.html")),
];

/// Shipped languages: code and table. The first is the fallback.
const LANGUAGES: &[(&str, &str)] = &[("en", include_str!("../../../web/i18n/en.yml"))];

type Table = HashMap<String, String>;

/// Templates, translations and asset URLs.
pub struct Renderer {
    env: Environment<'static>,
    languages: Vec<&'static str>,
    tables: Arc<HashMap<&'static str, Table>>,
    /// The embedded static files.
    pub assets: Arc<Assets>,
}

impl Renderer {
    /// Compiles the templates; `base` is the server's base path (prefixed to asset URLs).
    pub fn new(base: &str) -> Result<Self, String> {
        let mut tables: HashMap<&'static str, Table> = HashMap::new();
        for (code, source) in LANGUAGES {
            let table: Table =
                serde_yaml::from_str(source).map_err(|e| format!("translation table '{code}' is invalid: {e}"))?;
            tables.insert(code, table);
        }
        let tables = Arc::new(tables);
        let assets = Arc::new(Assets::new());
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| format!("portal template '{name}' is invalid: {e}"))?;
        }
        let lookup = tables.clone();
        env.add_function("t", move |state: &State, key: &str| -> String {
            let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            translate(&lookup, &lang, key)
        });
        let urls = assets.clone();
        let base = base.to_string();
        env.add_function("asset", move |name: &str| -> String {
            format!("{base}{}", urls.url(name).unwrap_or_default())
        });
        Ok(Self { env, languages: LANGUAGES.iter().map(|(c, _)| *c).collect(), tables, assets })
    }

    /// The text for `key` in `lang` (texts built in code rather than in a template).
    pub fn text(&self, lang: &str, key: &str) -> String {
        translate(&self.tables, lang, key)
    }

    /// The shipped language the client prefers most (`Accept-Language` q-values), or the
    /// fallback.
    pub fn language(&self, accept_language: Option<&str>) -> &'static str {
        let mut best: Option<(f32, &'static str)> = None;
        for part in accept_language.unwrap_or_default().split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse::<f32>().ok())).unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            if let Some(code) = self.languages.iter().find(|c| **c == primary)
                && best.is_none_or(|(bq, _)| q > bq)
            {
                best = Some((q, code));
            }
        }
        best.map_or(self.languages[0], |(_, c)| c)
    }

    /// Renders template `name` with `ctx` as an HTML response with `status`.
    pub fn page(&self, status: StatusCode, name: &str, ctx: Value) -> HttpResponse {
        match self.env.get_template(name).and_then(|t| t.render(ctx)) {
            Ok(html) => response::bytes(status, "text/html; charset=utf-8", html),
            Err(e) => {
                tracing::error!(template = name, error = %e, "cannot render a portal page");
                response::bytes(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "text/plain; charset=utf-8",
                    "500 Internal Server Error\n",
                )
            }
        }
    }
}

fn translate(tables: &HashMap<&'static str, Table>, lang: &str, key: &str) -> String {
    tables
        .get(lang)
        .and_then(|t| t.get(key))
        .or_else(|| tables.get(LANGUAGES[0].0).and_then(|t| t.get(key)))
        .cloned()
        .unwrap_or_else(|| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn languages_and_texts() {
        let r = Renderer::new("").unwrap();
        assert_eq!(r.language(Some("fr-CH, fr;q=0.9, en;q=0.8")), "en");
        assert_eq!(r.language(None), "en");
        let page = r.page(
            StatusCode::OK,
            "message.html",
            minijinja::context! { lang => "en", theme => "auto", base => "", title_key => "logout.done", links => Vec::<Value>::new() },
        );
        assert_eq!(page.status(), 200);
    }

    #[test]
    fn every_translation_key_used_by_a_template_exists() {
        let table: Table = serde_yaml::from_str(LANGUAGES[0].1).unwrap();
        let in_templates = regex::Regex::new(r#"\bt\("([a-z0-9_.]+)"\)"#).unwrap();
        for (name, source) in TEMPLATES {
            for cap in in_templates.captures_iter(source) {
                assert!(table.contains_key(&cap[1]), "{name}: missing text '{}'", &cap[1]);
            }
        }
        // Keys the page handlers pass to templates.
        let prefixes = table.keys().filter_map(|k| k.split('.').next()).collect::<std::collections::BTreeSet<_>>();
        let in_code = regex::Regex::new(r#""([a-z_]+\.[a-z_]+)""#).unwrap();
        for cap in in_code.captures_iter(include_str!("mod.rs")) {
            if prefixes.contains(cap[1].split('.').next().unwrap()) && !cap[1].ends_with(".html") {
                assert!(table.contains_key(&cap[1]), "mod.rs: missing text '{}'", &cap[1]);
            }
        }
    }
}
