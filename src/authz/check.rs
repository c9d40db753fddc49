//! The authorization check, whatever the wire: a validated target, the original request's
//! headers and the client's address in; a [`Outcome`] out. The HTTP endpoints and the gRPC
//! `Check` service both call [`check`] and differ only in how they read the proxy's
//! question and write the answer, so every rule (cookie domain, https, path spelling,
//! strategies, access rules, the decision table) holds the same over both.

use std::sync::Arc;

use http::{HeaderMap, StatusCode, header};

use super::decision::{self, LoginStatus, Reply, RequestKind, Situation, Via};
use super::extract::{Target, basic_credentials};
use super::{AuthzEndpoint, Strategy};
use crate::access_control::Subject;
use crate::authn::api_token;
use crate::authn::users_file::User;
use crate::clock::now;
use crate::flows::audit::Context;
use crate::flows::credentials::{self, Origin};
use crate::server::App;
use crate::session::{AuthLevel, CookieSettings, LoadedSession, SessionData};
use crate::storage::AuthType;

/// Who the request turned out to be.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Whose name, email and groups these are.
    person: Person,
    /// The client of a client credentials access token (`oauth2:client:<id>` subjects).
    pub client_id: String,
    /// How far the user has authenticated.
    pub level: AuthLevel,
    /// How the request proved it.
    pub via: Via,
    /// The name of the personal API token the request came with (`token:` subjects);
    /// `None` for every other way in.
    pub token: Option<String>,
}

/// The record an identity's details are read from: the session or the user's record the
/// strategy found, shared rather than copied (a check is answered thousands of times a
/// second for the same few people).
#[derive(Clone)]
enum Person {
    /// A logged-in session.
    Session(Arc<SessionData>),
    /// A user of the users backend (Basic credentials, a token).
    User(Arc<User>),
    /// Nobody: a client credentials access token.
    Nobody,
}

/// Names the record and its user only: a session's data also holds pending codes and
/// ceremony state, which must not reach a log through a debug print.
impl std::fmt::Debug for Person {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Session(d) => f.debug_tuple("Session").field(&d.username).finish(),
            Self::User(u) => f.debug_tuple("User").field(&u.username).finish(),
            Self::Nobody => f.write_str("Nobody"),
        }
    }
}

/// The identity headers handed to the application, in the order of
/// [`Identity::header_values`].
pub const IDENTITY_HEADERS: [&str; 4] = ["remote-user", "remote-groups", "remote-name", "remote-email"];

impl Identity {
    /// The user a session is logged in as, at the session's level.
    pub fn of_session(data: Arc<SessionData>) -> Self {
        let level = data.level();
        Self { person: Person::Session(data), client_id: String::new(), level, via: Via::Session, token: None }
    }

    /// A user of the users backend, at one factor (Basic credentials, a token).
    pub fn of_user(user: Arc<User>) -> Self {
        Self {
            person: Person::User(user),
            client_id: String::new(),
            level: AuthLevel::OneFactor,
            via: Via::Session,
            token: None,
        }
    }

    /// The client of a client credentials access token: no user, one factor.
    pub fn of_client(client_id: String) -> Self {
        Self { person: Person::Nobody, client_id, level: AuthLevel::OneFactor, via: Via::Session, token: None }
    }

    /// The username (`Remote-User`); empty for a client credentials access token.
    pub fn username(&self) -> &str {
        match &self.person {
            Person::Session(d) => &d.username,
            Person::User(u) => &u.username,
            Person::Nobody => "",
        }
    }

    /// The display name (`Remote-Name`).
    pub fn display_name(&self) -> &str {
        match &self.person {
            Person::Session(d) => &d.display_name,
            Person::User(u) => &u.display_name,
            Person::Nobody => "",
        }
    }

    /// The first email address, or empty (`Remote-Email`).
    pub fn email(&self) -> &str {
        let emails = match &self.person {
            Person::Session(d) => &d.emails,
            Person::User(u) => &u.emails,
            Person::Nobody => return "",
        };
        emails.first().map_or("", String::as_str)
    }

