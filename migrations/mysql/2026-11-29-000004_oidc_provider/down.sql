DROP TABLE oidc_subjects;
DROP TABLE oidc_consents;
DROP TABLE oidc_sessions;
