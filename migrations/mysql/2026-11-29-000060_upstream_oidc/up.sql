-- Sign-in through an upstream OpenID provider (issue 22): which upstream account (issuer,
-- subject) is which local user. The provider's settings, secret included, are one sealed
-- value in the encryption table (name upstream_oidc_provider), re-sealed with the rest.
CREATE TABLE upstream_oidc_identities (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    issuer VARCHAR(255) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    username VARCHAR(100) NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL,
    UNIQUE INDEX upstream_oidc_identities_subject (issuer, subject),
    INDEX upstream_oidc_identities_username (username)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
