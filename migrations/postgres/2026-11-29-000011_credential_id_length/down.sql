ALTER TABLE webauthn_credentials ALTER COLUMN kid TYPE VARCHAR(64);
