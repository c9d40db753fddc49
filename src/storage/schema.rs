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

diesel::table! {
    /// A user's TOTP secret (encrypted) and parameters.
    totp_configurations (id) {
        id -> Integer,
        username -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        issuer -> Text,
        algorithm -> Text,
        digits -> Integer,
        period -> Integer,
        secret -> Binary,
    }
}

diesel::table! {
    /// TOTP time steps already used, so that a code works once.
    totp_history (id) {
        id -> Integer,
        username -> Text,
        step -> BigInt,
        created_at -> BigInt,
    }
}

diesel::table! {
    /// Single-use recovery codes, stored as keyed hashes.
    recovery_codes (id) {
        id -> Integer,
        username -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The random user handle each user has towards authenticators.
    webauthn_users (username) {
        username -> Text,
        user_id -> Text,
    }
}

diesel::table! {
    /// Registered security keys and passkeys.
    webauthn_credentials (id) {
        id -> Integer,
        username -> Text,
        description -> Text,
        kid -> Text,
        rp_id -> Text,
        discoverable -> Bool,
        aaguid -> Text,
        attestation_type -> Text,
        sign_count -> BigInt,
        clone_warning -> Bool,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        credential -> Binary,
    }
}

diesel::table! {
    /// Emailed one-time codes (elevation, sign-in), stored as keyed hashes.
    one_time_codes (id) {
        id -> Integer,
        public_id -> Text,
        username -> Text,
        intent -> Text,
        code_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        attempts -> Integer,
    }
}

diesel::table! {
    /// Password reset tokens issued, so each works once and can be revoked.
    identity_verification (id) {
        id -> Integer,
        jti -> Text,
        username -> Text,
        action -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}
