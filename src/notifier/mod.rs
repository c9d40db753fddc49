//! Outgoing mail: password reset links, one-time codes and security notices.
//!
//! One [`Notifier`], built from `notifier`, renders a [`Message`] with the mail templates
//! and hands it to the configured transport: an SMTP server (`notifier.smtp`) or a file
//! (`notifier.filesystem`, for development). Callers do not know which, and the same words
//! reach the user either way.
//!
//! Message bodies carry secrets (reset links, codes), so nothing here logs them, and
//! [`Message`]'s `Debug` leaves them out; recipients and titles are logged at debug level.

mod content;
mod error;
mod filesystem;
mod smtp;
mod templates;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

pub use error::NotifyError;

use crate::config::schema::{self, SmtpNotifier};
use filesystem::FileSink;
use smtp::SmtpSender;
use templates::Templates;

/// Sends notifications. Cheap to clone; clones share the transport.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

struct Inner {
    /// Replaced whole when the configuration is reloaded.
    templates: arc_swap::ArcSwap<Templates>,
    /// The subject template; `{title}` is replaced.
    subject: String,
    /// Whether to send an HTML alternative.
    html: bool,
    transport: Transport,
    /// Whether the last connection to the mail server failed (readiness reports it).
    failing: std::sync::atomic::AtomicBool,
    /// When readiness last tried the mail server itself, while it was failing.
    last_probe: std::sync::Mutex<Option<std::time::Instant>>,
}

/// While SMTP is failing, readiness tries it again at most this often.
const SMTP_PROBE_EVERY: Duration = Duration::from_secs(30);

enum Transport {
    Smtp(Box<SmtpSender>),
    Filesystem(FileSink),
}

/// Who a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Display name (may be empty).
    pub name: String,
    /// Email address.
    pub address: String,
}

/// What to tell the user.
#[derive(Clone)]
pub enum Message {
    /// A password reset link (valid for `expires_in`).
    ResetPassword {
        display_name: String,
        link: String,
        expires_in: Duration,
        remote_ip: String,
        /// Cancels the link, for a user who did not ask for it.
        revoke_link: Option<String>,
    },
    /// A one-time code proving the user controls the mailbox: for session elevation (purpose Elevation) or as a sign-in second factor (purpose SignIn). `revoke_link` lets the user cancel a code they did not ask for.
    OneTimeCode {
        display_name: String,
        code: String,
        purpose: CodePurpose,
        expires_in: Duration,
        remote_ip: String,
        revoke_link: Option<String>,
    },
    /// The password was changed or reset.
    PasswordChanged { display_name: String, remote_ip: String },
    /// A second-factor device/method was added or removed, e.g. detail = "A security key named 'YubiKey' was added".
    SecurityEvent { display_name: String, detail: String, remote_ip: String },
}

/// Why a one-time code is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    /// To elevate a session before changing security settings.
    Elevation,
    /// As a second factor when signing in.
    SignIn,
    /// To prove the address receives mail (the account API's email verification).
    VerifyEmail,
}

/// Shows the kind and harmless fields; links and codes are redacted.
impl fmt::Debug for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ResetPassword { display_name, expires_in, remote_ip, .. } => f
                .debug_struct("ResetPassword")
                .field("display_name", display_name)
                .field("link", &"<redacted>")
                .field("expires_in", expires_in)
                .field("remote_ip", remote_ip)
                .field("revoke_link", &"<redacted>")
                .finish(),
            Self::OneTimeCode { display_name, purpose, expires_in, remote_ip, revoke_link, .. } => f
                .debug_struct("OneTimeCode")
                .field("display_name", display_name)
                .field("code", &"<redacted>")
                .field("purpose", purpose)
                .field("expires_in", expires_in)
                .field("remote_ip", remote_ip)
                .field("revoke_link", &revoke_link.as_ref().map(|_| "<redacted>"))
                .finish(),
            Self::PasswordChanged { display_name, remote_ip } => f
                .debug_struct("PasswordChanged")
                .field("display_name", display_name)
                .field("remote_ip", remote_ip)
                .finish(),
            Self::SecurityEvent { display_name, detail, remote_ip } => f
                .debug_struct("SecurityEvent")
                .field("display_name", display_name)
                .field("detail", detail)
                .field("remote_ip", remote_ip)
                .finish(),
        }
    }
}

impl fmt::Debug for Notifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match self.inner.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Filesystem(_) => "filesystem",
        };
        f.debug_struct("Notifier").field("transport", &transport).finish_non_exhaustive()
    }
}

impl Notifier {
    /// Builds the notifier from `notifier` config; Err(message naming the key) on bad config.
    pub fn from_config(config: &schema::Notifier) -> Result<Self, String> {
        let (transport, smtp) = match (&config.filesystem, &config.smtp) {
            (Some(fs), None) => (Transport::Filesystem(FileSink::from_config(fs)?), None),
            (None, Some(smtp)) => (Transport::Smtp(Box::new(SmtpSender::from_config(smtp)?)), Some(smtp)),
            (None, None) => return Err("notifier: one of notifier.filesystem or notifier.smtp is required".into()),
            (Some(_), Some(_)) => {
                return Err("notifier: configure only one of notifier.filesystem and notifier.smtp".into());
            }
        };
        let subject = smtp.map_or_else(|| SmtpNotifier::default().subject, |s| s.subject.clone());
        // The file gets the plain text only.
        let html = smtp.is_some_and(|s| !s.disable_html_emails);
        let templates = Templates::load(&config.template_path)?;
        Ok(Self {
            inner: Arc::new(Inner {
                templates: arc_swap::ArcSwap::from_pointee(templates),
                subject,
                html,
                transport,
                failing: Default::default(),
                last_probe: Default::default(),
            }),
        })
    }