    /// The groups (`Remote-Groups`, comma-separated).
    pub fn groups(&self) -> &[String] {
        match &self.person {
            Person::Session(d) => &d.groups,
            Person::User(u) => &u.groups,
            Person::Nobody => &[],
        }
    }

    /// The values of [`IDENTITY_HEADERS`]: username, groups joined with `,`, display name,
    /// email.
    pub fn header_values(&self) -> [String; 4] {
        [self.username().to_owned(), self.groups().join(","), self.display_name().to_owned(), self.email().to_owned()]
    }
}

/// How the proxy refuses the request: the status, the one header the client needs
/// (`Location`, `WWW-Authenticate` or `Proxy-Authenticate`), and a plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// The HTTP status.
    pub status: StatusCode,
    /// A header for the client, lower case.
    pub header: Option<(&'static str, String)>,
    /// The body.
    pub body: &'static str,
}

/// The challenge that asks for Basic credentials again.
const REALM: &str = "Basic realm=\"Authorization Required\"";

/// A request refused before any identity was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The target's host is under no configured cookie domain: no session could ever
    /// cover it (403).
    NoCookieDomain,
    /// The target is plain http outside a local development domain: a session cookie
    /// must not travel in clear (400).
    NotHttps,
    /// The access rules refuse to read the path (a backslash, an encoded dot segment, a
    /// double encoding...): judging it one way while the app reads it another is how
    /// rules are bypassed (400).
    AmbiguousPath,
    /// The proxy named a portal (`authelia_url`, `X-Authelia-URL`, legacy `rd`) that is
    /// not an https URL under the target's cookie domain: users are never sent to log in
    /// somewhere their session cookie does not belong (400).
    ForeignPortal,
}

/// What the proxy's own request adds to the question, beyond the target (over HTTP;
/// Authelia's names).
#[derive(Clone, Debug, Default)]
pub struct Asked {
    /// The portal to send users to instead of the cookie domain's `authelia_url`:
    /// `?authelia_url=` (ForwardAuth, AuthRequest), `X-Authelia-URL` (ExtAuthz), `?rd=`
    /// or else `X-Authelia-URL` (Legacy).
    pub portal: Option<String>,
    /// Legacy `?auth=basic`: credentials come in `Authorization`, and without them the
    /// client is asked for Basic credentials rather than sent to the portal.
    pub basic_only: bool,
}

impl Refusal {
    /// How the proxy answers the client.
    pub fn denial(self) -> Denial {
        let (status, body) = match self {
            Self::NoCookieDomain => (StatusCode::FORBIDDEN, "403 Forbidden\n"),
            Self::NotHttps => (StatusCode::BAD_REQUEST, "400 Bad Request: the target must use https\n"),
            Self::AmbiguousPath => (StatusCode::BAD_REQUEST, "400 Bad Request: the path is spelled ambiguously\n"),
            Self::ForeignPortal => {
                (StatusCode::BAD_REQUEST, "400 Bad Request: the portal URL is not under the target's cookie domain\n")
            }
        };
        Denial { status, header: None, body }
    }
}

/// A store the check needed could not be read, so the reply may be wrong in the safe
/// direction (anonymous where the user is logged in, challenged where the password is
/// right).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unavailable {
    /// The session store.
    SessionStore,
    /// The database (regulation) or the users backend, while checking Basic credentials.
    Storage,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::SessionStore => "the session store",
            Self::Storage => "the database or the users backend",
        })
    }
}

/// The judged request.
#[derive(Debug)]
pub struct Judgement {
    /// The decision.
    pub reply: Reply,
    /// The identity the strategies found, if any.
    pub identity: Option<Identity>,
    /// Where to log in (the portal with `rd` and `rm`), for [`Reply::Login`].
    pub login_url: Option<String>,
    /// A store was down while judging. The reply still fails closed; a transport that can
    /// say "unavailable" (gRPC) says so when the reply is not [`Reply::Allow`].
    pub unavailable: Option<Unavailable>,
}

