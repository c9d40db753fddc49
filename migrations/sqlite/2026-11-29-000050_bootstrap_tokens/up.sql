-- First-run bootstrap tokens, stored only as keyed hashes so that every replica accepts
-- them; and the claim row whose primary key lets exactly one completion create the first
-- administrator.
CREATE TABLE bootstrap_tokens (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_by VARCHAR(100)
);
CREATE TABLE bootstrap_claim (
    id INTEGER PRIMARY KEY NOT NULL,
    token_id INTEGER NOT NULL,
    claimed_at BIGINT NOT NULL
);
