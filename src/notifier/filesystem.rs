//! Delivery into a file, for development and tests: each message is appended as one block
//! (headers, blank line, plain-text body, separator). A lock keeps concurrent messages
//! from interleaving; the file is created readable by its owner only, as it holds codes
//! and reset links.

use tokio::io::AsyncWriteExt;
use tokio::sync::Mutex;

use super::{NotifyError, Recipient, Rendered};

/// Line that ends every message in the file.
pub const SEPARATOR: &str = "----------------------------------------";

/// Appends messages to one file.
pub struct FileSender {
    path: String,
    lock: Mutex<()>,
}

impl FileSender {
    /// A sender writing to `path`.
    pub fn new(path: String) -> Self {
        Self { path, lock: Mutex::new(()) }
    }

    async fn open(&self) -> std::io::Result<tokio::fs::File> {
        let mut options = tokio::fs::OpenOptions::new();
        options.create(true).append(true);
        #[cfg(unix)]
        options.mode(0o600);
        options.open(&self.path).await
    }

    /// Opens the file for appending (creating it when missing).
    pub async fn check(&self) -> Result<(), NotifyError> {
        self.open().await.map(|_| ()).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.path)).into())
    }

    /// Appends `rendered` addressed to `to`.
    pub async fn send(&self, to: &Recipient, rendered: &Rendered) -> Result<(), NotifyError> {
        let date = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
        let block = format!(
            "Date: {date}\nTo: {} <{}>\nSubject: {}\n\n{}\n{SEPARATOR}\n\n",
            to.name,
            to.address,
            rendered.subject,
            rendered.text.trim_end()
        );
        let _guard = self.lock.lock().await;
        let mut file = self.open().await?;
        file.write_all(block.as_bytes()).await?;
        file.flush().await?;
        Ok(())
    }
}
