//! What a session remembers about its user.

use serde::{Deserialize, Serialize};

/// How strongly the session's user has proven who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[repr(u8)]
pub enum AuthLevel {
    /// Nobody has logged in.
    Anonymous = 0,
    /// Password (or another single factor).
    OneFactor = 1,
    /// Two factors.
    TwoFactor = 2,
}

/// The contents of a session. Times are Unix seconds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SessionData {
    /// Login name; empty for an anonymous session.
    pub username: String,
    /// Name to show.
    pub display_name: String,
    /// Email addresses, primary first.
    pub emails: Vec<String>,
    /// Group memberships.
    pub groups: Vec<String>,
    /// When the first factor succeeded.
    pub first_factor_at: Option<i64>,
    /// When the second factor succeeded.
    pub second_factor_at: Option<i64>,
    /// The user asked to stay logged in.
    pub remember_me: bool,
    /// When the session was created.
    pub created_at: i64,
    /// Last time the session was used.
    pub last_activity_at: i64,
    /// Cookie domain the session belongs to.
    pub domain: String,
    /// Which method reached the second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second_factor_method: Option<crate::second_factor::Method>,
    /// The first factor was a passkey (not counted as two): the password may then serve
    /// as the second (`/api/secondfactor/password`, Authelia's passkey upgrade).
    pub passkey_login: bool,
    /// Until when sensitive changes are allowed without proving identity again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevated_until: Option<i64>,
    /// The emailed code waiting to elevate this session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub elevation_code: Option<String>,
    /// The emailed sign-in code waiting to complete the second factor.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_code: Option<String>,
    /// The emailed code proving an address (account API; held for one request only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email_verification_code: Option<String>,
    /// A TOTP setup started but not confirmed yet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pending_totp: Option<PendingTotp>,
    /// A WebAuthn ceremony in progress (its challenge lives here, server-side).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webauthn: Option<PendingWebAuthn>,
    /// The user a verified reset link allows to set a new password.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_reset_username: Option<String>,
    /// The address the session was signed in from (shown in the user's session list).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ip: String,
    /// The User-Agent it was signed in with.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_agent: String,
}

/// A TOTP secret offered to the user, kept until they confirm it with a code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTotp {
    /// Base32 secret.
    pub secret: String,
    /// SHA1, SHA256 or SHA512.
    pub algorithm: String,
    /// 6 or 8.
    pub digits: u32,
    /// Seconds per code.
    pub period: u32,
    /// When it was offered (Unix seconds); it expires after [`PENDING_LIFETIME_SECS`].
    pub created_at: i64,
}

/// How long a started TOTP setup or WebAuthn ceremony may wait for its second half.
pub const PENDING_LIFETIME_SECS: i64 = 600;

/// Which WebAuthn ceremony is waiting for its second half.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Ceremony {
    /// Registering a security key (second factor).
    #[default]
    Register,
    /// Registering a discoverable credential (passkey).
    RegisterPasskey,
    /// A second-factor assertion.
    Authenticate,
}

/// State of a WebAuthn ceremony between its two requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWebAuthn {
    /// Which ceremony.
    pub kind: Ceremony,
    /// The library's ceremony state, serialized.
    pub state: String,
    /// For registrations: the description the user chose.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Not valid from this time on (Unix seconds).
    pub expires_at: i64,
}

impl SessionData {
    /// The session's authentication level.
    pub fn level(&self) -> AuthLevel {
        match (self.username.is_empty(), self.first_factor_at, self.second_factor_at) {
            (true, _, _) | (false, None, None) => AuthLevel::Anonymous,
            (false, _, Some(_)) => AuthLevel::TwoFactor,
            (false, Some(_), None) => AuthLevel::OneFactor,
        }
    }
}

impl SessionData {
    /// Takes the pending ceremony out if it is one of `kinds` and has not expired, so that
    /// it cannot be answered twice. A ceremony of another kind stays.
    pub fn take_ceremony(&mut self, kinds: &[Ceremony], now: i64) -> Option<PendingWebAuthn> {
        if !self.webauthn.as_ref().is_some_and(|p| kinds.contains(&p.kind)) {
            return None;
        }
        self.webauthn.take().filter(|p| p.expires_at > now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceremonies_are_taken_once_and_only_their_own_kind() {
        let pending =
            |kind, expires_at| PendingWebAuthn { kind, state: "s".into(), description: String::new(), expires_at };
        let mut s = SessionData { webauthn: Some(pending(Ceremony::Authenticate, 100)), ..Default::default() };
        assert!(s.take_ceremony(&[Ceremony::Register], 50).is_none());
        assert!(s.webauthn.is_some(), "another kind stays");
        assert!(s.take_ceremony(&[Ceremony::Authenticate], 50).is_some());
        assert!(s.take_ceremony(&[Ceremony::Authenticate], 50).is_none(), "taken once");
        s.webauthn = Some(pending(Ceremony::Register, 100));
        assert!(s.take_ceremony(&[Ceremony::Register], 100).is_none(), "expired");
        assert!(s.webauthn.is_none(), "an expired ceremony is dropped");
        let json = serde_json::to_string(&pending(Ceremony::RegisterPasskey, 1)).unwrap();
        assert!(json.contains("\"register_passkey\""), "{json}");
    }

    #[test]
    fn levels() {
        let mut s = SessionData::default();
        assert_eq!(s.level(), AuthLevel::Anonymous);
        s.username = "john".into();
        assert_eq!(s.level(), AuthLevel::Anonymous);
        s.first_factor_at = Some(1);
        assert_eq!(s.level(), AuthLevel::OneFactor);
        s.second_factor_at = Some(2);
        assert_eq!(s.level(), AuthLevel::TwoFactor);
        assert!(AuthLevel::TwoFactor > AuthLevel::OneFactor);
    }
}
