//! Seed 004's two deployment modes, decided before routing.
//!
//! Without `server.auth_host` every host serves the portal, and its `/auth/` paths are
//! aliases of the portal's own (`/auth/` → `/`, `/auth/admin/` → `/admin`, `/auth/assets/*`
//! → `/static/*`, `/auth/restricted` → `/restricted`). With it, the auth host serves the
//! portal at its root (a device-addition token as `/{token}` too), and every other host
//! shows a small account summary at `/` and `/auth/`, sends the portal's pages to the auth
//! host with 307 (method and body kept, `/auth` stripped), serves `/auth/assets/*` and the
//! unrestricted `/auth/api/*` itself, and answers 404 for `/auth/api/{admin,user,ws}*` and
//! `/auth/ws/*`. Everything else (Authelia's `/api`, the authorization endpoints the
//! proxies call with their own Host, OpenID Connect) is the same on every host.

use std::borrow::Cow;

/// What to do with a request before routing.
#[derive(Debug, PartialEq, Eq)]
pub enum Routing<'a> {
    /// Route this path.
    Serve(Cow<'a, str>),
    /// 307 to this URL.
    Redirect(String),
    /// 404: restricted on this host.
    NotFound,
    /// The account summary of a host that is not the auth host.
    Summary,
}

/// The configured mode.
#[derive(Clone, Debug, Default)]
pub struct HostMode {
    /// The auth host's name (lower case, no port) and its origin (`https://host[:port]`).
    auth_host: Option<(String, String)>,
}

/// The namespaces only the auth host serves.
const RESTRICTED: &[&str] = &["/auth/api/admin", "/auth/api/user", "/auth/api/ws", "/auth/ws"];

impl HostMode {
    /// The mode for `auth_host` (a host name, `host:port`, or an origin URL).
    pub fn new(auth_host: Option<&str>) -> Result<Self, String> {
        let Some(value) = auth_host.map(str::trim).filter(|v| !v.is_empty()) else {
            return Ok(Self::default());
        };
        let with_scheme = if value.contains("://") { value.to_string() } else { format!("https://{value}") };
        let url = url::Url::parse(&with_scheme).map_err(|e| format!("not a host name or origin: {e}"))?;
        let host = url.host_str().filter(|h| !h.is_empty()).ok_or("names no host")?;
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() || !url.username().is_empty() {
            return Err("must be a host name (or an origin), without a path".into());
        }
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("scheme {} is not http(s)", url.scheme()));
        }
        Ok(Self { auth_host: Some((host.to_ascii_lowercase(), url.origin().ascii_serialization())) })
    }

    /// Whether a dedicated auth host is configured.
    pub fn is_dedicated(&self) -> bool {
        self.auth_host.is_some()
    }

    /// The auth host's origin, when configured (device-addition links point there).
    pub fn auth_origin(&self) -> Option<&str> {
        self.auth_host.as_ref().map(|(_, origin)| origin.as_str())
    }

    /// Decides for `path` (relative to the base path) requested at `host` (the Host
    /// header, port included). `is_page` says whether a path is one of the portal's pages.
    pub fn route<'a>(
        &self,
        host: &str,
        path: &'a str,
        query: Option<&str>,
        is_page: impl Fn(&str) -> bool,
    ) -> Routing<'a> {
        let Some((auth_host, origin)) = &self.auth_host else {
            return Routing::Serve(portal_alias(path).map_or(Cow::Borrowed(path), Cow::Owned));
        };
        let name = host_name(host);
        if name.eq_ignore_ascii_case(auth_host) {
            if let Some(alias) = portal_alias(path) {
                return Routing::Serve(Cow::Owned(alias));
            }
            // A device-addition token at the root: `/{token}` is `/auth/{token}`.
            if is_single_segment(path) && !is_page(path) {
                return Routing::Serve(Cow::Owned(format!("/auth{path}")));
            }
            return Routing::Serve(Cow::Borrowed(path));
        }
        // Segment prefixes: `/auth/api/user` and below, not `/auth/api/user-info`.
        if RESTRICTED.iter().any(|r| path == *r || path.strip_prefix(r).is_some_and(|rest| rest.starts_with('/'))) {
            return Routing::NotFound;
        }
        if matches!(path, "/" | "/auth" | "/auth/") {
            return Routing::Summary;
        }
        if path.starts_with("/auth/api/") {
            return Routing::Serve(Cow::Borrowed(path));
        }
        if let Some(asset) = path.strip_prefix("/auth/assets/") {
            return Routing::Serve(Cow::Owned(format!("/static/{asset}")));
        }
        let stripped = match path.strip_prefix("/auth") {
            Some(rest) if rest.starts_with('/') => rest,
            _ => path,
        };
        let ui = is_page(stripped)
            || is_page(&portal_alias(stripped).unwrap_or_default())
            || matches!(stripped, "/admin/" | "/restricted")
            || (path.starts_with("/auth/") && is_single_segment(stripped));
        if ui {
            let query = query.map(|q| format!("?{q}")).unwrap_or_default();
            return Routing::Redirect(format!("{origin}{stripped}{query}"));
        }
        Routing::Serve(Cow::Borrowed(path))
    }
}

