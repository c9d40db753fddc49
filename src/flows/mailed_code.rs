//! Codes mailed to the user: one check (ban, pending code, verify, attempt recorded)
//! serves both session elevation and the email second factor.

use super::credentials::{self, Origin};
use super::{Caller, Error, Pending, Result, notify};
use crate::clock::now;
use crate::identity::codes::{CodeError, Intent};
use crate::notifier::{CodePurpose, Message};
use crate::server::App;
use crate::session::{AuthLevel, SessionData};
use crate::storage::AuthType;

/// Issues a one-time code for `purpose` and mails it to the user's first address; returns
/// the code's public ID. `revoke` builds the cancel link from that ID, when there is one.
pub async fn send(
    app: &App,
    caller: &Caller<'_>,
    purpose: CodePurpose,
    characters: u32,
    lifespan: std::time::Duration,
    revoke: impl Fn(&str) -> Option<String>,
) -> Result<String> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let address = data.emails.first().cloned().ok_or(Error::NoEmailAddress)?;
    let secs = i64::try_from(lifespan.as_secs()).unwrap_or(300);
    let (id, code) = match app.services.codes.issue(&data.username, intent_of(purpose), characters, secs, now()).await {
        Ok(issued) => issued,
        Err(CodeError::RateLimited(retry_after)) => return Err(Error::CodesRateLimited { retry_after }),
        Err(CodeError::Storage(e)) => return Err(e.into()),
        Err(e) => return Err(Error::Internal(e.to_string())),
    };
    let message = Message::OneTimeCode {
        display_name: data.display_name.clone(),
        code,
        purpose,
        expires_in: lifespan,
        remote_ip: caller.ip_text(),
        revoke_link: revoke(&id),
    };
    notify::now(app, &data.display_name, address, message).await?;
    Ok(id)
}

/// Checks `code` against the code [`send`] mailed for `purpose`, which the session keeps
/// pending, under regulation. `Ok` when it matched.
pub async fn check(
    app: &App,
    caller: &Caller<'_>,
    purpose: CodePurpose,
    code: &str,
    target_url: Option<&str>,
) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let id = pending_id(data, purpose).ok_or(Error::NothingPending(Pending::Code))?;
    let origin = Origin {
        auth_type: AuthType::EmailCode,
        context: caller.context(),
        target_url: target_url.unwrap_or_default(),
        request_method: "",
    };
    let verify = async {
        match app.services.codes.verify(id, &data.username, intent_of(purpose), code, now()).await {
            Ok(()) => Ok(true),
            Err(CodeError::Storage(e)) => Err(e.into()),
            Err(_) => Ok(false),
        }
    };
    if credentials::check_secret(app, &data.username, origin, verify).await? { Ok(()) } else { Err(Error::BadCode) }
}

fn pending_id(data: &SessionData, purpose: CodePurpose) -> Option<&String> {
    match purpose {
        CodePurpose::Elevation => data.elevation_code.as_ref(),
        CodePurpose::SignIn => data.email_code.as_ref(),
        CodePurpose::VerifyEmail => data.email_verification_code.as_ref(),
    }
}

/// The code store's intent for a mailed code's purpose.
fn intent_of(purpose: CodePurpose) -> Intent {
    match purpose {
        CodePurpose::Elevation => Intent::Elevation,
        CodePurpose::SignIn => Intent::SignIn,
        CodePurpose::VerifyEmail => Intent::VerifyEmail,
    }
}
