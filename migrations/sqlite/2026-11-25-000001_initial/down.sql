DROP TABLE encryption;
DROP TABLE user_preferences;
DROP TABLE authentication_logs;
