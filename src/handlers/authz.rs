//! The shared decision core of the authorization endpoints: target → identity (strategies
//! in order) → access rule → the reply the endpoint's proxy expects.

use http::header::{self, HeaderValue};
use http::{HeaderMap, StatusCode};

use super::api::{ApiRequest, now};
use crate::access_control::{Object, Policy, Subject};
use crate::authn::hashing_pool::DECOY_HASH;
use crate::authz::extract::{Target, extract};
use crate::authz::{AuthzEndpoint, Implementation, Strategy};
use crate::server::App;
use crate::server::response::{self, HttpResponse};
use crate::session::{AuthLevel, LoadedSession};
use crate::storage::{AuthAttempt, AuthType};

/// Who the request turned out to be.
struct Identity {
    username: String,
    display_name: String,
    email: String,
    groups: Vec<String>,
    level: AuthLevel,
}

/// Answers one authorization sub-request.
pub async fn handle(app: &App, endpoint: &AuthzEndpoint, request: &ApiRequest<'_>) -> HttpResponse {
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
                "400 Bad Request: the proxy did not send the original request's URL and method\n",
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
    let object = Object::new(&target.url, &target.method);
    let ip = app.client_ip(request.remote, &parts.headers);

    let mut identity = None;
    let mut session: Option<LoadedSession> = None;
    let mut failed_header: Option<Strategy> = None;
    for configured in &endpoint.strategies {
        let strategy = configured.kind;
        match strategy.header() {
            Some(name) => match parts.headers.get(&name).and_then(|v| v.to_str().ok()) {
                Some(value) => {
                    match basic_identity(app, value, ip, configured.basic_cache_lifespan).await {
                        Some(found) => identity = Some(found),
                        None => failed_header = Some(strategy),
                    }
                    break;
                }
                None => continue,
            },
            None => {
                let cookies = cookie_header(&parts.headers);
                match sessions.load(settings, cookies.as_deref(), now()).await {
                    Ok(Some(loaded)) if loaded.data.level() > AuthLevel::Anonymous => {
                        let d = &loaded.data;
                        identity = Some(Identity {
                            username: d.username.clone(),
                            display_name: d.display_name.clone(),
                            email: d.emails.first().cloned().unwrap_or_default(),
                            groups: d.groups.clone(),
                            level: d.level(),
                        });
                        session = Some(loaded);
                        break;
                    }
                    Ok(_) => {}
                    // Fail closed: an unreadable store means nobody is known.
                    Err(e) => tracing::error!(error = %e, "session store unavailable during authorization"),
                }
            }
        }
    }

    let empty: Vec<String> = Vec::new();
    let subject = Subject {
        username: identity.as_ref().map_or("", |i| i.username.as_str()),
        groups: identity.as_ref().map_or(&empty, |i| &i.groups),
        client_id: "",
        ip,
    };
    let decision = app.access_control.evaluate(&subject, &object);
    let level = identity.as_ref().map_or(AuthLevel::Anonymous, |i| i.level);

    if let Some(strategy) = failed_header
        && decision.policy != Policy::Bypass
    {
        return basic_challenge(strategy);
    }
    let authorized = match decision.policy {
        Policy::Bypass => true,
        Policy::OneFactor => level >= AuthLevel::OneFactor,
        Policy::TwoFactor => level >= AuthLevel::TwoFactor,
        Policy::Deny => false,
    };
    let forbidden = decision.policy == Policy::Deny && (level != AuthLevel::Anonymous || !decision.has_subjects);
    if authorized {
        if let Some(s) = &session {
            let throttle = (settings.inactivity / 4).min(std::time::Duration::from_secs(60));
            if let Err(e) = sessions.touch(settings, s, now(), throttle).await {
                tracing::warn!(error = %e, "cannot record session activity");
            }
        }
        return allowed(identity.as_ref());
    }
    if forbidden {
        tracing::info!(target = %redact(&target.url), user = %subject.username, "access forbidden");
        return text(StatusCode::FORBIDDEN, "403 Forbidden\n");
    }
    // Not enough: a Basic-authenticated request is challenged again; otherwise log in.
    if identity.is_some()
        && session.is_none()
        && let Some(configured) = endpoint.strategies.iter().find(|s| s.kind.header().is_some())
    {
        return basic_challenge(configured.kind);
    }
    login_required(endpoint.implementation, &settings.portal_url, &target, &parts.headers)
}

