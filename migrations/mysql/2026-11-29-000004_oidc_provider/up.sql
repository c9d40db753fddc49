CREATE TABLE oidc_sessions (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    signature VARCHAR(128) NOT NULL,
    kind VARCHAR(8) NOT NULL,
    chain_id VARCHAR(64) NOT NULL,
    client_id VARCHAR(100) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    data TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    consumed_at BIGINT NULL,
    revoked_at BIGINT NULL,
    UNIQUE INDEX oidc_sessions_signature (signature),
    INDEX oidc_sessions_chain_id (chain_id),
    INDEX oidc_sessions_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE oidc_consents (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    username VARCHAR(100) NOT NULL,
    client_id VARCHAR(100) NOT NULL,
    scopes TEXT NOT NULL,
    granted BOOLEAN NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    INDEX oidc_consents_user_client (username, client_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE oidc_subjects (
    sector_id VARCHAR(255) NOT NULL,
    username VARCHAR(100) NOT NULL,
    identifier VARCHAR(64) NOT NULL,
    PRIMARY KEY (sector_id, username),
    UNIQUE INDEX oidc_subjects_identifier (identifier)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
