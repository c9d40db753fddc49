-- A user's TOTP secret (encrypted) and parameters.
CREATE TABLE totp_configurations (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(100) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    issuer VARCHAR(100) NOT NULL,
    algorithm VARCHAR(6) NOT NULL,
    digits INTEGER NOT NULL,
    period INTEGER NOT NULL,
    secret BLOB NOT NULL
);

-- TOTP time steps already used, so that a code works once.
CREATE TABLE totp_history (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(100) NOT NULL,
    step BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    CONSTRAINT totp_history_username_step UNIQUE (username, step)
);

-- Single-use recovery codes, stored as keyed hashes.
CREATE TABLE recovery_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(100) NOT NULL,
    code_hash VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT NULL
);
CREATE INDEX recovery_codes_username ON recovery_codes (username);

-- The random user handle each user has towards authenticators.
CREATE TABLE webauthn_users (
    username VARCHAR(100) NOT NULL PRIMARY KEY,
    user_id VARCHAR(36) NOT NULL UNIQUE
);

-- Registered security keys and passkeys.
CREATE TABLE webauthn_credentials (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    username VARCHAR(100) NOT NULL,
    description VARCHAR(64) NOT NULL,
    kid VARCHAR(64) NOT NULL UNIQUE,
    rp_id VARCHAR(253) NOT NULL,
    discoverable BOOLEAN NOT NULL,
    aaguid VARCHAR(36) NOT NULL,
    attestation_type VARCHAR(32) NOT NULL,
    sign_count BIGINT NOT NULL,
    clone_warning BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    credential BLOB NOT NULL,
    CONSTRAINT webauthn_credentials_username_description UNIQUE (username, description)
);
CREATE INDEX webauthn_credentials_username ON webauthn_credentials (username);

-- Emailed one-time codes (elevation, sign-in), stored as keyed hashes.
CREATE TABLE one_time_codes (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    public_id VARCHAR(36) NOT NULL UNIQUE,
    username VARCHAR(100) NOT NULL,
    intent VARCHAR(32) NOT NULL,
    code_hash VARCHAR(64) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL,
    attempts INTEGER NOT NULL
);
CREATE INDEX one_time_codes_username_created ON one_time_codes (username, created_at);

-- Password reset tokens issued, so each works once and can be revoked.
CREATE TABLE identity_verification (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    jti VARCHAR(36) NOT NULL UNIQUE,
    username VARCHAR(100) NOT NULL,
    action VARCHAR(32) NOT NULL,
    issued_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL
);
CREATE INDEX identity_verification_username_issued ON identity_verification (username, issued_at);
