//! Where each proxy puts the original request: target URL and method.
//!
//! Each implementation reads its own proxy's headers and ignores the others', so a client
//! behind a proxy that passes request headers on cannot name another target: ForwardAuth
//! reads X-Forwarded-Method, -Proto, -Host and -Uri; AuthRequest X-Original-Method and
//! X-Original-URL; ExtAuthz X-Forwarded-Proto, X-Forwarded-Host or Host, and the
//! sub-request's own method and path; ExtAuthzGRPC no header at all, only the attributes
//! of Envoy's `CheckRequest` ([`from_attributes`]). Legacy (`/api/verify`) serves both
//! kinds of proxy: it takes X-Original-URL or X-Forwarded-*, whichever is present, and
//! when both are (a proxy that sets one passes a client's other on) they must name the
//! same target, and X-Original-Method and X-Forwarded-Method the same method, or the
//! request is refused.
//!
//! A target is refused unless its authority is a host name or IP literal with an
//! optional numeric port, and it has no fragment. NGINX routes by the Host header's part
//! before `:`, so `Host: app.example.com:#` (or `:?`, `:\x`, `:@`) would otherwise hide
//! the path from the rules, or hand them another one, while the app serves the real path.

use http::HeaderMap;

use super::Implementation;

/// The request the proxy is asking about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The full target URL.
    pub url: url::Url,
    /// The target's path exactly as the proxy sent it, without the query. The access rules
    /// judge this one: the URL parser has already resolved dot segments and backslashes in
    /// `url`, its own way, which need not be the application's.
    pub path: String,
    /// Its method, upper case.
    pub method: std::borrow::Cow<'static, str>,
}

/// The headers the proxies name the target in, as constants: a lookup by a constant
/// name skips parsing the name on every request.
mod names {
    use http::HeaderName;
    pub const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
    pub const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
    pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
    pub const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
    pub const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
    pub const X_ORIGINAL_URL: HeaderName = HeaderName::from_static("x-original-url");
}
use names::*;

fn header<'a>(headers: &'a HeaderMap, name: &http::HeaderName) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn method(text: &str) -> Result<std::borrow::Cow<'static, str>, String> {
    // Authelia's rule: methods are upper-case letters only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid method '{text}'"));
    }
    Ok(crate::access_control::upper_case_method(text))
}

/// A target URL in its three parts, as a proxy names them.
struct Parts<'a> {
    scheme: &'a str,
    authority: &'a str,
    /// Path and query; a missing leading `/` is added.
    request_target: &'a str,
}

impl Parts<'_> {
    /// The target these parts name, after checking each.
    fn target(&self, method: std::borrow::Cow<'static, str>) -> Result<Target, String> {
        let Parts { scheme, authority, request_target } = *self;
        if scheme.is_empty() || !scheme.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("invalid scheme '{scheme}'"));
        }
        check_authority(authority)?;
        if request_target.contains('#') {
            return Err(format!("the target '{request_target}' has a fragment"));
        }
        let slash = if request_target.starts_with('/') { "" } else { "/" };
        // Built by hand: `format!` costs more than the copies on this per-request path.
        let mut text = String::with_capacity(scheme.len() + 3 + authority.len() + slash.len() + request_target.len());
        for part in [scheme, "://", authority, slash, request_target] {
            text.push_str(part);
        }
        let url = url::Url::parse(&text).map_err(|e| format!("invalid target URL '{text}': {e}"))?;
        if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() || url.password().is_some() {
            return Err(format!("invalid target URL '{text}'"));
        }
        let path = [slash, request_target.split('?').next().unwrap_or_default()].concat();
        Ok(Target { url, path, method })
    }
}

/// `host[:port]`: a host name or IPv4 address (letters, digits, `-`, `.`, `_`) or a
/// bracketed IPv6 address, and a port of digits. Anything else (`?`, `#`, `\`, `@`, `%`,
/// an empty port) would make the target's parser and the proxy's router disagree.
fn check_authority(authority: &str) -> Result<(), String> {
    let bad = || Err(format!("invalid host '{authority}' (a host name or IP address and an optional numeric port)"));
    let (host_ok, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let Some((inside, after)) = rest.split_once(']') else { return bad() };
            let ok = !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            match after {
                "" => (ok, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (ok, Some(port)),
                    None => return bad(),
                },
            }
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let ok =
                !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'));
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()));
    if host_ok && port_ok { Ok(()) } else { bad() }
}

