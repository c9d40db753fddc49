//! Completing a login with the second factor: a TOTP code, a recovery code (burned), an
//! emailed code, or a security key's assertion. Each is checked under regulation; success
//! raises the session to two factors under a new ID and says where to send the user.

use webauthn_rs::prelude::{Passkey, PublicKeyCredential};

use super::credentials::{self, Origin};
use super::login::{ceremony_failed, redirect_after_second_factor};
use super::security_keys::{passkey_of, pending, record_use};
use super::{Caller, Error, Pending, Result, mailed_code};
use crate::clock::now;
use crate::notifier::CodePurpose;
use crate::second_factor::{Method, recovery};
use crate::server::App;
use crate::session::{AuthLevel, Ceremony};
use crate::storage::AuthType;

fn origin<'a>(caller: &'a Caller<'_>, auth_type: AuthType, target_url: Option<&'a str>) -> Origin<'a> {
    Origin { auth_type, context: caller.context(), target_url: target_url.unwrap_or_default(), request_method: "" }
}

/// Signs in with a code from the authenticator app (each time step accepted once, unless
/// the operator allows reuse).
pub async fn totp(app: &App, caller: &mut Caller<'_>, code: &str, target: Option<&str>) -> Result<Option<String>> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let storage = &app.services.storage;
    let record = storage.totp_get(&username).await?.ok_or(Error::TotpRequired)?;
    let verify = async {
        let now = now();
        let totp = &app.services.totp;
        Ok(match totp.matching_step(&record, code, now) {
            Some(_) if totp.reuse_allowed() => true,
            Some(step) => storage.totp_use_step(&username, step, now).await?,
            None => false,
        })
    };
    if !credentials::check_secret(app, &username, origin(caller, AuthType::Totp, target), verify).await? {
        return Err(Error::BadCode);
    }
    complete(app, caller, Method::Totp, target).await
}

/// Signs in with a recovery code, which is burned.
pub async fn recovery_code(
    app: &App,
    caller: &mut Caller<'_>,
    code: &str,
    target: Option<&str>,
) -> Result<Option<String>> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let storage = &app.services.storage;
    let verify = async {
        let hash = recovery::hash(storage.cipher(), code);
        Ok(storage.recovery_burn(&username, &hash, now()).await?)
    };
    if !credentials::check_secret(app, &username, origin(caller, AuthType::RecoveryCode, target), verify).await? {
        return Err(Error::BadCode);
    }
    tracing::warn!(username = %username, "a recovery code was used");
    complete(app, caller, Method::Recovery, target).await
}

/// Mails a sign-in code (when `email_otp.enable`); returns the code's public ID.
pub async fn send_email_code(app: &App, caller: &mut Caller<'_>) -> Result<String> {
    let config = &app.config.email_otp;
    let id =
        mailed_code::send(app, caller, CodePurpose::SignIn, config.characters, config.code_lifespan.get(), |_| None)
            .await?;
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.email_code = Some(id.clone());
    caller.save(app, data).await?;
    Ok(id)
}

/// Signs in with the mailed code.
pub async fn email_code(
    app: &App,
    caller: &mut Caller<'_>,
    code: &str,
    target: Option<&str>,
) -> Result<Option<String>> {
    mailed_code::check(app, caller, CodePurpose::SignIn, code, target).await?;
    complete(app, caller, Method::Email, target).await
}

/// Starts a security key assertion with the user's keys for this domain.
pub async fn security_key_begin(app: &App, caller: &mut Caller<'_>) -> Result<serde_json::Value> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let stored = app.services.storage.webauthn_credentials(&data.username).await?;
    let domain = &caller.settings().domain;
    let keys: Vec<Passkey> = stored.iter().filter(|c| &c.rp_id == domain).filter_map(passkey_of).collect();
    if keys.is_empty() {
        return Err(Error::NoKeyForDomain);
    }
    let (options, state) =
        app.services.webauthn.start_authentication(domain, &keys).map_err(|e| ceremony_failed(&e))?;
    let mut data = data.clone();
    data.webauthn = Some(pending(Ceremony::Authenticate, state, String::new()));
    caller.save(app, data).await?;
    Ok(options)
}

/// Finishes a security key assertion.
pub async fn security_key_finish(
    app: &App,
    caller: &mut Caller<'_>,
    response: &PublicKeyCredential,
    target: Option<&str>,
) -> Result<Option<String>> {
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    let username = data.username.clone();
    let state =
        data.take_ceremony(&[Ceremony::Authenticate], now()).ok_or(Error::NothingPending(Pending::KeyChallenge))?;
    // The challenge is spent before anything is checked: it can be answered once only.
    caller.save(app, data).await?;
    let domain = &caller.settings().domain;
    let verify = async {
        let stored = app.services.storage.webauthn_credentials(&username).await?;
        let result = app.services.webauthn.finish_authentication(domain, response, &state.state);
        record_use(app, stored, response.get_credential_id(), result).await
    };
    if !credentials::check_secret(app, &username, origin(caller, AuthType::WebAuthn, target), verify).await? {
        return Err(Error::KeyRefused);
    }
    complete(app, caller, Method::WebAuthn, target).await
}

/// The password as the second factor of a passkey login that did not count as two
/// (Authelia's passkey upgrade, `webauthn.experimental_enable_passkey_upgrade`): the
/// passkey proved possession, the password proves knowledge.
pub async fn password(
    app: &App,
    caller: &mut Caller<'_>,
    password: &str,
    target: Option<&str>,
) -> Result<Option<String>> {
    let data = caller.require(AuthLevel::OneFactor)?;
    if !data.passkey_login {
        return Err(Error::Forbidden);
    }
    let username = data.username.clone();
    let user =
        credentials::check_password(app, &username, password, origin(caller, AuthType::FirstFactor, target)).await?;
    if user.username != username {
        return Err(Error::AccountUnavailable);
    }
    complete(app, caller, Method::Password, target).await
}

/// Raises the session to two factors under a new ID; returns where to send the user.
async fn complete(app: &App, caller: &mut Caller<'_>, method: Method, target: Option<&str>) -> Result<Option<String>> {
    let mut data = caller.require(AuthLevel::OneFactor)?.clone();
    data.second_factor_at = Some(now());
    data.second_factor_method = Some(method);
    data.passkey_login = false;
    data.email_code = None;
    data.webauthn = None;
    let username = data.username.clone();
    caller.replace(app, data).await?;
    tracing::info!(username = %username, method = %method, "second factor succeeded");
    Ok(redirect_after_second_factor(app, caller.settings(), target))
}
