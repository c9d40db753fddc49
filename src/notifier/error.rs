//! Why a notification could not be delivered.
//!
//! Each variant names the step that failed (connecting, TLS, authentication, the server
//! refusing an address or the message, rendering, writing a file), so an operator reading
//! the log knows what to fix. The texts carry the server's own reply where there is one,
//! but never a credential or anything from a message body: those hold reset links and
//! one-time codes.

use std::time::Duration;

/// A notification that could not be delivered (or a startup check that failed).
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// No SMTP conversation could be had: name resolution, refused or broken connection.
    #[error("cannot reach the SMTP server {server}: {reason}")]
    Connection {
        /// `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The whole exchange took longer than `notifier.smtp.timeout`.
    #[error("the SMTP server {server} did not complete the exchange within {after:?} (notifier.smtp.timeout)")]
    Timeout {
        /// `host:port`.
        server: String,
        /// The configured timeout.
        after: Duration,
    },
    /// TLS could not be set up: STARTTLS not offered where it is required, a failed
    /// handshake or an untrusted certificate.
    #[error("TLS with the SMTP server {server} failed: {reason}")]
    Tls {
        /// `host:port`.
        server: String,
        /// What went wrong.
        reason: String,
    },
    /// The server did not accept the configured username and password.
    #[error("the SMTP server {server} refused to authenticate user '{username}': {reason}")]
    Auth {
        /// `host:port`.
        server: String,
        /// `notifier.smtp.username` (never the password).
        username: String,
        /// The server's reply.
        reason: String,
    },
    /// The server refused the sender, a recipient or the message itself.
    #[error("the SMTP server {server} refused {what}: {reason}")]
    Rejected {
        /// `host:port`.
        server: String,
        /// What was refused, e.g. `recipient <a@example.com>`.
        what: String,
        /// The server's reply.
        reason: String,
    },
    /// The recipient's address is not a valid email address.
    #[error("invalid recipient address '{address}': {reason}")]
    InvalidRecipient {
        /// The address as given.
        address: String,
        /// Why it is invalid.
        reason: String,
    },
    /// A mail template failed to render (only possible with overrides in
    /// `notifier.template_path`, which are test-rendered at startup).
    #[error("mail template '{template}' failed to render: {reason}")]
    Template {
        /// Template file name.
        template: String,
        /// The template engine's error (location, not values).
        reason: String,
    },
    /// The filesystem notifier could not open or write its file.
    #[error("cannot write notifications to '{path}': {source}")]
    Io {
        /// `notifier.filesystem.filename`.
        path: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl NotifyError {
    /// Whether the error says the server (or the file) cannot be reached or used, as
    /// opposed to it refusing one message.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Self::Connection { .. } | Self::Timeout { .. } | Self::Tls { .. } | Self::Auth { .. } | Self::Io { .. }
        )
    }
}
