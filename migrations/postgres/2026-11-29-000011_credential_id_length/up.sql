-- Credential IDs may be up to 1023 bytes (WebAuthn Level 3), 1364 characters in base64url;
-- 64 refused the long IDs of non-discoverable security keys and Authelia's imported ones.
ALTER TABLE webauthn_credentials ALTER COLUMN kid TYPE VARCHAR(1400);
