//! The HTTP adapter of the authorization endpoints: target → identity (strategies in
//! order) → access rule → [`crate::authz::decision::reply`] → the response the endpoint's
//! proxy expects.

use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::Request;
use crate::access_control::Subject;
use crate::authz::decision::{self, LoginStatus, Reply, RequestKind, Situation, Via};
use crate::authz::extract::{Target, extract};
use crate::authz::{AuthzEndpoint, Implementation, Strategy};
use crate::clock::now;
use crate::flows::audit::Context;
use crate::flows::credentials::{self, Origin};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::{AuthLevel, CookieSettings, LoadedSession};
use crate::storage::AuthType;

/// Who the request turned out to be.
struct Identity {
    username: String,
    /// The client of a client credentials access token (`oauth2:client:<id>` subjects).
    client_id: String,
    display_name: String,
    email: String,
    groups: Vec<String>,
    level: AuthLevel,
    via: Via,
}

/// What the strategies found.
#[derive(Default)]
struct Found {
    identity: Option<Identity>,
    session: Option<LoadedSession>,
    failed_header: Option<Strategy>,
}

/// Answers one authorization sub-request.
pub async fn handle(app: &App, endpoint: &AuthzEndpoint, request: &Request<'_>) -> HttpResponse {
    let parts = request.parts;
    let rest = request.path.strip_prefix(endpoint.path.as_str()).unwrap_or("");
    let rest_with_query = match parts.uri.query() {
        Some(q) if endpoint.implementation == Implementation::ExtAuthz => format!("{rest}?{q}"),
        _ => rest.to_string(),
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
    let sessions = &app.services.sessions;
    let host = target.url.host_str().unwrap_or_default();
    let Some(settings) = sessions.cookie_for_host(host) else {
        tracing::warn!(target = %redact(&target.url), "target is not under any configured cookie domain");
        return text(StatusCode::FORBIDDEN, "403 Forbidden\n");
    };
    let local = crate::config::validate::is_local_domain(&settings.domain);
    if target.url.scheme() != "https" && target.url.scheme() != "wss" && !(local && target.url.scheme() == "http") {
        tracing::warn!(target = %redact(&target.url), "target must be https so that session cookies stay secret");
        return text(StatusCode::BAD_REQUEST, "400 Bad Request: the target must use https\n");
    }
    let object = match app.access_control.object(host, &target.path, target.url.query(), &target.method) {
        Ok(object) => object,
        Err(why) => {
            tracing::warn!(target = %redact(&target.url), path = %target.path, "path refused: {why}");
            return text(StatusCode::BAD_REQUEST, "400 Bad Request: the path is spelled ambiguously\n");
        }
    };
    let context = request.context(app);
    let ip = context.ip;
    let found = identify(app, endpoint, settings, &parts.headers, &target, &context).await;

    let empty: Vec<String> = Vec::new();
    let identity = found.identity.as_ref();
    let subject = Subject {
        username: identity.map_or("", |i| i.username.as_str()),
        groups: identity.map_or(&empty, |i| &i.groups),
        client_id: identity.map_or("", |i| i.client_id.as_str()),
        ip,
    };
    let situation = Situation {
        identity: identity.map(|i| (i.level, i.via)),
        failed_header: found.failed_header,
        header_strategy: endpoint.strategies.iter().map(|s| s.kind).find(|k| k.header().is_some()),
        decision: app.access_control.evaluate(&subject, &object),
        kind: RequestKind {
            implementation: endpoint.implementation,
            safe_method: matches!(target.method.as_str(), "GET" | "HEAD" | "OPTIONS"),
            xhr: is_xhr(&parts.headers),
            accepts_html: accepts_html(&parts.headers),
        },
    };
    match decision::reply(&situation) {
        Reply::Allow => {
            if let Some(s) = &found.session {
                let throttle = (settings.inactivity / 4).min(std::time::Duration::from_secs(60));
                if let Err(e) = sessions.touch(settings, s, now(), throttle).await {
                    tracing::warn!(error = %e, "cannot record session activity");
                }
            }
            allowed(identity)
        }
        Reply::Forbidden => {
            tracing::info!(target = %redact(&target.url), user = %subject.username, "access forbidden");
            text(StatusCode::FORBIDDEN, "403 Forbidden\n")
        }
        Reply::Challenge(strategy) => basic_challenge(strategy),
        Reply::Login(status) => login_required(status, &settings.portal_url, &target),
    }
}

/// Runs the endpoint's strategies in order: the first header strategy whose header is
/// present decides (right or wrong); a session counts when it is logged in.
async fn identify(
    app: &App,
    endpoint: &AuthzEndpoint,
    settings: &CookieSettings,
    headers: &HeaderMap,
    target: &Target,
    context: &Context,
) -> Found {
    let mut found = Found::default();
    for configured in &endpoint.strategies {
        let strategy = configured.kind;
        match strategy.header() {
            Some(name) => {
                let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok()) else { continue };
                let bearer = value.get(..7).is_some_and(|p| p.eq_ignore_ascii_case("bearer "));
                if bearer && configured.bearer {
                    match bearer_identity(app, value[7..].trim(), target).await {
                        Some(user) => found.identity = Some(Identity { via: Via::Header(strategy), ..user }),
                        None => found.failed_header = Some(strategy),
                    }
                    return found;
                }
                match basic_identity(app, value, target, context, configured.basic_cache_lifespan).await {
                    Some(user) => found.identity = Some(Identity { via: Via::Header(strategy), ..user }),
                    None => found.failed_header = Some(strategy),
                }
                return found;
            }
            None => {
                let cookies = cookie_header(headers);
                match app.services.sessions.load(settings, cookies.as_deref(), now()).await {
                    Ok(Some(loaded)) if loaded.data.level() > AuthLevel::Anonymous => {
                        let d = &loaded.data;
                        found.identity = Some(Identity {
                            client_id: String::new(),
                            username: d.username.clone(),
                            display_name: d.display_name.clone(),
                            email: d.emails.first().cloned().unwrap_or_default(),
                            groups: d.groups.clone(),
                            level: d.level(),
                            via: Via::Session,
                        });
                        found.session = Some(loaded);
                        return found;
                    }
                    Ok(_) => {}
                    // Fail closed: an unreadable store means nobody is known.
                    Err(e) => tracing::error!(error = %e, "session store unavailable during authorization"),
                }
            }
        }
    }
    found
}

