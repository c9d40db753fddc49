-- The account API (/api/auth): bearer tokens issued before a user's cutoff are refused
-- (password changed or reset); verified email addresses; referral tokens for signup,
-- stored only as keyed hashes.
CREATE TABLE account_token_cutoffs (
    username VARCHAR(100) PRIMARY KEY NOT NULL,
    not_before_ms BIGINT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE email_verifications (
    username VARCHAR(100) NOT NULL,
    email VARCHAR(254) NOT NULL,
    verified_at BIGINT NOT NULL,
    PRIMARY KEY (username, email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
CREATE TABLE referral_tokens (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    token_hash VARCHAR(64) NOT NULL UNIQUE,
    created_by VARCHAR(100) NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    uses_left INTEGER NOT NULL,
    INDEX referral_tokens_created_by (created_by)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
