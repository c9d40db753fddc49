//! Second factors: TOTP with recovery codes, WebAuthn security keys and passkeys. Emailed
//! codes live in [`crate::identity`], as they share their machinery with elevation.

pub mod portable;
pub mod recovery;
pub mod totp;
pub mod webauthn;

use serde::{Deserialize, Serialize};

/// How a user proves the second factor. The names are the ones Authelia stores and its
/// API speaks (`totp`, `webauthn`), plus ours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// A code from an authenticator app.
    Totp,
    /// A security key or passkey answering a challenge.
    #[serde(rename = "webauthn")]
    WebAuthn,
    /// A code mailed to the user.
    Email,
    /// A passkey that verified the user, counted as both factors (never preferable).
    Passkey,
    /// A single-use recovery code (never preferable).
    Recovery,
    /// The password after a passkey login (never preferable).
    Password,
}

impl Method {
    /// The methods a user can choose as their preferred one, in the order the portal
    /// offers them.
    pub const PREFERABLE: [Method; 3] = [Method::Totp, Method::WebAuthn, Method::Email];

    /// The stored and wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Totp => "totp",
            Self::WebAuthn => "webauthn",
            Self::Email => "email",
            Self::Passkey => "passkey",
            Self::Recovery => "recovery",
            Self::Password => "password",
        }
    }

    /// A preferable method by its name.
    pub fn preferable(name: &str) -> Option<Self> {
        Self::PREFERABLE.into_iter().find(|m| m.as_str() == name)
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Method::PREFERABLE {
            assert_eq!(Method::preferable(m.as_str()), Some(m));
            assert_eq!(serde_json::to_string(&m).unwrap(), format!("\"{m}\""));
        }
        assert_eq!(Method::preferable("passkey"), None);
        assert_eq!(Method::preferable("mobile_push"), None);
        let used: Method = serde_json::from_str("\"recovery\"").unwrap();
        assert_eq!(used, Method::Recovery);
    }
}
