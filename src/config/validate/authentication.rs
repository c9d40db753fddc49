//! `authentication_backend`, `password_policy` and `regulation`.

use super::*;

impl Validator {
    pub(super) fn authentication(&mut self, a: &AuthenticationBackend, iv: &IdentityValidation) {
        if a.ldap.is_some() {
            self.err(
                "authentication_backend.ldap",
                "the LDAP backend is not supported yet; use authentication_backend.file",
            );
        }
        match (&a.file, &a.database) {
            (Some(_), Some(_)) => {
                self.err("authentication_backend", "configure only one of authentication_backend.file and .database")
            }
            (None, None) if a.ldap.is_none() => self.err(
                "authentication_backend",
                "a backend is required: set authentication_backend.file.path, or authentication_backend.database: {}",
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
