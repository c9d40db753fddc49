//! Cross-site request forgery defences for the portal's forms: every POST carries a token
//! bound to the session (or, before login, to a random cookie), compared in constant time;
//! and a browser's `Origin`/`Sec-Fetch-Site` must say the form came from the portal itself.

use http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::storage::Cipher;

/// Cookie binding the token before a session exists.
pub const COOKIE: &str = "portcullis_csrf";

/// The token for a binding (`s:<session id>` or `a:<cookie value>`).
pub fn token(cipher: &Cipher, binding: &str) -> String {
    cipher.keyed_hash("portal-csrf", binding)
}

/// True when `submitted` is the token of one of `bindings`.
pub fn valid(cipher: &Cipher, submitted: &str, bindings: &[String]) -> bool {
    !submitted.is_empty()
        && bindings.iter().any(|b| bool::from(token(cipher, b).as_bytes().ct_eq(submitted.as_bytes())))
}

/// True unless the browser says the request came from another site: `Sec-Fetch-Site`
/// other than same-origin/none, or an `Origin` whose host differs from `Host`.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = get("sec-fetch-site")
        && !matches!(site, "same-origin" | "none")
    {
        return false;
    }
    match (get("origin"), get("host")) {
        (None, _) => true,
        (Some(origin), Some(host)) => url::Url::parse(origin).ok().is_some_and(|u| {
            let authority = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
                None => u.host_str().unwrap_or_default().to_string(),
            };
            authority.eq_ignore_ascii_case(host)
        }),
        (Some(_), None) => false,
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
    fn tokens_are_bound() {
        let c = Cipher::from_key("an-encryption-key-of-some-length");
        let t = token(&c, "s:abc");
        assert!(valid(&c, &t, &["a:x".into(), "s:abc".into()]));
        assert!(!valid(&c, &t, &["s:abd".into()]));
        assert!(!valid(&c, "", &["s:abc".into()]));
    }

    #[test]
    fn origins() {
        assert!(same_origin(&headers(&[("host", "auth.example.com")])));
        assert!(same_origin(&headers(&[("host", "auth.example.com"), ("origin", "https://auth.example.com")])));
        assert!(same_origin(&headers(&[
            ("host", "auth.example.com:8443"),
            ("origin", "https://auth.example.com:8443")
        ])));
        assert!(!same_origin(&headers(&[("host", "auth.example.com"), ("origin", "https://evil.example")])));
        assert!(!same_origin(&headers(&[("host", "auth.example.com"), ("origin", "null")])));
        assert!(!same_origin(&headers(&[("host", "auth.example.com"), ("sec-fetch-site", "cross-site")])));
    }
}