/// The `Cookie` header(s) of the original request.
fn cookie_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join("; "))
}

/// Checks `Basic` credentials with the one regulated credential check, or against the
/// cache of recent successes when `cache_lifespan` is set. `None` when they do not pass
/// (wrong, banned, or regulation unavailable: the proxy challenges again).
async fn basic_identity(
    app: &App,
    value: &str,
    target: &Target,
    context: &Context,
    cache_lifespan: std::time::Duration,
) -> Option<Identity> {
    let (login, password) = crate::authz::extract::basic_credentials(value)?;
    let services = &app.services;
    if !cache_lifespan.is_zero()
        && let Some((username, verified_hash)) = services.basic_cache.candidate(&login, &password)
        && let Ok(Some(user)) = services.users.get(&username).await
        && !user.disabled
        && user.password_hash == verified_hash
    {
        return Some(identity_of(&user));
    }
    let target_url = redact(&target.url);
    let origin =
        Origin { auth_type: AuthType::BasicAuth, context, target_url: &target_url, request_method: &target.method };
    match credentials::check_password(app, &login, &password, origin).await {
        Ok(user) => {
            services.basic_cache.insert(&login, &password, &user.username, &user.password_hash, cache_lifespan);
            Some(identity_of(&user))
        }
        Err(e) => {
            e.log();
            None
        }
    }
}

/// The scope an access token needs to be accepted at the authorization endpoints (as
/// Authelia names it).
pub const BEARER_SCOPE: &str = "authelia.bearer.authz";

/// The identity of an OpenID Connect access token: it must be usable, carry
/// [`BEARER_SCOPE`], and, when its audience names URLs, name one the target starts with.
/// A user's token stands for the user (at one factor, or two when the grant had them); a
/// client credentials token for the client (`oauth2:client:<id>` subjects).
async fn bearer_identity(app: &App, token: &str, target: &Target) -> Option<Identity> {
    let active = match crate::flows::oidc::inspect::active_access_token(app, token).await {
        Ok(Some(active)) => active,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(error = %e.description, "cannot check a bearer token");
            return None;
        }
    };
    let grant = active.grant;
    if !grant.scopes.iter().any(|s| s == BEARER_SCOPE) {
        tracing::info!(client_id = %grant.client_id, "bearer token without the authelia.bearer.authz scope");
        return None;
    }
    let urls: Vec<&String> =
        grant.audience.iter().filter(|a| a.starts_with("https://") || a.starts_with("http://")).collect();
    if !urls.is_empty() && !urls.iter().any(|a| target.url.as_str().starts_with(a.as_str())) {
        tracing::info!(client_id = %grant.client_id, "bearer token for another audience");
        return None;
    }
    if grant.auth.username.is_empty() {
        return Some(Identity {
            username: String::new(),
            client_id: grant.client_id,
            display_name: String::new(),
            email: String::new(),
            groups: Vec::new(),
            level: AuthLevel::OneFactor,
            via: Via::Session,
        });
    }
    let user = app.services.users.get(&grant.auth.username).await.ok().flatten().filter(|u| !u.disabled)?;
    let mut identity = identity_of(&user);
    if grant.auth.amr.iter().any(|m| m == "mfa") {
        identity.level = AuthLevel::TwoFactor;
    }
    Some(identity)
}

