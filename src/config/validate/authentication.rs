//! `authentication_backend`, `password_policy` and `regulation`.

use super::*;

impl Validator {
    pub(super) fn authentication(&mut self, a: &AuthenticationBackend, iv: &IdentityValidation) {
        let configured = [a.file.is_some(), a.database.is_some(), a.ldap.is_some()].iter().filter(|c| **c).count();
        if configured > 1 {
            self.err(
                "authentication_backend",
                "configure only one of authentication_backend.file, .database and .ldap",
            );
        }
        if let Some(ldap) = &a.ldap {
            self.ldap(ldap, a);
        }
        match (&a.file, &a.database) {
            (Some(_), Some(_)) => {}
            (None, None) if a.ldap.is_none() => self.err(
                "authentication_backend",
                "a backend is required: set authentication_backend.file.path, authentication_backend.database: {}, \
                 or authentication_backend.ldap",
            ),
            (Some(file), None) => {
                if file.path.as_deref().is_none_or(str::is_empty) {
                    self.err("authentication_backend.file.path", "required");
                }
                self.password_hashing("authentication_backend.file.password", &file.password);
            }
            (None, Some(db)) => self.password_hashing("authentication_backend.database.password", &db.password),
            (None, None) => {}
        }
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

    fn ldap(&mut self, given: &LdapBackend, a: &AuthenticationBackend) {
        const BASE: &str = "authentication_backend.ldap";
        let key = |k: &str| format!("{BASE}.{k}");
        self.choice(&key("implementation"), &given.implementation, LDAP_IMPLEMENTATIONS);
        let l = given.effective();
        match l.address.as_deref().map(str::trim) {
            None | Some("") => {
                self.err(key("address"), "required: ldap://host:port, ldaps://host:port or ldapi:///path")
            }
            Some(address) => match crate::authn::ldap::connection_url(address) {
                Err(e) => self.err(key("address"), e),
                Ok(url) => {
                    if l.start_tls && url.scheme() != "ldap" {
                        self.err(key("start_tls"), "only for ldap:// addresses (ldaps:// is TLS from the start)");
                    }
                }
            },
        }
        self.positive(&key("timeout"), l.timeout);
        if let Some(tls) = &l.tls {
            self.tls(&key("tls"), tls);
        }
        if l.base_dn.trim().is_empty() {
            self.err(key("base_dn"), "required: the base of every search, e.g. dc=example,dc=com");
        }
        let attributes = &l.attributes;
        for (name, value) in [
            ("username", &attributes.username),
            ("display_name", &attributes.display_name),
            ("mail", &attributes.mail),
            ("group_name", &attributes.group_name),
        ] {
            if value.trim().is_empty() {
                self.err(key(&format!("attributes.{name}")), "required");
            }
        }
        for (name, value) in [
            ("distinguished_name", &attributes.distinguished_name),
            ("username", &attributes.username),
            ("display_name", &attributes.display_name),
            ("mail", &attributes.mail),
            ("member_of", &attributes.member_of),
            ("group_name", &attributes.group_name),
        ] {
            if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == ';') {
                self.err(key(&format!("attributes.{name}")), format!("'{value}' is not an attribute name"));
            }
        }
        self.ldap_filter(&key("users_filter"), &l.users_filter, &l.implementation);
        if !l.users_filter.is_empty() && !l.users_filter.contains("{input}") {
            self.err(key("users_filter"), "must contain {input} (what the user typed)");
        }
        if l.users_filter.contains("{memberof:") || l.users_filter.contains("{dn}") {
            self.err(key("users_filter"), "{dn} and {memberof:...} belong in groups_filter");
        }
        self.ldap_filter(&key("groups_filter"), &l.groups_filter, &l.implementation);
        self.choice(&key("group_search_mode"), &l.group_search_mode, &["filter", "memberof"]);
        let memberof_placeholder =
            l.groups_filter.contains("{memberof:rdn}") || l.groups_filter.contains("{memberof:dn}");
        if l.group_search_mode == "memberof" {
            if attributes.member_of.is_empty() {
                self.err(key("attributes.member_of"), "required with group_search_mode: memberof");
            }
            if !memberof_placeholder {
                self.err(
                    key("groups_filter"),
                    "must contain {memberof:rdn} or {memberof:dn} with group_search_mode: memberof",
                );
            }
            if l.groups_filter.contains("{memberof:dn}") && attributes.distinguished_name.is_empty() {
                self.err(key("attributes.distinguished_name"), "required for {memberof:dn} in groups_filter");
            }
        } else if memberof_placeholder {
            self.err(key("groups_filter"), "{memberof:rdn} and {memberof:dn} need group_search_mode: memberof");
        }
        if l.permit_unauthenticated_bind {
            if !l.user.is_empty() || !l.password.is_empty() {
                self.err(key("permit_unauthenticated_bind"), "must not be set together with user and password");
            }
            if !a.password_reset.disable {
                self.err(
                    key("permit_unauthenticated_bind"),
                    "needs authentication_backend.password_reset.disable: an anonymous bind cannot set passwords",
                );
            }
        } else {
            if l.user.trim().is_empty() {
                self.err(
                    key("user"),
                    "required: the service account's DN (unauthenticated binds need permit_unauthenticated_bind)",
                );
            }
            if l.password.is_empty() {
                self.err(key("password"), "required: the service account's password");
            }
        }
        if l.pooling.enable {
            self.range(&key("pooling.count"), l.pooling.count.into(), 1, 256);
            self.range(&key("pooling.retries"), l.pooling.retries.into(), 0, 16);
            self.positive(&key("pooling.timeout"), l.pooling.timeout);
        }
    }