impl Judgement {
    /// How the proxy refuses the request, or `None` when it lets it through.
    pub fn denial(&self) -> Option<Denial> {
        let (status, header, body) = match self.reply {
            Reply::Allow => return None,
            Reply::Forbidden => (StatusCode::FORBIDDEN, None, "403 Forbidden\n"),
            Reply::Challenge(Strategy::HeaderProxyAuthorization) => (
                StatusCode::PROXY_AUTHENTICATION_REQUIRED,
                Some(("proxy-authenticate", REALM.to_string())),
                "407 Proxy Authentication Required\n",
            ),
            Reply::Challenge(_) => {
                (StatusCode::UNAUTHORIZED, Some(("www-authenticate", REALM.to_string())), "401 Unauthorized\n")
            }
            Reply::Login(status) => {
                let (status, body) = match status {
                    LoginStatus::Found => (StatusCode::FOUND, "302 Found: log in at the portal\n"),
                    LoginStatus::SeeOther => (StatusCode::SEE_OTHER, "303 See Other: log in at the portal\n"),
                    LoginStatus::Unauthorized => (StatusCode::UNAUTHORIZED, "401 Unauthorized\n"),
                };
                (status, self.login_url.clone().map(|url| ("location", url)), body)
            }
        };
        Some(Denial { status, header, body })
    }
}

/// The answer to a check.
#[derive(Debug)]
pub enum Outcome {
    /// Refused without looking at the identity.
    Refused(Refusal),
    /// Judged by the access rules.
    Judged(Judgement),
}

/// What the strategies found.
#[derive(Default)]
struct Found {
    identity: Option<Identity>,
    session: Option<LoadedSession>,
    failed_header: Option<Strategy>,
    unavailable: Option<Unavailable>,
}

