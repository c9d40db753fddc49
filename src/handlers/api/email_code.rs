//! `/api/secondfactor/email`: a code sent to the user's address as the second factor
//! (when `email_otp.enable`). PUT sends a code, POST checks it and raises the session.

use http::Method;
use serde::{Deserialize, Serialize};

use super::ApiRequest;
use super::guard::{self, Authed, authed};
use crate::notifier::CodePurpose;
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::AuthLevel;

#[derive(Serialize)]
struct Started {
    delete_id: String,
}

#[derive(Deserialize)]
struct VerifyBody {
    token: String,
    #[serde(rename = "targetURL", default)]
    target_url: Option<String>,
}

/// PUT sends, POST verifies.
pub async fn handle(app: &App, request: &ApiRequest<'_>) -> HttpResponse {
    let authed = match authed(app, request, AuthLevel::OneFactor).await {
        Ok(a) => a,
        Err(r) => return r,
    };
    let result = if request.parts.method == Method::PUT {
        send(app, request, &authed).await
    } else {
        verify(app, request, &authed).await
    };
    result.unwrap_or_else(|r| r)
}

async fn send(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let config = &app.config.email_otp;
    let data = authed.data();
    let lifespan = config.code_lifespan.get();
    let id =
        super::elevation::mail_code(app, request, authed, CodePurpose::SignIn, config.characters, lifespan, |_| None)
            .await?;
    let mut updated = data.clone();
    updated.email_code = Some(id.clone());
    guard::save(app, authed, updated).await?;
    Ok(response::ok_data(&Started { delete_id: id }))
}

async fn verify(app: &App, request: &ApiRequest<'_>, authed: &Authed<'_>) -> Result<HttpResponse, HttpResponse> {
    let body: VerifyBody = request.json()?;
    let target = body.target_url.as_deref();
    super::elevation::check_mailed_code(app, request, authed, CodePurpose::SignIn, &body.token, target).await?;
    Ok(guard::complete_second_factor(app, authed, "email", target).await)
}
