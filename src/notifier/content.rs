//! What each kind of message says: its title, which template renders it and the values the
//! template may use.
//!
//! Kept apart from the transports so that the SMTP and filesystem notifiers deliver
//! exactly the same words, and so that template overrides have one documented set of
//! variables: `title`, `display_name`, `remote_ip`, and per template `link`, `code`,
//! `purpose` (`elevation`, `sign_in` or `verify_email`), `expires_in` (in words, e.g. `10 minutes`),
//! `revoke_link` (may be none) and `detail`.

use std::time::Duration;

use minijinja::{Value, context};

use super::{CodePurpose, Message};

/// The template base names (each has `.html` and `.txt`).
pub(super) const TEMPLATES: [&str; 4] = ["reset_password", "one_time_code", "password_changed", "security_event"];

/// A message ready for a template.
pub(super) struct Content {
    /// Template base name.
    pub template: &'static str,
    /// Human title; also fills `{title}` in the subject.
    pub title: &'static str,
    /// Template variables.
    pub context: Value,
}

/// The title, template and variables of `message`.
pub(super) fn of(message: &Message) -> Content {
    let (template, title, values) = match message {
        Message::ResetPassword { display_name, link, expires_in, remote_ip, revoke_link } => (
            "reset_password",
            "Reset your password",
            context! { display_name, link, remote_ip, revoke_link, expires_in => in_words(*expires_in) },
        ),
        Message::OneTimeCode { display_name, code, purpose, expires_in, remote_ip, revoke_link } => {
            let (title, purpose) = match purpose {
                CodePurpose::Elevation => ("Confirm it is you", "elevation"),
                CodePurpose::SignIn => ("Your sign-in code", "sign_in"),
                CodePurpose::VerifyEmail => ("Verify your email address", "verify_email"),
            };
            (
                "one_time_code",
                title,
                context! { display_name, code, purpose, remote_ip, revoke_link, expires_in => in_words(*expires_in) },
            )
        }
        Message::PasswordChanged { display_name, remote_ip } => {
            ("password_changed", "Your password was changed", context! { display_name, remote_ip })
        }
        Message::SecurityEvent { display_name, detail, remote_ip } => (
            "security_event",
            "Your security settings changed",
            // The template ends the sentence.
            context! { display_name, remote_ip, detail => detail.trim_end().trim_end_matches('.') },
        ),
    };
    Content { template, title, context: context! { title, ..values } }
}

/// One message of each kind (and each code purpose), to test-render templates with.
pub(super) fn samples() -> Vec<Message> {
    let ten_minutes = Duration::from_secs(600);
    let (display_name, remote_ip) = ("Sample User".to_string(), "192.0.2.1".to_string());
    let code = |purpose, revoke_link: Option<&str>| Message::OneTimeCode {
        display_name: display_name.clone(),
        code: "ABC123".into(),
        purpose,
        expires_in: ten_minutes,
        remote_ip: remote_ip.clone(),
        revoke_link: revoke_link.map(Into::into),
    };
    vec![
        Message::ResetPassword {
            display_name: display_name.clone(),
            link: "https://auth.example.com/reset-password/step2?token=sample".into(),
            expires_in: ten_minutes,
            remote_ip: remote_ip.clone(),
            revoke_link: Some("https://auth.example.com/revoke/reset-password?token=sample".into()),
        },
        code(CodePurpose::Elevation, Some("https://auth.example.com/revoke/one-time-code?id=sample")),
        code(CodePurpose::SignIn, None),
        Message::PasswordChanged { display_name: display_name.clone(), remote_ip: remote_ip.clone() },
        Message::SecurityEvent { display_name, detail: "A security key named 'Sample' was added".into(), remote_ip },
    ]
}

/// `expires_in` for people: `10 minutes`, `1 hour 30 minutes`, `2 days`.
pub(super) fn in_words(duration: Duration) -> String {
    let mut secs = duration.as_secs();
    if secs == 0 {
        return "less than a second".into();
    }
    let mut parts = Vec::new();
    for (unit, size) in [("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)] {
        let n = secs / size;
        secs %= size;
        if n > 0 {
            parts.push(format!("{n} {unit}{}", if n == 1 { "" } else { "s" }));
        }
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_words() {
        assert_eq!(in_words(Duration::from_secs(600)), "10 minutes");
        assert_eq!(in_words(Duration::from_secs(60)), "1 minute");
        assert_eq!(in_words(Duration::from_secs(5400)), "1 hour 30 minutes");
        assert_eq!(in_words(Duration::from_secs(2 * 86_400)), "2 days");
        assert_eq!(in_words(Duration::from_secs(61)), "1 minute 1 second");
        assert_eq!(in_words(Duration::from_millis(300)), "less than a second");
    }

    #[test]
    fn every_kind_has_its_own_template_and_a_title() {
        let contents: Vec<_> = samples().iter().map(of).collect();
        for name in TEMPLATES {
            assert!(contents.iter().any(|c| c.template == name), "{name} is never used");
        }
        assert!(contents.iter().all(|c| !c.title.is_empty()));
    }
}
