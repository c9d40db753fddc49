//! Outgoing mail: reset links, one-time codes and security notices, delivered by SMTP
//! (lettre) or appended to a file (development, tests). Bodies come from minijinja
//! templates (HTML and plain text) embedded in the binary, each overridable from
//! `notifier.template_path`. Message contents are secrets (codes, links): they are never
//! logged.

mod filesystem;
mod smtp;
mod templates;

use std::time::Duration;

use crate::config::schema::Notifier as NotifierConfig;

/// Who a message goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// Display name.
    pub name: String,
    /// Email address.
    pub address: String,
}

/// What a one-time code is for (changes the wording).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePurpose {
    /// Elevating a session before a sensitive change.
    Elevation,
    /// Completing a login.
    SignIn,
}

/// The messages Portcullis sends.
#[derive(Clone, Debug)]
pub enum Message {
    /// A password reset link, valid for `expires_in`.
    ResetPassword { display_name: String, link: String, expires_in: Duration, remote_ip: String },
    /// A one-time code proving the user reads this mailbox. `revoke_link` cancels a code
    /// the user did not ask for.
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
    /// A second factor was added or removed.
    SecurityEvent { display_name: String, detail: String, remote_ip: String },
}

/// A message rendered for sending.
#[derive(Clone, Debug)]
pub struct Rendered {
    /// Subject line (the configured subject template applied to the title).
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Why a message could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A template failed to render.
    #[error("cannot render the mail template '{0}': {1}")]
    Template(String, String),
    /// The SMTP server could not be reached, refused TLS, authentication or a recipient.
    #[error("SMTP delivery failed: {0}")]
    Smtp(String),
    /// The message is not valid (bad address).
    #[error("invalid message: {0}")]
    Message(String),
    /// The notification file could not be written.
    #[error("cannot write the notification file: {0}")]
    Io(#[from] std::io::Error),
}

enum Transport {
    Smtp(Box<smtp::SmtpSender>),
    File(filesystem::FileSender),
}

/// Sends rendered messages through the configured transport.
pub struct Notifier {
    transport: Transport,
    templates: templates::Templates,
    subject: String,
}

impl Notifier {
    /// Builds the notifier from a validated `notifier` configuration; `Err` names the key at
    /// fault (unreadable template override, bad address).
    pub fn from_config(config: &NotifierConfig) -> Result<Self, String> {
        let templates = templates::Templates::load(&config.template_path)?;
        let (transport, subject) = match (&config.smtp, &config.filesystem) {
            (Some(smtp), _) => (Transport::Smtp(Box::new(smtp::SmtpSender::new(smtp)?)), smtp.subject.clone()),
            (None, Some(fs)) => (
                Transport::File(filesystem::FileSender::new(fs.filename.clone().unwrap_or_default())),
                "[Portcullis] {title}".to_string(),
            ),
            (None, None) => return Err("notifier: configure notifier.smtp or notifier.filesystem".into()),
        };
        Ok(Self { transport, templates, subject })
    }

    /// Proves at startup that mail can go out: SMTP connects, negotiates TLS as configured
    /// and authenticates; the file notifier opens its file for appending.
    pub async fn startup_check(&self) -> Result<(), NotifyError> {
        match &self.transport {
            Transport::Smtp(s) => s.check().await,
            Transport::File(f) => f.check().await,
        }
    }

    /// Renders `message` and sends it to `to`.
    pub async fn send(&self, to: &Recipient, message: &Message) -> Result<(), NotifyError> {
        let rendered = self.templates.render(message, &self.subject)?;
        tracing::debug!(to = %to.address, subject = %rendered.subject, "sending mail");
        match &self.transport {
            Transport::Smtp(s) => s.send(to, &rendered).await,
            Transport::File(f) => f.send(to, &rendered).await,
        }
    }
}
