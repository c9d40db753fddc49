//! HTTP adapters of the OpenID Connect provider: discovery and the key set, the
//! authorization endpoint (through the portal's login and consent pages), the token,
//! UserInfo, introspection, revocation, pushed-request and device authorization
//! endpoints, RP-initiated logout,
//! and CORS per `identity_providers.oidc.cors`. Each decodes the request, calls
//! `flows::oidc`, and encodes the answer as the RFCs say (JSON errors at the back-channel
//! endpoints, redirects or an error page at the front).

use std::collections::HashMap;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, StatusCode};
use minijinja::context;
use serde_json::json;

use crate::flows::oidc::{self as flows, OAuthError, authorize::Outcome, inspect::UserInfoError};
use crate::handlers::Request;
use crate::handlers::portal::visit::Visit;
use crate::oidc::{Provider, paths};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::server::router::Oidc;

/// Answers a request to one of the provider's endpoints.
pub async fn call(endpoint: Oidc, app: &App, request: Request<'_>) -> HttpResponse {
    let (Some(provider), Some(issuer)) = (app.services.oidc.as_deref(), flows::issuer(app, request.host())) else {
        return response::bytes(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 Not Found\n");
    };
    let mut r = match endpoint {
        Oidc::Discovery => json_response(StatusCode::OK, &discovery(provider, &issuer, true)),
        Oidc::Metadata => json_response(StatusCode::OK, &discovery(provider, &issuer, false)),
        Oidc::Jwks => json_response(StatusCode::OK, &provider.keys.jwks()),
        Oidc::Authorization => authorization(app, &request, &issuer).await,
        Oidc::Token => {
            let form = form(&request);
            match flows::token::exchange(app, authorization_header(&request), &form, &issuer).await {
                Ok(tokens) => no_store(json_response(StatusCode::OK, &tokens)),
                Err(e) => oauth_error(&e),
            }
        }
        Oidc::DeviceAuthorization => {
            let form = form(&request);
            let ip = request.context(app).ip_text();
            match flows::device::start(app, authorization_header(&request), &form, &issuer, &ip).await {
                Ok(started) => no_store(json_response(StatusCode::OK, &started)),
                Err(e) => oauth_error(&e),
            }
        }
        Oidc::PushedAuthorization => {
            let form = form(&request);
            match flows::token::push(app, authorization_header(&request), &form, &issuer).await {
                Ok(pushed) => no_store(json_response(StatusCode::CREATED, &pushed)),
                Err(e) => oauth_error(&e),
            }
        }
        Oidc::UserInfo => userinfo(app, &request, &issuer).await,
        Oidc::Introspection => {
            let form = form(&request);
            match flows::inspect::introspect(app, authorization_header(&request), &form, &issuer).await {
                Ok(answer) => no_store(json_response(StatusCode::OK, &answer)),
                Err(e) => oauth_error(&e),
            }
        }
        Oidc::Revocation => {
            let form = form(&request);
            match flows::inspect::revoke(app, authorization_header(&request), &form, &issuer).await {
                Ok(()) => no_store(response::bytes(StatusCode::OK, "application/json; charset=utf-8", "{}")),
                Err(e) => oauth_error(&e),
            }
        }
        Oidc::EndSession => end_session(app, provider, &request, &issuer).await,
        Oidc::Preflight => response::bytes(StatusCode::NO_CONTENT, "text/plain; charset=utf-8", ""),
    };
    cors(provider, &request, r.headers_mut());
    r
}

/// The discovery document (`openid` = true) or the RFC 8414 metadata.
fn discovery(provider: &Provider, issuer: &str, openid: bool) -> serde_json::Value {
    let url = |path: &str| format!("{issuer}{path}");
    let mut scopes: Vec<&str> = vec!["openid", "offline_access", "profile", "email", "groups"];
    for client in provider.clients.all() {
        for s in &client.config.scopes {
            if !scopes.contains(&s.as_str()) {
                scopes.push(s);
            }
        }
    }
    let algs = provider.keys.algorithms();
    let mut d = json!({
        "issuer": issuer,
        "authorization_endpoint": url(paths::AUTHORIZATION),
        "token_endpoint": url(paths::TOKEN),
        "jwks_uri": url(paths::JWKS),
        "introspection_endpoint": url(paths::INTROSPECTION),
        "revocation_endpoint": url(paths::REVOCATION),
        "pushed_authorization_request_endpoint": url(paths::PAR),
        "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
        "require_pushed_authorization_requests": provider.config.require_pushed_authorization_requests,
        "scopes_supported": scopes,
        "response_types_supported": ["code", "id_token", "token", "id_token token", "code id_token", "code token", "code id_token token"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "implicit", crate::oidc::device::DEVICE_CODE_GRANT],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "token_endpoint_auth_signing_alg_values_supported": ["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "client_secret_jwt", "private_key_jwt", "none"],
        "code_challenge_methods_supported": if provider.config.enable_pkce_plain_challenge { json!(["S256", "plain"]) } else { json!(["S256"]) },
        "authorization_response_iss_parameter_supported": true,
    });
    if openid {
        let extra = json!({
            "userinfo_endpoint": url(paths::USERINFO),
            "end_session_endpoint": url(paths::END_SESSION),
            "subject_types_supported": ["public", "pairwise"],
            "acr_values_supported": ["phr"],
            "id_token_signing_alg_values_supported": algs,
            "userinfo_signing_alg_values_supported": ["none", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384"],
            "request_parameter_supported": false,
            "request_uri_parameter_supported": false,
            "claims_parameter_supported": false,
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "c_hash", "amr", "acr", "azp", "jti", "name", "preferred_username", "email", "email_verified", "alt_emails", "groups"],
            "prompt_values_supported": ["none", "consent", "login"],
        });
        if let (Some(d), Some(extra)) = (d.as_object_mut(), extra.as_object()) {
            d.extend(extra.clone());
        }
    }
    d
}

fn json_response<T: serde::Serialize>(status: StatusCode, value: &T) -> HttpResponse {
    match serde_json::to_vec(value) {
        Ok(body) => response::bytes(status, "application/json; charset=utf-8", Bytes::from(body)),
        Err(_) => response::bytes(StatusCode::INTERNAL_SERVER_ERROR, "application/json; charset=utf-8", "{}"),
    }
}

fn no_store(mut r: HttpResponse) -> HttpResponse {
    r.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut().insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// RFC 6749 §5.2: `{"error":..,"error_description":..}`, 401 with a challenge for client
/// authentication failures, 500 for faults, 400 otherwise.
fn oauth_error(e: &OAuthError) -> HttpResponse {
    let status = match e.code {
        "invalid_client" => StatusCode::UNAUTHORIZED,
        "server_error" => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::BAD_REQUEST,
    };
    let mut r = no_store(json_response(status, &json!({"error": e.code, "error_description": e.description})));
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"oidc\""));
    }
    r
}

