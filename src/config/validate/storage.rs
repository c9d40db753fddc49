//! `storage`: exactly one backend, its address, and database TLS.

use super::*;

impl Validator {
    pub(super) fn storage(&mut self, s: &Storage) {
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

    /// Database TLS: everything is implemented, but mysql_async cannot bound the TLS
    /// versions, so a bound narrower than its TLS1.2 to TLS1.3 is refused for MySQL.
    pub(super) fn storage_tls(&mut self, name: &str, t: &Tls) {
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
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;

    #[test]
    fn exactly_one_backend_with_its_address() {
        assert!(problem_paths("{}").contains(&"storage".to_string()));
        let two = "storage: {local: {path: /tmp/db}, postgres: {address: 'tcp://db:5432'}}";
        assert!(problem_paths(two).contains(&"storage".to_string()));
        let bad = "storage: {encryption_key: 'a-long-enough-encryption-key-value', postgres: {address: 'http://db'}}";
        assert!(problem_paths(bad).contains(&"storage.postgres.address".to_string()), "{:?}", problem_paths(bad));
    }

    #[test]
    fn mysql_tls_versions_it_cannot_enforce() {
        let yaml = "storage: {mysql: {address: 'tcp://db:3306', tls: {minimum_version: TLS1.3}}}";
        assert!(problem_paths(yaml).contains(&"storage.mysql.tls.minimum_version".to_string()));
    }
}
