//! The account API (`/api/auth/...`, seed 001) for scripts and single-page apps: the same
//! operations as the portal (the regulated credential check, TOTP and recovery codes,
//! password policy and change, reset links, mailed codes, audit), reached with short-lived
//! bearer tokens instead of a session cookie.
//!
//! A bearer caller's session lives for one request (see [`Caller::for_bearer`]); what the
//! portal keeps in the session between two requests travels here in a token of its own
//! kind: a login owing its second factor (`pending`), an email verification (`otp`).
//! Tokens issued before a password change or reset are refused (the user's cutoff), and a
//! disabled or deleted user's tokens stop working at once, as the user is read on every
//! request.

use serde::Serialize;
use serde_json::json;

use super::admin::users::{new_hash, valid_display_name, valid_emails, valid_username};
use super::audit::{self, Context, Event, Outcome};
use super::login::{PasswordLogin, session_for};
use super::mailed_code;
use super::{Caller, Error, Result, account, password, second_factor};
use crate::authn::users_file::User;
use crate::clock::{now, now_ms};
use crate::identity::account_token::{AccountTokens, Claims, Issued, Kind};
use crate::notifier::CodePurpose;
use crate::second_factor::Method;
use crate::server::App;
use crate::session::{AuthLevel, SessionData};
use crate::storage::UserChanges;

/// Prefix of referral tokens (recognisable if leaked).
const REFERRAL_PREFIX: &str = "pcr_";
/// How long a mailed verification code is valid.
const OTP_LIFESPAN_SECS: i64 = 600;
/// Characters of a mailed verification code.
const OTP_CHARACTERS: u32 = 8;

/// A user as the account API shows it.
#[derive(Debug, Serialize)]
pub struct AccountUser {
    /// Login name.
    pub username: String,
    /// Name to show.
    pub name: String,
    /// Primary address.
    pub email: String,
    /// Whether the primary address was proven with a mailed code.
    pub email_verified: bool,
    /// Group memberships.
    pub groups: Vec<String>,
    /// A second factor (TOTP) is set up, so logins ask for it.
    pub second_factor: bool,
}

/// What a login (or signup) answers.
#[derive(Debug, Serialize)]
pub struct LoginAnswer {
    /// The bearer token: for the API, or, when a second factor is owed, only for
    /// `/api/auth/login/second-factor`.
    pub token: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
    /// The token is a pending login: send the code to finish it.
    pub second_factor_required: bool,
    /// The user.
    pub user: AccountUser,
}

/// A referral token, shown once.
#[derive(Debug, Serialize)]
pub struct Referral {
    /// The token to give the new user.
    pub token: String,
    /// When it expires (Unix seconds).
    pub expires_at: i64,
    /// How many accounts it may create.
    pub uses: u32,
}

/// A new account.
pub struct Signup<'a> {
    /// The referral token.
    pub referrer_token: &'a str,
    /// Address, also the login name.
    pub email: &'a str,
    /// Password (policy applies).
    pub password: &'a str,
    /// Name to show (the address when absent).
    pub name: Option<&'a str>,
}

fn tokens(app: &App) -> Result<&AccountTokens> {
    app.services.account_tokens.as_ref().ok_or(Error::Forbidden)
}

/// The session a valid token of `kind` stands for: its user, active, and the token issued
/// after the user's cutoff.
async fn session_of(app: &App, token: &str, kind: Kind) -> Result<(Claims, SessionData)> {
    let claims = tokens(app)?.verify(token, kind).map_err(|_| Error::TokenInvalid)?;
    let user = app.services.users.get(&claims.sub).await?.filter(|u| !u.disabled && u.username == claims.sub);
    let user = user.ok_or(Error::TokenInvalid)?;
    if let Some(cutoff) = app.services.storage.token_cutoff(&user.username).await?
        && claims.ims < cutoff
    {
        return Err(Error::TokenInvalid);
    }
    let mut data = session_for(&user, claims.iat, false);
    if claims.lvl >= 2 {
        data.second_factor_at = Some(claims.iat);
    }
    Ok((claims, data))
}

