//! Page rendering: minijinja templates from `web/templates`, embedded. Templates say
//! `{{ t("login.title") }}`; the texts come from the shared translation tables
//! ([`crate::i18n`]) in the request's language.

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
    ("device_link.html", include_str!("../../../web/templates/device_link.html")),
    ("admin_nav.html", include_str!("../../../web/templates/admin_nav.html")),
    ("admin_users.html", include_str!("../../../web/templates/admin_users.html")),
    ("admin_user.html", include_str!("../../../web/templates/admin_user.html")),
    ("admin_confirm.html", include_str!("../../../web/templates/admin_confirm.html")),
    ("admin_audit.html", include_str!("../../../web/templates/admin_audit.html")),
    ("admin_settings.html", include_str!("../../../web/templates/admin_settings.html")),
    ("admin_clients.html", include_str!("../../../web/templates/admin_clients.html")),
    ("consent.html", include_str!("../../../web/templates/consent.html")),
    ("device.html", include_str!("../../../web/templates/device.html")),
    ("form_post.html", include_str!("../../../web/templates/form_post.html")),
    ("continue.html", include_str!("../../../web/templates/continue.html")),
    ("summary.html", include_str!("../../../web/templates/summary.html")),
    ("api_reference.html", include_str!("../../../web/templates/api_reference.html")),
];

/// Templates and asset URLs.
pub struct Renderer {
    env: Environment<'static>,
    /// The embedded static files.
    pub assets: Arc<Assets>,
}

impl Renderer {
    /// Compiles the templates; `base` is the server's base path (prefixed to asset URLs).
    pub fn new(base: &str) -> Result<Self, String> {
        let assets = Arc::new(Assets::new());
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        for (name, source) in TEMPLATES {
            env.add_template(name, source).map_err(|e| format!("portal template '{name}' is invalid: {e}"))?;
        }
        env.add_function("t", move |state: &State, key: &str| -> String {
            let lang = state.lookup("lang").and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
            crate::i18n::text(&lang, key)
        });
        let urls = assets.clone();
        let base = base.to_string();
        env.add_function("asset", move |name: &str| -> String {
            format!("{base}{}", urls.url(name).unwrap_or_default())
        });
        Ok(Self { env, assets })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_renders() {
        let r = Renderer::new("").unwrap();
        let page = r.page(
            StatusCode::OK,
            "message.html",
            minijinja::context! { lang => "en", theme => "auto", base => "", title_key => "logout.done", links => Vec::<Value>::new() },
        );
        assert_eq!(page.status(), 200);
    }

    #[test]
    fn every_translation_key_used_by_a_template_or_page_exists() {
        let in_templates = regex::Regex::new(r#"\bt\("([a-z0-9_.]+)"\)"#).unwrap();
        for (name, source) in TEMPLATES {
            for cap in in_templates.captures_iter(source) {
                assert!(crate::i18n::has(&cap[1]), "{name}: missing text '{}'", &cap[1]);
            }
        }
        // Keys the page handlers pass to templates.
        let prefixes = [
            "common", "login", "second", "logout", "forgot", "reset", "profile", "elevate", "password", "totp",
            "recovery", "passkey", "revoke", "admin", "consent", "oidc",
        ];
        let in_code = regex::Regex::new(r#""([a-z_]+\.[a-z_]+)""#).unwrap();
        let pages = [
            ("login.rs", include_str!("login.rs")),
            ("second_factor.rs", include_str!("second_factor.rs")),
            ("reset.rs", include_str!("reset.rs")),
            ("account.rs", include_str!("account.rs")),
            ("totp.rs", include_str!("totp.rs")),
            ("visit.rs", include_str!("visit.rs")),
            ("revoke.rs", include_str!("revoke.rs")),
            ("admin/mod.rs", include_str!("../admin/mod.rs")),
            ("admin/users.rs", include_str!("../admin/users.rs")),
            ("admin/audit.rs", include_str!("../admin/audit.rs")),
            ("admin/clients.rs", include_str!("../admin/clients.rs")),
            ("consent.rs", include_str!("consent.rs")),
            ("oidc.rs", include_str!("../oidc.rs")),
        ];
        for (name, source) in pages {
            for cap in in_code.captures_iter(source) {
                let prefix = cap[1].split('.').next().unwrap_or_default();
                if prefixes.contains(&prefix) && !cap[1].ends_with(".html") && !cap[1].ends_with(".rs") {
                    assert!(crate::i18n::has(&cap[1]), "{name}: missing text '{}'", &cap[1]);
                }
            }
        }
    }
}
