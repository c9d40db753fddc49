//! Table definitions (shared by the three backends' migrations).

diesel::table! {
    /// Every login attempt, successful or not; regulation reads it.
    authentication_logs (id) {
        id -> Integer,
        time -> BigInt,
        successful -> Bool,
        banned -> Bool,
        username -> Text,
        auth_type -> Text,
        remote_ip -> Text,
        request_uri -> Text,
        request_method -> Text,
    }
}

diesel::table! {
    /// Each user's preferred second-factor method.
    user_preferences (username) {
        username -> Text,
        second_factor_method -> Text,
    }
}

diesel::table! {
    /// Values sealed with the encryption key, including the key check row.
    encryption (id) {
        id -> Integer,
        name -> Text,
        value -> Binary,
    }
}
