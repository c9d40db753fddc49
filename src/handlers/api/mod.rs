//! The JSON API under `/api`, answering in Authelia's envelope
//! (`{"status":"OK","data":...}` / `{"status":"KO","message":...}`).
//!
//! Each handler is an adapter: it decodes the body into a typed input, calls one
//! operation in [`crate::flows`] as the request's caller, and encodes the outcome. Errors
//! are [`flows::Error`]s, turned into responses in one place ([`error_response`]).

use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use serde::Serialize;

use crate::flows::{self, Caller, Error};
use crate::handlers::Request;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Api;

/// Runs `$body` (an expression of type `Result<HttpResponse, Error>`, which may use `?`)
/// with `$caller` bound to the request's caller; answers with its outcome, carrying the
/// session cookies the operation set (also when it then failed). A macro rather than a
/// function taking an async closure: such closures borrowing the caller are not yet
/// accepted inside the server's `Send` futures.
macro_rules! as_caller {
    ($app:expr, $request:expr, |$caller:ident| $body:expr) => {{
        match $request.caller($app).await {
            Ok(mut caller) => {
                let outcome: Result<$crate::server::response::HttpResponse, $crate::flows::Error> = async {
                    let $caller = &mut caller;
                    $body
                }
                .await;
                $crate::handlers::api::with_cookies(&mut caller, outcome)
            }
            Err(e) => $crate::handlers::api::error_response(&e),
        }
    }};
}

mod account;
pub mod account_api;
mod admin;
mod api_tokens;
mod bootstrap;
mod configuration;
mod device_links;
mod elevation;
mod handoff;
mod login;
mod logout;
mod passkey_api;
mod password;
mod redirection;
mod second_factor;
mod security_keys;
mod state;
mod totp;
mod upstream_oidc;

