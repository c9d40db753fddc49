-- Personal API tokens (issue 21): the token itself is never stored, only its keyed hash
-- (HMAC under a key derived from storage.encryption_key), looked up through a unique index.
-- prefix is the token's first characters, shown to its owner to tell tokens apart.
-- scopes: space-separated labels. expires_at NULL: no expiry; revoked_at NULL: in force.
CREATE TABLE api_tokens (
    id SERIAL PRIMARY KEY,
    username VARCHAR(100) NOT NULL,
    name VARCHAR(64) NOT NULL,
    prefix VARCHAR(16) NOT NULL,
    token_hash VARCHAR(64) NOT NULL,
    scopes VARCHAR(1024) NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL
);
CREATE UNIQUE INDEX api_tokens_token_hash ON api_tokens (token_hash);
CREATE INDEX api_tokens_username ON api_tokens (username, revoked_at);
