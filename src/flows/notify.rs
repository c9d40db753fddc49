//! Mail the operations send: now, when the user asked for it and must know whether it
//! left; or in the background, for notices the request does not wait for.

use crate::notifier::{Message, Recipient};
use crate::server::App;

use super::{Error, Result};

/// Sends `message` now; [`Error::MailFailed`] when it cannot be delivered.
pub async fn now(app: &App, name: &str, address: String, message: Message) -> Result<()> {
    let to = Recipient { name: name.to_string(), address };
    app.services.notifier.send(&to, &message).await.map_err(|e| {
        tracing::error!(error = %e, "cannot send mail");
        Error::MailFailed
    })
}

/// Sends `message` in the background, if there is an address.
pub fn later(app: &App, name: &str, address: Option<&String>, message: Message) {
    let Some(address) = address.cloned() else { return };
    let notifier = app.services.notifier.clone();
    let to = Recipient { name: name.to_string(), address };
    tokio::spawn(async move {
        if let Err(e) = notifier.send(&to, &message).await {
            tracing::error!(error = %e, "cannot send a notice");
        }
    });
}

/// Tells the user by mail that a second factor was added or removed.
pub fn security_event(app: &App, display_name: &str, emails: &[String], remote_ip: String, detail: String) {
    let message = Message::SecurityEvent { display_name: display_name.to_string(), detail, remote_ip };
    later(app, display_name, emails.first(), message);
}

/// Tells the user by mail that their password changed.
pub fn password_changed(app: &App, display_name: &str, emails: &[String], remote_ip: String) {
    let message = Message::PasswordChanged { display_name: display_name.to_string(), remote_ip };
    later(app, display_name, emails.first(), message);
}
