//! Mail bodies: one HTML and one plain-text minijinja template per message, embedded in the
//! binary; a file of the same name under `notifier.template_path` replaces the embedded one.

use minijinja::{Environment, context};

use super::{CodePurpose, Message, NotifyError, Rendered};

const EMBEDDED: &[(&str, &str)] = &[
    ("reset_password.html", include_str!("../../web/templates/mail/reset_password.html")),
    ("reset_password.txt", include_str!("../../web/templates/mail/reset_password.txt")),
    ("one_time_code.html", include_str!("../../web/templates/mail/one_time_code.html")),
    ("one_time_code.txt", include_str!("../../web/templates/mail/one_time_code.txt")),
    ("password_changed.html", include_str!("../../web/templates/mail/password_changed.html")),
    ("password_changed.txt", include_str!("../../web/templates/mail/password_changed.txt")),
    ("security_event.html", include_str!("../../web/templates/mail/security_event.html")),
    ("security_event.txt", include_str!("../../web/templates/mail/security_event.txt")),
    ("layout.html", include_str!("../../web/templates/mail/layout.html")),
];

/// The compiled templates.
pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    /// Embedded templates, with overrides from `dir` when it is not empty.
    pub fn load(dir: &str) -> Result<Self, String> {
        let mut env = Environment::new();
        // HTML templates escape every value; text templates must not.
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") { minijinja::AutoEscape::Html } else { minijinja::AutoEscape::None }
        });
        for (name, source) in EMBEDDED {
            let path = std::path::Path::new(dir).join(name);
            let text = if !dir.is_empty() && path.is_file() {
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("notifier.template_path: cannot read '{}': {e}", path.display()))?
            } else {
                (*source).to_string()
            };
            env.add_template_owned(*name, text)
                .map_err(|e| format!("notifier.template_path: template '{name}' is invalid: {e}"))?;
        }
        Ok(Self { env })
    }

    /// Renders `message`; `subject_template` has `{title}` replaced by the message title.
    pub fn render(&self, message: &Message, subject_template: &str) -> Result<Rendered, NotifyError> {
        let minutes = |d: &std::time::Duration| d.as_secs().div_ceil(60).max(1);
        let (name, title, ctx) = match message {
            Message::ResetPassword { display_name, link, expires_in, remote_ip } => (
                "reset_password",
                "Reset your password".to_string(),
                context! { display_name, link, minutes => minutes(expires_in), remote_ip },
            ),
            Message::OneTimeCode { display_name, code, purpose, expires_in, remote_ip, revoke_link } => {
                let (title, action) = match purpose {
                    CodePurpose::Elevation => ("Confirm your identity", "confirm a change to your account's security"),
                    CodePurpose::SignIn => ("Your sign-in code", "finish signing in"),
                };
                (
                    "one_time_code",
                    title.to_string(),
                    context! { display_name, code, action, minutes => minutes(expires_in), remote_ip, revoke_link },
                )
            }
            Message::PasswordChanged { display_name, remote_ip } => {
                ("password_changed", "Your password was changed".to_string(), context! { display_name, remote_ip })
            }
            Message::SecurityEvent { display_name, detail, remote_ip } => (
                "security_event",
                "Your account's security settings changed".to_string(),
                context! { display_name, detail, remote_ip },
            ),
        };
        let ctx = context! { title => &title, ..ctx };
        let render = |file: String| {
            self.env
                .get_template(&file)
                .and_then(|t| t.render(&ctx))
                .map_err(|e| NotifyError::Template(file.clone(), e.to_string()))
        };
        Ok(Rendered {
            subject: subject_template.replace("{title}", &title),
            text: render(format!("{name}.txt"))?,
            html: render(format!("{name}.html"))?,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn renders_every_message_with_escaping() {
        let t = Templates::load("").unwrap();
        let r = t
            .render(
                &Message::OneTimeCode {
                    display_name: "<John>".into(),
                    code: "ABCD2345".into(),
                    purpose: CodePurpose::Elevation,
                    expires_in: Duration::from_secs(300),
                    remote_ip: "192.0.2.1".into(),
                    revoke_link: Some("https://auth.example.com/revoke/elevation/x?a=1&b=2".into()),
                },
                "[Portcullis] {title}",
            )
            .unwrap();
        assert_eq!(r.subject, "[Portcullis] Confirm your identity");
        assert!(r.text.contains("ABCD2345") && r.html.contains("ABCD2345"));
        assert!(r.text.contains("<John>") && r.html.contains("&lt;John&gt;"));
        assert!(r.text.contains("5 minutes"));
        assert!(r.html.contains("a=1&amp;b=2"));
        let reset = t
            .render(
                &Message::ResetPassword {
                    display_name: "John".into(),
                    link: "https://auth.example.com/reset-password?token=abc".into(),
                    expires_in: Duration::from_secs(600),
                    remote_ip: "192.0.2.1".into(),
                },
                "{title}",
            )
            .unwrap();
        assert!(reset.text.contains("https://auth.example.com/reset-password?token=abc"));
        for m in [
            Message::PasswordChanged { display_name: "J".into(), remote_ip: "ip".into() },
            Message::SecurityEvent {
                display_name: "J".into(),
                detail: "A key was added.".into(),
                remote_ip: "ip".into(),
            },
        ] {
            let r = t.render(&m, "{title}").unwrap();
            assert!(!r.text.is_empty() && r.html.contains("<html"));
        }
    }

    #[test]
    fn overrides_from_template_path() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("password_changed.txt"), "Custom {{ display_name }}").unwrap();
        let t = Templates::load(dir.path().to_str().unwrap()).unwrap();
        let r = t
            .render(&Message::PasswordChanged { display_name: "J".into(), remote_ip: "ip".into() }, "{title}")
            .unwrap();
        assert_eq!(r.text, "Custom J");
        std::fs::write(dir.path().join("layout.html"), "{% broken").unwrap();
        let err = Templates::load(dir.path().to_str().unwrap()).err().unwrap();
        assert!(err.contains("layout.html"), "{err}");
    }
}
