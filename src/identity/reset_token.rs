//! Password reset links: a signed JWT (HS256/384/512 under
//! `identity_validation.reset_password.jwt_secret`) naming the user, with a random ID that
//! is recorded when issued and marked consumed when used, so a link works once, expires,
//! and can be revoked by the user ("I did not ask for this").

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::schema::ResetPasswordValidation;
use crate::storage::{Storage, StorageError};

/// The action recorded for reset tokens.
pub const ACTION: &str = "ResetPassword";
/// Issuer claim.
const ISSUER: &str = "Portcullis";
/// Reset links a user can be sent per window (further requests answer the same but send
/// nothing).
pub const MAX_PER_WINDOW: i64 = 3;
/// Window of that limit.
pub const RATE_WINDOW_SECS: i64 = 900;

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    jti: String,
    iss: String,
    action: String,
    username: String,
    iat: i64,
    exp: i64,
}

/// Why a token was refused.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Bad signature, expired, wrong action, used or revoked.
    #[error("the link is invalid, has expired or was already used")]
    Invalid,
    /// The database failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Issues and redeems reset tokens.
#[derive(Clone)]
pub struct ResetTokens {
    storage: Storage,
    algorithm: Algorithm,
    encoding: EncodingKey,
    decoding: DecodingKey,
    lifespan: i64,
}

impl ResetTokens {
    /// Tokens signed per `config` (validated: the secret is set, the algorithm known).
    pub fn new(config: &ResetPasswordValidation, storage: Storage) -> Self {
        let algorithm = match config.jwt_algorithm.to_ascii_uppercase().as_str() {
            "HS384" => Algorithm::HS384,
            "HS512" => Algorithm::HS512,
            _ => Algorithm::HS256,
        };
        let secret = config.jwt_secret.expose().as_bytes();
        Self {
            storage,
            algorithm,
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            lifespan: i64::try_from(config.jwt_lifespan.get().as_secs()).unwrap_or(300),
        }
    }

    /// How long a link stays valid, in seconds.
    pub fn lifespan(&self) -> i64 {
        self.lifespan
    }

    /// A new token for `username`, or `None` when the user was sent too many recently.
    pub async fn issue(&self, username: &str, now: i64) -> Result<Option<String>, StorageError> {
        if self.storage.identity_tokens_since(username, now - RATE_WINDOW_SECS).await? >= MAX_PER_WINDOW {
            return Ok(None);
        }
        let claims = Claims {
            jti: uuid::Uuid::new_v4().to_string(),
            iss: ISSUER.into(),
            action: ACTION.into(),
            username: username.to_string(),
            iat: now,
            exp: now + self.lifespan,
        };
        let token = jsonwebtoken::encode(&Header::new(self.algorithm), &claims, &self.encoding)
            .map_err(|e| StorageError::Crypto(format!("cannot sign the reset token: {e}")))?;
        self.storage.identity_token_insert(&claims.jti, username, ACTION, now, claims.exp).await?;
        Ok(Some(token))
    }

    fn decode(&self, token: &str) -> Result<Claims, TokenError> {
        let mut validation = Validation::new(self.algorithm);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.leeway = 0;
        let data = jsonwebtoken::decode::<Claims>(token.trim(), &self.decoding, &validation)
            .map_err(|_| TokenError::Invalid)?;
        if data.claims.action != ACTION {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }

    /// The user a genuine `token` names, without consuming it (so that a new password
    /// the policy refuses does not spend the link).
    pub fn addressee(&self, token: &str) -> Result<String, TokenError> {
        Ok(self.decode(token)?.username)
    }

    /// Verifies and consumes `token`; returns the user it was issued to.
    pub async fn redeem(&self, token: &str, now: i64) -> Result<String, TokenError> {
        let claims = self.decode(token)?;
        if claims.exp <= now || !self.storage.identity_token_consume(&claims.jti, ACTION, now).await? {
            return Err(TokenError::Invalid);
        }
        Ok(claims.username)
    }

    /// Revokes `token` if it is genuine and unused.
    pub async fn revoke(&self, token: &str, now: i64) -> Result<(), TokenError> {
        let claims = self.decode(token)?;
        if self.storage.identity_token_revoke(&claims.jti, now).await? { Ok(()) } else { Err(TokenError::Invalid) }
    }
}