/// Judges `target` for `endpoint`: cookie domain, https, the path's spelling, then the
/// endpoint's strategies in order, the access rules and [`decision::reply`]. An allowed
/// session's activity is recorded (throttled). `headers` are the original request's (the
/// credentials, `Accept`, `X-Requested-With`); `context` holds the client's address as the
/// transport established it, for the rules, regulation and the audit trail; `asked` what
/// the proxy's request adds.
pub async fn check(
    app: &App,
    endpoint: &AuthzEndpoint,
    target: &Target,
    headers: &HeaderMap,
    context: &Context,
    asked: &Asked,
) -> Outcome {
    let sessions = &app.services.sessions;
    let host = target.url.host_str().unwrap_or_default();
    let Some(settings) = sessions.cookie_for_host(host) else {
        tracing::warn!(target = %redact(&target.url), "target is not under any configured cookie domain");
        return Outcome::Refused(Refusal::NoCookieDomain);
    };
    let local = crate::config::validate::is_local_domain(&settings.domain);
    let scheme = target.url.scheme();
    if scheme != "https" && scheme != "wss" && !(local && scheme == "http") {
        tracing::warn!(target = %redact(&target.url), "target must be https so that session cookies stay secret");
        return Outcome::Refused(Refusal::NotHttps);
    }
    // One version of the rules judges the whole request, even if a reload lands meanwhile.
    let rules = app.access_control.current();
    let object = match rules.object(host, &target.path, target.url.query(), &target.method) {
        Ok(object) => object,
        Err(why) => {
            tracing::warn!(target = %redact(&target.url), path = %target.path, "path refused: {why}");
            return Outcome::Refused(Refusal::AmbiguousPath);
        }
    };
    let named_portal = match &asked.portal {
        None => None,
        Some(named) => match portal_named(app, named, &settings.domain) {
            Some(url) => Some(url),
            None => {
                tracing::warn!(portal = %named, target = %redact(&target.url), "portal URL refused");
                return Outcome::Refused(Refusal::ForeignPortal);
            }
        },
    };
    let portal = named_portal.as_ref().unwrap_or(&settings.portal_url);
    let found = identify(app, endpoint, settings, headers, target, context, asked.basic_only).await;

    let identity = found.identity.as_ref();
    let subject = Subject {
        username: identity.map_or("", Identity::username),
        groups: identity.map_or(&[], Identity::groups),
        client_id: identity.map_or("", |i| i.client_id.as_str()),
        ip: context.ip,
        token: identity.and_then(|i| i.token.as_deref()),
    };
    let situation = Situation {
        identity: identity.map(|i| (i.level, i.via)),
        failed_header: found.failed_header,
        header_strategy: endpoint.strategies.iter().map(|s| s.kind).find(|k| k.header().is_some()),
        decision: crate::telemetry::traces::span!("access_control.evaluate")
            .in_scope(|| rules.evaluate(&subject, &object)),
        kind: RequestKind {
            implementation: endpoint.implementation,
            safe_method: matches!(&*target.method, "GET" | "HEAD" | "OPTIONS"),
            xhr: is_xhr(headers),
            accepts_html: accepts_html(headers),
        },
    };
    let reply = match decision::reply(&situation) {
        Reply::Login(_) if asked.basic_only => Reply::Challenge(Strategy::HeaderLegacy),
        reply => reply,
    };
    let mut login_url = None;
    match reply {
        Reply::Allow => {
            if let Some(s) = &found.session {
                let throttle = (settings.inactivity / 4).min(std::time::Duration::from_secs(60));
                if let Err(e) = sessions.touch(settings, s, now(), throttle).await {
                    tracing::warn!(error = %e, "cannot record session activity");
                }
            }
        }
        Reply::Forbidden => {
            tracing::info!(target = %redact(&target.url), user = %subject.username, "access forbidden");
        }
        Reply::Challenge(_) => {}
        Reply::Login(_) => login_url = Some(portal_redirect(portal, target)),
    }
    // A client (client credentials token) has no user to name in the identity headers.
    let identity = found.identity.filter(|i| !i.username().is_empty());
    Outcome::Judged(Judgement { reply, identity, login_url, unavailable: found.unavailable })
}

/// Runs the endpoint's strategies in order: the first header strategy whose header is
/// present decides (right or wrong); a session counts when it is logged in. With
/// `basic_only` (legacy `?auth=basic`), the legacy strategy reads `Authorization` and
/// its absence is a failure, so no session is looked at.
async fn identify(
    app: &App,
    endpoint: &AuthzEndpoint,
    settings: &CookieSettings,
    headers: &HeaderMap,
    target: &Target,
    context: &Context,
    basic_only: bool,
) -> Found {
    let mut found = Found::default();
    for configured in &endpoint.strategies {
        let strategy = configured.kind;
        let basic_only = basic_only && strategy == Strategy::HeaderLegacy;
        let header = if basic_only { Some(header::AUTHORIZATION) } else { strategy.header() };
        match header {
            Some(name) => {
                let Some(value) = headers.get(&name).and_then(|v| v.to_str().ok()) else {
                    if basic_only {
                        found.failed_header = Some(strategy);
                        return found;
                    }
                    continue;
                };
                let bearer = super::extract::bearer_token(value).filter(|_| configured.bearer && !basic_only);
                if let Some(token) = bearer {
                    // The two kinds of bearer token are told apart by the personal token's
                    // prefix; the OpenID Connect token lookup is boxed: a large future,
                    // and rare on this path.
                    let outcome = if token.starts_with(api_token::PREFIX) {
                        Box::pin(token_identity(app, token, None)).await
                    } else {
                        Box::pin(bearer_identity(app, token, target)).await
                    };
                    match outcome {
                        Ok(user) => found.identity = Some(Identity { via: Via::Header(strategy), ..user }),
                        Err(unavailable) => {
                            found.failed_header = Some(strategy);
                            found.unavailable = found.unavailable.or(unavailable);
                        }
                    }
                    return found;
                }
                match Box::pin(basic_identity(app, value, target, context, configured.basic_cache_lifespan)).await {
                    Ok(user) => found.identity = Some(Identity { via: Via::Header(strategy), ..user }),
                    Err(unavailable) => {
                        found.failed_header = Some(strategy);
                        found.unavailable = found.unavailable.or(unavailable);
                    }
                }
                return found;
            }
            None => {
                let cookies = cookie_header(headers);
                match app.services.sessions.load(settings, cookies.as_deref(), now()).await {
                    Ok(Some(loaded)) if loaded.data.level() > AuthLevel::Anonymous => {
                        found.identity = Some(Identity::of_session(loaded.data.clone()));
                        found.session = Some(loaded);
                        return found;
                    }
                    Ok(_) => {}
                    // Fail closed: an unreadable store means nobody is known.
                    Err(e) => {
                        tracing::error!(error = %e, "session store unavailable during authorization");
                        found.unavailable = Some(Unavailable::SessionStore);
                    }
                }
            }
        }
    }
    found
}

