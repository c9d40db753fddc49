DROP TABLE upstream_oidc_identities;