/// A Basic-authenticated user counts as one factor.
fn identity_of(u: &crate::authn::users_file::User) -> Identity {
    Identity {
        client_id: String::new(),
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.emails.first().cloned().unwrap_or_default(),
        groups: u.groups.clone(),
        level: AuthLevel::OneFactor,
        via: Via::Session,
    }
}

fn text(status: StatusCode, body: &'static str) -> HttpResponse {
    response::bytes(status, "text/plain; charset=utf-8", body)
}

fn set(r: &mut HttpResponse, name: &'static str, value: &str) {
    // Header values cannot carry control characters; such a value is left out.
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().insert(name, v);
    }
}

fn allowed(identity: Option<&Identity>) -> HttpResponse {
    match identity {
        Some(i) if i.username.is_empty() => text(StatusCode::OK, "200 OK\n"),
        Some(i) => allowed_as(&i.username, &i.groups, &i.display_name, &i.email),
        None => text(StatusCode::OK, "200 OK\n"),
    }
}

/// The 200 reply that lets a known user through, with the `Remote-User`, `Remote-Groups`,
/// `Remote-Name` and `Remote-Email` headers the proxy hands to the application (a value
/// with control characters is left out). Public for the benchmarks.
pub fn allowed_as(username: &str, groups: &[String], display_name: &str, email: &str) -> HttpResponse {
    let mut r = text(StatusCode::OK, "200 OK\n");
    set(&mut r, "remote-user", username);
    set(&mut r, "remote-groups", &groups.join(","));
    set(&mut r, "remote-name", display_name);
    set(&mut r, "remote-email", email);
    r
}

fn basic_challenge(strategy: Strategy) -> HttpResponse {
    let (status, name) = match strategy {
        Strategy::HeaderProxyAuthorization => (StatusCode::PROXY_AUTHENTICATION_REQUIRED, "proxy-authenticate"),
        _ => (StatusCode::UNAUTHORIZED, "www-authenticate"),
    };
    let mut r = text(status, "401 Unauthorized\n");
    set(&mut r, name, "Basic realm=\"Authorization Required\"");
    r
}

/// The portal URL with `rd` (target) and `rm` (method), as Authelia builds it.
pub fn portal_redirect(portal: &url::Url, target: &Target) -> String {
    let mut url = portal.clone();
    if url.path().is_empty() {
        url.set_path("/");
    }
    url.query_pairs_mut().append_pair("rd", target.url.as_str()).append_pair("rm", &target.method);
    url.to_string()
}

fn login_required(status: LoginStatus, portal: &url::Url, target: &Target) -> HttpResponse {
    let (status, body) = match status {
        LoginStatus::Found => (StatusCode::FOUND, "302 Found: log in at the portal\n"),
        LoginStatus::SeeOther => (StatusCode::SEE_OTHER, "303 See Other: log in at the portal\n"),
        LoginStatus::Unauthorized => (StatusCode::UNAUTHORIZED, "401 Unauthorized\n"),
    };
    let mut r = text(status, body);
    set(&mut r, "location", &portal_redirect(portal, target));
    r
}

fn is_xhr(headers: &HeaderMap) -> bool {
    headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"))
}

/// Authelia's rule: the request accepts HTML if `text/html` is listed, or `*/*` is first.
fn accepts_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else { return false };
    accept.split(',').enumerate().any(|(i, part)| {
        let mime = part.split(';').next().unwrap_or("").trim();
        mime == "text/html" || (i == 0 && mime == "*/*")
    })
}

/// The target without its query (which may carry tokens), for logs.
fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}
