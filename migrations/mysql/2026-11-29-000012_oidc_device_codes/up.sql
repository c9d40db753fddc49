CREATE TABLE oidc_device_codes (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    device_signature VARCHAR(128) NOT NULL,
    user_code_signature VARCHAR(128) NOT NULL,
    client_id VARCHAR(100) NOT NULL,
    chain_id VARCHAR(64) NOT NULL,
    status VARCHAR(16) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    data TEXT NOT NULL,
    poll_interval BIGINT NOT NULL,
    last_polled_at BIGINT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    decided_at BIGINT NULL,
    consumed_at BIGINT NULL,
    UNIQUE INDEX oidc_device_codes_device_signature (device_signature),
    UNIQUE INDEX oidc_device_codes_user_code_signature (user_code_signature),
    INDEX oidc_device_codes_expires_at (expires_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
