//! The mail templates: embedded in the binary, each replaceable by a file of the same name
//! in `notifier.template_path`.
//!
//! Overrides are read and test-rendered once, when the notifier is built, so a broken
//! template stops startup with the file's name instead of failing the first password reset.
//! Undefined variables are errors (a misspelt variable would otherwise silently vanish,
//! possibly taking the reset link with it). HTML templates are auto-escaped; escaping
//! leaves `/` alone so links and codes appear in the HTML exactly as given.

use std::path::Path;

use minijinja::syntax::SyntaxConfig;
use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};

use super::content::{self, TEMPLATES};
use super::{Message, NotifyError};

/// Every template file: the layout the HTML bodies extend, then an HTML and a plain-text
/// body per message kind.
const EMBEDDED: [(&str, &str); 9] = [
    ("layout.html", include_str!("../../web/templates/mail/layout.html")),
    ("reset_password.html", include_str!("../../web/templates/mail/reset_password.html")),
    ("reset_password.txt", include_str!("../../web/templates/mail/reset_password.txt")),
    ("one_time_code.html", include_str!("../../web/templates/mail/one_time_code.html")),
    ("one_time_code.txt", include_str!("../../web/templates/mail/one_time_code.txt")),
    ("password_changed.html", include_str!("../../web/templates/mail/password_changed.html")),
    ("password_changed.txt", include_str!("../../web/templates/mail/password_changed.txt")),
    ("security_event.html", include_str!("../../web/templates/mail/security_event.html")),
    ("security_event.txt", include_str!("../../web/templates/mail/security_event.txt")),
];

/// The files of `template_path` that would replace embedded templates, whether they exist
/// yet or not (a reload watches for them to appear, change or go).
pub(super) fn override_files(template_path: &str) -> Vec<std::path::PathBuf> {
    if template_path.is_empty() {
        return Vec::new();
    }
    EMBEDDED.iter().map(|(name, _)| Path::new(template_path).join(name)).collect()
}

/// A rendered message.
pub(super) struct Rendered {
    /// The message's title (for the subject).
    pub title: &'static str,
    /// Plain-text body.
    pub text: String,
    /// HTML body, when asked for.
    pub html: Option<String>,
}

/// The loaded templates.
pub(super) struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// The embedded templates, replaced by same-named files in `template_path` (when not
    /// empty). Errors name the configuration key and the file.
    pub(super) fn load(template_path: &str) -> Result<Self, String> {
        let dir = (!template_path.is_empty()).then(|| Path::new(template_path));
        if let Some(dir) = dir
            && !dir.is_dir()
        {
            return Err(format!("notifier.template_path: '{template_path}' is not a directory"));
        }
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        // Block tags on their own lines leave no blank lines behind (matters in the text bodies).
        let syntax = SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build();
        env.set_syntax(syntax.map_err(|e| format!("mail template syntax: {e}"))?);
        env.set_auto_escape_callback(|name| if name.ends_with(".html") { AutoEscape::Html } else { AutoEscape::None });
        env.set_formatter(format_value);
        for (name, embedded) in EMBEDDED {
            match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => {
                    let source = std::fs::read_to_string(&path)
                        .map_err(|e| format!("notifier.template_path: cannot read '{}': {e}", path.display()))?;
                    env.add_template_owned(name, source).map_err(|e| {
                        format!("notifier.template_path: template '{}' is invalid: {e}", path.display())
                    })?;
                }
                None => env.add_template(name, embedded).map_err(|e| format!("embedded mail template {name}: {e}"))?,
            }
        }
        let templates = Self { env };
        // Render every kind once: finds unknown variables, missing parents and filters.
        for sample in content::samples() {
            templates.render(&sample, true).map_err(|e| match dir {
                Some(dir) => format!("notifier.template_path: {e} (templates from '{}')", dir.display()),
                None => e.to_string(),
            })?;
        }
        Ok(templates)
    }

    /// Renders `message`: always the text body, the HTML body when `html`.
    pub(super) fn render(&self, message: &Message, html: bool) -> Result<Rendered, NotifyError> {
        let content = content::of(message);
        debug_assert!(TEMPLATES.contains(&content.template));
        let text = self.render_one(&format!("{}.txt", content.template), &content.context)?;
        let html =
            if html { Some(self.render_one(&format!("{}.html", content.template), &content.context)?) } else { None };
        Ok(Rendered { title: content.title, text, html })
    }

    fn render_one(&self, name: &str, context: &Value) -> Result<String, NotifyError> {
        // `Display` (not the alternate form) gives the error and its location, never the
        // values in scope, which include links and codes.
        let failed = |e: minijinja::Error| NotifyError::Template { template: name.to_string(), reason: e.to_string() };
        self.env.get_template(name).map_err(failed)?.render(context).map_err(failed)
    }
}