/// The `Cookie` header(s) of the original request.
fn cookie_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
    (!values.is_empty()).then(|| values.join("; "))
}

/// Checks `Basic` credentials against the users file (bounded hashing, regulated, logged),
/// or against the cache of recent successes when `cache_lifespan` is set.
async fn basic_identity(
    app: &App,
    value: &str,
    ip: Option<std::net::IpAddr>,
    cache_lifespan: std::time::Duration,
) -> Option<Identity> {
    let (login, password) = crate::authz::extract::basic_credentials(value)?;
    let (login, password) = (login.as_str(), password.as_str());
    let services = &app.services;
    let current_hash =
        |name: &str| services.users.find_login(name).filter(|u| !u.disabled).map(|u| u.password_hash.clone());
    if !cache_lifespan.is_zero()
        && let Some(username) = services.basic_cache.get(login, password, current_hash)
        && let Some(user) = services.users.find_login(&username)
    {
        return Some(identity_of(&user));
    }
    let found = services.users.find_login(login);
    let account = found.as_ref().map_or(login, |u| u.username.as_str()).to_string();
    let ip_text = ip.map(|i| i.to_string()).unwrap_or_default();
    let now = now();
    match services.regulator.banned_until(&account, &ip_text, now).await {
        Ok(None) => {}
        Ok(Some(_)) | Err(_) => return None,
    }
    let user = found.filter(|u| !u.disabled);
    let stored = user.as_ref().map_or(DECOY_HASH, |u| u.password_hash.as_str());
    let matched = services.hashing.verify(password, stored).await.unwrap_or(false);
    let user = user.filter(|_| matched);
    let attempt = AuthAttempt {
        time: now,
        successful: user.is_some(),
        banned: false,
        username: account,
        auth_type: AuthType::BasicAuth,
        remote_ip: ip_text,
        request_uri: String::new(),
        request_method: String::new(),
    };
    if let Err(e) = services.regulator.record(attempt).await {
        tracing::error!(error = %e, "cannot record a Basic authentication attempt");
        return None;
    }
    let user = user?;
    services.basic_cache.insert(login, password, &user.username, &user.password_hash, cache_lifespan);
    Some(identity_of(&user))
}

/// A Basic-authenticated user counts as one factor.
fn identity_of(u: &crate::authn::users_file::User) -> Identity {
    Identity {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        email: u.emails.first().cloned().unwrap_or_default(),
        groups: u.groups.clone(),
        level: AuthLevel::OneFactor,
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

fn login_required(
    implementation: Implementation,
    portal: &url::Url,
    target: &Target,
    headers: &HeaderMap,
) -> HttpResponse {
    let location = portal_redirect(portal, target);
    let status = match implementation {
        Implementation::AuthRequest => StatusCode::UNAUTHORIZED,
        _ if is_xhr(headers) || !accepts_html(headers) => StatusCode::UNAUTHORIZED,
        _ if matches!(target.method.as_str(), "GET" | "HEAD" | "OPTIONS") => StatusCode::FOUND,
        _ => StatusCode::SEE_OTHER,
    };
    let body = match status {
        StatusCode::FOUND => "302 Found: log in at the portal\n",
        StatusCode::SEE_OTHER => "303 See Other: log in at the portal\n",
        _ => "401 Unauthorized\n",
    };
    let mut r = text(status, body);
    set(&mut r, "location", &location);
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