/// The parts of an absolute URL such as X-Original-URL: `scheme://authority/path?query`.
fn split_absolute(text: &str) -> Result<Parts<'_>, String> {
    let (scheme, rest) = text.split_once("://").ok_or_else(|| format!("invalid target URL '{text}': not absolute"))?;
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, request_target) = rest.split_at(end);
    Ok(Parts { scheme, authority, request_target: if request_target.is_empty() { "/" } else { request_target } })
}

/// The target X-Original-URL names, if the header is present.
fn from_original(headers: &HeaderMap) -> Option<Result<Parts<'_>, String>> {
    header(headers, &X_ORIGINAL_URL).map(split_absolute)
}

/// The target X-Forwarded-Proto, -Host and -Uri name; `fallback` fills in the ones absent.
fn from_forwarded<'a>(headers: &'a HeaderMap, fallback: Option<&Parts<'a>>) -> Result<Parts<'a>, String> {
    let proto =
        header(headers, &X_FORWARDED_PROTO).or(fallback.map(|f| f.scheme)).ok_or("missing X-Forwarded-Proto")?;
    let host =
        header(headers, &X_FORWARDED_HOST).or(fallback.map(|f| f.authority)).ok_or("missing X-Forwarded-Host")?;
    let uri = header(headers, &X_FORWARDED_URI).or(fallback.map(|f| f.request_target)).unwrap_or("/");
    Ok(Parts { scheme: proto, authority: host, request_target: uri })
}

/// The token of a `Bearer` Authorization header value (RFC 6750), if it is one.
pub fn bearer_token(value: &str) -> Option<&str> {
    value.get(..7).filter(|scheme| scheme.eq_ignore_ascii_case("bearer ")).map(|_| value[7..].trim())
}

/// The login and password of a `Basic` Authorization header value, if it is one.
pub fn basic_credentials(value: &str) -> Option<(String, String)> {
    use base64::Engine;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim()).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (login, password) = text.split_once(':')?;
    Some((login.to_string(), password.to_string()))
}

/// The target a gRPC `CheckRequest` names in `attributes.request.http`: the scheme, the
/// host (`:authority`, which the proxy routed by), the path with its query as sent, and the
/// method. Checked as every other target; no header is read, so a client's
/// X-Forwarded-Host or X-Original-URL names nothing.
pub fn from_attributes(scheme: &str, host: &str, path: &str, own_method: &str) -> Result<Target, String> {
    if host.is_empty() {
        return Err("missing host".into());
    }
    let request_target = if path.is_empty() { "/" } else { path };
    Parts { scheme, authority: host, request_target }.target(method(own_method)?)
}

