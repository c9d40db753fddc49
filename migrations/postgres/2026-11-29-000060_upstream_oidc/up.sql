-- Sign-in through an upstream OpenID provider (issue 22): which upstream account (issuer,
-- subject) is which local user. The provider's settings, secret included, are one sealed
-- value in the encryption table (name upstream_oidc_provider), re-sealed with the rest.
CREATE TABLE upstream_oidc_identities (
    id SERIAL PRIMARY KEY,
    issuer VARCHAR(255) NOT NULL,
    subject VARCHAR(255) NOT NULL,
    username VARCHAR(100) NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX upstream_oidc_identities_subject ON upstream_oidc_identities (issuer, subject);
CREATE INDEX upstream_oidc_identities_username ON upstream_oidc_identities (username);
