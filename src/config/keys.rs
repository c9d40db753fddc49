//! Key tables: secrets (which may be given as `<key>_file`), the keys environment
//! variables may set, and Authelia keys that are recognised but not supported yet.

/// Secret keys. Each may instead be given as `<key>_file`, naming a file that holds it.
pub const SECRET_KEYS: &[&str] = &[
    "session.secret",
    "session.redis.password",
    "session.redis.high_availability.sentinel_password",
    "session.redis.tls.private_key",
    "storage.encryption_key",
    "storage.postgres.password",
    "storage.postgres.tls.private_key",
    "storage.mysql.password",
    "storage.mysql.tls.private_key",
    "notifier.smtp.password",
    "notifier.smtp.tls.private_key",
    "identity_validation.reset_password.jwt_secret",
    "identity_providers.oidc.hmac_secret",
    "account_api.jwt_secret",
    "upstream_oidc.client_secret",
    "authentication_backend.ldap.password",
    "authentication_backend.ldap.tls.private_key",
];

/// Scalar keys that `PORTCULLIS_<KEY>` environment variables set, with `.` written as `_`
/// (`PORTCULLIS_SESSION_REDIS_HOST`). Any key can also be reached with `__` as the
/// separator (`PORTCULLIS_SERVER__ENDPOINTS__AUTHZ__MINE__IMPLEMENTATION`). Secrets also
/// accept a `_FILE` suffix. A unit test checks every entry against the schema.
pub const ENV_KEYS: &[&str] = &[
    "theme",
    "certificates_directory",
    "default_2fa_method",
    "server.address",
    "server.disable_healthcheck",
    "server.buffers.read",
    "server.buffers.write",
    "server.timeouts.read",
    "server.timeouts.write",
    "server.timeouts.idle",
    "server.headers.csp_template",
    "server.trusted_proxies",
    "server.auth_host",
    "server.max_connections",
    "server.tls.certificate",
    "server.tls.key",
    "server.tls.client_certificates",
    "log.level",
    "log.format",
    "log.file_path",
    "log.keep_stdout",
    "authentication_backend.password_reset.disable",
    "authentication_backend.password_reset.custom_url",
    "authentication_backend.password_change.disable",
    "authentication_backend.file.path",
    "authentication_backend.file.watch",
    "authentication_backend.file.search.email",
    "authentication_backend.file.search.case_insensitive",
    "authentication_backend.file.password.algorithm",
    "authentication_backend.file.password.argon2.variant",
    "authentication_backend.file.password.argon2.iterations",
    "authentication_backend.file.password.argon2.memory",
    "authentication_backend.file.password.argon2.parallelism",
    "authentication_backend.file.password.argon2.key_length",
    "authentication_backend.file.password.argon2.salt_length",
    "authentication_backend.file.password.sha2crypt.variant",
    "authentication_backend.file.password.sha2crypt.iterations",
    "authentication_backend.file.password.sha2crypt.salt_length",
    "authentication_backend.file.password.pbkdf2.variant",
    "authentication_backend.file.password.pbkdf2.iterations",
    "authentication_backend.file.password.pbkdf2.salt_length",
    "authentication_backend.file.password.bcrypt.variant",
    "authentication_backend.file.password.bcrypt.cost",
    "authentication_backend.file.password.scrypt.variant",
    "authentication_backend.file.password.scrypt.iterations",
    "authentication_backend.file.password.scrypt.block_size",
    "authentication_backend.file.password.scrypt.parallelism",
    "authentication_backend.file.password.scrypt.key_length",
    "authentication_backend.file.password.scrypt.salt_length",
    "password_policy.standard.enabled",
    "password_policy.standard.min_length",
    "password_policy.standard.max_length",
    "password_policy.standard.require_uppercase",
    "password_policy.standard.require_lowercase",
    "password_policy.standard.require_number",
    "password_policy.standard.require_special",
    "password_policy.zxcvbn.enabled",
    "password_policy.zxcvbn.min_score",
    "session.secret",
    "session.name",
    "session.same_site",
    "session.expiration",
    "session.inactivity",
    "session.remember_me",
    "session.redis.host",
    "session.redis.port",
    "session.redis.username",
    "session.redis.password",
    "session.redis.database_index",
    "session.redis.maximum_active_connections",
    "session.redis.minimum_idle_connections",
    "session.redis.timeout",
    "session.redis.max_retries",
    "session.redis.client_side_cache",
    "session.redis.tls.server_name",
    "session.redis.tls.skip_verify",
    "session.redis.tls.minimum_version",
    "session.redis.tls.maximum_version",
    "session.redis.tls.certificate_chain",
    "session.redis.tls.private_key",
    "session.redis.high_availability.sentinel_name",
    "session.redis.high_availability.sentinel_username",
    "session.redis.high_availability.sentinel_password",
    "session.redis.high_availability.route_by_latency",
    "session.redis.high_availability.route_randomly",
    "regulation.modes",
    "regulation.max_retries",
    "regulation.find_time",
    "regulation.ban_time",
    "storage.encryption_key",
    "storage.local.path",
    "storage.postgres.address",
    "storage.postgres.database",
    "storage.postgres.schema",
    "storage.postgres.username",
    "storage.postgres.password",
    "storage.postgres.timeout",
    "storage.postgres.tls.server_name",
    "storage.postgres.tls.skip_verify",
    "storage.postgres.tls.minimum_version",
    "storage.postgres.tls.maximum_version",
    "storage.postgres.tls.certificate_chain",
    "storage.postgres.tls.private_key",
    "storage.mysql.address",
    "storage.mysql.database",
    "storage.mysql.username",
    "storage.mysql.password",
    "storage.mysql.timeout",
    "storage.mysql.tls.server_name",
    "storage.mysql.tls.skip_verify",
    "storage.mysql.tls.minimum_version",
    "storage.mysql.tls.maximum_version",
    "storage.mysql.tls.certificate_chain",
    "storage.mysql.tls.private_key",
    "notifier.disable_startup_check",
    "notifier.template_path",
    "notifier.filesystem.filename",
    "notifier.smtp.address",
    "notifier.smtp.timeout",
    "notifier.smtp.username",
    "notifier.smtp.password",
    "notifier.smtp.sender",
    "notifier.smtp.identifier",
    "notifier.smtp.subject",
    "notifier.smtp.startup_check_address",
    "notifier.smtp.disable_require_tls",
    "notifier.smtp.disable_html_emails",
    "notifier.smtp.disable_starttls",
    "notifier.smtp.tls.server_name",
    "notifier.smtp.tls.skip_verify",
    "notifier.smtp.tls.minimum_version",
    "notifier.smtp.tls.maximum_version",
    "notifier.smtp.tls.certificate_chain",
    "notifier.smtp.tls.private_key",
    "totp.disable",
    "totp.issuer",
    "totp.algorithm",
    "totp.digits",
    "totp.period",
    "totp.skew",
    "totp.secret_size",
    "totp.allowed_algorithms",
    "totp.allowed_digits",
    "totp.allowed_periods",
    "totp.disable_reuse_security_policy",
    "webauthn.disable",
    "webauthn.enable_passkey_login",
    "webauthn.display_name",
    "webauthn.attestation_conveyance_preference",
    "webauthn.timeout",
    "webauthn.selection_criteria.attachment",
    "webauthn.selection_criteria.discoverability",
    "webauthn.selection_criteria.user_verification",
    "webauthn.experimental_enable_passkey_uv_two_factors",
    "webauthn.experimental_enable_passkey_upgrade",
    "identity_validation.reset_password.jwt_lifespan",
    "identity_validation.reset_password.jwt_algorithm",
    "identity_validation.reset_password.jwt_secret",
    "identity_validation.elevated_session.code_lifespan",
    "identity_validation.elevated_session.elevation_lifespan",
    "identity_validation.elevated_session.characters",
    "identity_validation.elevated_session.require_second_factor",
    "identity_validation.elevated_session.skip_second_factor",
    "access_control.default_policy",
    "access_control.allow_encoded_slashes",
    "authentication_backend.database.search.email",
    "authentication_backend.database.search.case_insensitive",
    "authentication_backend.database.password.algorithm",
    "authentication_backend.ldap.address",
    "authentication_backend.ldap.implementation",
    "authentication_backend.ldap.timeout",
    "authentication_backend.ldap.start_tls",
    "authentication_backend.ldap.tls.server_name",
    "authentication_backend.ldap.tls.skip_verify",
    "authentication_backend.ldap.tls.minimum_version",
    "authentication_backend.ldap.tls.maximum_version",
    "authentication_backend.ldap.tls.certificate_chain",
    "authentication_backend.ldap.tls.private_key",
    "authentication_backend.ldap.base_dn",
    "authentication_backend.ldap.additional_users_dn",
    "authentication_backend.ldap.users_filter",
    "authentication_backend.ldap.additional_groups_dn",
    "authentication_backend.ldap.groups_filter",
    "authentication_backend.ldap.group_search_mode",
    "authentication_backend.ldap.attributes.distinguished_name",
    "authentication_backend.ldap.attributes.username",
    "authentication_backend.ldap.attributes.display_name",
    "authentication_backend.ldap.attributes.mail",
    "authentication_backend.ldap.attributes.member_of",
    "authentication_backend.ldap.attributes.group_name",
    "authentication_backend.ldap.permit_referrals",
    "authentication_backend.ldap.permit_unauthenticated_bind",
    "authentication_backend.ldap.permit_feature_detection_failure",
    "authentication_backend.ldap.user",
    "authentication_backend.ldap.password",
    "authentication_backend.ldap.pooling.enable",
    "authentication_backend.ldap.pooling.count",
    "authentication_backend.ldap.pooling.retries",
    "authentication_backend.ldap.pooling.timeout",
    "authentication_backend.ldap.cache_lifespan",
    "admin.group",
    "admin.require_two_factor",
    "audit.retention",
    "account_api.enabled",
    "account_api.jwt_secret",
    "account_api.token_lifespan",
    "signup.enabled",
    "signup.referral_lifespan",
    "signup.referral_uses",
    "signup.referrals_per_user",
    "upstream_oidc.issuer",
    "upstream_oidc.client_id",
    "upstream_oidc.client_secret",
    "upstream_oidc.display_name",
    "upstream_oidc.create_users",
    "upstream_oidc.link_by_email",
    "upstream_oidc.trust_upstream_mfa",
    "api_tokens.enabled",
    "api_tokens.max_per_user",
    "api_tokens.max_lifespan",
    "api_tokens.cache_lifespan",
    "telemetry.metrics.enabled",
    "telemetry.metrics.address",
    "telemetry.metrics.buffers.read",
    "telemetry.metrics.buffers.write",
    "telemetry.metrics.timeouts.read",
    "telemetry.metrics.timeouts.write",
    "telemetry.metrics.timeouts.idle",
    "telemetry.traces.enabled",
    "telemetry.traces.endpoint",
    "telemetry.traces.protocol",
    "telemetry.traces.sampling_ratio",
    "telemetry.traces.service_name",
    "identity_providers.oidc.lifespans.access_token",
    "identity_providers.oidc.lifespans.authorize_code",
    "identity_providers.oidc.lifespans.id_token",
    "identity_providers.oidc.lifespans.refresh_token",
    "identity_providers.oidc.lifespans.device_code",
];

