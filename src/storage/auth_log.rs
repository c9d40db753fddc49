//! The authentication log: every attempt, for regulation and for auditing.

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use futures_util::FutureExt;

use super::connection::per_backend;
use super::schema::authentication_logs as log;
use super::{Storage, StorageError};

/// Which step of authentication an attempt was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthType {
    /// Username and password.
    FirstFactor,
    /// Time-based one-time password.
    Totp,
    /// Security key.
    WebAuthn,
    /// Passwordless passkey.
    Passkey,
    /// One-time recovery code.
    RecoveryCode,
    /// Emailed one-time code.
    EmailCode,
    /// Basic credentials on an authz endpoint.
    BasicAuth,
}

impl AuthType {
    /// The value stored in the log.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::FirstFactor => "1FA",
            Self::Totp => "TOTP",
            Self::WebAuthn => "WebAuthn",
            Self::Passkey => "Passkey",
            Self::RecoveryCode => "Recovery",
            Self::EmailCode => "EmailCode",
            Self::BasicAuth => "Basic",
        }
    }
}

/// One authentication attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthAttempt {
    /// Unix seconds.
    pub time: i64,
    /// Whether it succeeded.
    pub successful: bool,
    /// Whether it was refused because the user was banned (the password was not checked).
    pub banned: bool,
    /// Who it was for.
    pub username: String,
    /// Which step.
    pub auth_type: AuthType,
    /// Client address.
    pub remote_ip: String,
    /// Target URL the user was going to, if any.
    pub request_uri: String,
    /// Method of the original request, if any.
    pub request_method: String,
}

#[derive(Insertable)]
#[diesel(table_name = log)]
struct NewAttempt {
    time: i64,
    successful: bool,
    banned: bool,
    username: String,
    auth_type: String,
    remote_ip: String,
    request_uri: String,
    request_method: String,
}

/// When an attempt happened and how it went (what regulation needs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Queryable)]
pub struct AttemptOutcome {
    /// Unix seconds.
    pub time: i64,
    /// Whether it succeeded.
    pub successful: bool,
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

impl Storage {
    /// Appends `attempt` to the log.
    pub async fn log_attempt(&self, attempt: AuthAttempt) -> Result<(), StorageError> {
        let row = NewAttempt {
            time: attempt.time,
            successful: attempt.successful,
            banned: attempt.banned,
            username: truncate(&attempt.username, 100),
            auth_type: attempt.auth_type.as_str().to_string(),
            remote_ip: truncate(&attempt.remote_ip, 47),
            request_uri: truncate(&attempt.request_uri, 2048),
            request_method: truncate(&attempt.request_method, 8),
        };
        self.run(move |conn| {
            async move {
                let insert = diesel::insert_into(log::table).values(&row);
                per_backend!(conn, |c| insert.execute(c).await)?;
                Ok(())
            }
            .boxed()
        })
        .await
    }

    /// The newest `limit` attempts by `who` at or after `since` that were actually checked
    /// (refusals of banned users are not counted), newest first.
    pub async fn recent_attempts(
        &self,
        who: AttemptsBy<'_>,
        since: i64,
        limit: i64,
    ) -> Result<Vec<AttemptOutcome>, StorageError> {
        let (by_ip, value) = match who {
            AttemptsBy::User(u) => (false, u.to_string()),
            AttemptsBy::Ip(ip) => (true, ip.to_string()),
        };
        self.run(move |conn| {
            async move {
                let query = log::table
                    .filter(log::time.ge(since))
                    .filter(log::banned.eq(false))
                    .order((log::time.desc(), log::id.desc()))
                    .limit(limit)
                    .select((log::time, log::successful));
                // Boxed inside each arm: a boxed query is tied to one backend.
                Ok(per_backend!(conn, |c| {
                    let query = query.into_boxed();
                    let query = if by_ip {
                        query.filter(log::remote_ip.eq(&value))
                    } else {
                        query.filter(log::username.eq(&value))
                    };
                    query.load(c).await
                })?)
            }
            .boxed()
        })
        .await
    }
}

/// Whose attempts to read.
#[derive(Clone, Copy, Debug)]
pub enum AttemptsBy<'a> {
    /// One username.
    User(&'a str),
    /// One client address.
    Ip(&'a str),
}
