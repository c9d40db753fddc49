//! Delivery to a file, for development and tests without a mail server.
//!
//! Each message is appended as one block:
//!
//! ```text
//! Date: Tue, 15 Nov 1994 08:12:31 +0000
//! To: Jane Doe <jane@example.com>
//! Subject: [Portcullis] Reset your password
//!
//! <plain-text body>
//! ----------------------------------------
//!
//! ```
//!
//! The file is created readable by its owner only (messages hold reset links and codes)
//! and opened for every message, so it may be rotated or removed while the server runs.
//! A lock keeps concurrent messages from interleaving.

use std::path::PathBuf;
use std::time::SystemTime;

use lettre::message::header::{Date, Headers};
use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{NotifyError, Recipient};
use crate::config::schema::FilesystemNotifier;

/// The line that ends each message.
const SEPARATOR: &str = "----------------------------------------";

/// Appends messages to one file.
pub(super) struct FileSink {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileSink {
    /// From `notifier.filesystem`; the file name is required.
    pub(super) fn from_config(c: &FilesystemNotifier) -> Result<Self, String> {
        let filename =
            c.filename.as_deref().filter(|f| !f.is_empty()).ok_or("notifier.filesystem.filename: required")?;
        Ok(Self { path: PathBuf::from(filename), lock: Mutex::new(()) })
    }

    /// Checks the file can be opened for appending (creating it if missing; its directory
    /// must exist).
    pub(super) async fn startup_check(&self) -> Result<(), NotifyError> {
        self.open().await.map(drop)
    }

    /// Appends one message.
    pub(super) async fn append(&self, to: &Recipient, subject: &str, text: &str) -> Result<(), NotifyError> {
        let block = format_block(SystemTime::now(), to, subject, text);
        let _guard = self.lock.lock().await;
        let mut file = self.open().await?;
        file.write_all(block.as_bytes()).await.map_err(|e| self.io_error(e))?;
        file.flush().await.map_err(|e| self.io_error(e))
    }

    async fn open(&self) -> Result<tokio::fs::File, NotifyError> {
        tokio::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(&self.path)
            .await
            .map_err(|e| self.io_error(e))
    }

    fn io_error(&self, source: std::io::Error) -> NotifyError {
        NotifyError::Io { path: self.path.display().to_string(), source }
    }
}

/// One message as written to the file.
fn format_block(now: SystemTime, to: &Recipient, subject: &str, text: &str) -> String {
    let mut headers = Headers::new();
    headers.set(Date::new(now));
    let date = headers.get_raw("Date").unwrap_or_default().to_string();
    let name = one_line(&to.name);
    let to = if name.is_empty() {
        format!("<{}>", one_line(&to.address))
    } else {
        format!("{name} <{}>", one_line(&to.address))
    };
    format!(
        "Date: {date}\nTo: {to}\nSubject: {subject}\n\n{text}\n{SEPARATOR}\n\n",
        subject = one_line(subject),
        text = text.trim_end_matches('\n'),
    )
}

/// `text` without line breaks or other control characters, which would forge header lines.
fn one_line(text: &str) -> String {
    text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect::<String>().trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn block_format() {
        let when = SystemTime::UNIX_EPOCH + Duration::from_secs(784_887_151);
        let to = Recipient { name: "Jane Doe".into(), address: "jane@example.com".into() };
        let block = format_block(when, &to, "[Portcullis] Hello", "Line one\nLine two\n");
        assert_eq!(
            block,
            "Date: Tue, 15 Nov 1994 08:12:31 +0000\nTo: Jane Doe <jane@example.com>\nSubject: [Portcullis] Hello\n\n\
             Line one\nLine two\n----------------------------------------\n\n"
        );
    }

    #[test]
    fn header_lines_cannot_be_forged() {
        let to = Recipient { name: "Eve\nBcc: x@example.com".into(), address: "eve@example.com".into() };
        let block = format_block(SystemTime::now(), &to, "Hi\r\nX: y", "body");
        let head: Vec<_> = block.split("\n\n").next().unwrap().lines().collect();
        assert_eq!(head.len(), 3, "{block}");
        assert_eq!(head[1], "To: Eve Bcc: x@example.com <eve@example.com>");
        let nameless = Recipient { name: " ".into(), address: "a@example.com".into() };
        assert!(format_block(SystemTime::now(), &nameless, "s", "b").contains("\nTo: <a@example.com>\n"));
    }
}
