//! The route table, built once at startup from the configuration, so that optional
//! features add or remove their paths and the OpenAPI spec can be checked against it.

use std::collections::HashMap;

use http::Method;

use crate::config::Configuration;

/// What a route leads to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    /// `/api/health`.
    Health,
    /// `/api/state`.
    State,
    /// `/api/configuration`.
    Configuration,
    /// `/api/configuration/password-policy`.
    PasswordPolicy,
    /// `/api/openapi.yml`.
    OpenApi,
    /// `/api/logout`.
    Logout,
    /// `/api/user/info`.
    UserInfo,
    /// `/api/checks/safe-redirection`.
    SafeRedirection,
    /// `/api/firstfactor`.
    FirstFactor,
    /// `/api/bootstrap`.
    Bootstrap,
    /// `/api/user/info/2fa_method`.
    UserInfoMethod,
    /// `/api/secondfactor/totp/register`.
    TotpRegister,
    /// `/api/secondfactor/totp`.
    Totp,
    /// `/api/secondfactor/recovery-codes`.
    RecoveryCodes,
    /// `/api/secondfactor/webauthn`.
    WebAuthn,
    /// `/api/secondfactor/webauthn/credentials`.
    WebAuthnCredentials,
    /// `/api/secondfactor/webauthn/credential/register`.
    WebAuthnRegister,
    /// `/api/secondfactor/webauthn/credential/{id}`.
    WebAuthnCredential,
    /// `/api/firstfactor/passkey`.
    Passkey,
    /// `/api/secondfactor/email`.
    EmailCode,
    /// `/api/user/session/elevation`.
    Elevation,
    /// `/api/user/session/elevation/{id}`.
    ElevationRevoke,
    /// `/api/reset-password/identity/start`.
    ResetStart,
    /// `/api/reset-password/identity/finish`.
    ResetFinish,
    /// `/api/reset-password`.
    ResetPassword,
    /// `/api/change-password`.
    ChangePassword,
    /// A portal page or static file.
    Portal,
    /// An authorization endpoint (index into the app's endpoints).
    Authz(usize),
}

/// One path and the methods it answers.
#[derive(Clone, Debug)]
pub struct Route {
    /// Path relative to the base path.
    pub path: String,
    /// Allowed methods.
    pub methods: &'static [Method],
    /// Handler.
    pub endpoint: Endpoint,
}

/// Exact-match routing (one hash probe), plus prefixes for endpoints that also answer the
/// paths below them.
#[derive(Debug)]
pub struct Router {
    routes: HashMap<String, Route>,
    prefixes: Vec<Route>,
    params: Vec<(String, Route)>,
}

const GET_HEAD: &[Method] = &[Method::GET, Method::HEAD];
const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];
const GET_POST_PUT: &[Method] = &[Method::GET, Method::POST, Method::PUT];
const GET_POST_DELETE: &[Method] = &[Method::GET, Method::POST, Method::DELETE];
const GET_PUT_POST_DELETE: &[Method] = &[Method::GET, Method::PUT, Method::POST, Method::DELETE];
const PUT_POST_DELETE: &[Method] = &[Method::PUT, Method::POST, Method::DELETE];
const PUT_POST: &[Method] = &[Method::PUT, Method::POST];
const PUT_DELETE: &[Method] = &[Method::PUT, Method::DELETE];
const POST_DELETE: &[Method] = &[Method::POST, Method::DELETE];
const DELETE: &[Method] = &[Method::DELETE];
const PAGE: &[Method] = &[Method::GET, Method::HEAD, Method::POST];

/// The portal's pages (GET shows, POST submits).
const PORTAL_PAGES: &[&str] = &[
    "/",
    "/login",
    "/login/totp",
    "/login/totp/recovery",
    "/login/otp",
    "/login/webauthn",
    "/login/passkey",
    "/logout",
    "/forgot-password",
    "/reset-password",
    "/profile",
    "/profile/password",
    "/profile/elevate",
    "/profile/totp/enroll",
    "/profile/totp/recovery-codes",
    "/profile/totp/disable",
    "/profile/webauthn",
    "/profile/sign-out-everywhere",
    "/register/passkey",
];
/// What ExtAuthz and Legacy endpoints answer (the proxied request's own method).
const ANY: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::OPTIONS,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::TRACE,
];

