//! The one error type of every operation, and its one mapping to an HTTP status, a
//! translation key (the text shown, in the JSON API's English message and on the portal's
//! pages) and a `Retry-After`.
//!
//! Variants name what went wrong for the user, not where: the same refusal reads the same
//! from the login form, the JSON API and the proxy. Faults of a backing service keep their
//! cause for the log; the user only learns which service to wait for.

use std::fmt;

use http::StatusCode;

use crate::session::StoreError;
use crate::storage::StorageError;

/// Which kind of secret a refused or banned attempt was about (the message differs:
/// "check your credentials" or "check your code").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Factor {
    /// A password (login, Basic, change of password).
    Password,
    /// A one-time secret: TOTP, recovery or emailed code, security key.
    Code,
}

/// A two-step operation whose first step is missing or expired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pending {
    /// A TOTP setup waiting for its confirming code.
    TotpSetup,
    /// A security key challenge (second factor).
    KeyChallenge,
    /// A passkey challenge (passwordless login).
    PasskeyChallenge,
    /// A security key or passkey registration.
    KeyRegistration,
    /// An emailed code.
    Code,
}

/// Everything an operation can refuse or fail with.
#[derive(Debug)]
pub enum Error {
    /// The request is malformed; the detail says how.
    InvalidRequest(String),
    /// A state-changing request whose body is not JSON (forms and `text/plain` are what a
    /// cross-site page can send without asking).
    JsonRequired,
    /// A state-changing request a browser says came from another site or origin.
    CrossOrigin,
    /// The request's host is under no configured cookie domain.
    NoCookieDomain,
    /// No session, where one is needed to ask at all.
    Unauthenticated,
    /// No session, or not at the level the operation needs.
    Forbidden,
    /// The session must be elevated (identity proven again) first.
    ElevationRequired,
    /// The operation needs the second factor first.
    SecondFactorFirst,
    /// A reset needs the mailed link opened first.
    ResetLinkFirst,
    /// The account is disabled or gone.
    AccountUnavailable,
    /// Wrong login name or password (never says which).
    BadCredentials,
    /// Wrong one-time code.
    BadCode,
    /// Wrong code confirming a new setup (not a sign-in, so not 401).
    BadConfirmationCode,
    /// A security key's answer did not verify.
    KeyRefused,
    /// A WebAuthn ceremony could not be started or its answer was malformed.
    CeremonyFailed,
    /// Regulation: too many failures; try again after `retry_after` seconds.
    Banned {
        /// Seconds until the ban ends.
        retry_after: i64,
        /// What was being guessed.
        factor: Factor,
    },
    /// Too many codes were mailed recently.
    CodesRateLimited {
        /// Seconds until another may be sent.
        retry_after: i64,
    },
    /// Too many password reset requests from this client.
    ResetRateLimited {
        /// Seconds until another may be made.
        retry_after: i64,
    },
    /// Every password-hashing slot stayed busy.
    Busy,
    /// Regulation could not be checked or recorded (fail closed).
    RegulationUnavailable(StorageError),
    /// The session store cannot be reached.
    SessionStore(StoreError),
    /// The database cannot be reached or refused a query.
    Storage(StorageError),
    /// The users backend cannot be read or written.
    UsersUnavailable(String),
    /// A mail the user asked for could not be sent.
    MailFailed,
    /// A fault that is a bug (a value that must serialize did not).
    Internal(String),
    /// The new password breaks the policy; the detail says which rule.
    PasswordPolicy(String),
    /// The new password equals the old one.
    SamePassword,
    /// The two new passwords typed differ (portal forms).
    PasswordMismatch,
    /// The operation's first step is missing or expired.
    NothingPending(Pending),
    /// No security key is registered for the request's domain.
    NoKeyForDomain,
    /// The account has no email address to send a code to.
    NoEmailAddress,
    /// A TOTP option outside what the operator allows; the detail says which.
    TotpOption(String),
    /// No TOTP setup could be made for this account.
    TotpSetupFailed,
    /// The user has no TOTP device.
    NoTotp,
    /// A TOTP device must be registered first.
    TotpRequired,
    /// A credential description is empty, too long or has control characters.
    InvalidDescription,
    /// Another credential has that description.
    DescriptionTaken,
    /// The credential is registered already.
    CredentialRegistered,
    /// No credential with that ID belongs to the user.
    NoSuchCredential,
    /// No pending code has that ID.
    NoSuchCode,
    /// No personal API token with that ID belongs to the user.
    NoSuchToken,
    /// The user has as many personal API tokens in force as allowed.
    TooManyTokens,
    /// Too many token checks from this client address.
    TokenChecksRateLimited {
        /// Seconds until another may be made.
        retry_after: i64,
    },
    /// A second-factor method that is unknown or turned off; the detail lists the others.
    UnknownMethod(String),
    /// The reset link is invalid, expired or used.
    ResetLinkInvalid,
    /// The bootstrap token is wrong or unknown.
    BootstrapTokenInvalid,
    /// The bootstrap token's lifetime is over.
    BootstrapTokenExpired,
    /// The bootstrap token was used before.
    BootstrapTokenUsed,
    /// Too many refused bootstrap tokens from this client address.
    BootstrapRateLimited {
        /// Seconds until another may be tried.
        retry_after: i64,
    },
    /// Users exist already (or the first administrator is being created): setup is complete.
    UsersExist,
    /// A user with that name exists.
    UserExists,
    /// No user has that name.
    UnknownUser,
    /// An administrator tried to disable, delete or un-admin themselves.
    SelfLockout,
    /// A new user's details are not acceptable; the detail says why.
    InvalidUser(String),
    /// The users backend does not do that (users in LDAP are managed in the directory);
    /// the detail names the backend.
    NotSupportedByBackend(String),
    /// An account API bearer token that is forged, expired, of the wrong kind, issued
    /// before the password changed, or of a user no longer active.
    TokenInvalid,
    /// A referral token that is unknown, expired or used up.
    ReferralInvalid,
    /// Registration is off.
    SignupClosed,
    /// The user has as many valid referral tokens as allowed.
    ReferralLimit,
    /// The user has no live session with that ID.
    NoSuchSession,
    /// No upstream OpenID provider is set up.
    UpstreamNotConfigured,
    /// The upstream provider could not be reached or answered nonsense; the cause is
    /// logged.
    UpstreamUnavailable(String),
    /// An upstream sign-in that did not pass the checks (state, nonce, signature, expiry,
    /// a sign-in not started here); the detail says which.
    UpstreamRefused(String),
    /// The upstream account is no local user's and none may be created for it; the
    /// detail says why.
    UpstreamNoAccount(String),
    /// A device-addition link that is malformed, unknown, expired or used.
    DeviceLinkInvalid,
    /// The user has as many unused device-addition links as allowed.
    TooManyDeviceLinks,
}