/// The outcome as a response, with the `Set-Cookie` values of the caller's session changes.
pub fn with_cookies(caller: &mut Caller<'_>, outcome: Result<HttpResponse, Error>) -> HttpResponse {
    let mut response = outcome.unwrap_or_else(|e| error_response(&e));
    for cookie in caller.take_set_cookies() {
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// The answer for an error: its status, `{"status":"KO","message":...}` and, when known,
/// `Retry-After`. Faults are logged here, once.
pub fn error_response(e: &Error) -> HttpResponse {
    e.log();
    let mut r = response::ko(e.status(), &e.message());
    if let Some(secs) = e.retry_after()
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

#[derive(Serialize)]
struct Redirect {
    redirect: String,
}

/// `{"redirect": target}` when the operation named a place to go, a plain OK otherwise.
fn redirect_answer(target: Option<String>) -> HttpResponse {
    match target {
        Some(redirect) => response::ok_data(&Redirect { redirect }),
        None => response::ok(),
    }
}

/// `{"status":"OK"}` with another status.
fn ok_with(status: StatusCode) -> HttpResponse {
    let mut r = response::ok();
    *r.status_mut() = status;
    r
}

/// Refuses a state-changing request a cross-site page could have sent: a body that is not
/// JSON (a form or `fetch` without CORS can only send form, multipart or plain text, each
/// with its `Content-Type`), or a browser saying it came from another origin. A sibling
/// subdomain is same-site, so its requests carry the session cookie despite SameSite=Lax;
/// this is what stops it, and what stops login CSRF on `/api/firstfactor`.
fn refuse_cross_site(request: &Request<'_>) -> Result<(), Error> {
    if matches!(request.parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Ok(());
    }
    if !crate::handlers::origin::same_origin(&request.parts.headers, request.host()) {
        return Err(Error::CrossOrigin);
    }
    let content_type = request.parts.headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or_default());
    let json = |ct: &str| {
        let essence = ct.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/json")
    };
    match content_type {
        Some(ct) if json(ct) => Ok(()),
        None if request.body.is_empty() => Ok(()),
        _ => Err(Error::JsonRequired),
    }
}

/// Runs the handler for `api`.
pub async fn call(api: Api, app: &App, request: Request<'_>) -> HttpResponse {
    // The account API and requests bearing an account token read no cookie: a request a
    // browser sends by itself carries no authority there, so it needs no CSRF check.
    if !api.is_account_api()
        && !bears_account_token(app, &request)
        && let Err(e) = refuse_cross_site(&request)
    {
        return error_response(&e);
    }
    let r = &request;
    match api {
        Api::Health => response::ok(),
        // Boxed: these futures would otherwise enlarge every API call's (the readiness
        // checks, the forward-auth check, the upstream provider's requests, seed 004's).
        Api::Ready => Box::pin(crate::telemetry::readiness::answer(app)).await,
        Api::State => state::get(app, r).await,
        Api::Configuration => configuration::get(app),
        Api::PasswordPolicy => configuration::password_policy(app),
        Api::OpenApi => configuration::openapi_spec(app),
        Api::Reference => configuration::reference(app, r),
        Api::Logout => logout::post(app, r).await,
        Api::UserInfo => account::info(app, r).await,
        Api::SetPreferredMethod => account::set_method(app, r).await,
        Api::ElevationStatus => elevation::status(app, r).await,
        Api::ElevationStart => elevation::start(app, r).await,
        Api::ElevationVerify => elevation::verify(app, r).await,
        Api::ElevationRevoke => elevation::revoke(app, r).await,
        Api::TotpOptions => totp::options(app, r).await,
        Api::TotpOffer => totp::offer(app, r).await,
        Api::TotpConfirm => totp::confirm(app, r).await,
        Api::TotpCancel => totp::cancel(app, r).await,
        Api::TotpDescribe => totp::describe(app, r).await,
        Api::TotpRemove => totp::remove(app, r).await,
        Api::RecoveryRemaining => totp::recovery_remaining(app, r).await,
        Api::RecoveryRegenerate => totp::recovery_regenerate(app, r).await,
        Api::TotpSignIn => second_factor::totp(app, r).await,
        Api::RecoverySignIn => second_factor::recovery_code(app, r).await,
        Api::EmailCodeSend => second_factor::send_email_code(app, r).await,
        Api::EmailCodeVerify => second_factor::email_code(app, r).await,
        Api::SecurityKeyBegin => second_factor::security_key_begin(app, r).await,
        Api::SecurityKeyFinish => second_factor::security_key_finish(app, r).await,
        Api::SecurityKeyList => security_keys::list(app, r).await,
        Api::KeyRegisterBegin => security_keys::register_begin(app, r).await,
        Api::KeyRegisterFinish => security_keys::register_finish(app, r).await,
        Api::KeyRegisterCancel => security_keys::register_cancel(app, r).await,
        Api::KeyRename => security_keys::rename(app, r).await,
        Api::KeyDelete => security_keys::delete(app, r).await,
        Api::FirstFactor => login::password(app, r).await,
        Api::Reauthenticate => login::reauthenticate(app, r).await,
        Api::SecondFactorPassword => login::second_factor_password(app, r).await,
        Api::PasskeyBegin => login::passkey_begin(app, r).await,
        Api::PasskeyFinish => login::passkey_finish(app, r).await,
        Api::ResetStart => password::reset_start(app, r).await,
        Api::ResetRedeem => password::reset_redeem(app, r).await,
        Api::ResetSet => password::reset_set(app, r).await,
        Api::ResetRevoke => password::reset_revoke(app, r).await,
        Api::ChangePassword => password::change(app, r).await,
        Api::SafeRedirection => redirection::post(app, r).await,
        Api::Bootstrap => bootstrap::complete(app, r).await,
        Api::BootstrapIssue => bootstrap::issue(app, r).await,
        Api::AdminListUsers => admin::list_users(app, r).await,
        Api::AdminCreateUser => admin::create_user(app, r).await,
        Api::AdminGetUser => admin::get_user(app, r).await,
        Api::AdminUpdateUser => admin::update_user(app, r).await,
        Api::AdminDeleteUser => admin::delete_user(app, r).await,
        Api::AdminSetPassword => admin::set_password(app, r).await,
        Api::AdminSendResetEmail => admin::send_reset_email(app, r).await,
        Api::AdminRevokeSessions => admin::revoke_sessions(app, r).await,
        Api::AdminRemoveTotp => admin::remove_totp(app, r).await,
        Api::AdminRemoveWebAuthn => admin::remove_webauthn(app, r).await,
        Api::AdminSetPasswordless => admin::set_passwordless(app, r).await,
        Api::AdminListBans => admin::list_bans(app, r).await,
        Api::AdminUnbanUser => admin::unban_user(app, r).await,
        Api::AdminUnbanIp => admin::unban_ip(app, r).await,
        Api::AdminAudit => admin::audit(app, r).await,
        Api::AdminSessionStats => admin::session_stats(app, r).await,
        Api::AccountLogin => account_api::login(app, r).await,
        Api::LocalLogin => account_api::local_login(app, r).await,
        Api::AdminRevokeAllSessions => admin::revoke_all_sessions(app, r).await,
        Api::PasskeyApiValidate => Box::pin(passkey_api::validate(app, r)).await,
        Api::PasskeyApiForward => Box::pin(crate::handlers::authz::forward_no_content(app, r)).await,
        Api::PasskeyApiLogout => Box::pin(passkey_api::logout(app, r)).await,
        Api::PasskeyApiUserInfo => Box::pin(passkey_api::user_info(app, r)).await,
        Api::PasskeyApiDeleteCredential => Box::pin(passkey_api::delete_credential(app, r)).await,
        Api::PasskeyApiDeleteSession => Box::pin(passkey_api::delete_session(app, r)).await,
        Api::PasskeyApiLogoutAll => Box::pin(passkey_api::logout_all(app, r)).await,
        Api::PasskeyApiDisplayName => Box::pin(passkey_api::display_name(app, r)).await,
        Api::UpstreamProvider => Box::pin(upstream_oidc::get(app, r)).await,
        Api::UpstreamProviderSet => Box::pin(upstream_oidc::put(app, r)).await,
        Api::AccountLoginSecondFactor => account_api::login_second_factor(app, r).await,
        Api::AccountSignup => account_api::signup(app, r).await,
        Api::AccountMe => account_api::me(app, r).await,
        Api::AccountSetName => account_api::set_name(app, r).await,
        Api::AccountSetPassword => account_api::set_password(app, r).await,
        Api::AccountSendResetLink => account_api::send_reset_link(app, r).await,
        Api::AccountResetWithToken => account_api::reset_with_token(app, r).await,
        Api::AccountSendOtp => account_api::send_otp(app, r).await,
        Api::AccountVerifyOtp => account_api::verify_otp(app, r).await,
        Api::AccountCreateReferral => account_api::create_referral(app, r).await,
        Api::ApiTokenCreate => api_tokens::create(app, r).await,
        Api::ApiTokenList => api_tokens::list(app, r).await,
        Api::ApiTokenRevoke => api_tokens::revoke(app, r).await,
        Api::ApiTokenVerify => api_tokens::verify(app, r).await,
        Api::DeviceLinkCreate => device_links::create(app, r).await,
        Api::DeviceLinkBegin => device_links::register_begin(app, r).await,
        Api::DeviceLinkFinish => device_links::register_finish(app, r).await,
        Api::SetSession => handoff::set_session(app, r).await,
    }
}

/// Whether the request bears an account API token (the account API is on and the
/// `Authorization: Bearer` credential is a JWT, not another kind of bearer token).
pub fn bears_account_token(app: &App, request: &Request<'_>) -> bool {
    app.services.account_tokens.is_some()
        && account_api::bearer(request).is_some_and(|t| crate::identity::account_token::looks_like_jwt(&t))
}

/// `Ok(response)` for an operation's outcome, or the error's answer.
fn answer<T>(result: flows::Result<T>, encode: impl FnOnce(T) -> HttpResponse) -> HttpResponse {
    result.map_or_else(|e| error_response(&e), encode)
}
