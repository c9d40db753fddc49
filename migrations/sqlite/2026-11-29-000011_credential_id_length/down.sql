-- Credential IDs may be up to 1023 bytes (WebAuthn Level 3), 1364 characters in base64url.
-- SQLite does not enforce VARCHAR lengths: nothing to change.
SELECT 1;
