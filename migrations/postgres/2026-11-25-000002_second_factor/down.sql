DROP TABLE identity_verification;
DROP TABLE one_time_codes;
DROP TABLE webauthn_credentials;
DROP TABLE webauthn_users;
DROP TABLE recovery_codes;
DROP TABLE totp_history;
DROP TABLE totp_configurations;
