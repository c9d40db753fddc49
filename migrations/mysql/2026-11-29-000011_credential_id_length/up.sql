-- Credential IDs may be up to 1023 bytes (WebAuthn Level 3), 1364 characters in base64url;
-- 64 refused the long IDs of non-discoverable security keys and Authelia's imported ones.
-- ASCII keeps the unique index within InnoDB's key length; binary collation because
-- base64url is case-sensitive.
ALTER TABLE webauthn_credentials MODIFY kid VARCHAR(1400) CHARACTER SET ascii COLLATE ascii_bin NOT NULL;
