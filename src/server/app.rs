//! The HTTP application: turns a request into a response through the middleware chain
//! (request id → base path → route → bounded body read → handler → security headers →
//! access log). Shared, read-only state lives here and is built once at startup.

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use futures_util::FutureExt;
use http::header::{self, HeaderValue};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Body;
use tracing::Instrument;

use super::host_mode::Routing;
use super::request_id::RequestId;
use super::response::{self, DEFAULT_CSP, HttpResponse};
use super::router::{Endpoint, Route, Router};
use crate::config::Configuration;
use crate::handlers;
use crate::openapi;
use crate::services::Services;

/// Largest request body accepted on API routes.
pub const MAX_API_BODY: usize = 64 * 1024;

/// Everything a request handler may read. Built once; shared by all connections.
pub struct App {
    /// The validated configuration.
    pub config: Arc<Configuration>,
    /// Base path every route is served under (`""` or `/auth`).
    pub base_path: String,
    /// Route table.
    pub router: Router,
    /// The rendered OpenAPI document.
    pub openapi_spec: Bytes,
    /// Storage, sessions, users, regulation.
    pub services: Services,
    /// The access-control rules in force (replaced whole by a configuration reload).
    pub access_control: crate::access_control::LiveRules,
    /// Authorization endpoints (routes refer to them by index).
    pub authz: Vec<crate::authz::AuthzEndpoint>,
    /// Portal templates, translations and static files.
    pub portal: handlers::portal::Renderer,
    /// The readiness check behind `/api/health/ready` (answers reused for a second).
    pub readiness: crate::telemetry::Readiness,
    trusted_proxies: Vec<ipnet::IpNet>,
    csp_template: String,
    /// Seed 004's host mode (`server.auth_host`).
    pub host_mode: super::host_mode::HostMode,
}

impl App {
    /// Builds the application for `config` over opened `services`.
    pub fn new(config: Arc<Configuration>, services: Services) -> Result<Self, String> {
        let spec = openapi::render(&openapi::Features::from_config(&config))
            .map_err(|e| format!("cannot render the OpenAPI document: {e}"))?;
        let csp_template = if config.server.headers.csp_template.is_empty() {
            default_csp(&config)
        } else {
            config.server.headers.csp_template.clone()
        };
        let trusted_proxies = match &config.server.trusted_proxies {
            Some(list) => list.iter().filter_map(|p| crate::config::validate::parse_network(p)).collect(),
            None => super::client_ip::default_trusted(),
        };
        let host_mode = super::host_mode::HostMode::new(config.server.auth_host.as_deref())
            .map_err(|e| format!("server.auth_host: {e}"))?;
        Ok(Self {
            host_mode,
            access_control: crate::access_control::LiveRules::new(crate::access_control::AccessControl::compile(
                &config,
            )?),
            authz: crate::authz::endpoints(&config),
            trusted_proxies,
            base_path: config.server.address.base_path.clone(),
            router: Router::new(&config),
            portal: handlers::portal::Renderer::new(&config.server.address.base_path)?,
            openapi_spec: Bytes::from(spec),
            csp_template,
            readiness: crate::telemetry::Readiness::default(),
            services,
            config,
        })
    }

    /// Answers one request (from a connection, or in-process in tests). Never fails: errors and panics become JSON error responses.
    pub async fn handle<B>(&self, request: Request<B>, remote: Option<IpAddr>) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let request_id = RequestId::generate();
        let method = request.method().clone();
        // What the access log needs, kept only when it is written (not per request at warn).
        let logged = tracing::enabled!(target: "portcullis::access", tracing::Level::INFO).then(|| {
            let path = request.uri().path();
            (path.to_owned(), self.relative(path).is_some_and(is_api_path))
        });
        let metrics = crate::telemetry::metrics::get();
        // The clock is read only for someone who reports the duration.
        let started = (metrics.is_some() || logged.is_some()).then(Instant::now);

