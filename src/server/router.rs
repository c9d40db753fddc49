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
}

const GET_HEAD: &[Method] = &[Method::GET, Method::HEAD];
const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
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
        let mut router = Self { routes: HashMap::new(), prefixes: Vec::new() };
        router.add("/api/health", GET_HEAD, Endpoint::Health);
        router.add("/api/state", GET, Endpoint::State);
        router.add("/api/configuration", GET, Endpoint::Configuration);
        router.add("/api/configuration/password-policy", GET, Endpoint::PasswordPolicy);
        router.add("/api/openapi.yml", GET_HEAD, Endpoint::OpenApi);
        router.add("/api/logout", POST, Endpoint::Logout);
        router.add("/api/user/info", GET, Endpoint::UserInfo);
        router.add("/api/checks/safe-redirection", POST, Endpoint::SafeRedirection);
        router.add("/api/firstfactor", POST, Endpoint::FirstFactor);
        router.add("/api/bootstrap", POST, Endpoint::Bootstrap);
        for (i, endpoint) in crate::authz::endpoints(config).iter().enumerate() {
            let methods = if endpoint.any_method() { ANY } else { GET_HEAD };
            router.add(&endpoint.path, methods, Endpoint::Authz(i));
            if endpoint.any_method() {
                let path = format!("{}/", endpoint.path);
                router.prefixes.push(Route { path, methods, endpoint: Endpoint::Authz(i) });
            }
        }
        router
    }

    fn add(&mut self, path: &str, methods: &'static [Method], endpoint: Endpoint) {
        self.routes.insert(path.to_string(), Route { path: path.to_string(), methods, endpoint });
    }

    /// The route for `path`, if any.
    pub fn find(&self, path: &str) -> Option<&Route> {
        self.routes.get(path).or_else(|| self.prefixes.iter().find(|r| path.starts_with(r.path.as_str())))
    }

    /// Every route, sorted by path (used to check the OpenAPI spec against the server).
    pub fn routes(&self) -> Vec<&Route> {
        let mut all: Vec<_> = self.routes.values().collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }
}
