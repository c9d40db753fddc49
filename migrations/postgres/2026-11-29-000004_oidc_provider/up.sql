CREATE TABLE oidc_sessions (
    id SERIAL PRIMARY KEY,
    signature VARCHAR(128) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    chain_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(100) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL
);
CREATE UNIQUE INDEX oidc_sessions_signature ON oidc_sessions (signature);
CREATE INDEX oidc_sessions_chain_id ON oidc_sessions (chain_id);
CREATE INDEX oidc_sessions_expires_at ON oidc_sessions (expires_at);

CREATE TABLE oidc_consents (
    id SERIAL PRIMARY KEY,
    username VARCHAR(100) NOT NULL,
    client_id VARCHAR(100) NOT NULL,
    scopes TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL
);
CREATE INDEX oidc_consents_user_client ON oidc_consents (username, client_id);

CREATE TABLE oidc_subjects (
    sector_id VARCHAR(255) NOT NULL,
    username VARCHAR(100) NOT NULL,
    identifier VARCHAR(64) NOT NULL,
    PRIMARY KEY (sector_id, username)
);
CREATE UNIQUE INDEX oidc_subjects_identifier ON oidc_subjects (identifier);