/// The session an account API access token stands for, for a cookie session of its own
/// (`POST /auth/api/set-session`).
pub(super) async fn access_session(app: &App, token: &str) -> Result<SessionData> {
    Ok(session_of(app, token, Kind::Access).await?.1)
}

/// The caller of a request bearing the account token `token`.
pub async fn bearer_caller<'a>(app: &'a App, host: &str, token: &str, context: Context) -> Result<Caller<'a>> {
    let (_, data) = session_of(app, token, Kind::Access).await?;
    Caller::for_bearer(app, host, Some(data), context)
}

async fn view(app: &App, username: &str, data: &SessionData, has_totp: bool) -> Result<AccountUser> {
    let email = data.emails.first().cloned().unwrap_or_default();
    let verified = app.services.storage.emails_verified(username).await?;
    Ok(AccountUser {
        username: username.to_string(),
        name: data.display_name.clone(),
        email_verified: !email.is_empty() && verified.contains(&email.to_ascii_lowercase()),
        email,
        groups: data.groups.clone(),
        second_factor: has_totp,
    })
}

/// The answer for the caller's session as it now stands: a pending login when `pending`,
/// an access token at the session's level otherwise.
async fn answer(app: &App, caller: &Caller<'_>, pending: bool) -> Result<LoginAnswer> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let level = if data.level() >= AuthLevel::TwoFactor { 2 } else { 1 };
    let kind = if pending { Kind::Pending } else { Kind::Access };
    let issued = tokens(app)?.issue(kind, &data.username, level, None, 0, now_ms()).map_err(Error::Internal)?;
    let has_totp = app.services.storage.totp_exists(&data.username).await?;
    Ok(LoginAnswer {
        token: issued.token,
        expires_at: issued.expires_at,
        second_factor_required: pending,
        user: view(app, &data.username, data, has_totp).await?,
    })
}

/// `POST /api/auth/login`: the password (regulated like every login); a user with TOTP
/// gets a pending login to finish with a code.
pub async fn login(app: &App, caller: &mut Caller<'_>, login: &str, password: &str) -> Result<LoginAnswer> {
    let request =
        PasswordLogin { username: login, password, remember_me: false, target_url: None, request_method: None };
    super::login::with_password(app, caller, request).await?;
    let facts = account::facts(app, caller).await?;
    answer(app, caller, facts.has(Method::Totp)).await
}

/// `POST /api/auth/login/second-factor`: finishes a pending login with a TOTP code or a
/// recovery code (burned), regulated like the portal's.
pub async fn login_second_factor(
    app: &App,
    host: &str,
    context: Context,
    pending: &str,
    code: &str,
) -> Result<LoginAnswer> {
    let (_, data) = session_of(app, pending, Kind::Pending).await?;
    let mut caller = Caller::for_bearer(app, host, Some(data), context)?;
    let code = code.trim();
    if !code.is_empty() && code.chars().all(|c| c.is_ascii_digit()) && code.len() <= 8 {
        second_factor::totp(app, &mut caller, code, None).await?;
    } else {
        second_factor::recovery_code(app, &mut caller, code, None).await?;
    }
    answer(app, &caller, false).await
}

/// `GET /api/auth/me`.
pub async fn me(app: &App, caller: &Caller<'_>) -> Result<AccountUser> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let has_totp = app.services.storage.totp_exists(&data.username).await?;
    view(app, &data.username, data, has_totp).await
}

/// `PUT /api/auth/me/name`.
pub async fn set_name(app: &App, caller: &Caller<'_>, name: &str) -> Result<()> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let name = name.trim();
    if name.is_empty() {
        return Err(Error::InvalidUser("name: required".into()));
    }
    valid_display_name(name)?;
    app.services.users.writable()?;
    let changes = UserChanges { display_name: Some(name.to_string()), ..Default::default() };
    app.services.users.update(&username, changes, now()).await?;
    // Cached credentials carry the name the proxy passes on (Remote-Name).
    crate::invalidation::user_changed(app, &username).await;
    audit_own(app, caller.context(), "account.name_changed", &username, serde_json::Value::Null).await;
    Ok(())
}