fn authorization_header<'r>(request: &'r Request<'_>) -> Option<&'r str> {
    request.parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())
}

/// The form body's fields (the last of repeated ones).
fn form(request: &Request<'_>) -> HashMap<String, String> {
    url::form_urlencoded::parse(&request.body).into_owned().collect()
}

/// The query's parameters, plus the form's on POST.
fn params(request: &Request<'_>) -> HashMap<String, String> {
    let mut p: HashMap<String, String> = request.query().into_iter().collect();
    if request.parts.method == Method::POST {
        p.extend(form(request));
    }
    p
}

async fn authorization(app: &App, request: &Request<'_>, issuer: &str) -> HttpResponse {
    let mut visit = match Visit::open(app, request).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let outcome = flows::authorize::start(app, &visit.caller, &params(request), issuer).await;
    let r = match outcome {
        Outcome::SignInAgain(login) => match visit.caller.end(app).await {
            Ok(()) => visit.redirect(&login),
            Err(e) => visit.error_page(&e),
        },
        outcome => outcome_response(&mut visit, outcome),
    };
    visit.finish(r)
}

/// The response for an outcome of the authorization flow.
pub fn outcome_response(visit: &mut Visit<'_>, outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::Redirect(location) | Outcome::SignInAgain(location) => visit.leave(&location),
        Outcome::FormPost { action, fields } => form_post(visit, &action, &fields),
        Outcome::ErrorPage(message) => {
            let ctx =
                context! { title_key => "oidc.error_title", error => message, links => Vec::<minijinja::Value>::new() };
            visit.render(StatusCode::BAD_REQUEST, "message.html", ctx)
        }
    }
}

