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

#[cfg(test)]
mod tests {
    use super::*;

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
