//! `GET /api/configuration` and `GET /api/configuration/password-policy`.
//!
//! Authelia requires a first-factor session for `/api/configuration`; Portcullis serves it
//! to anyone, because everything in it (enabled 2FA methods, whether reset and change are
//! on) is shown on the login page anyway (see internal-docs/decisions).

use http::StatusCode;
use http::header::{self, HeaderValue};
use serde::Serialize;

use super::Request;
use crate::flows::account::enabled_methods;
use crate::second_factor::Method;
use crate::server::App;
use crate::server::response::{self, HttpResponse};

#[derive(Serialize)]
struct ConfigurationBody {
    available_methods: Vec<Method>,
    password_change_disabled: bool,
    password_reset_disabled: bool,
}

/// Second-factor methods users may use, and the password features.
pub fn get(app: &App) -> HttpResponse {
    let c = &app.config;
    let available_methods =
        if app.access_control.current().second_factor_required() { enabled_methods(c) } else { Vec::new() };
    response::ok_data(&ConfigurationBody {
        available_methods,
        password_change_disabled: c.authentication_backend.password_change.disable,
        password_reset_disabled: c.authentication_backend.password_reset.disable,
    })
}

#[derive(Serialize)]
struct PasswordPolicyBody {
    mode: &'static str,
    min_length: u32,
    max_length: u32,
    min_score: u32,
    require_uppercase: bool,
    require_lowercase: bool,
    require_number: bool,
    require_special: bool,
}

/// The password policy new passwords must meet, so the portal can check as the user types.
pub fn password_policy(app: &App) -> HttpResponse {
    let p = &app.config.password_policy;
    let mut body = PasswordPolicyBody {
        mode: "disabled",
        min_length: 0,
        max_length: 0,
        min_score: 0,
        require_uppercase: false,
        require_lowercase: false,
        require_number: false,
        require_special: false,
    };
    if p.standard.enabled {
        let s = &p.standard;
        body.mode = "standard";
        body.min_length = s.min_length;
        body.max_length = s.max_length;
        body.require_uppercase = s.require_uppercase;
        body.require_lowercase = s.require_lowercase;
        body.require_number = s.require_number;
        body.require_special = s.require_special;
    } else if p.zxcvbn.enabled {
        body.mode = "zxcvbn";
        body.min_score = p.zxcvbn.min_score;
    }
    response::ok_data(&body)
}

/// `GET /api/openapi.yml`: the document rendered at startup for the enabled features.
/// `GET /api/`: the API reference in the portal's look (where Authelia serves Swagger UI),
/// read from the same rendered document as `/api/openapi.yml`: no script, no assets from
/// elsewhere.
pub fn reference(app: &App, request: &Request<'_>) -> HttpResponse {
    let spec = String::from_utf8_lossy(&app.openapi_spec);
    let groups = match crate::openapi::reference(&spec) {
        Ok(groups) => groups,
        Err(e) => return super::error_response(&crate::flows::Error::Internal(format!("the OpenAPI document: {e}"))),
    };
    let accept = request.parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let ctx = minijinja::context! {
        lang => crate::i18n::negotiate(accept),
        theme => if app.config.theme.is_empty() { "auto" } else { app.config.theme.as_str() },
        base => app.base_path.as_str(),
        wide => true,
        groups => groups
            .into_iter()
            .map(|(tag, ops)| {
                let ops: Vec<minijinja::Value> = ops
                    .into_iter()
                    .map(|o| minijinja::context! { method => o.method, path => o.path, summary => o.summary, description => o.description })
                    .collect();
                minijinja::context! { tag, ops }
            })
            .collect::<Vec<_>>(),
    };
    app.portal.page(StatusCode::OK, "api_reference.html", ctx)
}

pub fn openapi_spec(app: &App) -> HttpResponse {
    let mut r = response::bytes(StatusCode::OK, "application/yaml; charset=utf-8", app.openapi_spec.clone());
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    r.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    r
}
