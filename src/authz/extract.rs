//! Where each proxy puts the original request: target URL and method.

use http::HeaderMap;

use super::Implementation;

/// The request the proxy is asking about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The full target URL.
    pub url: url::Url,
    /// Its method, upper case.
    pub method: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

fn method(text: &str) -> Result<String, String> {
    // Authelia's rule: methods are upper-case letters only.
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!("invalid method '{text}'"));
    }
    Ok(text.to_string())
}

fn from_forwarded(headers: &HeaderMap, uri: Option<&str>) -> Result<url::Url, String> {
    let proto = header(headers, "x-forwarded-proto").ok_or("missing X-Forwarded-Proto")?;
    let host = header(headers, "x-forwarded-host").ok_or("missing X-Forwarded-Host")?;
    let uri = uri.or_else(|| header(headers, "x-forwarded-uri")).unwrap_or("/");
    absolute(&format!("{proto}://{host}{}", if uri.starts_with('/') { uri.to_string() } else { format!("/{uri}") }))
}

fn absolute(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("invalid target URL '{text}': {e}"))?;
    if url.host_str().is_none_or(str::is_empty) || !url.username().is_empty() || url.password().is_some() {
        return Err(format!("invalid target URL '{text}'"));
    }
    Ok(url)
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

/// Extracts the target from a proxy's sub-request. `method` is the sub-request's own
/// method and `rest` the part of its path after the endpoint (with query), for ExtAuthz.
pub fn extract(
    implementation: Implementation,
    headers: &HeaderMap,
    own_method: &str,
    rest: &str,
) -> Result<Target, String> {
    match implementation {
        Implementation::ForwardAuth => {
            let m = header(headers, "x-forwarded-method").ok_or("missing X-Forwarded-Method")?;
            Ok(Target { method: method(m)?, url: from_forwarded(headers, None)? })
        }
        Implementation::AuthRequest => {
            let m = header(headers, "x-original-method").ok_or("missing X-Original-Method")?;
            let url = header(headers, "x-original-url").ok_or("missing X-Original-URL")?;
            Ok(Target { method: method(m)?, url: absolute(url)? })
        }
        Implementation::ExtAuthz => {
            let proto = header(headers, "x-forwarded-proto").ok_or("missing X-Forwarded-Proto")?;
            let host = header(headers, "x-forwarded-host").or_else(|| header(headers, "host")).ok_or("missing Host")?;
            let path = if rest.is_empty() { "/" } else { rest };
            Ok(Target { method: method(own_method)?, url: absolute(&format!("{proto}://{host}{path}"))? })
        }
        Implementation::Legacy => {
            let m = header(headers, "x-original-method")
                .or_else(|| header(headers, "x-forwarded-method"))
                .unwrap_or(own_method);
            let url = match header(headers, "x-original-url") {
                Some(u) => absolute(u)?,
                None => from_forwarded(headers, None)?,
            };
            Ok(Target { method: method(m)?, url })
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
        assert_eq!((t.url.as_str(), t.method.as_str()), ("https://app.example.com/a?b=1", "POST"));

        let ar = h(&[("x-original-method", "GET"), ("x-original-url", "https://app.example.com/x")]);
        assert_eq!(
            extract(Implementation::AuthRequest, &ar, "GET", "").unwrap().url.as_str(),
            "https://app.example.com/x"
        );

        let ea = h(&[("x-forwarded-proto", "https"), ("host", "app.example.com")]);
        let t = extract(Implementation::ExtAuthz, &ea, "DELETE", "/items/1?x=y").unwrap();
        assert_eq!((t.url.as_str(), t.method.as_str()), ("https://app.example.com/items/1?x=y", "DELETE"));

        let legacy = h(&[("x-original-url", "https://app.example.com/l")]);
        let t = extract(Implementation::Legacy, &legacy, "HEAD", "").unwrap();
        assert_eq!((t.url.as_str(), t.method.as_str()), ("https://app.example.com/l", "HEAD"));
    }

    #[test]
    fn basic_credentials_parse() {
        assert_eq!(basic_credentials("Basic am9objpzZWNyZXQ6eA=="), Some(("john".into(), "secret:x".into())));
        assert_eq!(basic_credentials("basic  am9objpz "), Some(("john".into(), "s".into())));
        assert_eq!(basic_credentials("Bearer am9objpz"), None);
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
}