    /// SMTP: connect, EHLO, (STARTTLS), AUTH if configured, MAIL FROM/RCPT TO startup_check_address, then RSET/QUIT (no mail sent). Filesystem: check the file can be opened for append (create it 0600 if missing, parent dir must exist).
    pub async fn startup_check(&self) -> Result<(), NotifyError> {
        let checked = match &self.inner.transport {
            Transport::Smtp(smtp) => smtp.startup_check().await,
            Transport::Filesystem(file) => file.startup_check().await,
        };
        self.note(&checked);
        checked
    }

    /// Reads the mail templates again from `template_path` (the embedded ones where it has
    /// no file of that name) and puts them in force; on any error the running templates
    /// stay and the error names the key and the file.
    pub fn reload_templates(&self, template_path: &str) -> Result<(), String> {
        let templates = Templates::load(template_path)?;
        self.inner.templates.store(Arc::new(templates));
        Ok(())
    }

    /// The files in `template_path` that override embedded templates (existing or not).
    pub fn template_files(template_path: &str) -> Vec<std::path::PathBuf> {
        templates::override_files(template_path)
    }

    /// `smtp` or `filesystem`.
    pub fn kind(&self) -> &'static str {
        match &self.inner.transport {
            Transport::Smtp(_) => "smtp",
            Transport::Filesystem(_) => "filesystem",
        }
    }

    /// Whether mail can go out, for the readiness check. The file is opened again (cheap);
    /// the mail server is judged by the last connection to it, and tried again (at most
    /// every 30 s) only while that failed.
    pub async fn ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        match &self.inner.transport {
            Transport::Filesystem(_) => self.startup_check().await.is_ok(),
            Transport::Smtp(_) => {
                if !self.inner.failing.load(Ordering::Relaxed) {
                    return true;
                }
                let due = self.inner.last_probe.lock().is_ok_and(|mut last| {
                    let due = last.is_none_or(|at| at.elapsed() >= SMTP_PROBE_EVERY);
                    if due {
                        *last = Some(std::time::Instant::now());
                    }
                    due
                });
                due && self.startup_check().await.is_ok()
            }
        }
    }

    fn note<T>(&self, outcome: &Result<T, NotifyError>) {
        // Refusals of a recipient or a template error say nothing about the server.
        let failed = matches!(outcome, Err(e) if e.is_transport());
        self.inner.failing.store(failed, std::sync::atomic::Ordering::Relaxed);
    }

    /// Renders and sends one message.
    pub async fn send(&self, to: &Recipient, message: &Message) -> Result<(), NotifyError> {
        let inner = &self.inner;
        let rendered = inner.templates.load().render(message, inner.html)?;
        let subject = inner.subject.replace("{title}", rendered.title);
        tracing::debug!(recipient = %to.address, title = rendered.title, "sending notification");
        let span = crate::telemetry::traces::span!("notifier.send", notifier.transport = self.kind());
        let sent = async {
            match &inner.transport {
                Transport::Smtp(smtp) => smtp.send(to, &subject, &rendered.text, rendered.html.as_deref()).await,
                Transport::Filesystem(file) => file.append(to, &subject, &rendered.text).await,
            }
        };
        let sent = tracing::Instrument::instrument(sent, span).await;
        self.note(&sent);
        match &sent {
            Ok(()) => tracing::debug!(recipient = %to.address, title = rendered.title, "notification sent"),
            Err(e) => {
                tracing::debug!(recipient = %to.address, title = rendered.title, error = %e, "notification failed")
            }
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_links_and_codes() {
        let m = Message::OneTimeCode {
            display_name: "A".into(),
            code: "SECRET1".into(),
            purpose: CodePurpose::SignIn,
            expires_in: Duration::from_secs(60),
            remote_ip: "192.0.2.1".into(),
            revoke_link: Some("https://auth.example.com/revoke/SECRET2".into()),
        };
        let r = Message::ResetPassword {
            display_name: "A".into(),
            link: "https://auth.example.com/reset/SECRET3".into(),
            expires_in: Duration::from_secs(60),
            remote_ip: "192.0.2.1".into(),
            revoke_link: Some("https://auth.example.com/revoke/SECRET4".into()),
        };
        let shown = format!("{m:?} {r:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        assert!(shown.contains("SignIn") && shown.contains("192.0.2.1"));
    }

    #[test]
    fn exactly_one_transport() {
        let none = schema::Notifier::default();
        assert!(Notifier::from_config(&none).unwrap_err().contains("one of"));
        let both = schema::Notifier {
            filesystem: Some(schema::FilesystemNotifier { filename: Some("/tmp/x".into()) }),
            smtp: Some(SmtpNotifier::default()),
            ..Default::default()
        };
        assert!(Notifier::from_config(&both).unwrap_err().contains("only one"));
        let empty = schema::Notifier { filesystem: Some(Default::default()), ..Default::default() };
        assert!(Notifier::from_config(&empty).unwrap_err().starts_with("notifier.filesystem.filename:"));
    }

    #[test]
    fn notifier_is_shareable() {
        fn check<T: Send + Sync + Clone + 'static>() {}
        check::<Notifier>();
    }
}