/// The `Cookie` header(s) of the original request: borrowed in the usual case of one
/// header, joined when a proxy split them.
fn cookie_header(headers: &HeaderMap) -> Option<std::borrow::Cow<'_, str>> {
    let mut values = headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok());
    let first = values.next()?;
    let Some(second) = values.next() else { return Some(std::borrow::Cow::Borrowed(first)) };
    let mut joined = [first, second].join("; ");
    for value in values {
        joined.push_str("; ");
        joined.push_str(value);
    }
    Some(std::borrow::Cow::Owned(joined))
}

/// Checks `Basic` credentials with the one regulated credential check, or against the
/// cache of recent successes when `cache_lifespan` is set. An error when they do not pass
/// (wrong or banned: `None`; a store down: which one), and the proxy challenges again.
async fn basic_identity(
    app: &App,
    value: &str,
    target: &Target,
    context: &Context,
    cache_lifespan: std::time::Duration,
) -> Result<Identity, Option<Unavailable>> {
    let (login, password) = basic_credentials(value).ok_or(None)?;
    if app.config.api_tokens.enabled && api_token::is_well_formed(&password) {
        // For tools that only speak Basic: the token as the password, its owner as the
        // username. No password hash is checked, so none is computed.
        return token_identity(app, &password, Some(&login)).await;
    }
    let services = &app.services;
    if !cache_lifespan.is_zero()
        && services.invalidation.caches_trusted()
        && let Some((username, verified_hash)) = services.basic_cache.candidate(&login, &password)
        && let Ok(Some(user)) = services.users.get(&username).await
        && !user.disabled
        && user.password_hash == verified_hash
    {
        return Ok(Identity::of_user(user));
    }
    let target_url = redact(&target.url);
    let origin =
        Origin { auth_type: AuthType::BasicAuth, context, target_url: &target_url, request_method: &target.method };
    match credentials::check_password(app, &login, &password, origin).await {
        Ok(user) => {
            services.basic_cache.insert(&login, &password, &user.username, &user.password_hash, cache_lifespan);
            Ok(Identity::of_user(user))
        }
        Err(e) => {
            e.log();
            let down = e.class().0 == StatusCode::SERVICE_UNAVAILABLE;
            Err(down.then_some(Unavailable::Storage))
        }
    }
}

/// The scope an access token needs to be accepted at the authorization endpoints (as
/// Authelia names it).
pub const BEARER_SCOPE: &str = "authelia.bearer.authz";

