-- First-run bootstrap tokens, stored only as keyed hashes so that every replica accepts
-- them; and the claim row whose primary key lets exactly one completion create the first
-- administrator.
CREATE TABLE bootstrap_tokens (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    created_by VARCHAR(100)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE bootstrap_claim (
    id INTEGER PRIMARY KEY NOT NULL,
    token_id INTEGER NOT NULL,
    claimed_at BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
