//! The state of a passwordless login between its two requests, kept by the browser in a
//! sealed cookie instead of by the server: the first request is anonymous and anyone can
//! send it by the million, so it must not create a session or anything else server-side.
//!
//! The cookie holds the WebAuthn library's state with the cookie domain and an expiry,
//! encrypted and authenticated (AES-256-GCM under `storage.encryption_key`). It is taken
//! (cleared) by the second request; a login it completed is claimed in the session store,
//! so the same cookie and assertion cannot log in twice, on any instance.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, Pending, Result};
use crate::clock::now;
use crate::server::App;
use crate::session::CookieSettings;

/// The cookie's name.
pub const COOKIE: &str = "portcullis_passkey";

/// How long a challenge may wait for its answer.
pub const LIFETIME_SECS: i64 = 300;

const PURPOSE: &str = "passkey-login-v1";

#[derive(Serialize, Deserialize)]
struct Sealed {
    purpose: String,
    domain: String,
    expires_at: i64,
    state: String,
}

fn cookie(app: &App, settings: &CookieSettings, value: &str, max_age: i64) -> String {
    let mut c = cookie::Cookie::build((COOKIE, value.to_string()))
        .path(format!("{}/", app.base_path))
        .http_only(true)
        .secure(settings.secure)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    if value.is_empty() {
        c.make_removal();
        c.set_path(format!("{}/", app.base_path));
    }
    c.to_string()
}

/// The `Set-Cookie` value carrying `state` for the domain of `settings`.
pub fn seal(app: &App, settings: &CookieSettings, state: String) -> Result<String> {
    let sealed =
        Sealed { purpose: PURPOSE.into(), domain: settings.domain.clone(), expires_at: now() + LIFETIME_SECS, state };
    let plain = serde_json::to_vec(&sealed).map_err(|e| Error::Internal(e.to_string()))?;
    let cipher = app.services.storage.cipher();
    let bytes = cipher.encrypt(&plain).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(cookie(app, settings, &URL_SAFE_NO_PAD.encode(bytes), LIFETIME_SECS))
}

/// The `Set-Cookie` value that clears the cookie.
pub fn clear(app: &App, settings: &CookieSettings) -> String {
    cookie(app, settings, "", 0)
}

/// The state in `value` when it is genuine, for this domain, and not expired.
pub fn open(app: &App, settings: &CookieSettings, value: &str) -> Result<String> {
    let missing = || Error::NothingPending(Pending::PasskeyChallenge);
    let bytes = URL_SAFE_NO_PAD.decode(value).map_err(|_| missing())?;
    let plain = app.services.storage.cipher().decrypt(&bytes).map_err(|_| missing())?;
    let sealed: Sealed = serde_json::from_slice(&plain).map_err(|_| missing())?;
    if sealed.purpose != PURPOSE || sealed.domain != settings.domain || sealed.expires_at <= now() {
        return Err(missing());
    }
    Ok(sealed.state)
}

/// What the session store records when the cookie `value` completed a login.
pub fn claim_key(value: &str) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(b"passkey-login-claim\0");
    hash.update(value.as_bytes());
    hash.finalize().into()
}