/// Authelia keys Portcullis recognises but does not implement yet. They are ignored with a
/// warning naming them (an error under `--strict`), never silently.
pub const AUTHELIA_UNSUPPORTED: &[&str] = &[
    "duo_api",
    "ntp",
    "privacy_policy",
    "telemetry.metrics.umask",
    "server.asset_path",
    "server.endpoints.enable_expvars",
    "server.endpoints.enable_pprof",
    "server.endpoints.rate_limits",
    "authentication_backend.refresh_interval",
    "authentication_backend.file.extra_attributes",
    "definitions.user_attributes",
    "webauthn.filtering",
    "webauthn.metadata",
];

/// Maps an environment variable name (prefix removed, any case) to a dotted key path.
pub fn env_key_to_path(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    if lower.contains("__") {
        let path = lower.replace("__", ".");
        return (!path.split('.').any(str::is_empty)).then_some(path);
    }
    for key in ENV_KEYS {
        if key.replace('.', "_") == lower {
            return Some((*key).to_string());
        }
    }
    for key in SECRET_KEYS {
        if format!("{}_file", key.replace('.', "_")) == lower {
            return Some(format!("{key}_file"));
        }
    }
    None
}

/// Authelia secrets of features Portcullis does not have yet: `AUTHELIA_<KEY>_FILE` for
/// them is recognised (and the key then reported as not supported).
const AUTHELIA_OTHER_SECRETS: &[&str] = &[
    "authentication_backend.ldap.password",
    "authentication_backend.ldap.tls.private_key",
    "authentication_backend.ldap.tls.certificate_chain",
    "duo_api.integration_key",
    "duo_api.secret_key",
    "identity_providers.oidc.hmac_secret",
    "identity_providers.oidc.issuer_private_key",
    "identity_providers.oidc.issuer_certificate_chain",
];

