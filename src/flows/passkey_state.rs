//! The state of a passwordless login between its two requests, kept by the browser in a
//! sealed cookie ([`super::sealed_cookie`]) instead of by the server. The cookie holds the
//! WebAuthn library's state; it is taken (cleared) by the second request, and a login it
//! completed is claimed in the session store, so the same cookie and assertion cannot log
//! in twice, on any instance.

use super::sealed_cookie::SealedCookie;

/// The passkey challenge's cookie.
pub const PASSKEY_CHALLENGE: SealedCookie = SealedCookie {
    name: "portcullis_passkey",
    purpose: "passkey-login-v1",
    lifetime_secs: 300,
    same_site: cookie::SameSite::Strict,
};
