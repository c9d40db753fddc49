//! The account API under `/api/auth` (seed 001): JSON in, the usual envelope out, bearer
//! tokens instead of the session cookie. `verify-otp` takes a form (multipart, as the seed
//! says, or urlencoded).

use http::StatusCode;
use http::header;
use serde::Deserialize;

use super::{Request, error_response};
use crate::flows::account_api::{self, Signup};
use crate::flows::{Caller, Error};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// The account token the request bears (`Authorization: Bearer ...`), if any.
pub fn bearer(request: &Request<'_>) -> Option<String> {
    let value = request.parts.headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    crate::authz::extract::bearer_token(value).map(str::to_string)
}

/// A caller without a token (login, signup, reset): nothing from cookies is used.
fn anonymous<'a>(app: &'a App, request: &Request<'_>) -> Result<Caller<'a>, Error> {
    Caller::for_bearer(app, request.host(), None, request.context(app))
}

/// The caller the request's token stands for; 401 without a valid one.
async fn signed_in<'a>(app: &'a App, request: &Request<'_>) -> Result<Caller<'a>, Error> {
    let token = bearer(request).ok_or(Error::TokenInvalid)?;
    account_api::bearer_caller(app, request.host(), &token, request.context(app)).await
}

/// A refused token gets `WWW-Authenticate: Bearer` (RFC 6750).
fn refused(e: &Error) -> HttpResponse {
    let mut r = error_response(e);
    if matches!(e, Error::TokenInvalid) {
        r.headers_mut()
            .insert(header::WWW_AUTHENTICATE, http::HeaderValue::from_static("Bearer error=\"invalid_token\""));
    }
    r
}

fn respond(outcome: Result<HttpResponse, Error>) -> HttpResponse {
    outcome.unwrap_or_else(|e| refused(&e))
}

fn true_answer() -> HttpResponse {
    response::ok_data(&true)
}

#[derive(Deserialize)]
struct LoginBody {
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    username: Option<String>,
    password: String,
}

/// `POST /api/auth/login`.
pub async fn login(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let body: LoginBody = request.json()?;
            let login = body.email.or(body.username).filter(|l| !l.trim().is_empty());
            let login = login.ok_or_else(|| Error::InvalidRequest("email: required".into()))?;
            let mut caller = anonymous(app, request)?;
            Ok(response::ok_data(&account_api::login(app, &mut caller, login.trim(), &body.password).await?))
        }
        .await,
    )
}

/// `POST /auth/local/login` (seed 003): the account API's login, answered with 201.
pub async fn local_login(app: &App, request: &Request<'_>) -> HttpResponse {
    let mut r = login(app, request).await;
    if r.status() == StatusCode::OK {
        *r.status_mut() = StatusCode::CREATED;
    }
    r
}

#[derive(Deserialize)]
struct SecondFactorBody {
    token: String,
    code: String,
}

/// `POST /api/auth/login/second-factor`.
pub async fn login_second_factor(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let body: SecondFactorBody = request.json()?;
            let answer =
                account_api::login_second_factor(app, request.host(), request.context(app), &body.token, &body.code)
                    .await?;
            Ok(response::ok_data(&answer))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct SignupBody {
    referrer_token: String,
    email: String,
    password: String,
    #[serde(default)]
    name: Option<String>,
}

/// `POST /api/auth/signup`: 201 with a login's answer.
pub async fn signup(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let body: SignupBody = request.json()?;
            let mut caller = anonymous(app, request)?;
            let new = Signup {
                referrer_token: &body.referrer_token,
                email: &body.email,
                password: &body.password,
                name: body.name.as_deref(),
            };
            let mut r = response::ok_data(&account_api::signup(app, &mut caller, new).await?);
            *r.status_mut() = StatusCode::CREATED;
            Ok(r)
        }
        .await,
    )
}

/// `GET /api/auth/me`.
pub async fn me(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let caller = signed_in(app, request).await?;
            Ok(response::ok_data(&account_api::me(app, &caller).await?))
        }
        .await,
    )
}

#[derive(Deserialize)]
struct NameBody {
    name: String,
}

