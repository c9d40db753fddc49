//! The HTTP adapter of the authorization endpoints: reads the target where the endpoint's
//! proxy puts it, has [`crate::authz::check`] judge it, and writes the response that proxy
//! expects. The gRPC `Check` service ([`crate::authz::grpc`]) is the other adapter of the
//! same check.

use http::StatusCode;
use http::header::HeaderValue;

use super::Request;
use crate::authz::check::{self, Asked, Denial, IDENTITY_HEADERS, Outcome};
use crate::authz::extract::extract;
use crate::authz::{AuthzEndpoint, Implementation};
use crate::server::App;
use crate::server::response::{self, HttpResponse};

/// Answers one authorization sub-request.
pub async fn handle(app: &App, endpoint: &AuthzEndpoint, request: &Request<'_>) -> HttpResponse {
    let parts = request.parts;
    let rest = request.path.strip_prefix(endpoint.path.as_str()).unwrap_or("");
    let rest_with_query: std::borrow::Cow<'_, str> = match parts.uri.query() {
        Some(q) if endpoint.implementation == Implementation::ExtAuthz => format!("{rest}?{q}").into(),
        _ => rest.into(),
    };
    let target = match extract(endpoint.implementation, &parts.headers, parts.method.as_str(), &rest_with_query) {
        Ok(target) => target,
        Err(why) => {
            tracing::warn!(endpoint = %endpoint.name, "bad authorization request: {why}");
            return text(
                StatusCode::BAD_REQUEST,
                "400 Bad Request: the original request's URL or method is missing, malformed or ambiguous\n",
            );
        }
    };
    let context = request.context(app);
    // A store that was down has already made the reply fail closed (anonymous, or the
    // credentials challenged again): over HTTP the proxy sends the user on to log in.
    let asked = asked(endpoint.implementation, parts);
    match check::check(app, endpoint, &target, &parts.headers, &context, &asked).await {
        Outcome::Refused(refusal) => denied(refusal.denial()),
        Outcome::Judged(judgement) => match judgement.denial() {
            Some(denial) => denied(denial),
            None => match &judgement.identity {
                Some(i) => allowed_as(i.username(), i.groups(), i.display_name(), i.email()),
                None => text(StatusCode::OK, "200 OK\n"),
            },
        },
    }
}

/// `GET /auth/api/forward` (seed 004): forward-auth for proxies that expect 204 on success
/// (with the identity headers) and 401 where a login is needed, 403 where it is denied.
/// Judged as the configured ForwardAuth endpoint judges (its strategies), or with
/// ForwardAuth's defaults when none is configured.
pub async fn forward_no_content(app: &App, request: &Request<'_>) -> HttpResponse {
    let configured = app.authz.iter().find(|e| e.implementation == Implementation::ForwardAuth);
    let default;
    let endpoint = match configured {
        Some(endpoint) => endpoint,
        None => {
            default = AuthzEndpoint {
                name: "forward".into(),
                path: "/auth/api/forward".into(),
                implementation: Implementation::ForwardAuth,
                strategies: Implementation::ForwardAuth
                    .default_strategies()
                    .into_iter()
                    .map(|kind| crate::authz::ConfiguredStrategy {
                        kind,
                        basic_cache_lifespan: std::time::Duration::ZERO,
                        bearer: false,
                    })
                    .collect(),
            };
            &default
        }
    };
    let mut r = handle(app, endpoint, request).await;
    let status = r.status();
    if status == StatusCode::OK {
        // Seed 004's header beside the Remote-* set: when the session ends if unused.
        if let Ok(caller) = request.caller(app).await
            && let (Some(session), settings) = (caller.session(), caller.settings())
            && let Some(at) = crate::session::expires_at(settings, &session.data, crate::clock::now())
        {
            set(&mut r, "remote-session-expires", &crate::clock::rfc3339(at));
        }
        *r.status_mut() = StatusCode::NO_CONTENT;
        *r.body_mut() = http_body_util::Full::new(bytes::Bytes::new());
        r.headers_mut().remove(http::header::CONTENT_TYPE);
    } else if status.is_redirection() {
        // Where to log in stays in Location for proxies that want to send the user there.
        *r.status_mut() = StatusCode::UNAUTHORIZED;
    }
    r
}

/// What the proxy's request says beyond the target, where each implementation's proxy
/// says it (Authelia's rules). ExtAuthz's query string is the original request's, so
/// only its header counts.
fn asked(implementation: Implementation, parts: &http::request::Parts) -> Asked {
    let query = || url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes());
    let param = |name: &str| query().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    const X_AUTHELIA_URL: http::HeaderName = http::HeaderName::from_static("x-authelia-url");
    let header = || parts.headers.get(X_AUTHELIA_URL).and_then(|v| v.to_str().ok()).map(str::to_string);
    match implementation {
        Implementation::ForwardAuth | Implementation::AuthRequest => {
            Asked { portal: param("authelia_url"), basic_only: false }
        }
        Implementation::ExtAuthz | Implementation::ExtAuthzGRPC => Asked { portal: header(), basic_only: false },
        Implementation::Legacy => {
            Asked { portal: param("rd").or_else(header), basic_only: param("auth").is_some_and(|v| v == "basic") }
        }
    }
}

fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    response::bytes(status, "text/plain; charset=utf-8", body)
}

fn set(r: &mut HttpResponse, name: impl http::header::IntoHeaderName, value: &str) {
    // Header values cannot carry control characters; such a value is left out.
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

/// The 200 reply that lets a known user through, with the `Remote-User`, `Remote-Groups`,
/// `Remote-Name` and `Remote-Email` headers the proxy hands to the application (a value
/// with control characters is left out). Public for the benchmarks.
pub fn allowed_as(username: &str, groups: &[String], display_name: &str, email: &str) -> HttpResponse {
    // The names as constants: checked at compile time, not parsed per response.
    const NAMES: [http::header::HeaderName; 4] = [
        http::header::HeaderName::from_static(IDENTITY_HEADERS[0]),
        http::header::HeaderName::from_static(IDENTITY_HEADERS[1]),
        http::header::HeaderName::from_static(IDENTITY_HEADERS[2]),
        http::header::HeaderName::from_static(IDENTITY_HEADERS[3]),
    ];
    let [user_header, groups_header, name_header, email_header] = NAMES;
    let mut r = text(StatusCode::OK, "200 OK\n");
    set(&mut r, user_header, username);
    // The joined groups are handed to the header as they are, not copied a second time.
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(groups.join(","))) {
        r.headers_mut().insert(groups_header, v);
    }
    set(&mut r, name_header, display_name);
    set(&mut r, email_header, email);
    r
}

fn denied(denial: Denial) -> HttpResponse {
    let mut r = text(denial.status, denial.body);
    if let Some((name, value)) = &denial.header {
        set(&mut r, *name, value);
    }
    r
}
