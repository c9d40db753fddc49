-- Device-addition links: single-use, short-lived links that let another device register
-- a passkey for an account. Stored only as keyed hashes of their tokens; used once by a
-- conditional update of used_at.
CREATE TABLE device_links (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    username VARCHAR(100) NOT NULL,
    created_by VARCHAR(100) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX device_links_username ON device_links (username);
