//! The `server` and `log` sections: listener limits, trusted proxies, authorization endpoints.

use super::*;

impl Validator {
    pub(super) fn server(&mut self, s: &Server) {
        if s.tls.is_some() {
            self.err("server.tls", "TLS on the listener is not supported; terminate TLS at the reverse proxy");
        }
        self.range("server.buffers.read", s.buffers.read as u64, 1024, 1 << 20);
        self.range("server.buffers.write", s.buffers.write as u64, 1024, 1 << 20);
        self.positive("server.timeouts.read", s.timeouts.read);
        self.positive("server.timeouts.write", s.timeouts.write);
        self.positive("server.timeouts.idle", s.timeouts.idle);
        if let Some(max) = s.max_connections {
            self.range("server.max_connections", max as u64, 1, 1_000_000);
        }
        for (i, proxy) in s.trusted_proxies.iter().flatten().enumerate() {
            if parse_network(proxy).is_none() {
                self.err(format!("server.trusted_proxies[{i}]"), format!("'{proxy}' is not an IP address or CIDR"));
            }
        }
        for (name, endpoint) in &s.endpoints.authz {
            self.authz_endpoint(name, endpoint);
        }
        // Envoy calls one fixed gRPC method, with no path of the endpoint's to tell two
        // endpoints apart.
        let grpc: Vec<&String> = s
            .endpoints
            .authz
            .iter()
            .filter(|(_, e)| e.implementation.is_some_and(Implementation::is_grpc))
            .map(|(name, _)| name)
            .collect();
        if let [_, more @ ..] = grpc.as_slice() {
            for name in more {
                self.err(
                    format!("server.endpoints.authz.{name}.implementation"),
                    format!(
                        "only one endpoint may use 'ExtAuthzGRPC' (Envoy calls one gRPC method); '{}' already does",
                        grpc[0]
                    ),
                );
            }
        }
    }

    pub(super) fn authz_endpoint(&mut self, name: &str, e: &AuthzEndpoint) {
        let path = format!("server.endpoints.authz.{name}");
        let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            && !name.contains("..")
            && !name.ends_with('/');
        if !name_ok {
            self.err(&path, "endpoint names start with a letter and use only letters, digits, '/', '.', '_' and '-'");
        }
        let Some(implementation) = e.implementation else {
            let names = Implementation::ALL.map(|i| format!("'{}'", i.as_str())).join(", ");
            self.err(format!("{path}.implementation"), format!("required; use one of {names}"));
            return;
        };
        if name == "legacy" && implementation != Implementation::Legacy {
            self.err(
                format!("{path}.implementation"),
                "the endpoint named 'legacy' must use the 'Legacy' implementation",
            );
        }
        use Strategy::*;
        let allowed: &[Strategy] = match implementation {
            Implementation::Legacy => &[HeaderLegacy, CookieSession],
            Implementation::AuthRequest => {
                &[HeaderAuthorization, HeaderProxyAuthorization, HeaderAuthRequestProxyAuthorization, CookieSession]
            }
            _ => &[HeaderAuthorization, HeaderProxyAuthorization, CookieSession],
        };
        let names = |list: &[Strategy]| list.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
        let mut seen = HashSet::new();
        for (i, strategy) in e.authn_strategies.iter().enumerate() {
            let spath = format!("{path}.authn_strategies[{i}]");
            let Some(kind) = strategy.name else {
                self.err(format!("{spath}.name"), format!("required; use one of {}", names(allowed)));
                continue;
            };
            if !allowed.contains(&kind) {
                self.err(
                    format!("{spath}.name"),
                    format!(
                        "'{}' is not allowed for {}; use one of {}",
                        kind.as_str(),
                        implementation.as_str(),
                        names(allowed)
                    ),
                );
            }
            if !seen.insert(kind) {
                self.err(format!("{spath}.name"), format!("'{}' is listed twice", kind.as_str()));
            }
            let header = !matches!(kind, CookieSession | HeaderLegacy);
            if !header && !strategy.schemes.is_empty() {
                self.err(format!("{spath}.schemes"), "only header strategies take schemes");
            }
            for (j, scheme) in strategy.schemes.iter().enumerate() {
                if !scheme.eq_ignore_ascii_case("basic") && !scheme.eq_ignore_ascii_case("bearer") {
                    self.err(
                        format!("{spath}.schemes[{j}]"),
                        format!("'{scheme}' is not allowed; use 'basic' or 'bearer'"),
                    );
                }
            }
        }
    }

    pub(super) fn log(&mut self, l: &Log) {
        self.choice("log.level", &l.level, &["trace", "debug", "info", "warn", "error"]);
        self.choice("log.format", &l.format, &["text", "json"]);
    }
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    #[test]
    fn authz_endpoints() {
        let endpoint = |yaml: &str| problem_paths(&format!("server: {{endpoints: {{authz: {{{yaml}}}}}}}"));
        for (yaml, path) in [
            ("'1bad': {implementation: ForwardAuth}", "server.endpoints.authz.1bad"),
            ("mine: {}", "server.endpoints.authz.mine.implementation"),
            ("legacy: {implementation: ForwardAuth}", "server.endpoints.authz.legacy.implementation"),
            (
                "mine: {implementation: Legacy, authn_strategies: [{name: HeaderAuthorization}]}",
                "server.endpoints.authz.mine.authn_strategies[0].name",
            ),
            (
                "mine: {implementation: ForwardAuth, authn_strategies: [{name: CookieSession}, {name: CookieSession}]}",
                "server.endpoints.authz.mine.authn_strategies[1].name",
            ),
        ] {
            assert!(endpoint(yaml).contains(&path.to_string()), "{yaml}: {:?}", endpoint(yaml));
        }
        assert!(!endpoint("mine: {implementation: AuthRequest}").iter().any(|p| p.starts_with("server")));
        assert!(!endpoint("grpc: {implementation: ExtAuthzGRPC}").iter().any(|p| p.starts_with("server")));
        assert!(
            endpoint("a: {implementation: ExtAuthzGRPC}, b: {implementation: ExtAuthzGRPC}")
                .contains(&"server.endpoints.authz.b.implementation".to_string()),
            "one gRPC endpoint at most"
        );
        let proxy = "grpc: {implementation: ExtAuthzGRPC, authn_strategies: [{name: HeaderProxyAuthorization}]}";
        assert!(!endpoint(proxy).iter().any(|p| p.starts_with("server")));
        let legacy = "grpc: {implementation: ExtAuthzGRPC, authn_strategies: [{name: HeaderLegacy}]}";
        assert!(endpoint(legacy).contains(&"server.endpoints.authz.grpc.authn_strategies[0].name".to_string()));
    }

    #[test]
    fn limits_and_proxies() {
        assert!(problem_paths("server: {buffers: {read: 10}}").contains(&"server.buffers.read".to_string()));
        let proxies = "server: {trusted_proxies: ['not an address']}";
        assert!(problem_paths(proxies).contains(&"server.trusted_proxies[0]".to_string()));
        assert!(problem_paths("log: {level: chatty}").contains(&"log.level".to_string()));
    }
}
