//! Emailed one-time codes: short random codes that prove the user reads their mailbox,
//! used to elevate a session and as the `email` second factor. Codes are stored as keyed
//! hashes, expire, work once, die after a few wrong guesses, and are rate-limited per
//! user so a mailbox cannot be flooded.

use rand::Rng;
use subtle::ConstantTimeEq;

use crate::storage::{OneTimeCode, Storage, StorageError};

/// What a code is for; a code for one purpose never passes for another.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Elevating a session for sensitive changes.
    Elevation,
    /// Completing a login as the second factor.
    SignIn,
    /// Proving an email address.
    VerifyEmail,
}

impl Intent {
    fn as_str(self) -> &'static str {
        match self {
            Self::Elevation => "elevation",
            Self::SignIn => "sign_in",
            Self::VerifyEmail => "verify_email",
        }
    }
}

/// Wrong guesses after which a code is revoked.
pub const MAX_ATTEMPTS: i32 = 5;
/// Codes a user may be sent per [`RATE_WINDOW_SECS`] for one intent.
pub const MAX_PER_WINDOW: i64 = 5;
/// Window of the per-user rate limit.
pub const RATE_WINDOW_SECS: i64 = 900;

/// Unambiguous upper-case letters and digits.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

fn random_code(length: u32) -> String {
    let mut rng = rand::rng();
    (0..length).map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char).collect()
}

/// Why a code was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// Wrong, expired, used, revoked, or for someone or something else.
    #[error("the code is invalid or has expired")]
    Invalid,
    /// Too many codes were requested recently; retry after this many seconds.
    #[error("too many codes requested")]
    RateLimited(i64),
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Issues and checks one-time codes.
#[derive(Clone)]
pub struct OneTimeCodes {
    storage: Storage,
}

impl OneTimeCodes {
    /// Codes kept in `storage`.
    pub fn new(storage: Storage) -> Self {
        Self { storage }
    }

    /// A new code of `characters` characters for `username`, valid for `lifespan_secs`.
    /// Returns its public ID (for the session and the revoke link) and the code to mail.
    pub async fn issue(
        &self,
        username: &str,
        intent: Intent,
        characters: u32,
        lifespan_secs: i64,
        now: i64,
    ) -> Result<(String, String), CodeError> {
        let recent = self.storage.otc_count_since(username, intent.as_str(), now - RATE_WINDOW_SECS).await?;
        if recent >= MAX_PER_WINDOW {
            return Err(CodeError::RateLimited(RATE_WINDOW_SECS));
        }
        let code = random_code(characters.clamp(6, 20));
        let public_id = uuid::Uuid::new_v4().to_string();
        self.storage
            .otc_insert(OneTimeCode {
                public_id: public_id.clone(),
                username: username.to_string(),
                intent: intent.as_str().to_string(),
                code_hash: self.hash(&code),
                created_at: now,
                expires_at: now + lifespan_secs,
                consumed_at: None,
                revoked_at: None,
                attempts: 0,
            })
            .await?;
        Ok((public_id, code))
    }

    fn hash(&self, code: &str) -> String {
        let canonical: String =
            code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect();
        self.storage.cipher().keyed_hash("one-time-code", &canonical)
    }

    /// Checks `code` against the pending code `public_id` of `username` for `intent`, and
    /// consumes it on success. A wrong guess counts towards revocation.
    pub async fn verify(
        &self,
        public_id: &str,
        username: &str,
        intent: Intent,
        code: &str,
        now: i64,
    ) -> Result<(), CodeError> {
        let Some(stored) = self.storage.otc_get(public_id).await? else { return Err(CodeError::Invalid) };
        if stored.username != username || stored.intent != intent.as_str() || !stored.usable(now) {
            return Err(CodeError::Invalid);
        }
        let matches: bool = self.hash(code).as_bytes().ct_eq(stored.code_hash.as_bytes()).into();
        if !matches {
            self.storage.otc_wrong_guess(public_id, MAX_ATTEMPTS, now).await?;
            return Err(CodeError::Invalid);
        }
        if self.storage.otc_consume(public_id, now).await? { Ok(()) } else { Err(CodeError::Invalid) }
    }

    /// Cancels the pending code `public_id` (user pressed cancel or the revoke link).
    pub async fn revoke(&self, public_id: &str, now: i64) -> Result<bool, CodeError> {
        Ok(self.storage.otc_revoke(public_id, now).await?)
    }
}
