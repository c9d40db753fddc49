//! Second factors: TOTP with recovery codes, WebAuthn security keys and passkeys. Emailed
//! codes live in [`crate::identity`], as they share their machinery with elevation.

pub mod recovery;
pub mod totp;
pub mod webauthn;
