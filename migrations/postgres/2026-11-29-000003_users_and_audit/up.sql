CREATE TABLE users (
    username VARCHAR(100) PRIMARY KEY,
    username_key VARCHAR(100) NOT NULL,
    display_name VARCHAR(255) NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX users_username_key ON users (username_key);

CREATE TABLE user_emails (
    username VARCHAR(100) NOT NULL,
    position INTEGER NOT NULL,
    email VARCHAR(254) NOT NULL,
    email_key VARCHAR(254) NOT NULL,
    PRIMARY KEY (username, position)
);
CREATE INDEX user_emails_email_key ON user_emails (email_key);

CREATE TABLE user_groups (
    username VARCHAR(100) NOT NULL,
    position INTEGER NOT NULL,
    group_name VARCHAR(100) NOT NULL,
    PRIMARY KEY (username, position)
);
CREATE INDEX user_groups_group_name ON user_groups (group_name);

CREATE TABLE user_settings (
    username VARCHAR(100) PRIMARY KEY,
    passwordless BOOLEAN NOT NULL DEFAULT FALSE
);

CREATE TABLE audit_log (
    id SERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    event VARCHAR(64) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    actor VARCHAR(100) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    remote_ip VARCHAR(47) NOT NULL,
    user_agent VARCHAR(512) NOT NULL,
    request_id VARCHAR(64) NOT NULL,
    detail TEXT NOT NULL
);
CREATE INDEX audit_log_time ON audit_log (time);
CREATE INDEX audit_log_subject_time ON audit_log (subject, time);
CREATE INDEX audit_log_event_time ON audit_log (event, time);