/// The script that submits a form-post answer (allowed by its hash, nothing else is).
const AUTO_SUBMIT: &str = "document.forms[0].submit();";

/// `response_mode=form_post`: a page whose form posts the answer to the client.
fn form_post(visit: &mut Visit<'_>, action: &str, fields: &[(String, String)]) -> HttpResponse {
    use base64::Engine;
    use sha2::Digest;
    let fields: Vec<minijinja::Value> = fields.iter().map(|(name, value)| context! { name, value }).collect();
    let ctx = context! { title_key => "oidc.form_post_title", action, fields, script => AUTO_SUBMIT };
    let mut r = visit.render(StatusCode::OK, "form_post.html", ctx);
    let origin = url::Url::parse(action).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(AUTO_SUBMIT.as_bytes()));
    let csp = format!(
        "default-src 'self'; script-src 'sha256-{hash}'; style-src 'self'; object-src 'none'; base-uri 'none'; form-action {origin}; frame-ancestors 'none'"
    );
    if let Ok(v) = HeaderValue::from_str(&csp) {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

async fn userinfo(app: &App, request: &Request<'_>, issuer: &str) -> HttpResponse {
    let header_token = authorization_header(request)
        .filter(|h| h.len() > 7)
        .and_then(crate::authz::extract::bearer_token)
        .map(str::to_string);
    let body_token = (request.parts.method == Method::POST).then(|| form(request).remove("access_token")).flatten();
    let token = match (header_token, body_token) {
        (Some(t), None) | (None, Some(t)) => t,
        (Some(_), Some(_)) => return bearer_error(StatusCode::BAD_REQUEST, "invalid_request"),
        (None, None) => {
            let mut r = response::bytes(StatusCode::UNAUTHORIZED, "application/json; charset=utf-8", "{}");
            r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
    };
    match flows::inspect::userinfo(app, &token).await {
        Ok((claims, client_id)) => match flows::inspect::signed_userinfo(app, &client_id, &claims, issuer) {
            Ok(Some(jwt)) => no_store(response::bytes(StatusCode::OK, "application/jwt", jwt)),
            Ok(None) => no_store(json_response(StatusCode::OK, &claims)),
            Err(e) => oauth_error(&e),
        },
        Err(UserInfoError::InvalidToken) => bearer_error(StatusCode::UNAUTHORIZED, "invalid_token"),
        Err(UserInfoError::InsufficientScope) => bearer_error(StatusCode::FORBIDDEN, "insufficient_scope"),
        Err(UserInfoError::Server(e)) => oauth_error(&e),
    }
}

/// RFC 6750 §3: the error in `WWW-Authenticate` and the body.
fn bearer_error(status: StatusCode, error: &'static str) -> HttpResponse {
    let mut r = no_store(json_response(status, &json!({"error": error})));
    if let Ok(v) = HeaderValue::from_str(&format!("Bearer error=\"{error}\"")) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}

/// RP-initiated logout: with a valid `id_token_hint` from this provider, the session
/// ends and the browser goes to the client's registered `post_logout_redirect_uri` (with
/// `state`); without one, the user is sent to the portal's own sign-out confirmation.
async fn end_session(app: &App, provider: &Provider, request: &Request<'_>, issuer: &str) -> HttpResponse {
    let mut visit = match Visit::open(app, request).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let p = params(request);
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or_default();
    let hint = flows::inspect::id_token_hint(provider, get("id_token_hint"), issuer);
    let client_id = hint.as_ref().map(|h| h.client_id.clone()).unwrap_or_else(|| get("client_id").to_string());
    let client = provider.clients.get(&client_id);
    let target = match (get("post_logout_redirect_uri"), client) {
        ("", _) => None,
        (uri, Some(client)) if client.config.post_logout_redirect_uris.iter().any(|r| r == uri) => {
            let mut url = uri.to_string();
            if !get("state").is_empty() {
                let q: String =
                    url::form_urlencoded::Serializer::new(String::new()).append_pair("state", get("state")).finish();
                url.push(if url.contains('?') { '&' } else { '?' });
                url.push_str(&q);
            }
            Some(url)
        }
        _ => {
            let outcome = Outcome::ErrorPage("The post_logout_redirect_uri is not registered for this client.".into());
            let r = outcome_response(&mut visit, outcome);
            return visit.finish(r);
        }
    };
    let session_user = visit.caller.data().map(|d| d.username.clone()).unwrap_or_default();
    let hint_matches = match (&hint, client) {
        (Some(hint), Some(client)) if !session_user.is_empty() => {
            flows::subject(app, client, &session_user).await.is_ok_and(|sub| sub == hint.subject)
        }
        (Some(_), _) => session_user.is_empty(),
        (None, _) => false,
    };
    let r = match hint {
        Some(_) if hint_matches => {
            if !session_user.is_empty()
                && let Err(e) = visit.caller.end(app).await
            {
                let r = visit.error_page(&e);
                return visit.finish(r);
            }
            tracing::info!(client_id = %client_id, username = %session_user, "OpenID Connect RP-initiated logout");
            match target {
                Some(t) => visit.redirect(&t),
                None => visit.redirect(&format!("{issuer}/login")),
            }
        }
        _ if session_user.is_empty() => match target {
            Some(t) => visit.redirect(&t),
            None => visit.redirect(&format!("{issuer}/login")),
        },
        _ => visit.redirect(&format!("{issuer}/logout")),
    };
    visit.finish(r)
}

/// CORS per `identity_providers.oidc.cors`: for the listed endpoints, an allowed
/// `Origin` is echoed (never with credentials), and preflights are answered.
fn cors(provider: &Provider, request: &Request<'_>, headers: &mut http::HeaderMap) {
    let Some(origin) = request.parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return };
    let name = match request.path {
        paths::AUTHORIZATION | "/oauth/authorize" => "authorization",
        paths::PAR => "pushed-authorization-request",
        paths::DEVICE_AUTHORIZATION => "device-authorization",
        paths::TOKEN | "/oauth/token" => "token",
        paths::REVOCATION => "revocation",
        paths::INTROSPECTION => "introspection",
        paths::USERINFO | "/oauth/userinfo" => "userinfo",
        _ => return,
    };
    let cors = &provider.config.cors;
    if !cors.endpoints.iter().any(|e| e == name) {
        return;
    }
    let from_clients = || {
        cors.allowed_origins_from_client_redirect_uris
            && provider
                .clients
                .all()
                .flat_map(|c| c.config.redirect_uris.as_slice())
                .any(|uri| url::Url::parse(uri).is_ok_and(|u| u.origin().ascii_serialization() == origin))
    };
    let allowed = cors.allowed_origins.iter().any(|o| o == "*" || o.trim_end_matches('/') == origin) || from_clients();
    headers.append(header::VARY, HeaderValue::from_static("Origin"));
    if !allowed {
        return;
    }
    if let Ok(v) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    if request.parts.method == Method::OPTIONS {
        headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HeaderValue::from_static("Authorization, Content-Type"));
        headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("100"));
    }
}
