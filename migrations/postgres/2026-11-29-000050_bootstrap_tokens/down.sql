DROP TABLE bootstrap_claim;
DROP TABLE bootstrap_tokens;