/// `PUT /api/auth/me/name`.
pub async fn set_name(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let caller = signed_in(app, request).await?;
            let body: NameBody = request.json()?;
            account_api::set_name(app, &caller, &body.name).await?;
            Ok(true_answer())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct PasswordBody {
    #[serde(alias = "current_password", alias = "old_password")]
    password: String,
    #[serde(alias = "newPassword")]
    new_password: String,
}

/// `PUT /api/auth/me/password`.
pub async fn set_password(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let caller = signed_in(app, request).await?;
            let body: PasswordBody = request.json()?;
            account_api::change_password(app, &caller, &body.password, &body.new_password).await?;
            Ok(true_answer())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct EmailBody {
    email: String,
}

/// `POST /api/auth/send-password-reset-link`: `true` whether or not the address is known.
pub async fn send_reset_link(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let body: EmailBody = request.json()?;
            let caller = anonymous(app, request)?;
            account_api::send_reset_link(app, &caller, &body.email).await?;
            Ok(true_answer())
        }
        .await,
    )
}

#[derive(Deserialize)]
struct NewPasswordBody {
    #[serde(alias = "new_password")]
    password: String,
}

/// `POST /api/auth/reset-password-with-token`: the mailed token as the bearer.
pub async fn reset_with_token(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let token = bearer(request).ok_or(Error::ResetLinkInvalid)?;
            let body: NewPasswordBody = request.json()?;
            let mut caller = anonymous(app, request)?;
            account_api::reset_with_token(app, &mut caller, &token, &body.password).await?;
            Ok(true_answer())
        }
        .await,
    )
}

#[derive(serde::Serialize)]
struct OtpSession {
    token: String,
    expires_at: i64,
}

/// `POST /api/auth/me/send-otp`: the token to send back with the mailed code.
pub async fn send_otp(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let caller = signed_in(app, request).await?;
            let issued = account_api::send_otp(app, &caller).await?;
            Ok(response::ok_data(&OtpSession { token: issued.token, expires_at: issued.expires_at }))
        }
        .await,
    )
}

/// `POST /api/auth/verify-otp`: form fields `otp` and `token` (multipart or urlencoded).
pub async fn verify_otp(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let fields = form_fields(request).await?;
            let field = |names: &[&str]| {
                fields.iter().find(|(k, _)| names.contains(&k.as_str())).map(|(_, v)| v.trim().to_string())
            };
            let otp = field(&["otp", "code"]).ok_or_else(|| Error::InvalidRequest("otp: required".into()))?;
            let token = field(&["token", "otp_session_token", "session_token"])
                .or_else(|| bearer(request))
                .ok_or_else(|| Error::InvalidRequest("token: required".into()))?;
            account_api::verify_otp(app, request.host(), request.context(app), &token, &otp).await?;
            Ok(true_answer())
        }
        .await,
    )
}

/// `POST /api/auth/me/referrals`: 201 with the token, shown once.
pub async fn create_referral(app: &App, request: &Request<'_>) -> HttpResponse {
    respond(
        async {
            let caller = signed_in(app, request).await?;
            let referral = account_api::create_referral(app, &caller).await?;
            let mut r = response::ok_data(&referral);
            *r.status_mut() = StatusCode::CREATED;
            Ok(r)
        }
        .await,
    )
}

/// Most form fields read.
const MAX_FIELDS: usize = 16;
/// Longest form field value.
const MAX_FIELD: u64 = 8 * 1024;

/// The text fields of a multipart or urlencoded form body.
async fn form_fields(request: &Request<'_>) -> Result<Vec<(String, String)>, Error> {
    let content_type = request.parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let essence = content_type.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/x-www-form-urlencoded" => {
            Ok(url::form_urlencoded::parse(&request.body).into_owned().take(MAX_FIELDS).collect())
        }
        "multipart/form-data" => {
            let boundary = multer::parse_boundary(content_type)
                .map_err(|_| Error::InvalidRequest("multipart/form-data without a boundary".into()))?;
            let body = request.body.clone();
            let stream = futures_util::stream::once(async move { Ok::<_, std::convert::Infallible>(body) });
            let constraints = multer::Constraints::new()
                .size_limit(multer::SizeLimit::new().per_field(MAX_FIELD).whole_stream(64 * 1024));
            let mut multipart = multer::Multipart::with_constraints(stream, boundary, constraints);
            let mut fields = Vec::new();
            while let Some(field) =
                multipart.next_field().await.map_err(|e| Error::InvalidRequest(format!("bad form: {e}")))?
            {
                if fields.len() >= MAX_FIELDS {
                    break;
                }
                let name = field.name().unwrap_or_default().to_string();
                let value = field.text().await.map_err(|e| Error::InvalidRequest(format!("bad form: {e}")))?;
                fields.push((name, value));
            }
            Ok(fields)
        }
        _ => Err(Error::InvalidRequest("send the form as multipart/form-data".into())),
    }
}