/// `/auth/...` and `/admin/` spelled as seed 004's frontends spell them, as the portal's.
fn portal_alias(path: &str) -> Option<String> {
    match path {
        "/auth" | "/auth/" => return Some("/".into()),
        "/auth/admin" | "/auth/admin/" | "/admin/" => return Some("/admin".into()),
        "/auth/restricted" => return Some("/restricted".into()),
        _ => {}
    }
    if let Some(rest) = path.strip_prefix("/auth/admin/") {
        return Some(format!("/admin/{rest}"));
    }
    path.strip_prefix("/auth/assets/").map(|asset| format!("/static/{asset}"))
}

/// `/x`, one non-empty segment.
fn is_single_segment(path: &str) -> bool {
    path.len() > 1 && path.starts_with('/') && !path[1..].contains('/')
}

fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').filter(|(_, port)| port.chars().all(|c| c.is_ascii_digit())).map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(path: &str) -> bool {
        matches!(path, "/" | "/login" | "/admin" | "/profile" | "/restricted")
    }

    #[test]
    fn without_an_auth_host_the_auth_paths_are_aliases() {
        let mode = HostMode::new(None).unwrap();
        let r = |p| mode.route("app.example.com", p, None, pages);
        assert_eq!(r("/auth/"), Routing::Serve("/".into()));
        assert_eq!(r("/auth/admin/"), Routing::Serve("/admin".into()));
        assert_eq!(r("/auth/assets/css/x.css"), Routing::Serve("/static/css/x.css".into()));
        assert_eq!(r("/auth/api/user/logout-all"), Routing::Serve("/auth/api/user/logout-all".into()));
        assert_eq!(r("/auth/pdl_token"), Routing::Serve("/auth/pdl_token".into()));
        assert_eq!(r("/login"), Routing::Serve("/login".into()));
    }

    #[test]
    fn the_auth_host_serves_the_portal_at_its_root() {
        let mode = HostMode::new(Some("auth.example.com")).unwrap();
        let r = |p| mode.route("auth.example.com:8443", p, None, pages);
        assert_eq!(r("/"), Routing::Serve("/".into()));
        assert_eq!(r("/admin/"), Routing::Serve("/admin".into()));
        assert_eq!(r("/pdl_abc"), Routing::Serve("/auth/pdl_abc".into()));
        assert_eq!(r("/login"), Routing::Serve("/login".into()));
        assert_eq!(r("/auth/ws/register"), Routing::Serve("/auth/ws/register".into()));
        assert_eq!(r("/auth/api/user/logout-all"), Routing::Serve("/auth/api/user/logout-all".into()));
    }

    #[test]
    fn other_hosts_redirect_the_portal_and_hide_the_restricted_namespaces() {
        let mode = HostMode::new(Some("https://auth.example.com")).unwrap();
        let r = |p, q| mode.route("app.example.com", p, q, pages);
        assert_eq!(r("/", None), Routing::Summary);
        assert_eq!(r("/auth/", None), Routing::Summary);
        assert_eq!(r("/auth/admin/", None), Routing::Redirect("https://auth.example.com/admin/".into()));
        assert_eq!(r("/admin/", None), Routing::Redirect("https://auth.example.com/admin/".into()));
        assert_eq!(r("/auth/pdl_x", None), Routing::Redirect("https://auth.example.com/pdl_x".into()));
        assert_eq!(r("/login", Some("rd=x")), Routing::Redirect("https://auth.example.com/login?rd=x".into()));
        assert_eq!(r("/auth/restricted", None), Routing::Redirect("https://auth.example.com/restricted".into()));
        for restricted in [
            "/auth/api/admin",
            "/auth/api/admin/orgs",
            "/auth/api/user",
            "/auth/api/user/logout-all",
            "/auth/api/user/display-name",
            "/auth/api/ws",
            "/auth/ws/register",
            "/auth/ws/authenticate",
        ] {
            assert_eq!(r(restricted, None), Routing::NotFound, "{restricted}");
        }
        assert_eq!(r("/auth/api/validate", None), Routing::Serve("/auth/api/validate".into()));
        assert_eq!(r("/auth/api/user-info", None), Routing::Serve("/auth/api/user-info".into()));
        assert_eq!(r("/auth/assets/app.js", None), Routing::Serve("/static/app.js".into()));
        assert_eq!(r("/api/authz/forward-auth", None), Routing::Serve("/api/authz/forward-auth".into()));
        assert_eq!(r("/api/verify", None), Routing::Serve("/api/verify".into()));
    }

    #[test]
    fn the_auth_host_must_be_a_host() {
        assert!(HostMode::new(Some("auth.example.com:8443")).is_ok());
        assert!(HostMode::new(Some("http://127.0.0.1:9091")).is_ok());
        assert!(HostMode::new(Some("https://auth.example.com/path")).is_err());
        assert!(HostMode::new(Some("ftp://auth.example.com")).is_err());
        assert!(HostMode::new(Some("")).unwrap().auth_origin().is_none());
    }
}