/// Maps an Authelia environment variable name (`AUTHELIA_` removed, any case) to a dotted
/// key path, as Authelia does: the key with `.` written as `_`, current or deprecated
/// keys alike; `<KEY>_FILE` for a secret names the file holding it (`<key>_file`).
pub fn authelia_env_key_to_path(name: &str) -> Option<String> {
    let lower = name.to_ascii_lowercase();
    let flat = |key: &str| key.replace('.', "_");
    if let Some(stem) = lower.strip_suffix("_file") {
        if let Some(key) = SECRET_KEYS.iter().chain(AUTHELIA_OTHER_SECRETS).find(|k| flat(k) == stem) {
            return Some(format!("{key}_file"));
        }
        if stem == "jwt_secret" {
            return Some("identity_validation.reset_password.jwt_secret_file".into());
        }
    }
    ENV_KEYS
        .iter()
        .chain(SECRET_KEYS)
        .copied()
        .chain(super::deprecated::deprecated_keys().filter(|k| !k.contains("[]")))
        .find(|k| flat(k) == lower)
        .map(str::to_string)
}

/// The Authelia-unsupported entry that covers `path`, if any.
pub fn unsupported_prefix(path: &str) -> Option<&'static str> {
    AUTHELIA_UNSUPPORTED.iter().copied().find(|prefix| {
        path == *prefix || path.strip_prefix(prefix).is_some_and(|rest| rest.starts_with('.') || rest.starts_with('['))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_map_to_key_paths() {
        assert_eq!(env_key_to_path("SESSION_REDIS_HOST").as_deref(), Some("session.redis.host"));
        assert_eq!(env_key_to_path("server_address").as_deref(), Some("server.address"));
        assert_eq!(env_key_to_path("SESSION_SECRET_FILE").as_deref(), Some("session.secret_file"));
        assert_eq!(
            env_key_to_path("IDENTITY_VALIDATION_RESET_PASSWORD_JWT_SECRET").as_deref(),
            Some("identity_validation.reset_password.jwt_secret")
        );
        assert_eq!(env_key_to_path("SERVER__BUFFERS__READ").as_deref(), Some("server.buffers.read"));
        assert_eq!(env_key_to_path("NOT_A_KEY"), None);
        assert_eq!(env_key_to_path("A____B"), None);
    }

    #[test]
    fn authelia_names_map_to_key_paths() {
        assert_eq!(authelia_env_key_to_path("LOG_LEVEL").as_deref(), Some("log.level"));
        assert_eq!(
            authelia_env_key_to_path("IDENTITY_PROVIDERS_OIDC_LIFESPANS_DEVICE_CODE").as_deref(),
            Some("identity_providers.oidc.lifespans.device_code")
        );
        assert_eq!(authelia_env_key_to_path("SESSION_SECRET_FILE").as_deref(), Some("session.secret_file"));
        assert_eq!(
            authelia_env_key_to_path("JWT_SECRET_FILE").as_deref(),
            Some("identity_validation.reset_password.jwt_secret_file")
        );
        assert_eq!(authelia_env_key_to_path("NOTIFIER_SMTP_HOST").as_deref(), Some("notifier.smtp.host"));
        assert_eq!(
            authelia_env_key_to_path("AUTHENTICATION_BACKEND_LDAP_PASSWORD_FILE").as_deref(),
            Some("authentication_backend.ldap.password_file")
        );
        assert_eq!(authelia_env_key_to_path("SERVER__ADDRESS"), None);
        assert_eq!(authelia_env_key_to_path("NOT_A_KEY"), None);
    }

    #[test]
    fn unsupported_prefixes_match_whole_segments() {
        assert_eq!(unsupported_prefix("duo_api.hostname"), Some("duo_api"));
        assert_eq!(unsupported_prefix("ntp"), Some("ntp"));
        assert_eq!(unsupported_prefix("ntpx"), None);
        assert_eq!(unsupported_prefix("session.name"), None);
    }
}