/// The result of an operation.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// The HTTP status and the translation key of the text, in one table.
    pub fn class(&self) -> (StatusCode, &'static str) {
        use StatusCode as S;
        match self {
            Self::InvalidRequest(_) => (S::BAD_REQUEST, "error.invalid_request"),
            Self::JsonRequired => (S::UNSUPPORTED_MEDIA_TYPE, "error.json_required"),
            Self::CrossOrigin => (S::FORBIDDEN, "error.cross_origin"),
            Self::NoCookieDomain => (S::FORBIDDEN, "error.no_cookie_domain"),
            Self::Unauthenticated => (S::UNAUTHORIZED, "error.unauthenticated"),
            Self::Forbidden => (S::FORBIDDEN, "error.forbidden"),
            Self::ElevationRequired => (S::FORBIDDEN, "error.elevation_required"),
            Self::SecondFactorFirst => (S::FORBIDDEN, "error.second_factor_first"),
            Self::ResetLinkFirst => (S::FORBIDDEN, "error.reset_link_first"),
            Self::AccountUnavailable => (S::FORBIDDEN, "error.account_unavailable"),
            Self::BadCredentials => (S::UNAUTHORIZED, "error.bad_credentials"),
            Self::BadCode => (S::UNAUTHORIZED, "error.bad_code"),
            Self::BadConfirmationCode => (S::BAD_REQUEST, "error.bad_code"),
            Self::KeyRefused => (S::UNAUTHORIZED, "error.key_refused"),
            Self::CeremonyFailed => (S::BAD_REQUEST, "error.key_refused"),
            Self::Banned { factor: Factor::Password, .. } => (S::TOO_MANY_REQUESTS, "error.bad_credentials"),
            Self::Banned { factor: Factor::Code, .. } => (S::TOO_MANY_REQUESTS, "error.bad_code"),
            Self::CodesRateLimited { .. } => (S::TOO_MANY_REQUESTS, "error.codes_rate_limited"),
            Self::ResetRateLimited { .. } => (S::TOO_MANY_REQUESTS, "error.reset_rate_limited"),
            Self::Busy => (S::SERVICE_UNAVAILABLE, "error.busy"),
            Self::RegulationUnavailable(_) => (S::SERVICE_UNAVAILABLE, "error.regulation_unavailable"),
            Self::SessionStore(_) => (S::SERVICE_UNAVAILABLE, "error.session_store"),
            Self::Storage(_) => (S::SERVICE_UNAVAILABLE, "error.storage"),
            Self::UsersUnavailable(_) => (S::SERVICE_UNAVAILABLE, "error.users_unavailable"),
            Self::MailFailed => (S::SERVICE_UNAVAILABLE, "error.mail_failed"),
            Self::Internal(_) => (S::INTERNAL_SERVER_ERROR, "error.internal"),
            Self::PasswordPolicy(_) => (S::BAD_REQUEST, "error.password_policy"),
            Self::SamePassword => (S::BAD_REQUEST, "error.same_password"),
            Self::PasswordMismatch => (S::BAD_REQUEST, "error.password_mismatch"),
            Self::NothingPending(Pending::TotpSetup) => (S::BAD_REQUEST, "error.no_totp_setup"),
            Self::NothingPending(Pending::KeyChallenge) => (S::BAD_REQUEST, "error.no_key_challenge"),
            Self::NothingPending(Pending::PasskeyChallenge) => (S::BAD_REQUEST, "error.no_passkey_challenge"),
            Self::NothingPending(Pending::KeyRegistration) => (S::BAD_REQUEST, "error.no_key_registration"),
            Self::NothingPending(Pending::Code) => (S::BAD_REQUEST, "error.no_code"),
            Self::NoKeyForDomain => (S::BAD_REQUEST, "error.no_key_for_domain"),
            Self::NoEmailAddress => (S::BAD_REQUEST, "error.no_email_address"),
            Self::TotpOption(_) => (S::BAD_REQUEST, "error.totp_option"),
            Self::TotpSetupFailed => (S::BAD_REQUEST, "error.totp_setup_failed"),
            Self::NoTotp => (S::NOT_FOUND, "error.no_totp"),
            Self::TotpRequired => (S::BAD_REQUEST, "error.totp_required"),
            Self::InvalidDescription => (S::BAD_REQUEST, "error.invalid_description"),
            Self::DescriptionTaken => (S::CONFLICT, "error.description_taken"),
            Self::CredentialRegistered => (S::CONFLICT, "error.credential_registered"),
            Self::NoSuchCredential => (S::NOT_FOUND, "error.no_such_credential"),
            Self::NoSuchCode => (S::NOT_FOUND, "error.no_such_code"),
            Self::NoSuchToken => (S::NOT_FOUND, "error.no_such_token"),
            Self::TooManyTokens => (S::CONFLICT, "error.too_many_tokens"),
            Self::TokenChecksRateLimited { .. } => (S::TOO_MANY_REQUESTS, "error.token_checks_rate_limited"),
            Self::UnknownMethod(_) => (S::BAD_REQUEST, "error.unknown_method"),
            Self::ResetLinkInvalid => (S::BAD_REQUEST, "error.reset_link_invalid"),
            Self::BootstrapTokenInvalid => (S::UNAUTHORIZED, "error.bootstrap_token_invalid"),
            Self::BootstrapTokenExpired => (S::UNAUTHORIZED, "error.bootstrap_token_expired"),
            Self::BootstrapTokenUsed => (S::CONFLICT, "error.bootstrap_token_used"),
            Self::BootstrapRateLimited { .. } => (S::TOO_MANY_REQUESTS, "error.bootstrap_rate_limited"),
            Self::UsersExist => (S::CONFLICT, "error.users_exist"),
            Self::UserExists => (S::CONFLICT, "error.user_exists"),
            Self::UnknownUser => (S::NOT_FOUND, "error.unknown_user"),
            Self::SelfLockout => (S::CONFLICT, "error.self_lockout"),
            Self::InvalidUser(_) => (S::BAD_REQUEST, "error.invalid_user"),
            Self::NotSupportedByBackend(_) => (S::CONFLICT, "error.not_supported_by_backend"),
            Self::TokenInvalid => (S::UNAUTHORIZED, "error.token_invalid"),
            Self::ReferralInvalid => (S::BAD_REQUEST, "error.referral_invalid"),
            Self::SignupClosed => (S::FORBIDDEN, "error.signup_closed"),
            Self::ReferralLimit => (S::CONFLICT, "error.referral_limit"),
            Self::NoSuchSession => (S::NOT_FOUND, "error.no_such_session"),
            Self::UpstreamNotConfigured => (S::NOT_FOUND, "error.upstream_not_configured"),
            Self::UpstreamUnavailable(_) => (S::BAD_GATEWAY, "error.upstream_unavailable"),
            Self::UpstreamRefused(_) => (S::UNAUTHORIZED, "error.upstream_refused"),
            Self::UpstreamNoAccount(_) => (S::FORBIDDEN, "error.upstream_no_account"),
            Self::DeviceLinkInvalid => (S::NOT_FOUND, "error.device_link_invalid"),
            Self::TooManyDeviceLinks => (S::CONFLICT, "error.too_many_device_links"),
        }
    }

    /// A rate limiter's refusal: `over` past the limit, the store's fault when the counts
    /// cannot be read.
    pub fn limited(l: crate::identity::rate_limit::Limited, over: impl FnOnce(i64) -> Error) -> Error {
        match l {
            crate::identity::rate_limit::Limited::Over { retry_after } => over(retry_after),
            crate::identity::rate_limit::Limited::Unavailable(e) => Error::SessionStore(e),
        }
    }

    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        self.class().0
    }

    /// The translation key of the text shown to the user.
    pub fn key(&self) -> &'static str {
        self.class().1
    }

    /// The part of the text that is not translated (a policy rule, a JSON error), if any.
    fn detail(&self) -> Option<&str> {
        match self {
            Self::InvalidRequest(d)
            | Self::PasswordPolicy(d)
            | Self::TotpOption(d)
            | Self::UnknownMethod(d)
            | Self::InvalidUser(d)
            | Self::NotSupportedByBackend(d)
            | Self::UpstreamRefused(d)
            | Self::UpstreamNoAccount(d) => Some(d),
            _ => None,
        }
    }

    /// Seconds the client should wait before trying again, when that is known.
    pub fn retry_after(&self) -> Option<i64> {
        match self {
            Self::Banned { retry_after, .. }
            | Self::CodesRateLimited { retry_after }
            | Self::ResetRateLimited { retry_after }
            | Self::TokenChecksRateLimited { retry_after }
            | Self::BootstrapRateLimited { retry_after } => Some((*retry_after).max(1)),
            Self::Busy => Some(1),
            _ => None,
        }
    }

    /// The text in `lang`, with the detail filled in.
    pub fn text(&self, lang: &str) -> String {
        let text = crate::i18n::text(lang, self.key());
        match self.detail() {
            Some(detail) => text.replace("{detail}", detail),
            None => text,
        }
    }

    /// The English text (the JSON API's `message`).
    pub fn message(&self) -> String {
        self.text(crate::i18n::FALLBACK)
    }

    /// The cause behind a fault of a backing service, for the log.
    pub fn cause(&self) -> Option<String> {
        match self {
            Self::RegulationUnavailable(e) | Self::Storage(e) => Some(e.to_string()),
            Self::SessionStore(e) => Some(e.to_string()),
            Self::UsersUnavailable(e) | Self::Internal(e) | Self::UpstreamUnavailable(e) => Some(e.clone()),
            _ => None,
        }
    }

    /// Logs a fault once, where it becomes a response; refusals are not faults.
    pub fn log(&self) {
        if self.status().is_server_error() {
            let cause = self.cause().unwrap_or_default();
            tracing::error!(error = %self, cause = %cause, "request failed");
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for Error {}

impl From<StorageError> for Error {
    fn from(e: StorageError) -> Self {
        Self::Storage(e)
    }
}

impl From<crate::authn::users::UsersError> for Error {
    fn from(e: crate::authn::users::UsersError) -> Self {
        use crate::authn::users::UsersError;
        match e {
            UsersError::Unavailable(why) => Self::UsersUnavailable(why),
            UsersError::UnknownUser(_) => Self::UnknownUser,
            UsersError::UserExists(_) => Self::UserExists,
            UsersError::NotSupported(backend) => Self::NotSupportedByBackend(backend.to_string()),
            UsersError::Refused(why) => Self::PasswordPolicy(why),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Self::SessionStore(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn storage() -> StorageError {
        StorageError::Unavailable("down".into())
    }

    /// Each variant's status, English message and Retry-After.
    #[test]
    fn mapping_table() {
        let cases: Vec<(Error, u16, &str, Option<i64>)> = vec![
            (Error::InvalidRequest("invalid JSON body: x".into()), 400, "invalid JSON body: x", None),
            (Error::Forbidden, 403, "Forbidden", None),
            (Error::BadCredentials, 401, "Authentication failed. Check your credentials.", None),
            (Error::BadCode, 401, "Authentication failed. Check your code.", None),
            (
                Error::Banned { retry_after: 0, factor: Factor::Password },
                429,
                "Authentication failed. Check your credentials.",
                Some(1),
            ),
            (
                Error::Banned { retry_after: 42, factor: Factor::Code },
                429,
                "Authentication failed. Check your code.",
                Some(42),
            ),
            (
                Error::CodesRateLimited { retry_after: 9 },
                429,
                "Too many codes were requested; try again later",
                Some(9),
            ),
            (Error::Busy, 503, "Too many logins in progress; try again shortly", Some(1)),
            (Error::RegulationUnavailable(storage()), 503, "Authentication is temporarily unavailable", None),
            (Error::Storage(storage()), 503, "Storage is unavailable; try again shortly", None),
            (Error::PasswordPolicy("at least 12 characters".into()), 400, "at least 12 characters", None),
            (Error::NoTotp, 404, "No TOTP device is registered", None),
            (Error::DescriptionTaken, 409, "Another credential already has that description", None),
            (Error::NothingPending(Pending::Code), 400, "No code is pending; request one first", None),
            (Error::Internal("bug".into()), 500, "Internal Server Error", None),
            (Error::BootstrapTokenInvalid, 401, "Invalid bootstrap token", None),
            (Error::DeviceLinkInvalid, 404, "The link is invalid, has expired or was already used", None),
            (Error::BootstrapTokenExpired, 401, "The bootstrap token has expired; issue a new one", None),
            (Error::BootstrapTokenUsed, 409, "The bootstrap token was used already", None),
            (
                Error::BootstrapRateLimited { retry_after: 30 },
                429,
                "Too many wrong bootstrap tokens; try again later",
                Some(30),
            ),
            (Error::UsersExist, 409, "Setup is complete: users exist already", None),
        ];
        for (error, status, message, retry) in cases {
            assert_eq!(error.status().as_u16(), status, "{error:?}");
            assert_eq!(error.message(), message, "{error:?}");
            assert_eq!(error.retry_after(), retry, "{error:?}");
        }
    }

    /// Every variant's key has a text in the fallback table.
    #[test]
    fn every_key_has_a_text() {
        let all = [
            Error::InvalidRequest(String::new()),
            Error::JsonRequired,
            Error::CrossOrigin,
            Error::NoCookieDomain,
            Error::Unauthenticated,
            Error::Forbidden,
            Error::ElevationRequired,
            Error::SecondFactorFirst,
            Error::ResetLinkFirst,
            Error::AccountUnavailable,
            Error::BadCredentials,
            Error::BadCode,
            Error::BadConfirmationCode,
            Error::KeyRefused,
            Error::CeremonyFailed,
            Error::Banned { retry_after: 1, factor: Factor::Code },
            Error::CodesRateLimited { retry_after: 1 },
            Error::ResetRateLimited { retry_after: 1 },
            Error::Busy,
            Error::RegulationUnavailable(storage()),
            Error::SessionStore(StoreError::Unavailable("x".into())),
            Error::Storage(storage()),
            Error::UsersUnavailable(String::new()),
            Error::MailFailed,
            Error::Internal(String::new()),
            Error::PasswordPolicy(String::new()),
            Error::SamePassword,
            Error::PasswordMismatch,
            Error::NothingPending(Pending::TotpSetup),
            Error::NothingPending(Pending::KeyChallenge),
            Error::NothingPending(Pending::PasskeyChallenge),
            Error::NothingPending(Pending::KeyRegistration),
            Error::NothingPending(Pending::Code),
            Error::NoKeyForDomain,
            Error::NoEmailAddress,
            Error::TotpOption(String::new()),
            Error::TotpSetupFailed,
            Error::NoTotp,
            Error::TotpRequired,
            Error::InvalidDescription,
            Error::DescriptionTaken,
            Error::CredentialRegistered,
            Error::NoSuchCredential,
            Error::NoSuchCode,
            Error::NoSuchToken,
            Error::TooManyTokens,
            Error::TokenChecksRateLimited { retry_after: 1 },
            Error::UnknownMethod(String::new()),
            Error::ResetLinkInvalid,
            Error::BootstrapTokenInvalid,
            Error::BootstrapTokenExpired,
            Error::BootstrapTokenUsed,
            Error::BootstrapRateLimited { retry_after: 1 },
            Error::UsersExist,
            Error::UserExists,
            Error::UnknownUser,
            Error::SelfLockout,
            Error::InvalidUser(String::new()),
            Error::NotSupportedByBackend(String::new()),
            Error::NoSuchSession,
            Error::UpstreamNotConfigured,
            Error::UpstreamUnavailable(String::new()),
            Error::UpstreamRefused(String::new()),
            Error::UpstreamNoAccount(String::new()),
        ];
        for error in all {
            assert!(crate::i18n::has(error.key()), "{error:?}: no text for {}", error.key());
            assert_ne!(error.message(), error.key(), "{error:?}");
        }
    }
}
