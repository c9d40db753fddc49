DROP TABLE audit_log;
DROP TABLE user_settings;
DROP TABLE user_groups;
DROP TABLE user_emails;
DROP TABLE users;
