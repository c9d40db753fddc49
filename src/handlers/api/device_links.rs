//! Device-addition links (seed 004): `POST /auth/api/create-link` makes one; the JSON
//! steps of the link's page, `PUT /auth/{token}/begin` and `POST /auth/{token}/finish`,
//! register a passkey on the device that opened it.

use futures_util::FutureExt;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use webauthn_rs::prelude::RegisterPublicKeyCredential;

use super::Request;
use crate::flows::device_links;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    /// Another user's name (administrators only); the caller when absent.
    #[serde(default)]
    username: Option<String>,
}

#[derive(Serialize)]
struct Created {
    url: String,
    token: String,
    expires_at: i64,
}

/// `POST /auth/api/create-link` `{}` or `{"username": "..."}`.
pub fn create<'a>(app: &'a App, request: &'a Request<'_>) -> BoxFuture<'a, HttpResponse> {
    // Boxed here: the dispatcher then holds a pointer, not these futures, which keeps its
    // stack frame (in unoptimized builds) from growing with every operation.
    create_link(app, request).boxed()
}

async fn create_link(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let body: CreateBody = request.json_or_default()?;
        let link = device_links::create(app, caller, body.username.as_deref()).await?;
        Ok(response::ok_data(&Created { url: link.url, token: link.token, expires_at: link.expires_at }))
    })
}

/// The `{token}` of `/auth/{token}/...`.
fn token(request: &Request<'_>) -> String {
    request.segment(2)
}

/// `PUT /auth/{token}/begin`: the passkey creation options.
pub fn register_begin<'a>(app: &'a App, request: &'a Request<'_>) -> BoxFuture<'a, HttpResponse> {
    begin(app, request).boxed()
}

async fn begin(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        Ok(response::ok_data(&device_links::register_begin(app, caller, &token(request)).await?))
    })
}

#[derive(Deserialize)]
struct FinishBody {
    #[serde(flatten)]
    credential: RegisterPublicKeyCredential,
    #[serde(default)]
    description: Option<String>,
}

/// `POST /auth/{token}/finish`: the browser's answer; `{"status":"OK"}` when the passkey
/// is stored.
pub fn register_finish<'a>(app: &'a App, request: &'a Request<'_>) -> BoxFuture<'a, HttpResponse> {
    finish(app, request).boxed()
}

async fn finish(app: &App, request: &Request<'_>) -> HttpResponse {
    as_caller!(app, request, |caller| {
        let token = token(request);
        // Malformed links are refused before the body is read.
        if !device_links::is_well_formed(&token) {
            return Err(crate::flows::Error::DeviceLinkInvalid);
        }
        let body: FinishBody = request.json()?;
        let description = body.description.as_deref();
        device_links::register_finish(app, caller, &token, &body.credential, description).await?;
        Ok(response::ok())
    })
}
