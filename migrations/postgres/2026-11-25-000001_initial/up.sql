CREATE TABLE authentication_logs (
    id SERIAL PRIMARY KEY,
    time BIGINT NOT NULL,
    successful BOOLEAN NOT NULL,
    banned BOOLEAN NOT NULL,
    username VARCHAR(100) NOT NULL,
    auth_type VARCHAR(16) NOT NULL,
    remote_ip VARCHAR(47) NOT NULL,
    request_uri TEXT NOT NULL,
    request_method VARCHAR(8) NOT NULL
);
CREATE INDEX authentication_logs_username_time ON authentication_logs (username, time);
CREATE INDEX authentication_logs_remote_ip_time ON authentication_logs (remote_ip, time);

CREATE TABLE user_preferences (
    username VARCHAR(100) PRIMARY KEY,
    second_factor_method VARCHAR(11) NOT NULL
);

CREATE TABLE encryption (
    id SERIAL PRIMARY KEY,
    name VARCHAR(100) NOT NULL UNIQUE,
    value BYTEA NOT NULL
);