    /// A filter: required, parenthesized and balanced, placeholders known.
    fn ldap_filter(&mut self, path: &str, filter: &str, implementation: &str) {
        if filter.trim().is_empty() {
            self.err(path, format!("required: implementation '{implementation}' has no default"));
            return;
        }
        if let Err(e) = crate::authn::ldap::filter::check_template(filter) {
            self.err(path, e);
        }
    }

    pub(super) fn password_hashing(&mut self, base: &str, p: &PasswordHashing) {
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

    pub(super) fn password_policy(&mut self, p: &PasswordPolicy) {
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

    pub(super) fn regulation(&mut self, r: &Regulation) {
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
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    #[test]
    fn one_users_backend() {
        let both = "authentication_backend: {file: {path: /u.yml}, database: {}}";
        assert!(problem_paths(both).contains(&"authentication_backend".to_string()));
        assert!(problem_paths("authentication_backend: {}").contains(&"authentication_backend".to_string()));
        let db = "authentication_backend: {database: {password: {algorithm: md5}}}";
        assert!(problem_paths(db).contains(&"authentication_backend.database.password.algorithm".to_string()));
        assert!(
            !problem_paths("authentication_backend: {database: {}}").contains(&"authentication_backend".to_string())
        );
    }

    /// A valid LDAP configuration with `overrides` (key, YAML value) applied.
    fn ldap_yaml(overrides: &[(&str, &str)]) -> String {
        let mut keys = std::collections::BTreeMap::from([
            ("address", "'ldap://127.0.0.1:389'"),
            ("implementation", "lldap"),
            ("base_dn", "'dc=example,dc=com'"),
            ("user", "'cn=admin,dc=example,dc=com'"),
            ("password", "secret"),
        ]);
        keys.extend(overrides.iter().copied());
        let ldap: Vec<String> = keys.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        format!("authentication_backend: {{password_reset: {{disable: true}}, ldap: {{{}}}}}", ldap.join(", "))
    }

    #[test]
    fn ldap_keys_are_checked_with_their_paths() {
        let problem_paths = |yaml: &str| -> Vec<String> {
            problem_paths(yaml).into_iter().filter(|p| p.starts_with("authentication_backend")).collect()
        };
        assert!(problem_paths(&ldap_yaml(&[])).is_empty(), "{:?}", problem_paths(&ldap_yaml(&[])));
        let memberof =
            [("group_search_mode", "memberof"), ("groups_filter", "'(&(|{memberof:rdn})(objectClass=groupOfNames))'")];
        assert!(problem_paths(&ldap_yaml(&memberof)).is_empty(), "{:?}", problem_paths(&ldap_yaml(&memberof)));
        let ldap = "authentication_backend.ldap";
        for (overrides, key) in [
            (&[("address", "'http://x'")][..], "address"),
            (&[("address", "'ldapi:///'")], "address"),
            (&[("implementation", "openldap")], "implementation"),
            (&[("implementation", "custom")], "users_filter"),
            (&[("implementation", "custom")], "groups_filter"),
            (&[("timeout", "0s")], "timeout"),
            (&[("address", "'ldaps://x'"), ("start_tls", "true")], "start_tls"),
            (&[("tls", "{minimum_version: TLS1.0}")], "tls.minimum_version"),
            (&[("base_dn", "''")], "base_dn"),
            (&[("users_filter", "'(uid=x)'")], "users_filter"),
            (&[("users_filter", "'(&(uid={input})'")], "users_filter"),
            (&[("groups_filter", "'(member={user})'")], "groups_filter"),
            (&[("group_search_mode", "nested")], "group_search_mode"),
            (&[("group_search_mode", "memberof")], "groups_filter"),
            (&[("groups_filter", "'(|{memberof:rdn})'")], "groups_filter"),
            (
                &[("group_search_mode", "memberof"), ("groups_filter", "'(|{memberof:dn})'")],
                "attributes.distinguished_name",
            ),
            (&[("attributes", "{username: 'u)(x'}")], "attributes.username"),
            (&[("user", "''")], "user"),
            (&[("password", "''")], "password"),
            (&[("permit_unauthenticated_bind", "true")], "permit_unauthenticated_bind"),
            (&[("pooling", "{count: 0}")], "pooling.count"),
        ] {
            let paths = problem_paths(&ldap_yaml(overrides));
            assert!(paths.contains(&format!("{ldap}.{key}")), "{overrides:?}: {paths:?}");
        }
        let both = "authentication_backend: {file: {path: /u.yml}, ldap: {}}";
        assert!(problem_paths(both).contains(&"authentication_backend".to_string()));
        let reset = ldap_yaml(&[("permit_unauthenticated_bind", "true"), ("user", "''"), ("password", "''")])
            .replace("password_reset: {disable: true}, ", "");
        assert!(problem_paths(&reset).contains(&format!("{ldap}.permit_unauthenticated_bind")), "reset needs a bind");
    }

    #[test]
    fn hashing_policy_and_regulation() {
        for (yaml, path) in [
            (
                "authentication_backend: {file: {path: /u.yml, password: {algorithm: md5}}}",
                "authentication_backend.file.password.algorithm",
            ),
            ("password_policy: {standard: {enabled: true, min_length: 0}}", "password_policy.standard.min_length"),
            ("regulation: {modes: [cookie]}", "regulation.modes[0]"),
        ] {
            assert!(problem_paths(yaml).contains(&path.to_string()), "{yaml}: {:?}", problem_paths(yaml));
        }
    }
}