/// Extracts the target from a proxy's sub-request. `method` is the sub-request's own
/// method and `rest` the part of its path after the endpoint (with query), for ExtAuthz.
/// An error means the request names no target, or an ambiguous one (see the module
/// documentation); the adapter answers 400.
pub fn extract(
    implementation: Implementation,
    headers: &HeaderMap,
    own_method: &str,
    rest: &str,
) -> Result<Target, String> {
    match implementation {
        Implementation::ForwardAuth => {
            let m = header(headers, &X_FORWARDED_METHOD).ok_or("missing X-Forwarded-Method")?;
            from_forwarded(headers, None)?.target(method(m)?)
        }
        Implementation::AuthRequest => {
            let m = header(headers, &X_ORIGINAL_METHOD).ok_or("missing X-Original-Method")?;
            from_original(headers).ok_or("missing X-Original-URL")??.target(method(m)?)
        }
        Implementation::ExtAuthz => {
            let proto = header(headers, &X_FORWARDED_PROTO).ok_or("missing X-Forwarded-Proto")?;
            let host = header(headers, &X_FORWARDED_HOST)
                .or_else(|| header(headers, &http::header::HOST))
                .ok_or("missing Host")?;
            let path = if rest.is_empty() { "/" } else { rest };
            Parts { scheme: proto, authority: host, request_target: path }.target(method(own_method)?)
        }
        Implementation::ExtAuthzGRPC => Err("ExtAuthzGRPC endpoints answer gRPC only".into()),
        Implementation::Legacy => {
            let m = match (header(headers, &X_ORIGINAL_METHOD), header(headers, &X_FORWARDED_METHOD)) {
                (Some(original), Some(forwarded)) if original != forwarded => {
                    return Err(format!(
                        "X-Original-Method '{original}' and X-Forwarded-Method '{forwarded}' differ: refused as ambiguous"
                    ));
                }
                (original, forwarded) => method(original.or(forwarded).unwrap_or(own_method))?,
            };
            let Some(original) = from_original(headers).transpose()? else {
                return from_forwarded(headers, None)?.target(m);
            };
            let target = original.target(m.clone())?;
            let forwarded_named = [X_FORWARDED_PROTO, X_FORWARDED_HOST, X_FORWARDED_URI]
                .iter()
                .any(|name| header(headers, name).is_some());
            if forwarded_named {
                let forwarded = from_forwarded(headers, Some(&original))?.target(m)?;
                if forwarded.url != target.url || forwarded.path != target.path {
                    return Err(format!(
                        "X-Original-URL names {} and X-Forwarded-* name {}: refused as ambiguous",
                        target.url, forwarded.url
                    ));
                }
            }
            Ok(target)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut m = HeaderMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn each_implementation() {
        let fa = h(&[
            ("x-forwarded-method", "POST"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/a?b=1"),
        ]);
        let t = extract(Implementation::ForwardAuth, &fa, "GET", "").unwrap();
        assert_eq!((t.url.as_str(), &*t.method), ("https://app.example.com/a?b=1", "POST"));
        assert_eq!(t.path, "/a");

        let ar = h(&[("x-original-method", "GET"), ("x-original-url", "https://app.example.com/x")]);
        assert_eq!(
            extract(Implementation::AuthRequest, &ar, "GET", "").unwrap().url.as_str(),
            "https://app.example.com/x"
        );

        let ea = h(&[("x-forwarded-proto", "https"), ("host", "app.example.com")]);
        let t = extract(Implementation::ExtAuthz, &ea, "DELETE", "/items/1?x=y").unwrap();
        assert_eq!((t.url.as_str(), &*t.method), ("https://app.example.com/items/1?x=y", "DELETE"));
        assert_eq!(t.path, "/items/1");

        // The path as sent, which the URL parser would have resolved its own way.
        let raw =
            h(&[("x-original-method", "GET"), ("x-original-url", "https://app.example.com/public//../a%2e%2e?q")]);
        let t = extract(Implementation::AuthRequest, &raw, "GET", "").unwrap();
        assert_eq!((t.url.path(), t.path.as_str()), ("/public/a%2e%2e", "/public//../a%2e%2e"));

        let legacy = h(&[("x-original-url", "https://app.example.com/l")]);
        let t = extract(Implementation::Legacy, &legacy, "HEAD", "").unwrap();
        assert_eq!((t.url.as_str(), &*t.method), ("https://app.example.com/l", "HEAD"));
    }

    #[test]
    fn basic_credentials_parse() {
        assert_eq!(basic_credentials("Basic am9objpzZWNyZXQ6eA=="), Some(("john".into(), "secret:x".into())));
        assert_eq!(basic_credentials("basic  am9objpz "), Some(("john".into(), "s".into())));
        assert_eq!(basic_credentials("Bearer am9objpz"), None);
        assert_eq!(bearer_token("Bearer am9objpz "), Some("am9objpz"));
        assert_eq!(bearer_token("bearer x"), Some("x"));
        assert_eq!(bearer_token("Basic am9objpz"), None);
        assert_eq!(bearer_token("Bearer"), None);
        assert_eq!(basic_credentials("Basic !!!"), None);
        assert_eq!(basic_credentials("Basic am9obg=="), None, "no colon");
        assert_eq!(basic_credentials("Basic"), None);
    }

    #[test]
    fn missing_or_malformed_headers_are_errors() {
        assert!(extract(Implementation::ForwardAuth, &h(&[]), "GET", "").is_err());
        assert!(extract(Implementation::AuthRequest, &h(&[("x-original-method", "GET")]), "GET", "").is_err());
        let bad_method = h(&[("x-original-method", "get;"), ("x-original-url", "https://a.example.com/")]);
        assert!(extract(Implementation::AuthRequest, &bad_method, "GET", "").is_err());
        let relative = h(&[("x-original-method", "GET"), ("x-original-url", "/relative")]);
        assert!(extract(Implementation::AuthRequest, &relative, "GET", "").is_err());
        let userinfo = h(&[("x-original-method", "GET"), ("x-original-url", "https://evil@app.example.com/")]);
        assert!(extract(Implementation::AuthRequest, &userinfo, "GET", "").is_err());
    }

    /// The host part of every target is a host name or IP literal and an optional numeric
    /// port, nothing else: `?`, `#`, `\` and `@` there would move the path out of sight (or
    /// bring another in) while the proxy routed by the part before the `:`.
    #[test]
    fn the_authority_is_a_host_and_a_numeric_port() {
        let good = ["app.example.com", "app.example.com:8443", "APP.example.com", "127.0.0.1:9", "[::1]:8443", "[::1]"];
        let bad = [
            "app.example.com:#",
            "app.example.com:?",
            "app.example.com:@",
            "app.example.com:\\public",
            "app.example.com\\public",
            "app.example.com:",
            "app.example.com:x",
            "app.example.com:443#",
            "app.example.com:99999",
            "x@app.example.com",
            "app.example.com:@other.example.com",
            "app%2eexample.com",
            "app.example.com;x",
            "[::1]x",
            "[::1]:",
            "",
        ];
        for (host, ok) in good.iter().map(|h| (h, true)).chain(bad.iter().map(|h| (h, false))) {
            let url = format!("https://{host}/admin");
            let ar = h(&[("x-original-method", "GET"), ("x-original-url", &url)]);
            let fa = h(&[
                ("x-forwarded-method", "GET"),
                ("x-forwarded-proto", "https"),
                ("x-forwarded-host", host),
                ("x-forwarded-uri", "/admin"),
            ]);
            let ea = h(&[("x-forwarded-proto", "https"), ("host", host)]);
            for (implementation, headers, rest) in [
                (Implementation::AuthRequest, &ar, ""),
                (Implementation::Legacy, &ar, ""),
                (Implementation::ForwardAuth, &fa, ""),
                (Implementation::Legacy, &fa, ""),
                (Implementation::ExtAuthz, &ea, "/admin"),
            ] {
                let target = extract(implementation, headers, "GET", rest);
                if ok {
                    let target = target.unwrap_or_else(|e| panic!("{implementation:?} {host:?}: {e}"));
                    assert_eq!(target.url.path(), "/admin", "{implementation:?} {host:?}");
                } else {
                    assert!(target.is_err(), "{implementation:?} {host:?} accepted: {target:?}");
                }
            }
        }
    }

    #[test]
    fn legacy_sources_must_agree() {
        let forwarded = [
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/admin?x=1"),
        ];
        let with = |extra: &[(&'static str, &str)]| {
            let mut all = forwarded.to_vec();
            all.extend_from_slice(extra);
            extract(Implementation::Legacy, &h(&all), "GET", "")
        };
        assert_eq!(with(&[]).unwrap().url.as_str(), "https://app.example.com/admin?x=1");
        let same = with(&[("x-original-url", "https://APP.example.com:443/admin?x=1"), ("x-original-method", "GET")]);
        assert_eq!(same.unwrap().path, "/admin");
        assert!(with(&[("x-original-url", "https://app.example.com/public")]).is_err());
        assert!(with(&[("x-original-url", "https://app.example.com/admin?x=2")]).is_err());
        assert!(with(&[("x-original-url", "https://app.example.com/public/../admin?x=1")]).is_err());
        assert!(with(&[("x-original-method", "POST")]).is_err());
        // X-Original-URL alone, and with the X-Forwarded-* parts it agrees with.
        let nginx = h(&[("x-original-url", "https://app.example.com/a"), ("x-forwarded-proto", "https")]);
        assert_eq!(extract(Implementation::Legacy, &nginx, "HEAD", "").unwrap().method, "HEAD");
        let nginx = h(&[("x-original-url", "https://app.example.com/a"), ("x-forwarded-uri", "/b")]);
        assert!(extract(Implementation::Legacy, &nginx, "GET", "").is_err());
    }

    #[test]
    fn targets_have_no_fragment() {
        let ar = h(&[("x-original-method", "GET"), ("x-original-url", "https://app.example.com/public#/../admin")]);
        assert!(extract(Implementation::AuthRequest, &ar, "GET", "").is_err());
        let ar = h(&[("x-original-method", "GET"), ("x-original-url", "https://app.example.com/a?b#")]);
        assert!(extract(Implementation::AuthRequest, &ar, "GET", "").is_err());
        let fa = h(&[
            ("x-forwarded-method", "GET"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "app.example.com"),
            ("x-forwarded-uri", "/public#x"),
        ]);
        assert!(extract(Implementation::ForwardAuth, &fa, "GET", "").is_err());
        let ea = h(&[("x-forwarded-proto", "https"), ("host", "app.example.com")]);
        assert!(extract(Implementation::ExtAuthz, &ea, "GET", "/public#x").is_err());
    }
}
