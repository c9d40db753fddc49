DROP TABLE oidc_device_codes;
