CREATE TABLE authentication_logs (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    time BIGINT NOT NULL,
    successful BOOLEAN NOT NULL,
    banned BOOLEAN NOT NULL,
    username VARCHAR(100) NOT NULL,
    auth_type VARCHAR(16) NOT NULL,
    remote_ip VARCHAR(47) NOT NULL,
    request_uri TEXT NOT NULL,
    request_method VARCHAR(8) NOT NULL,
    INDEX authentication_logs_username_time (username, time),
    INDEX authentication_logs_remote_ip_time (remote_ip, time)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE user_preferences (
    username VARCHAR(100) PRIMARY KEY,
    second_factor_method VARCHAR(11) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE encryption (
    id INTEGER AUTO_INCREMENT PRIMARY KEY,
    name VARCHAR(100) NOT NULL UNIQUE,
    value BLOB NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
