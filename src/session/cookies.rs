//! Per-domain cookie settings, resolved once from `session` and `session.cookies[]`.

use std::time::Duration;

use cookie::{Cookie, SameSite};

use super::id::SessionId;
use crate::config::schema::Session;

/// How the session cookie of one protected domain behaves.
#[derive(Clone, Debug)]
pub struct CookieSettings {
    /// Parent domain (lower case).
    pub domain: String,
    /// The portal URL for this domain.
    pub portal_url: url::Url,
    /// Where users go after login when no target was given.
    pub default_redirection_url: Option<url::Url>,
    /// Cookie name.
    pub name: String,
    /// SameSite attribute.
    pub same_site: SameSite,
    /// Maximum session age.
    pub expiration: Duration,
    /// Idle time after which a session ends (not for remembered sessions).
    pub inactivity: Duration,
    /// Lifetime of a remembered session; zero disables remember-me.
    pub remember_me: Duration,
    /// Send the cookie over HTTPS only (off only for an http://localhost portal).
    pub secure: bool,
}

impl CookieSettings {
    /// Settings for every configured cookie domain, falling back to `session` defaults.
    /// Expects a validated configuration (domains and portal URLs present).
    pub fn from_config(session: &Session) -> Vec<Self> {
        session
            .cookies
            .iter()
            .filter_map(|c| {
                let domain = c.domain.as_ref()?.to_ascii_lowercase();
                let portal_url = c.authelia_url.as_ref()?.url().clone();
                let same_site = match c.same_site.as_deref().unwrap_or(&session.same_site) {
                    "strict" => SameSite::Strict,
                    "none" => SameSite::None,
                    _ => SameSite::Lax,
                };
                Some(Self {
                    secure: portal_url.scheme() == "https",
                    default_redirection_url: c.default_redirection_url.as_ref().map(|u| u.url().clone()),
                    name: c.name.clone().unwrap_or_else(|| session.name.clone()),
                    same_site,
                    expiration: c.expiration.unwrap_or(session.expiration).get(),
                    inactivity: c.inactivity.unwrap_or(session.inactivity).get(),
                    remember_me: c.remember_me.unwrap_or(session.remember_me).get(),
                    domain,
                    portal_url,
                })
            })
            .collect()
    }

    /// True when `host` (optionally with a port) is this domain or below it.
    pub fn covers(&self, host: &str) -> bool {
        let host =
            host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
        let host = host.trim_end_matches('.');
        host.eq_ignore_ascii_case(&self.domain)
            || (host.len() > self.domain.len()
                && host.as_bytes()[host.len() - self.domain.len() - 1] == b'.'
                && host[host.len() - self.domain.len()..].eq_ignore_ascii_case(&self.domain))
    }

    /// How long a session may live in total.
    pub fn lifetime(&self, remember_me: bool) -> Duration {
        if remember_me && !self.remember_me.is_zero() { self.remember_me } else { self.expiration }
    }

    /// `Set-Cookie` value carrying `id`. Remembered sessions persist across browser
    /// restarts (Max-Age); others are browser-session cookies.
    pub fn set_cookie(&self, id: &SessionId, remember_me: bool) -> String {
        let mut cookie = self.base(id.as_str());
        if remember_me && !self.remember_me.is_zero() {
            cookie.set_max_age(cookie::time::Duration::seconds(
                i64::try_from(self.remember_me.as_secs()).unwrap_or(i64::MAX),
            ));
        }
        cookie.to_string()
    }

    /// `Set-Cookie` value that removes the cookie.
    pub fn clear_cookie(&self) -> String {
        let mut cookie = self.base("");
        cookie.make_removal();
        cookie.to_string()
    }