/// The identity of an OpenID Connect access token: it must be usable, carry
/// [`BEARER_SCOPE`], and, when its audience names URLs, name one the target starts with.
/// A user's token stands for the user (at one factor, or two when the grant had them); a
/// client credentials token for the client (`oauth2:client:<id>` subjects). An error
/// when it does not pass (`Some` when the storage could not be read).
async fn bearer_identity(app: &App, token: &str, target: &Target) -> Result<Identity, Option<Unavailable>> {
    let active = match crate::flows::oidc::inspect::active_access_token(app, token).await {
        Ok(Some(active)) => active,
        Ok(None) => return Err(None),
        Err(e) => {
            tracing::warn!(error = %e.description, "cannot check a bearer token");
            return Err(Some(Unavailable::Storage));
        }
    };
    let grant = active.grant;
    if !grant.scopes.iter().any(|s| s == BEARER_SCOPE) {
        tracing::info!(client_id = %grant.client_id, "bearer token without the authelia.bearer.authz scope");
        return Err(None);
    }
    let urls: Vec<&String> =
        grant.audience.iter().filter(|a| a.starts_with("https://") || a.starts_with("http://")).collect();
    if !urls.is_empty() && !urls.iter().any(|a| target.url.as_str().starts_with(a.as_str())) {
        tracing::info!(client_id = %grant.client_id, "bearer token for another audience");
        return Err(None);
    }
    if grant.auth.username.is_empty() {
        return Ok(Identity::of_client(grant.client_id));
    }
    let user = match app.services.users.get(&grant.auth.username).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => return Err(None),
        Err(_) => return Err(Some(Unavailable::Storage)),
    };
    let mut identity = Identity::of_user(user);
    if grant.auth.amr.iter().any(|m| m == "mfa") {
        identity.level = AuthLevel::TwoFactor;
    }
    Ok(identity)
}

/// The identity of a personal API token: its owner, at one factor (a token is one
/// secret, whatever the owner proved when creating it), marked with the token's name for
/// `token:` subjects. With Basic credentials, `login` must name the owner. An error when
/// it does not pass (`Some` when the database or users backend could not be read).
async fn token_identity(app: &App, token: &str, login: Option<&str>) -> Result<Identity, Option<Unavailable>> {
    match crate::flows::api_tokens::verify(app, token).await {
        Ok(Some((verified, user))) => {
            if login.is_some_and(|login| !login.eq_ignore_ascii_case(&user.username)) {
                tracing::info!(id = verified.id, "API token sent with another user's name");
                return Err(None);
            }
            Ok(Identity { token: Some(verified.name.clone()), ..Identity::of_user(user) })
        }
        Ok(None) => {
            tracing::info!("API token refused: unknown, revoked, expired, or its owner is disabled");
            Err(None)
        }
        Err(e) => {
            tracing::warn!(error = %e, cause = %e.cause().unwrap_or_default(), "cannot check an API token");
            Err(Some(Unavailable::Storage))
        }
    }
}

/// The portal the proxy named, when it is a safe redirect (the portal's own rule: https,
/// or http on a local development domain, no userinfo) whose host is under `domain`, the
/// target's cookie domain rather than any configured one.
fn portal_named(app: &App, named: &str, domain: &str) -> Option<url::Url> {
    let sessions = &app.services.sessions;
    let url = url::Url::parse(named).ok()?;
    let same_domain = url.host_str().and_then(|h| sessions.cookie_for_host(h)).is_some_and(|s| s.domain == domain);
    (same_domain && sessions.is_safe_redirect(named)).then_some(url)
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

fn is_xhr(headers: &HeaderMap) -> bool {
    const X_REQUESTED_WITH: header::HeaderName = header::HeaderName::from_static("x-requested-with");
    headers
        .get(X_REQUESTED_WITH)
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
pub fn redact(url: &url::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_identity_prints_its_user_and_never_the_sessions_secrets() {
        let data = SessionData {
            username: "john".into(),
            first_factor_at: Some(1),
            email_code: Some("secret-code-481516".into()),
            elevation_code: Some("secret-code-2342".into()),
            ..SessionData::default()
        };
        let printed = format!("{:?}", Identity::of_session(Arc::new(data)));
        assert!(printed.contains("\"john\""), "{printed}");
        assert!(!printed.contains("secret-code"), "{printed}");
    }
}