/// Writes a value into a template: as minijinja does, except that HTML escaping leaves `/`
/// as it is (it needs no escaping in text or quoted attributes), so URLs stay readable
/// and identical to the plain-text body.
fn format_value(
    out: &mut minijinja::Output,
    state: &mut minijinja::State,
    value: &Value,
) -> Result<(), minijinja::Error> {
    match value.as_str() {
        Some(text) if *state.auto_escape() == AutoEscape::Html && !value.is_safe() => {
            let mut escaped = String::with_capacity(text.len());
            for c in text.chars() {
                match c {
                    '&' => escaped.push_str("&amp;"),
                    '<' => escaped.push_str("&lt;"),
                    '>' => escaped.push_str("&gt;"),
                    '"' => escaped.push_str("&quot;"),
                    '\'' => escaped.push_str("&#x27;"),
                    c => escaped.push(c),
                }
            }
            out.write_str(&escaped).map_err(|_| minijinja::Error::new(minijinja::ErrorKind::WriteFailure, "write"))
        }
        _ => minijinja::escape_formatter(out, state, value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notifier::CodePurpose;
    use std::time::Duration;

    fn reset(link: &str, name: &str) -> Message {
        Message::ResetPassword {
            display_name: name.into(),
            link: link.into(),
            expires_in: Duration::from_secs(900),
            remote_ip: "198.51.100.7".into(),
            revoke_link: None,
        }
    }

    #[test]
    fn embedded_templates_render_every_kind() {
        let t = Templates::load("").unwrap();
        for sample in content::samples() {
            let r = t.render(&sample, true).unwrap();
            let html = r.html.unwrap();
            assert!(html.contains(r.title) && html.contains("192.0.2.1"), "{html}");
            assert!(r.text.starts_with("Hi Sample User,"), "{}", r.text);
        }
    }

    #[test]
    fn links_are_verbatim_in_both_bodies_and_markup_is_escaped() {
        let t = Templates::load("").unwrap();
        let link = "https://auth.example.com/reset-password?token=a.b-c_d";
        let r = t.render(&reset(link, "<b>Eve</b> & co"), true).unwrap();
        let html = r.html.unwrap();
        assert!(r.text.contains(link) && html.contains(link), "{html}");
        assert!(html.contains("&lt;b&gt;Eve&lt;/b&gt; &amp; co") && !html.contains("<b>Eve"), "{html}");
        assert!(r.text.contains("Hi <b>Eve</b> & co,"), "plain text is not escaped: {}", r.text);
        assert!(r.text.contains("15 minutes"));
    }

    #[test]
    fn code_purposes_read_differently() {
        let t = Templates::load("").unwrap();
        let code = |purpose| Message::OneTimeCode {
            display_name: "A".into(),
            code: "K7Q2ZP".into(),
            purpose,
            expires_in: Duration::from_secs(300),
            remote_ip: "192.0.2.9".into(),
            revoke_link: None,
        };
        let sign_in = t.render(&code(CodePurpose::SignIn), false).unwrap();
        let elevation = t.render(&code(CodePurpose::Elevation), false).unwrap();
        assert!(sign_in.html.is_none());
        assert!(sign_in.text.contains("finish signing in") && sign_in.text.contains("K7Q2ZP"));
        assert!(elevation.text.contains("confirm it is you") && elevation.text.contains("K7Q2ZP"));
        assert_ne!(sign_in.title, elevation.title);
    }

    #[test]
    fn overrides_replace_embedded_files_and_broken_ones_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("reset_password.txt"), "Custom {{ link }} for {{ display_name }}").unwrap();
        let t = Templates::load(dir.path().to_str().unwrap()).unwrap();
        let r = t.render(&reset("https://x.example/r", "Bo"), true).unwrap();
        assert_eq!(r.text, "Custom https://x.example/r for Bo");
        assert!(r.html.unwrap().contains("Reset your password"), "other files stay embedded");

        std::fs::write(dir.path().join("password_changed.html"), "{% if %}").unwrap();
        let e = Templates::load(dir.path().to_str().unwrap()).err().unwrap();
        assert!(e.starts_with("notifier.template_path:") && e.contains("password_changed.html"), "{e}");

        std::fs::write(dir.path().join("password_changed.html"), "{{ no_such_variable }}").unwrap();
        let e = Templates::load(dir.path().to_str().unwrap()).err().unwrap();
        assert!(e.starts_with("notifier.template_path:") && e.contains("password_changed.html"), "{e}");

        let e = Templates::load("/nonexistent/mail-templates").err().unwrap();
        assert!(e.contains("not a directory"), "{e}");
    }
}