/// Refuses every account token of `username` issued until now.
async fn cut_tokens(app: &App, username: &str) -> Result<()> {
    Ok(app.services.storage.set_token_cutoff(username, now_ms()).await?)
}

/// `PUT /api/auth/me/password`: the portal's change of password (current one checked,
/// policy, other sessions ended); every account token of the user is refused afterwards,
/// the caller's included: it signs in again with the new password.
pub async fn change_password(app: &App, caller: &Caller<'_>, current: &str, new: &str) -> Result<()> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    password::change(app, caller, password::PasswordChange { old_password: current, new_password: new }).await?;
    cut_tokens(app, &username).await
}

/// `POST /api/auth/send-password-reset-link`: the same answer whether or not the address
/// belongs to anyone (the portal's reset, rate-limited per address).
pub async fn send_reset_link(app: &App, caller: &Caller<'_>, email: &str) -> Result<()> {
    if email.trim().is_empty() {
        return Err(Error::InvalidRequest("email: required".into()));
    }
    password::reset_start(app, caller, email).await
}

/// `POST /api/auth/reset-password-with-token`: the mailed link's token (once) and the new
/// password; every session and account token of the user ends.
pub async fn reset_with_token(app: &App, caller: &mut Caller<'_>, token: &str, new: &str) -> Result<()> {
    // The policy first: a refused password must not spend the link.
    let named = app.services.reset_tokens.addressee(token).map_err(|_| Error::ResetLinkInvalid)?;
    if let Some(user) = app.services.users.get(&named).await? {
        let mut context = vec![user.username.as_str(), user.display_name.as_str()];
        context.extend(user.emails.iter().map(String::as_str));
        crate::authn::password_policy::check(&app.config.password_policy, new, &context)
            .map_err(|violation| Error::PasswordPolicy(violation.0))?;
    }
    password::reset_redeem(app, caller, token).await?;
    let username = caller.data().and_then(|d| d.password_reset_username.clone()).ok_or(Error::ResetLinkFirst)?;
    password::reset_set(app, caller, new).await?;
    cut_tokens(app, &username).await
}

/// `POST /api/auth/me/send-otp`: mails a code to the primary address; the answer is the
/// token to send back with it.
pub async fn send_otp(app: &App, caller: &Caller<'_>) -> Result<Issued> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let email = data.emails.first().cloned().ok_or(Error::NoEmailAddress)?;
    let lifespan = std::time::Duration::from_secs(OTP_LIFESPAN_SECS.unsigned_abs());
    let id = mailed_code::send(app, caller, CodePurpose::VerifyEmail, OTP_CHARACTERS, lifespan, |_| None).await?;
    let level = if data.level() >= AuthLevel::TwoFactor { 2 } else { 1 };
    tokens(app)?
        .issue(Kind::Otp, &data.username, level, Some((id, email)), OTP_LIFESPAN_SECS, now_ms())
        .map_err(Error::Internal)
}

/// `POST /api/auth/verify-otp`: the mailed code against the token [`send_otp`] gave
/// (regulated like any code); marks the address verified.
pub async fn verify_otp(app: &App, host: &str, context: Context, token: &str, code: &str) -> Result<()> {
    let (claims, mut data) = session_of(app, token, Kind::Otp).await?;
    let (Some(id), Some(email)) = (claims.otc, claims.email) else { return Err(Error::TokenInvalid) };
    data.email_verification_code = Some(id);
    let caller = Caller::for_bearer(app, host, Some(data), context)?;
    mailed_code::check(app, &caller, CodePurpose::VerifyEmail, code, None).await?;
    app.services.storage.email_verified_set(&claims.sub, &email, now()).await?;
    audit_own(app, caller.context(), "account.email_verified", &claims.sub, json!({"email": email})).await;
    Ok(())
}

