CREATE TABLE users (
    username VARCHAR(100) PRIMARY KEY,
    username_key VARCHAR(100) NOT NULL,
    display_name VARCHAR(255) NOT NULL,
    password_hash TEXT NOT NULL,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    INDEX users_username_key (username_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_emails (
    username VARCHAR(100) NOT NULL,
    position INTEGER NOT NULL,
    email VARCHAR(254) NOT NULL,
    email_key VARCHAR(254) NOT NULL,
    PRIMARY KEY (username, position),
    INDEX user_emails_email_key (email_key)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_groups (
    username VARCHAR(100) NOT NULL,
    position INTEGER NOT NULL,
    group_name VARCHAR(100) NOT NULL,
    PRIMARY KEY (username, position),
    INDEX user_groups_group_name (group_name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_settings (
    username VARCHAR(100) PRIMARY KEY,
    passwordless BOOLEAN NOT NULL DEFAULT FALSE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE audit_log (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    time BIGINT NOT NULL,
    event VARCHAR(64) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    actor VARCHAR(100) NOT NULL,
    subject VARCHAR(100) NOT NULL,
    remote_ip VARCHAR(47) NOT NULL,
    user_agent VARCHAR(512) NOT NULL,
    request_id VARCHAR(64) NOT NULL,
    detail TEXT NOT NULL,
    INDEX audit_log_time (time),
    INDEX audit_log_subject_time (subject, time),
    INDEX audit_log_event_time (event, time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
