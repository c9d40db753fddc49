//! Semantic validation: what types cannot say (required keys, allowed values, URLs under
//! their cookie domain, regexes that compile, ...). Every problem is collected.

use std::collections::{BTreeSet, HashSet};
use std::net::IpAddr;

use super::load::Problem;
use super::schema::*;
use super::types::{AbsoluteUrl, Duration};

/// Checks `config` and returns every problem found (empty when valid).
pub fn validate(config: &Configuration) -> Vec<Problem> {
    let mut v = Validator::default();
    v.general(config);
    v.server(&config.server);
    v.log(&config.log);
    v.authentication(&config.authentication_backend, &config.identity_validation);
    v.password_policy(&config.password_policy);
    v.session(&config.session);
    v.regulation(&config.regulation);
    v.storage(&config.storage);
    v.notifier(&config.notifier);
    v.totp(&config.totp);
    v.webauthn(&config.webauthn);
    v.identity_validation(&config.identity_validation);
    v.email_otp(&config.email_otp);
    let networks = v.network_definitions(config);
    v.access_control(&config.access_control, &networks);
    v.problems
}

/// Settings that are valid but do not do what an Authelia user may expect; reported as
/// warnings.
pub fn notes(config: &Configuration) -> Vec<Problem> {
    let mut notes = Vec::new();
    let w = &config.webauthn;
    if !w.disable && w.selection_criteria.user_verification != "required" {
        notes.push(Problem::new(
            "webauthn.selection_criteria.user_verification",
            "Portcullis always requires user verification (PIN or biometrics) for security keys and passkeys",
        ));
    }
    if w.experimental_enable_passkey_upgrade {
        notes.push(Problem::new("webauthn.experimental_enable_passkey_upgrade", "not supported yet; it is ignored"));
    }
    let redis_tls = config.session.redis.as_ref().is_some_and(|r| r.tls.is_some());
    if config.certificates_directory.is_some() && (redis_tls || config.notifier.smtp.is_some()) {
        notes.push(Problem::new(
            "certificates_directory",
            "trusted for the database connections only; TLS to Redis and to the SMTP server trusts the system's \
             certificate authorities",
        ));
    }
    notes
}

#[derive(Default)]
struct Validator {
    problems: Vec<Problem>,
}

const HTTP_METHODS: &[&str] = &[
    "GET",
    "HEAD",
    "POST",
    "PUT",
    "DELETE",
    "CONNECT",
    "OPTIONS",
    "TRACE",
    "PATCH",
    "PROPFIND",
    "PROPPATCH",
    "MKCOL",
    "COPY",
    "MOVE",
    "LOCK",
    "UNLOCK",
];
const QUERY_OPERATORS: &[&str] = &["equal", "not equal", "present", "absent", "pattern", "not pattern"];

fn one_of(value: &str, allowed: &[&str]) -> bool {
    allowed.contains(&value)
}

fn list(allowed: &[&str]) -> String {
    allowed.iter().map(|a| format!("'{a}'")).collect::<Vec<_>>().join(", ")
}