impl Router {
    /// Builds the table for `config`.
    pub fn new(config: &Configuration) -> Self {
        let mut router = Self { routes: HashMap::new(), prefixes: Vec::new(), params: Vec::new() };
        router.add("/api/health", GET_HEAD, Endpoint::Health);
        router.add("/api/state", GET, Endpoint::State);
        router.add("/api/configuration", GET, Endpoint::Configuration);
        router.add("/api/configuration/password-policy", GET, Endpoint::PasswordPolicy);
        router.add("/api/openapi.yml", GET_HEAD, Endpoint::OpenApi);
        router.add("/api/logout", POST, Endpoint::Logout);
        router.add("/api/user/info", GET_POST, Endpoint::UserInfo);
        router.add("/api/user/info/2fa_method", POST, Endpoint::UserInfoMethod);
        router.add("/api/user/session/elevation", GET_POST_PUT, Endpoint::Elevation);
        router.with_param("/api/user/session/elevation/{id}", DELETE, Endpoint::ElevationRevoke);
        if !config.totp.disable {
            router.add("/api/secondfactor/totp/register", GET_PUT_POST_DELETE, Endpoint::TotpRegister);
            router.add("/api/secondfactor/totp", GET_POST_DELETE, Endpoint::Totp);
            router.add("/api/secondfactor/recovery-codes", GET_POST_PUT, Endpoint::RecoveryCodes);
        }
        if !config.webauthn.disable {
            // JSON steps of the passkey registration page: PUT begins, POST finishes.
            router.add("/register/passkey/begin", &[Method::PUT], Endpoint::WebAuthnRegister);
            router.add("/register/passkey/finish", POST, Endpoint::WebAuthnRegister);
            router.add("/api/secondfactor/webauthn", GET_POST, Endpoint::WebAuthn);
            router.add("/api/secondfactor/webauthn/credentials", GET, Endpoint::WebAuthnCredentials);
            router.add("/api/secondfactor/webauthn/credential/register", PUT_POST_DELETE, Endpoint::WebAuthnRegister);
            router.with_param(
                "/api/secondfactor/webauthn/credential/{credentialID}",
                PUT_DELETE,
                Endpoint::WebAuthnCredential,
            );
            if config.webauthn.enable_passkey_login {
                router.add("/api/firstfactor/passkey", GET_POST, Endpoint::Passkey);
            }
        }
        if config.email_otp.enable {
            router.add("/api/secondfactor/email", PUT_POST, Endpoint::EmailCode);
        }
        if !config.authentication_backend.password_reset.disable
            && config.authentication_backend.password_reset.custom_url.is_none()
        {
            router.add("/api/reset-password/identity/start", POST, Endpoint::ResetStart);
            router.add("/api/reset-password/identity/finish", POST, Endpoint::ResetFinish);
            router.add("/api/reset-password", POST_DELETE, Endpoint::ResetPassword);
        }
        if !config.authentication_backend.password_change.disable {
            router.add("/api/change-password", POST, Endpoint::ChangePassword);
        }
        router.add("/api/checks/safe-redirection", POST, Endpoint::SafeRedirection);
        router.add("/api/firstfactor", POST, Endpoint::FirstFactor);
        router.add("/api/bootstrap", POST, Endpoint::Bootstrap);
        for page in PORTAL_PAGES {
            router.add(page, PAGE, Endpoint::Portal);
        }
        router.prefix("/static/", GET_HEAD, Endpoint::Portal);
        if config.webauthn.enable_passkey_login && !config.webauthn.disable {
            // JSON steps of the passkey page, as the API's passkey endpoint.
            router.add("/login/passkey/begin", GET, Endpoint::Passkey);
            router.add("/login/passkey/finish", POST, Endpoint::Passkey);
        }
        for (i, endpoint) in crate::authz::endpoints(config).iter().enumerate() {
            let methods = if endpoint.any_method() { ANY } else { GET_HEAD };
            router.add(&endpoint.path, methods, Endpoint::Authz(i));
            if endpoint.any_method() {
                router.prefix(&format!("{}/", endpoint.path), methods, Endpoint::Authz(i));
            }
        }
        router
    }

    fn prefix(&mut self, path: &str, methods: &'static [Method], endpoint: Endpoint) {
        self.prefixes.push(Route { path: path.to_string(), methods, endpoint });
    }

    /// A route with one trailing path parameter, e.g. `/api/things/{id}`: answered for any
    /// non-empty last segment, listed under its template.
    fn with_param(&mut self, template: &str, methods: &'static [Method], endpoint: Endpoint) {
        let prefix = template.rsplit_once('/').map_or(template, |(head, _)| head);
        self.params.push((format!("{prefix}/"), Route { path: template.to_string(), methods, endpoint }));
    }

    fn add(&mut self, path: &str, methods: &'static [Method], endpoint: Endpoint) {
        self.routes.insert(path.to_string(), Route { path: path.to_string(), methods, endpoint });
    }

    /// The route for `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes
            .get(path)
            .or_else(|| {
                self.params.iter().find_map(|(prefix, route)| {
                    let rest = path.strip_prefix(prefix.as_str())?;
                    (!rest.is_empty() && !rest.contains('/')).then_some(route)
                })
            })
            .or_else(|| self.prefixes.iter().find(|r| path.starts_with(r.path.as_str())))
    }

    /// Every route, sorted by path (used to check the OpenAPI spec against the server).
    pub fn routes(&self) -> Vec<&Route> {
        let mut all: Vec<_> = self.routes.values().chain(self.params.iter().map(|(_, r)| r)).collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}
