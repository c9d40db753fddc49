//! The JSON API under `/api`, answering in Authelia's envelope
//! (`{"status":"OK","data":...}` / `{"status":"KO","message":...}`).

mod configuration;
mod state;

use bytes::Bytes;
use http::StatusCode;
use http::header::{self, HeaderValue};

use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Endpoint;

/// Runs the handler for `endpoint`.
pub async fn call(endpoint: Endpoint, app: &App, parts: &http::request::Parts, _body: Bytes) -> HttpResponse {
    match endpoint {
        Endpoint::Health => response::ok(),
        Endpoint::State => state::get(app, parts),
        Endpoint::Configuration => configuration::get(app),
        Endpoint::PasswordPolicy => configuration::password_policy(app),
        Endpoint::OpenApi => openapi_spec(app),
    }
}

fn openapi_spec(app: &App) -> HttpResponse {
    let mut r = response::bytes(StatusCode::OK, "application/yaml; charset=utf-8", app.openapi_spec.clone());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
