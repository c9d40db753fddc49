//! `session`: cookie domains and their portal URLs, Redis.

use super::*;

impl Validator {
    pub(super) fn session(&mut self, s: &Session) {
        self.cookie_name("session.name", &s.name);
        self.choice("session.same_site", &s.same_site, &["lax", "strict", "none"]);
        self.positive("session.expiration", s.expiration);
        self.positive("session.inactivity", s.inactivity);
        if s.cookies.is_empty() {
            self.err("session.cookies", "at least one cookie domain is required");
        }
        let mut domains = HashSet::new();
        for (i, cookie) in s.cookies.iter().enumerate() {
            let path = format!("session.cookies[{i}]");
            self.cookie(&path, cookie);
            if let Some(domain) = &cookie.domain
                && !domains.insert(domain.to_ascii_lowercase())
            {
                self.err(format!("{path}.domain"), format!("'{domain}' is configured more than once"));
            }
        }
        if let Some(redis) = &s.redis {
            if s.secret.is_empty() {
                self.err("session.secret", "required when session.redis is configured");
            }
            self.redis(redis);
        }
    }

    pub(super) fn cookie_name(&mut self, path: &str, name: &str) {
        let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !ok {
            self.err(path, format!("'{name}' is not a valid cookie name"));
        }
    }

    pub(super) fn cookie(&mut self, path: &str, c: &SessionCookie) {
        let Some(domain) = c.domain.as_deref() else {
            self.err(format!("{path}.domain"), "required");
            return;
        };
        let domain = domain.to_ascii_lowercase();
        if let Some(message) = cookie_domain_problem(&domain) {
            self.err(format!("{path}.domain"), message);
            return;
        }
        let local = is_local_domain(&domain);
        match &c.authelia_url {
            None => self.err(
                format!("{path}.authelia_url"),
                "required: the portal URL for this domain, e.g. 'https://auth.example.com/'",
            ),
            Some(url) => self.url_under_domain(&format!("{path}.authelia_url"), url, &domain, local),
        }
        if let Some(url) = &c.default_redirection_url {
            self.url_under_domain(&format!("{path}.default_redirection_url"), url, &domain, local);
            if c.authelia_url.as_ref().is_some_and(|portal| portal.url() == url.url()) {
                self.err(format!("{path}.default_redirection_url"), "must not be the portal URL itself");
            }
        }
        if let Some(name) = &c.name {
            self.cookie_name(&format!("{path}.name"), name);
        }
        if let Some(same_site) = &c.same_site {
            self.choice(&format!("{path}.same_site"), same_site, &["lax", "strict", "none"]);
        }
        if let Some(d) = c.expiration {
            self.positive(&format!("{path}.expiration"), d);
        }
        if let Some(d) = c.inactivity {
            self.positive(&format!("{path}.inactivity"), d);
        }
    }

    pub(super) fn url_under_domain(&mut self, path: &str, url: &AbsoluteUrl, domain: &str, local: bool) {
        let u = url.url();
        let https = u.scheme() == "https";
        let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
        let under = host == domain || host.ends_with(&format!(".{domain}"));
        let scheme_ok = https || (u.scheme() == "http" && local);
        if !scheme_ok || !under {
            let scheme = if local { "http or https" } else { "https" };
            self.err(path, format!("must be {scheme} and under domain {domain} (got '{u}')"));
        }
        if u.query().is_some() || u.fragment().is_some() {
            self.err(path, "must not have a query or fragment");
        }
    }

    pub(super) fn redis(&mut self, r: &Redis) {
        // With Sentinel, the nodes alone may name the sentinels (as in Authelia).
        let has_nodes = r.high_availability.as_ref().is_some_and(|ha| !ha.nodes.is_empty());
        if r.host.as_deref().is_none_or(str::is_empty) && !has_nodes {
            self.err("session.redis.host", "required");
        }
        if r.port == 0 {
            self.err("session.redis.port", "must be between 1 and 65535");
        }
        self.range("session.redis.maximum_active_connections", r.maximum_active_connections.into(), 1, 10_000);
        self.positive("session.redis.timeout", r.timeout);
        if let Some(tls) = &r.tls {
            self.redis_tls("session.redis.tls", tls);
        }
        if let Some(ha) = &r.high_availability {
            if ha.sentinel_name.as_deref().is_none_or(str::is_empty) {
                self.err("session.redis.high_availability.sentinel_name", "required for sentinel");
            }
            for (i, node) in ha.nodes.iter().enumerate() {
                if node.host.as_deref().is_none_or(str::is_empty) {
                    self.err(format!("session.redis.high_availability.nodes[{i}].host"), "required");
                }
            }
        }
    }

    /// Redis TLS verifies the server against the system's trusted roots and its host name;
    /// the knobs that would change that are not implemented yet.
    pub(super) fn redis_tls(&mut self, path: &str, t: &Tls) {
        self.tls(path, t);
        self.no_client_certificate(path, t);
        if t.skip_verify {
            self.err(format!("{path}.skip_verify"), "not supported for Redis; the certificate is always verified");
        }
        if !t.server_name.is_empty() {
            self.err(
                format!("{path}.server_name"),
                "not supported for Redis yet; the certificate must match session.redis.host",
            );
        }
    }
}

fn cookie_domain_problem(domain: &str) -> Option<String> {
    if domain.starts_with('.') || domain.ends_with('.') {
        return Some(format!("'{domain}' must not start or end with a dot"));
    }
    if domain.contains('*') {
        return Some("wildcards are not allowed; the cookie covers every subdomain already".into());
    }
    if domain.parse::<IpAddr>().is_ok() {
        return Some("an IP address cannot be a cookie domain; use a host name".into());
    }
    if !domain.split('.').all(valid_label) {
        return Some(format!("'{domain}' is not a valid domain name"));
    }
    if !domain.contains('.') && !is_local_domain(domain) {
        return Some(format!("'{domain}' is a top-level domain; use a registrable domain such as example.com"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;

    #[test]
    fn cookie_domains() {
        assert!(cookie_domain_problem("example.com").is_none());
        assert!(cookie_domain_problem("localhost").is_none());
        for bad in [".example.com", "*.example.com", "com", "127.0.0.1", "exa mple.com", "-a.com"] {
            assert!(cookie_domain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn portal_urls_must_be_https_under_their_domain() {
        let paths = |url: &str| {
            problem_paths(&format!("session: {{cookies: [{{domain: example.com, authelia_url: '{url}'}}]}}"))
        };
        assert!(!paths("https://auth.example.com").iter().any(|p| p.starts_with("session")));
        assert!(paths("http://auth.example.com").contains(&"session.cookies[0].authelia_url".to_string()));
        assert!(paths("https://auth.example.net").contains(&"session.cookies[0].authelia_url".to_string()));
    }
}