        let write_timeout = self.config.server.timeouts.write.get();
        let span = crate::telemetry::traces::request_span(&method, request.headers(), || {
            self.relative(request.uri().path()).and_then(|p| self.router.find(p)).map(|route| route.path.as_str())
        });
        // The handler's future is built inside the awaited expression: held in a local
        // first, it would take its room twice in this future, which hyper copies whole
        // for every request.
        let answered = tokio::time::timeout(
            write_timeout,
            AssertUnwindSafe(self.dispatch(request, remote, request_id).instrument(span.clone())).catch_unwind(),
        )
        .await;
        let mut response = match answered {
            Ok(Ok(response)) => response,
            Ok(Err(panic)) => {
                let what = super::panic_message(panic.as_ref());
                tracing::error!(request_id = %request_id, panic = %what, "request handler panicked");
                response::ko(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
            Err(_) => {
                tracing::warn!(request_id = %request_id, "request exceeded server.timeouts.write");
                response::ko(StatusCode::SERVICE_UNAVAILABLE, "The request took too long")
            }
        };

        let headers = response.headers_mut();
        response::apply_security_headers(headers, &self.csp_template, None);
        if let Ok(value) = HeaderValue::from_str(request_id.as_str()) {
            const X_REQUEST_ID: header::HeaderName = header::HeaderName::from_static("x-request-id");
            headers.insert(X_REQUEST_ID, value);
        }
        let elapsed = started.map(|started| started.elapsed()).unwrap_or_default();
        if let Some(metrics) = metrics {
            metrics.request(&method, response.status(), elapsed);
        }
        crate::telemetry::traces::record_status(&span, response.status());
        if let Some((path, is_api)) = logged {
            let status = response.status().as_u16();
            let elapsed_us = elapsed.as_micros() as u64;
            let remote = remote.map(|ip| ip.to_string()).unwrap_or_default();
            tracing::info!(
                target: "portcullis::access",
                request_id = %request_id,
                method = %method,
                path = %path,
                status,
                elapsed_us,
                remote = %remote,
                api = is_api,
                "request"
            );
        }
        response
    }

    /// The client's address (X-Forwarded-For only from trusted proxies).
    pub fn client_ip(&self, peer: Option<IpAddr>, headers: &http::HeaderMap) -> Option<IpAddr> {
        super::client_ip::client_ip(peer, headers, &self.trusted_proxies)
    }

    /// The client's address when the caller names its own downstream peer (gRPC checks):
    /// see [`super::client_ip::client_ip_behind`].
    pub fn client_ip_behind(
        &self,
        caller: Option<IpAddr>,
        source: Option<IpAddr>,
        headers: &http::HeaderMap,
    ) -> Option<IpAddr> {
        super::client_ip::client_ip_behind(caller, source, headers, &self.trusted_proxies)
    }

    /// The path relative to the base path, or `None` when it lies outside it.
    fn relative<'a>(&self, path: &'a str) -> Option<&'a str> {
        if self.base_path.is_empty() {
            return Some(path);
        }
        match path.strip_prefix(self.base_path.as_str()) {
            Some("") => Some("/"),
            Some(rest) if rest.starts_with('/') => Some(rest),
            _ => None,
        }
    }

    async fn dispatch<B>(&self, request: Request<B>, remote: Option<IpAddr>, request_id: RequestId) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let (mut parts, body) = request.into_parts();
        let response = self.route(&mut parts, body, remote, request_id).await;
        // The request's header map, emptied, becomes a later response's.
        super::header_maps::give_back(parts.headers);
        response
    }

    /// Routes the request to its handler, through the host mode, the router, the bounded
    /// body read and the method check.
    async fn route<B>(
        &self,
        parts: &mut http::request::Parts,
        body: B,
        remote: Option<IpAddr>,
        request_id: RequestId,
    ) -> HttpResponse
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let Some(path) = self.relative(parts.uri.path()) else {
            return not_found(false);
        };
        let host = parts.headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
        let is_page = |p: &str| self.router.is_page(p);
        let (path, summary) = match self.host_mode.route(host, path, parts.uri.query(), is_page) {
            Routing::Serve(path) => (path, false),
            Routing::Summary => (std::borrow::Cow::Borrowed("/"), true),
            Routing::NotFound => return not_found(true),
            Routing::Redirect(location) => return temporary_redirect(&location),
        };
        let path = path.as_ref();
        let Some(route) = self.router.find(path) else {
            return not_found(is_api_path(path));
        };
        // The body is read (bounded in size and time) before the method check, so the
        // connection stays reusable and a slow upload counts as a request in flight.
        let body = match self.read_body(&parts.method, body).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        let endpoint = if summary {
            Some(Endpoint::Page(super::router::Page::AccountSummary))
        } else {
            route.endpoint(&parts.method)
        };
        let Some(endpoint) = endpoint else {
            return method_not_allowed(route);
        };
        // A WebSocket's handler takes the connection's upgrade; no other handler sees it.
        let upgrade = match endpoint {
            Endpoint::WebSocket(_) => parts.extensions.remove::<hyper::upgrade::OnUpgrade>(),
            _ => None,
        };
        let request = handlers::Request { parts, body, remote, path, request_id };
        // The JSON API, the pages and the provider are boxed: each is a large future (the
        // largest of its many handlers), and inline they would all weigh on the stack of
        // the authorization path, the one that is not boxed.
        match endpoint {
            Endpoint::Api(api) => Box::pin(handlers::api::call(api, self, request)).await,
            Endpoint::Page(page) => Box::pin(handlers::portal::page(self, page, request)).await,
            Endpoint::Static => handlers::portal::static_file(self, &request),
            Endpoint::Authz(i) => match self.authz.get(i) {
                Some(endpoint) => {
                    let response = handlers::authz::handle(self, endpoint, &request).await;
                    if let Some(metrics) = crate::telemetry::metrics::get() {
                        metrics.authz(response.status());
                    }
                    response
                }
                None => not_found(is_api_path(path)),
            },
            Endpoint::Oidc(endpoint) => Box::pin(handlers::oidc::call(endpoint, self, request)).await,
            Endpoint::WebSocket(ceremony) => handlers::ws::accept(self, ceremony, &request, upgrade),
        }
    }

    /// Reads a request body, bounded in size and time.
    async fn read_body<B>(&self, method: &Method, body: B) -> Result<Bytes, HttpResponse>
    where
        B: Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        if matches!(*method, Method::GET | Method::HEAD) {
            return Ok(Bytes::new());
        }
        let read_timeout = self.config.server.timeouts.read.get();
        match tokio::time::timeout(read_timeout, Limited::new(body, MAX_API_BODY).collect()).await {
            Ok(Ok(collected)) => Ok(collected.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => {
                Err(response::ko(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"))
            }
            Ok(Err(_)) => Err(response::ko(StatusCode::BAD_REQUEST, "Malformed request body")),
            Err(_) => Err(response::ko(StatusCode::REQUEST_TIMEOUT, "Request body took too long to arrive")),
        }
    }
}

/// The default Content-Security-Policy, with `form-action` widened to the cookie domains:
/// a login form's answer redirects the browser to the protected app, and browsers apply
/// `form-action` to that redirect; likewise to OpenID Connect clients' redirect URIs.
fn default_csp(config: &Configuration) -> String {
    let mut targets = String::new();
    for domain in config.session.cookies.iter().filter_map(|c| c.domain.as_deref()) {
        let scheme = if crate::config::validate::is_local_domain(domain) { "http" } else { "https" };
        targets.push_str(&format!(" {scheme}://{domain}:* {scheme}://*.{domain}:*"));
        if scheme == "http" {
            targets.push_str(&format!(" https://{domain}:* https://*.{domain}:*"));
        }
    }
    // An OpenID Connect answer leaves a form post (login, consent) by redirects to the
    // client's registered redirect URI; browsers check those redirects against form-action.
    for client in config.identity_providers.oidc.iter().flat_map(|o| &o.clients) {
        for uri in client.redirect_uris.as_slice().iter().chain(&client.post_logout_redirect_uris) {
            if let Ok(url) = url::Url::parse(uri) {
                let origin = url.origin().ascii_serialization();
                if origin != "null" && !targets.contains(&format!(" {origin}")) {
                    targets.push_str(&format!(" {origin}"));
                }
            }
        }
    }
    DEFAULT_CSP.replace("form-action 'self'", &format!("form-action 'self'{targets}"))
}

/// 307: the method and body are kept.
fn temporary_redirect(location: &str) -> HttpResponse {
    let mut r = response::bytes(StatusCode::TEMPORARY_REDIRECT, "text/plain; charset=utf-8", "");
    if let Ok(value) = HeaderValue::from_str(location) {
        r.headers_mut().insert(header::LOCATION, value);
    }
    r
}

fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

fn not_found(api: bool) -> HttpResponse {
    if api {
        response::ko(StatusCode::NOT_FOUND, "Not Found")
    } else {
        response::bytes(StatusCode::NOT_FOUND, "text/plain; charset=utf-8", "404 Not Found\n")
    }
}

fn method_not_allowed(route: &Route) -> HttpResponse {
    let mut response = response::ko(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
    let allow = route.methods().map(Method::as_str).collect::<Vec<_>>().join(", ");
    if let Ok(value) = HeaderValue::from_str(&allow) {
        response.headers_mut().insert(header::ALLOW, value);
    }
    response
}