    fn base<'a>(&self, value: &'a str) -> Cookie<'a> {
        let mut cookie = Cookie::build((self.name.clone(), value))
            .path("/")
            .http_only(true)
            .secure(self.secure)
            .same_site(self.same_site)
            .build();
        // Browsers refuse `Domain=localhost`; a host-only cookie is what works there.
        if self.domain != "localhost" {
            cookie.set_domain(self.domain.clone());
        }
        cookie
    }

    /// The session ID in a `Cookie` request header, if one of this domain's shape is there.
    ///
    /// The header is read as the `cookie` crate's `split_parse` reads it (pairs split at
    /// `;`, name and value trimmed, a pair without `=` skipped), without building a cookie
    /// per pair: this runs on every authorization, and a browser sends many cookies.
    pub fn session_id(&self, cookie_header: &str) -> Option<SessionId> {
        cookie_header
            .split(';')
            .filter_map(|pair| pair.split_once('='))
            .filter(|(name, _)| name.trim() == self.name)
            .find_map(|(_, value)| SessionId::parse(value.trim()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::schema::SessionCookie;
    use crate::config::types::{AbsoluteUrl, Duration as ConfigDuration};

    fn settings(portal: &str) -> CookieSettings {
        let session = Session {
            cookies: vec![SessionCookie {
                domain: Some("Example.com".into()),
                authelia_url: Some(AbsoluteUrl(url::Url::parse(portal).unwrap())),
                inactivity: Some(ConfigDuration::from_secs(60)),
                ..Default::default()
            }],
            ..Default::default()
        };
        CookieSettings::from_config(&session).remove(0)
    }

    #[test]
    fn the_session_cookie_is_found_as_the_cookie_crate_reads_the_header() {
        let s = settings("https://auth.example.com/");
        let id = SessionId::generate();
        let other = SessionId::generate();
        let v = id.as_str();
        let o = other.as_str();
        let headers = [
            format!("authelia_session={v}"),
            format!("a=b; authelia_session={v}; c=d"),
            format!("  authelia_session = {v} ;"),
            format!("broken; =x; authelia_session={v}"),
            format!("authelia_session=not-an-id; authelia_session={v}"),
            format!("xauthelia_session={o}; authelia_session={v}"),
            format!("authelia_session={v}x"),
            format!("authelia_sessionx={v}"),
            format!("Authelia_session={v}"),
            format!("authelia_session=\"{v}\""),
            format!(";;;authelia_session={v};;"),
            format!("authelia_session={o}; authelia_session={v}"),
            String::new(),
        ];
        for header in &headers {
            let by_crate = Cookie::split_parse(header.as_str())
                .filter_map(Result::ok)
                .filter(|c| c.name() == s.name)
                .find_map(|c| SessionId::parse(c.value()));
            let ours = s.session_id(header);
            assert_eq!(ours.as_ref().map(SessionId::as_str), by_crate.as_ref().map(SessionId::as_str), "{header}");
        }
        assert_eq!(s.session_id(&headers[1]).map(|i| i.as_str().to_string()), Some(v.to_string()));
        assert_eq!(s.session_id(&headers[11]).map(|i| i.as_str().to_string()), Some(o.to_string()));
        assert!(s.session_id(&headers[6]).is_none());
    }

    #[test]
    fn attributes() {
        let s = settings("https://auth.example.com/");
        let id = SessionId::generate();
        let plain = s.set_cookie(&id, false);
        for part in ["authelia_session=", "Domain=example.com", "Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
            assert!(plain.contains(part), "{part} missing in {plain}");
        }
        assert!(!plain.contains("Max-Age"));
        assert!(s.set_cookie(&id, true).contains(&format!("Max-Age={}", 30 * 24 * 3600)));
        assert!(s.clear_cookie().contains("Max-Age=0"));
        assert_eq!(s.inactivity.as_secs(), 60);
        let local = CookieSettings { domain: "localhost".into(), ..settings("http://localhost:9091/") };
        let local_cookie = local.set_cookie(&id, false);
        assert!(!local_cookie.contains("Secure"), "{local_cookie}");
        assert!(!local_cookie.contains("Domain="), "host-only on localhost: {local_cookie}");
    }

    #[test]
    fn covers_the_domain_and_below() {
        let s = settings("https://auth.example.com/");
        assert!(s.covers("example.com"));
        assert!(s.covers("APP.example.com:8443"));
        assert!(!s.covers("badexample.com"));
        assert!(!s.covers("example.com.evil.net"));
    }

    #[test]
    fn finds_the_session_cookie() {
        let s = settings("https://auth.example.com/");
        let id = SessionId::generate();
        let header = format!("other=1; authelia_session=not-an-id; authelia_session={}", id.as_str());
        assert_eq!(s.session_id(&header), Some(id));
        assert_eq!(s.session_id("authelia_session=garbage"), None);
    }
}
