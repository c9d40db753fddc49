DROP TABLE referral_tokens;
DROP TABLE email_verifications;
DROP TABLE account_token_cutoffs;
