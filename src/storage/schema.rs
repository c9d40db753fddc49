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

diesel::table! {
    /// Users of the database users backend (`authentication_backend.database`).
    users (username) {
        username -> Text,
        /// The username folded for case-insensitive lookups.
        username_key -> Text,
        display_name -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    /// A database user's email addresses, primary first.
    user_emails (username, position) {
        username -> Text,
        position -> Integer,
        email -> Text,
        /// The address folded for lookups (logins by email).
        email_key -> Text,
    }
}

diesel::table! {
    /// A database user's groups, in order.
    user_groups (username, position) {
        username -> Text,
        position -> Integer,
        group_name -> Text,
    }
}

diesel::table! {
    /// Per-user settings that hold whichever users backend is used.
    user_settings (username) {
        username -> Text,
        passwordless -> Bool,
    }
}

diesel::table! {
    /// Security events: who did what to whom, from where, and how it ended.
    audit_log (id) {
        id -> Integer,
        time -> BigInt,
        event -> Text,
        outcome -> Text,
        actor -> Text,
        subject -> Text,
        remote_ip -> Text,
        user_agent -> Text,
        request_id -> Text,
        detail -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(users, user_emails, user_groups);

diesel::table! {
    /// The OpenID Connect provider's codes, tokens and pending requests, by the HMAC
    /// signature of each (never the value); `chain_id` links everything issued from one
    /// authorization.
    oidc_sessions (id) {
        id -> Integer,
        signature -> Text,
        kind -> Text,
        chain_id -> Text,
        client_id -> Text,
        subject -> Text,
        data -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        consumed_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Consent decisions: which scopes a user granted a client, until when.
    oidc_consents (id) {
        id -> Integer,
        username -> Text,
        client_id -> Text,
        scopes -> Text,
        granted -> Bool,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// The opaque, stable `sub` of each user per sector.
    oidc_subjects (sector_id, username) {
        sector_id -> Text,
        username -> Text,
        identifier -> Text,
    }
}

diesel::table! {
    /// Bans set by hand or imported, beside those regulation derives from the log.
    bans (id) {
        id -> Integer,
        kind -> Text,
        subject -> Text,
        created_at -> BigInt,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
        source -> Text,
        reason -> Nullable<Text>,
    }
}

diesel::table! {
    /// Device authorization sessions (RFC 8628): the device code and the user code by
    /// their HMACs (never the values), the client, where the user's decision stands, the
    /// grant once approved, and the polling state (`slow_down`).
    oidc_device_codes (id) {
        id -> Integer,
        device_signature -> Text,
        user_code_signature -> Text,
        client_id -> Text,
        chain_id -> Text,
        status -> Text,
        subject -> Text,
        data -> Text,
        poll_interval -> BigInt,
        last_polled_at -> Nullable<BigInt>,
        created_at -> BigInt,
        expires_at -> BigInt,
        decided_at -> Nullable<BigInt>,
        consumed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Account API bearer tokens issued before this time (ms) are refused.
    account_token_cutoffs (username) {
        username -> Text,
        not_before_ms -> BigInt,
    }
}

diesel::table! {
    /// Email addresses their owner proved to receive.
    email_verifications (username, email) {
        username -> Text,
        email -> Text,
        verified_at -> BigInt,
    }
}

diesel::table! {
    /// Referral tokens for signup, by keyed hash.
    referral_tokens (id) {
        id -> Integer,
        token_hash -> Text,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        uses_left -> Integer,
    }
}

diesel::table! {
    /// Personal API tokens: the owner, a name and the first characters of the token for
    /// display, the token's keyed hash (never the token), scopes, and its lifetime.
    api_tokens (id) {
        id -> Integer,
        username -> Text,
        name -> Text,
        prefix -> Text,
        token_hash -> Text,
        scopes -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
        expires_at -> Nullable<BigInt>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    /// Upstream OpenID accounts (issuer, subject) linked to local users.
    upstream_oidc_identities (id) {
        id -> Integer,
        issuer -> Text,
        subject -> Text,
        username -> Text,
        created_at -> BigInt,
        last_used_at -> BigInt,
    }
}

diesel::table! {
    /// First-run bootstrap tokens, by keyed hash (never the token): who issued one
    /// (`startup`, `cli` or an administrator), its lifetime, and when it was used.
    bootstrap_tokens (id) {
        id -> Integer,
        token_hash -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        created_by -> Nullable<Text>,
    }
}

diesel::table! {
    /// At most one row (ID 1): the bootstrap completion creating the first administrator.
    bootstrap_claim (id) {
        id -> Integer,
        token_id -> Integer,
        claimed_at -> BigInt,
    }
}

diesel::table! {
    /// Device-addition links, by keyed hash of their token (never the token): whose
    /// account a new device may add a passkey to, who made the link, its lifetime, and
    /// when it was used.
    device_links (id) {
        id -> Integer,
        token_hash -> Text,
        username -> Text,
        created_by -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}