impl Validator {
    fn err(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem::new(path, message));
    }

    fn choice(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !one_of(value, allowed) {
            self.err(path, format!("'{value}' is not allowed; use one of {}", list(allowed)));
        }
    }

    fn positive(&mut self, path: &str, d: Duration) {
        if d.is_zero() {
            self.err(path, "must be longer than zero");
        }
    }

    fn range(&mut self, path: &str, value: u64, min: u64, max: u64) {
        if value < min || value > max {
            self.err(path, format!("{value} is out of range; must be between {min} and {max}"));
        }
    }

    fn general(&mut self, c: &Configuration) {
        if c.certificates_directory.as_deref().is_some_and(|d| d.trim().is_empty()) {
            self.err("certificates_directory", "must name a directory of PEM certificates when set");
        }
        if !c.theme.is_empty() {
            self.choice("theme", &c.theme, &["light", "dark", "grey", "auto"]);
        }
        match c.default_2fa_method.as_str() {
            "" => {}
            "totp" if c.totp.disable => self.err("default_2fa_method", "'totp' is disabled by totp.disable"),
            "webauthn" if c.webauthn.disable => {
                self.err("default_2fa_method", "'webauthn' is disabled by webauthn.disable")
            }
            "email" if !c.email_otp.enable => self.err("default_2fa_method", "'email' needs email_otp.enable"),
            "totp" | "webauthn" | "email" => {}
            other => {
                self.err("default_2fa_method", format!("'{other}' is not allowed; use 'totp', 'webauthn' or 'email'"))
            }
        }
    }

    fn server(&mut self, s: &Server) {
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
    }

    fn authz_endpoint(&mut self, name: &str, e: &AuthzEndpoint) {
        let path = format!("server.endpoints.authz.{name}");
        let name_ok = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && name.chars().all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
            && !name.contains("..")
            && !name.ends_with('/');
        if !name_ok {
            self.err(&path, "endpoint names start with a letter and use only letters, digits, '/', '.', '_' and '-'");
        }
        let Some(implementation) = e.implementation else {
            self.err(
                format!("{path}.implementation"),
                "required; use one of 'ForwardAuth', 'AuthRequest', 'ExtAuthz', 'Legacy'",
            );
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

    fn log(&mut self, l: &Log) {
        self.choice("log.level", &l.level, &["trace", "debug", "info", "warn", "error"]);
        self.choice("log.format", &l.format, &["text", "json"]);
    }

    fn authentication(&mut self, a: &AuthenticationBackend, iv: &IdentityValidation) {
        if a.ldap.is_some() {
            self.err(
                "authentication_backend.ldap",
                "the LDAP backend is not supported yet; use authentication_backend.file",
            );
        }
        let Some(file) = &a.file else {
            if a.ldap.is_none() {
                self.err("authentication_backend", "a backend is required: set authentication_backend.file.path");
            }
            return;
        };
        if file.path.as_deref().is_none_or(str::is_empty) {
            self.err("authentication_backend.file.path", "required");
        }
        self.password_hashing(&file.password);
        if let Some(url) = &a.password_reset.custom_url
            && url.url().scheme() != "https"
        {
            self.err("authentication_backend.password_reset.custom_url", "must be an https URL");
        }
        let reset_enabled = !a.password_reset.disable && a.password_reset.custom_url.is_none();
        if reset_enabled && iv.reset_password.jwt_secret.is_empty() {
            self.err(
                "identity_validation.reset_password.jwt_secret",
                "required while password reset is enabled (or set authentication_backend.password_reset.disable)",
            );
        }
    }

    fn password_hashing(&mut self, p: &PasswordHashing) {
        let base = "authentication_backend.file.password";
        self.choice(&format!("{base}.algorithm"), &p.algorithm, &["argon2", "sha2crypt", "pbkdf2", "bcrypt", "scrypt"]);
        let a = &p.argon2;
        self.choice(&format!("{base}.argon2.variant"), &a.variant, &["argon2id", "argon2i", "argon2d"]);
        self.range(&format!("{base}.argon2.iterations"), a.iterations.into(), 1, 1 << 20);
        self.range(&format!("{base}.argon2.parallelism"), a.parallelism.into(), 1, 1 << 12);
        self.range(&format!("{base}.argon2.memory"), a.memory.into(), u64::from(a.parallelism.max(1)) * 8, 4 << 20);
        self.range(&format!("{base}.argon2.key_length"), a.key_length.into(), 16, 1024);
        self.range(&format!("{base}.argon2.salt_length"), a.salt_length.into(), 8, 1024);
        let s = &p.sha2crypt;
        self.choice(&format!("{base}.sha2crypt.variant"), &s.variant, &["sha256", "sha512"]);
        self.range(&format!("{base}.sha2crypt.iterations"), s.iterations.into(), 1000, 999_999_999);
        self.range(&format!("{base}.sha2crypt.salt_length"), s.salt_length.into(), 1, 16);
        let k = &p.pbkdf2;
        self.choice(&format!("{base}.pbkdf2.variant"), &k.variant, &["sha1", "sha224", "sha256", "sha384", "sha512"]);
        self.range(&format!("{base}.pbkdf2.iterations"), k.iterations.into(), 100_000, u32::MAX.into());
        self.range(&format!("{base}.pbkdf2.salt_length"), k.salt_length.into(), 8, 2048);
        let b = &p.bcrypt;
        self.choice(&format!("{base}.bcrypt.variant"), &b.variant, &["standard", "sha256"]);
        self.range(&format!("{base}.bcrypt.cost"), b.cost.into(), 10, 31);
        let c = &p.scrypt;
        self.choice(&format!("{base}.scrypt.variant"), &c.variant, &["scrypt"]);
        self.range(&format!("{base}.scrypt.iterations"), c.iterations.into(), 1, 58);
        self.range(&format!("{base}.scrypt.block_size"), c.block_size.into(), 1, 36_028_797);
        self.range(&format!("{base}.scrypt.parallelism"), c.parallelism.into(), 1, 1_073_741_823);
        self.range(&format!("{base}.scrypt.key_length"), c.key_length.into(), 1, 137_438_953_440);
        self.range(&format!("{base}.scrypt.salt_length"), c.salt_length.into(), 8, 1024);
    }

    fn password_policy(&mut self, p: &PasswordPolicy) {
        if p.standard.enabled && p.zxcvbn.enabled {
            self.err("password_policy", "enable either password_policy.standard or password_policy.zxcvbn, not both");
        }
        if p.standard.enabled {
            self.range("password_policy.standard.min_length", p.standard.min_length.into(), 1, 4096);
            if p.standard.max_length != 0 && p.standard.max_length < p.standard.min_length {
                self.err("password_policy.standard.max_length", "must be 0 (no limit) or at least min_length");
            }
        }
        if p.zxcvbn.enabled {
            self.range("password_policy.zxcvbn.min_score", p.zxcvbn.min_score.into(), 1, 4);
        }
    }

    fn session(&mut self, s: &Session) {
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

    fn cookie_name(&mut self, path: &str, name: &str) {
        let ok = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
        if !ok {
            self.err(path, format!("'{name}' is not a valid cookie name"));
        }
    }

    fn cookie(&mut self, path: &str, c: &SessionCookie) {
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

    fn url_under_domain(&mut self, path: &str, url: &AbsoluteUrl, domain: &str, local: bool) {
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

    fn redis(&mut self, r: &Redis) {
        if r.host.as_deref().is_none_or(str::is_empty) {
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

    fn tls(&mut self, path: &str, t: &Tls) {
        for (key, value) in [("minimum_version", &t.minimum_version), ("maximum_version", &t.maximum_version)] {
            if !value.is_empty() {
                self.choice(&format!("{path}.{key}"), value, &["TLS1.2", "TLS1.3"]);
            }
        }
        if t.minimum_version == "TLS1.3" && t.maximum_version == "TLS1.2" {
            self.err(format!("{path}.minimum_version"), format!("must not be above {path}.maximum_version"));
        }
    }

    /// Refuses client certificates where they are not implemented rather than silently
    /// connecting without them.
    fn no_client_certificate(&mut self, path: &str, t: &Tls) {
        if !t.certificate_chain.is_empty() || !t.private_key.is_empty() {
            self.err(path, "client certificates (certificate_chain, private_key) are not supported here yet");
        }
    }

    /// Database TLS: everything is implemented, but mysql_async cannot bound the TLS
    /// versions, so a bound narrower than its TLS1.2 to TLS1.3 is refused for MySQL.
    fn storage_tls(&mut self, name: &str, t: &Tls) {
        let path = format!("storage.{name}.tls");
        self.tls(&path, t);
        match crate::tls::client_identity(&path, t) {
            Err(e) => {
                let (key, message) = e.split_once(": ").unwrap_or((&path, &e));
                self.err(key, message);
            }
            Ok(Some((_, key))) if name == "mysql" && crate::tls::rsa_pkcs1_der(&key).is_none() => {
                self.err(format!("{path}.private_key"), "MySQL client certificates need an RSA key");
            }
            Ok(_) => {}
        }
        if name == "mysql" {
            if t.minimum_version == "TLS1.3" {
                self.err(format!("{path}.minimum_version"), "TLS1.3 cannot be enforced for MySQL; use TLS1.2");
            }
            if t.maximum_version == "TLS1.2" {
                self.err(format!("{path}.maximum_version"), "TLS1.2 cannot be enforced for MySQL; use TLS1.3");
            }
        }
    }

    /// Redis TLS verifies the server against the system's trusted roots and its host name;
    /// the knobs that would change that are not implemented yet.
    fn redis_tls(&mut self, path: &str, t: &Tls) {
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

    fn regulation(&mut self, r: &Regulation) {
        for (i, mode) in r.modes.iter().enumerate() {
            self.choice(&format!("regulation.modes[{i}]"), mode, &["user", "ip"]);
        }
        if r.max_retries > 0 {
            self.positive("regulation.find_time", r.find_time);
            self.positive("regulation.ban_time", r.ban_time);
            if r.find_time > r.ban_time {
                self.err("regulation.find_time", "must not be longer than regulation.ban_time");
            }
        }
    }

    fn storage(&mut self, s: &Storage) {
        let chosen = [s.local.is_some(), s.postgres.is_some(), s.mysql.is_some()].iter().filter(|b| **b).count();
        match chosen {
            0 => self.err("storage", "one of storage.local, storage.postgres or storage.mysql is required"),
            1 => {}
            _ => self.err("storage", "configure only one of storage.local, storage.postgres and storage.mysql"),
        }
        if s.encryption_key.is_empty() {
            self.err("storage.encryption_key", "required (at least 20 characters)");
        } else if s.encryption_key.expose().chars().count() < 20 {
            self.err("storage.encryption_key", "must be at least 20 characters long");
        }
        if let Some(local) = &s.local
            && local.path.as_deref().is_none_or(str::is_empty)
        {
            self.err("storage.local.path", "required");
        }
        for (name, sql) in [("postgres", &s.postgres), ("mysql", &s.mysql)] {
            let Some(sql) = sql else { continue };
            for (key, value) in [("address", &sql.address), ("database", &sql.database), ("username", &sql.username)] {
                if value.as_deref().is_none_or(str::is_empty) {
                    self.err(format!("storage.{name}.{key}"), "required");
                }
            }
            if let Some(address) = &sql.address
                && let Err(e) = parse_service_address(address, &["tcp", "tcp4", "tcp6", "unix"])
            {
                self.err(format!("storage.{name}.address"), e);
            }
            if let Some(tls) = &sql.tls {
                self.storage_tls(name, tls);
            }
        }
    }

    fn notifier(&mut self, n: &Notifier) {
        match (&n.filesystem, &n.smtp) {
            (None, None) => self.err("notifier", "one of notifier.filesystem or notifier.smtp is required"),
            (Some(_), Some(_)) => self.err("notifier", "configure only one of notifier.filesystem and notifier.smtp"),
            _ => {}
        }
        if let Some(fs) = &n.filesystem
            && fs.filename.as_deref().is_none_or(str::is_empty)
        {
            self.err("notifier.filesystem.filename", "required");
        }
        if let Some(smtp) = &n.smtp {
            match &smtp.address {
                None => self.err("notifier.smtp.address", "required, e.g. 'submission://smtp.example.com:587'"),
                Some(a) => {
                    if let Err(e) = parse_service_address(a, &["smtp", "submission", "submissions"]) {
                        self.err("notifier.smtp.address", e);
                    }
                }
            }
            match smtp.sender.as_deref() {
                None | Some("") => self.err("notifier.smtp.sender", "required, e.g. 'Portcullis <auth@example.com>'"),
                Some(sender) if !looks_like_mailbox(sender) => {
                    self.err("notifier.smtp.sender", format!("'{sender}' is not an email address"))
                }
                Some(_) => {}
            }
            self.positive("notifier.smtp.timeout", smtp.timeout);
            if let Some(tls) = &smtp.tls {
                self.tls("notifier.smtp.tls", tls);
                self.no_client_certificate("notifier.smtp.tls", tls);
            }
        }
    }

    fn totp(&mut self, t: &Totp) {
        const ALGORITHMS: &[&str] = &["SHA1", "SHA256", "SHA512"];
        self.choice("totp.algorithm", &t.algorithm.to_ascii_uppercase(), ALGORITHMS);
        if t.digits != 6 && t.digits != 8 {
            self.err("totp.digits", format!("{} is not allowed; use 6 or 8", t.digits));
        }
        self.range("totp.period", t.period.into(), 15, 300);
        self.range("totp.skew", t.skew.into(), 0, 10);
        self.range("totp.secret_size", t.secret_size.into(), 20, 1024);
        for (i, a) in t.allowed_algorithms.iter().enumerate() {
            self.choice(&format!("totp.allowed_algorithms[{i}]"), &a.to_ascii_uppercase(), ALGORITHMS);
        }
        for (i, d) in t.allowed_digits.iter().enumerate() {
            if *d != 6 && *d != 8 {
                self.err(format!("totp.allowed_digits[{i}]"), format!("{d} is not allowed; use 6 or 8"));
            }
        }
        for (i, p) in t.allowed_periods.iter().enumerate() {
            self.range(&format!("totp.allowed_periods[{i}]"), (*p).into(), 15, 300);
        }
    }

    fn webauthn(&mut self, w: &WebAuthn) {
        self.choice(
            "webauthn.attestation_conveyance_preference",
            &w.attestation_conveyance_preference,
            &["none", "indirect", "direct"],
        );
        self.positive("webauthn.timeout", w.timeout);
        let sc = &w.selection_criteria;
        if !sc.attachment.is_empty() {
            self.choice("webauthn.selection_criteria.attachment", &sc.attachment, &["platform", "cross-platform"]);
        }
        const LEVELS: &[&str] = &["discouraged", "preferred", "required"];
        self.choice("webauthn.selection_criteria.discoverability", &sc.discoverability, LEVELS);
        self.choice("webauthn.selection_criteria.user_verification", &sc.user_verification, LEVELS);
        if w.display_name.trim().is_empty() {
            self.err("webauthn.display_name", "must not be empty");
        }
    }

    fn identity_validation(&mut self, iv: &IdentityValidation) {
        let rp = &iv.reset_password;
        self.choice(
            "identity_validation.reset_password.jwt_algorithm",
            &rp.jwt_algorithm,
            &["HS256", "HS384", "HS512"],
        );
        self.positive("identity_validation.reset_password.jwt_lifespan", rp.jwt_lifespan);
        let es = &iv.elevated_session;
        self.positive("identity_validation.elevated_session.code_lifespan", es.code_lifespan);
        self.positive("identity_validation.elevated_session.elevation_lifespan", es.elevation_lifespan);
        self.range("identity_validation.elevated_session.characters", es.characters.into(), 6, 20);
    }

    fn email_otp(&mut self, e: &EmailOtp) {
        if e.enable {
            self.positive("email_otp.code_lifespan", e.code_lifespan);
            self.range("email_otp.characters", e.characters.into(), 6, 20);
        }
    }

    /// Checks named networks and returns the set of names rules may use.
    fn network_definitions(&mut self, c: &Configuration) -> BTreeSet<String> {
        let mut names = BTreeSet::new();
        for (name, entries) in &c.definitions.network {
            for (i, entry) in entries.as_slice().iter().enumerate() {
                if parse_network(entry).is_none() {
                    self.err(
                        format!("definitions.network.{name}[{i}]"),
                        format!("'{entry}' is not an IP address or CIDR"),
                    );
                }
            }
            names.insert(name.clone());
        }
        for (i, net) in c.access_control.networks.iter().enumerate() {
            let path = format!("access_control.networks[{i}]");
            match net.name.as_deref() {
                None | Some("") => self.err(format!("{path}.name"), "required"),
                Some(name) => {
                    if !names.insert(name.to_string()) {
                        self.err(format!("{path}.name"), format!("network '{name}' is defined twice"));
                    }
                }
            }
            if net.networks.is_empty() {
                self.err(format!("{path}.networks"), "at least one IP address or CIDR is required");
            }
            for (j, entry) in net.networks.as_slice().iter().enumerate() {
                if parse_network(entry).is_none() {
                    self.err(format!("{path}.networks[{j}]"), format!("'{entry}' is not an IP address or CIDR"));
                }
            }
        }
        names
    }

    fn access_control(&mut self, ac: &AccessControl, networks: &BTreeSet<String>) {
        for (i, rule) in ac.rules.iter().enumerate() {
            self.rule(&format!("access_control.rules[{i}]"), rule, networks);
        }
    }

    fn rule(&mut self, path: &str, r: &AccessRule, networks: &BTreeSet<String>) {
        if r.policy.is_none() {
            self.err(format!("{path}.policy"), "required; use one of 'bypass', 'one_factor', 'two_factor', 'deny'");
        }
        if r.domain.is_empty() && r.domain_regex.is_empty() {
            self.err(path, "a rule needs 'domain' or 'domain_regex'");
        }
        for (i, d) in r.domain.as_slice().iter().enumerate() {
            if let Some(message) = rule_domain_problem(d) {
                self.err(format!("{path}.domain[{i}]"), message);
            }
        }
        for (i, re) in r.domain_regex.as_slice().iter().enumerate() {
            self.regex(&format!("{path}.domain_regex[{i}]"), re);
        }
        for (i, re) in r.resources.as_slice().iter().enumerate() {
            self.regex(&format!("{path}.resources[{i}]"), re);
        }
        for (i, m) in r.methods.as_slice().iter().enumerate() {
            if !HTTP_METHODS.contains(&m.to_ascii_uppercase().as_str()) {
                self.err(format!("{path}.methods[{i}]"), format!("'{m}' is not an HTTP method"));
            }
        }
        for (i, n) in r.networks.as_slice().iter().enumerate() {
            if parse_network(n).is_none() && !networks.contains(n) {
                self.err(
                    format!("{path}.networks[{i}]"),
                    format!("'{n}' is neither an IP address, a CIDR nor a defined network name"),
                );
            }
        }
        let has_subject = r.subject.as_slice().iter().any(|inner| !inner.is_empty());
        if has_subject && r.policy == Some(Policy::Bypass) {
            self.err(
                format!("{path}.subject"),
                "a bypass rule cannot have subjects (bypass never knows who the user is)",
            );
        }
        for (i, inner) in r.subject.as_slice().iter().enumerate() {
            for (j, s) in inner.as_slice().iter().enumerate() {
                let rest = s
                    .strip_prefix("user:")
                    .or_else(|| s.strip_prefix("group:"))
                    .or_else(|| s.strip_prefix("oauth2:client:"));
                if rest.is_none_or(str::is_empty) {
                    self.err(
                        format!("{path}.subject[{i}][{j}]"),
                        format!("'{s}' must be 'user:<name>', 'group:<name>' or 'oauth2:client:<id>'"),
                    );
                }
            }
        }
        for (i, group) in r.query.iter().enumerate() {
            for (j, q) in group.iter().enumerate() {
                self.query_condition(&format!("{path}.query[{i}][{j}]"), q);
            }
        }
    }

    fn query_condition(&mut self, path: &str, q: &QueryCondition) {
        if q.key.as_deref().is_none_or(str::is_empty) {
            self.err(format!("{path}.key"), "required");
        }
        let operator =
            q.operator.clone().unwrap_or_else(|| if q.value.is_some() { "equal" } else { "present" }.to_string());
        if !one_of(&operator, QUERY_OPERATORS) {
            self.choice(&format!("{path}.operator"), &operator, QUERY_OPERATORS);
            return;
        }
        let needs_value = !matches!(operator.as_str(), "present" | "absent");
        match (&q.value, needs_value) {
            (None, true) => self.err(format!("{path}.value"), format!("required for operator '{operator}'")),
            (Some(_), false) => self.err(format!("{path}.value"), format!("not allowed for operator '{operator}'")),
            (Some(value), true) => {
                let text = match value {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    serde_json::Value::Bool(b) => Some(b.to_string()),
                    _ => None,
                };
                match text {
                    None => self.err(format!("{path}.value"), "must be a string, number or boolean"),
                    Some(t) if operator.ends_with("pattern") => self.regex(&format!("{path}.value"), &t),
                    Some(_) => {}
                }
            }
            (None, false) => {}
        }
    }

    fn regex(&mut self, path: &str, pattern: &str) {
        if let Err(e) = regex::Regex::new(pattern) {
            let first = e.to_string().lines().last().unwrap_or_default().trim().to_string();
            self.err(path, format!("invalid regular expression '{pattern}': {first}"));
        }
    }
}

/// Parses an IP address or CIDR.
pub fn parse_network(text: &str) -> Option<ipnet::IpNet> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>().ok().or_else(|| t.parse::<IpAddr>().ok().map(ipnet::IpNet::from))
}

/// True for domains whose portal may be served over plain http (developer machines).
pub fn is_local_domain(domain: &str) -> bool {
    domain == "localhost" || domain.ends_with(".localhost")
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

fn rule_domain_problem(domain: &str) -> Option<String> {
    let d = domain.to_ascii_lowercase();
    let rest = d.strip_prefix("*.").unwrap_or(&d);
    let without_placeholders = rest.replace("{user}", "x").replace("{group}", "x");
    if d == "*" {
        return None;
    }
    if without_placeholders.contains('*') {
        return Some(format!("'{domain}': a wildcard is only allowed as the first label ('*.example.com')"));
    }
    if !without_placeholders.split('.').all(valid_label) {
        return Some(format!("'{domain}' is not a valid domain name"));
    }
    None
}

fn valid_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Parses `scheme://host:port` service addresses (SMTP, SQL).
pub fn parse_service_address(text: &str, schemes: &[&str]) -> Result<url::Url, String> {
    let with_scheme = if text.contains("://") { text.to_string() } else { format!("{}://{text}", schemes[0]) };
    let url = url::Url::parse(&with_scheme).map_err(|e| format!("invalid address '{text}': {e}"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!("scheme '{}' is not allowed; use one of {}", url.scheme(), list(schemes)));
    }
    if url.scheme() != "unix" && url.host_str().is_none_or(str::is_empty) {
        return Err(format!("address '{text}' has no host"));
    }
    Ok(url)
}

fn looks_like_mailbox(sender: &str) -> bool {
    let address = match (sender.rfind('<'), sender.rfind('>')) {
        (Some(start), Some(end)) if start < end => &sender[start + 1..end],
        _ => sender,
    };
    let mut parts = address.trim().splitn(2, '@');
    matches!((parts.next(), parts.next()), (Some(local), Some(host)) if !local.is_empty() && host.contains('.') && !host.contains(' '))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn certificates_directory_notes_what_it_does_not_cover() {
        let noted = |c: &Configuration| notes(c).iter().any(|n| n.path == "certificates_directory");
        let mut config = Configuration { certificates_directory: Some("/certs".into()), ..Configuration::default() };
        assert!(!noted(&config), "nothing else speaks TLS");
        config.notifier.smtp = Some(Default::default());
        assert!(noted(&config), "SMTP does not use it");
    }

    #[test]
    fn cookie_domains() {
        assert!(cookie_domain_problem("example.com").is_none());
        assert!(cookie_domain_problem("localhost").is_none());
        for bad in [".example.com", "*.example.com", "com", "127.0.0.1", "exa mple.com", "-a.com"] {
            assert!(cookie_domain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn rule_domains() {
        for good in ["example.com", "*.example.com", "{user}.example.com", "*", "App.Example.com"] {
            assert!(rule_domain_problem(good).is_none(), "{good}");
        }
        for bad in ["a.*.example.com", "exa mple.com", "", "a..b"] {
            assert!(rule_domain_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn service_addresses_and_mailboxes() {
        assert!(parse_service_address("submission://smtp.example.com:587", &["smtp", "submission"]).is_ok());
        assert!(parse_service_address("smtp.example.com:25", &["smtp"]).is_ok());
        assert!(parse_service_address("http://x", &["smtp"]).is_err());
        assert!(looks_like_mailbox("Portcullis <auth@example.com>"));
        assert!(looks_like_mailbox("auth@example.com"));
        assert!(!looks_like_mailbox("nobody"));
    }
}
