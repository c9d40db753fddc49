//! Where a browser says a request came from. State-changing requests to the portal and the
//! JSON API must come from the portal's own origin: `Sec-Fetch-Site` other than
//! `same-origin`/`none`, or an `Origin` whose host differs from `Host`, is refused. A
//! sibling subdomain is same-site (its cookies are sent, SameSite=Lax does not help) but
//! not same-origin, so it is refused too.

use http::HeaderMap;

/// True unless the browser says the request came from another site: `Sec-Fetch-Site`
/// other than same-origin/none, or an `Origin` whose host and port differ from `host` (the
/// request's `Host`, or its `:authority` over HTTP/2).
pub fn same_origin(headers: &HeaderMap, host: &str) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match get("origin") {
        None => true,
        Some(_) if host.is_empty() => false,
        Some(origin) => url::Url::parse(origin).ok().is_some_and(|u| {
            let authority = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                None => u.host_str().unwrap_or_default().to_string(),
            };
            authority.eq_ignore_ascii_case(host)
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn origins() {
        assert!(same_origin(&headers(&[]), "auth.example.com"));
        assert!(same_origin(&headers(&[("origin", "https://auth.example.com")]), "auth.example.com"));
        assert!(same_origin(&headers(&[("origin", "https://auth.example.com:8443")]), "auth.example.com:8443"));
        assert!(!same_origin(&headers(&[("origin", "https://evil.example")]), "auth.example.com"));
        assert!(!same_origin(&headers(&[("origin", "null")]), "auth.example.com"));
        assert!(!same_origin(&headers(&[("sec-fetch-site", "cross-site")]), "auth.example.com"));
    }
}
