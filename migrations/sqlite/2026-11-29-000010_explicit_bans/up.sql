-- Bans set by hand (`storage bans ... add`) or carried over from Authelia, beside the bans
-- regulation derives from the authentication log. expires_at NULL: until revoked.
CREATE TABLE bans (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    kind VARCHAR(4) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NULL,
    revoked_at BIGINT NULL,
    source VARCHAR(16) NOT NULL,
    reason VARCHAR(100) NULL
);
CREATE INDEX bans_lookup ON bans (kind, subject, revoked_at);