/// `POST /api/auth/me/referrals`: a referral token for someone to sign up with.
pub async fn create_referral(app: &App, caller: &Caller<'_>) -> Result<Referral> {
    let signup = &app.config.signup;
    if !signup.enabled {
        return Err(Error::SignupClosed);
    }
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let storage = &app.services.storage;
    let now = now();
    if storage.referrals_valid(&username, now).await? >= i64::from(signup.referrals_per_user) {
        return Err(Error::ReferralLimit);
    }
    let random: String =
        rand::Rng::sample_iter(rand::rng(), rand::distr::Alphanumeric).take(32).map(char::from).collect();
    let token = format!("{REFERRAL_PREFIX}{random}");
    let expires_at = now.saturating_add(i64::try_from(signup.referral_lifespan.get().as_secs()).unwrap_or(86_400));
    let uses = i32::try_from(signup.referral_uses).unwrap_or(1);
    storage.referral_insert(&referral_hash(app, &token), &username, now, expires_at, uses).await?;
    audit_own(
        app,
        caller.context(),
        "account.referral_created",
        &username,
        json!({"expires_at": expires_at, "uses": uses}),
    )
    .await;
    Ok(Referral { token, expires_at, uses: signup.referral_uses })
}

/// `POST /api/auth/signup`: a new account in the database users backend, only with a valid
/// referral token (one use taken; given back if the account cannot be created). The
/// address is the login name. Answers as a login does.
pub async fn signup(app: &App, caller: &mut Caller<'_>, new: Signup<'_>) -> Result<LoginAnswer> {
    if !app.config.signup.enabled {
        return Err(Error::SignupClosed);
    }
    app.services
        .account_limiter
        .hit(&app.services.sessions, &caller.ip_text(), now())
        .await
        .map_err(|l| Error::limited(l, |retry_after| Error::CodesRateLimited { retry_after }))?;
    let email = new.email.trim().to_ascii_lowercase();
    valid_emails(std::slice::from_ref(&email), true)?;
    valid_username(&email)?;
    let name = new.name.map(str::trim).filter(|n| !n.is_empty()).unwrap_or(&email).to_string();
    valid_display_name(&name)?;
    app.services.users.writable()?;
    if app.services.users.find_login(&email).await?.is_some() || app.services.users.get(&email).await?.is_some() {
        return Err(Error::UserExists);
    }
    let mut user = User {
        username: email.clone(),
        display_name: name,
        password_hash: String::new(),
        emails: vec![email.clone()],
        groups: Vec::new(),
        disabled: false,
    };
    // The policy is checked before a referral use is taken.
    user.password_hash = new_hash(app, &user, new.password).await?;
    let hash = referral_hash(app, new.referrer_token.trim());
    let storage = &app.services.storage;
    let referrer = storage.referral_take(&hash, now()).await?.ok_or(Error::ReferralInvalid)?;
    if let Err(e) = app.services.users.create(user.clone(), now()).await {
        storage.referral_give_back(&hash).await?;
        return Err(e.into());
    }
    tracing::info!(username = %user.username, referrer = %referrer, "account created by signup");
    audit_own(app, caller.context(), "account.signed_up", &user.username, json!({"referrer": referrer})).await;
    caller.replace(app, session_for(&user, now(), false)).await?;
    answer(app, caller, false).await
}

/// Audits a user's successful action on their own account.
async fn audit_own(app: &App, context: &Context, name: &'static str, username: &str, detail: serde_json::Value) {
    let event = Event { name, outcome: Outcome::Success, actor: username, subject: username, detail };
    audit::record(app, context, event).await;
}

fn referral_hash(app: &App, token: &str) -> String {
    app.services.storage.cipher().keyed_hash("referral token", token)
}
