//! State a browser carries between two requests of a flow that starts anonymous (a
//! passkey challenge, an upstream sign-in), in a cookie instead of on the server: anyone
//! can send the first request by the million, so it must not create anything server-side.
//!
//! The value is encrypted and authenticated (AES-256-GCM under `storage.encryption_key`)
//! together with its purpose, the cookie domain and an expiry, so it cannot be read,
//! forged, moved to another flow or domain, or used late.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Error, Result};
use crate::clock::now;
use crate::server::App;
use crate::session::CookieSettings;

/// One kind of sealed cookie.
pub struct SealedCookie {
    /// The cookie's name.
    pub name: &'static str,
    /// What it is for; a value sealed for another purpose does not open.
    pub purpose: &'static str,
    /// How long it is valid, in seconds.
    pub lifetime_secs: i64,
    /// `Lax` when it must come back on a navigation from another site (a provider's
    /// redirect), `Strict` otherwise.
    pub same_site: cookie::SameSite,
}

#[derive(Serialize, Deserialize)]
struct Envelope<T> {
    purpose: String,
    domain: String,
    expires_at: i64,
    state: T,
}

impl SealedCookie {
    fn cookie(&self, app: &App, settings: &CookieSettings, value: &str, max_age: i64) -> String {
        let mut c = cookie::Cookie::build((self.name, value.to_string()))
            .path(format!("{}/", app.base_path))
            .http_only(true)
            .secure(settings.secure)
            .same_site(self.same_site)
            .max_age(cookie::time::Duration::seconds(max_age))
            .build();
        if value.is_empty() {
            c.make_removal();
            c.set_path(format!("{}/", app.base_path));
        }
        c.to_string()
    }

    /// The `Set-Cookie` value carrying `state` for the domain of `settings`.
    pub fn seal<T: Serialize>(&self, app: &App, settings: &CookieSettings, state: T) -> Result<String> {
        let value = self.seal_value(app, settings, state)?;
        Ok(self.cookie(app, settings, &value, self.lifetime_secs))
    }

    /// The sealed value alone (for a value that travels other than as this cookie, such as
    /// a bearer token); [`SealedCookie::open`] reads it.
    pub fn seal_value<T: Serialize>(&self, app: &App, settings: &CookieSettings, state: T) -> Result<String> {
        let envelope = Envelope {
            purpose: self.purpose.to_string(),
            domain: settings.domain.clone(),
            expires_at: now() + self.lifetime_secs,
            state,
        };
        let plain = serde_json::to_vec(&envelope).map_err(|e| Error::Internal(e.to_string()))?;
        let bytes = app.services.storage.cipher().encrypt(&plain).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(URL_SAFE_NO_PAD.encode(bytes))
    }

    /// The `Set-Cookie` value that clears the cookie.
    pub fn clear(&self, app: &App, settings: &CookieSettings) -> String {
        self.cookie(app, settings, "", 0)
    }

    /// The state in `value` when it is genuine, of this purpose, for this domain, and not
    /// expired.
    pub fn open<T: DeserializeOwned>(&self, app: &App, settings: &CookieSettings, value: &str) -> Option<T> {
        let bytes = URL_SAFE_NO_PAD.decode(value).ok()?;
        let plain = app.services.storage.cipher().decrypt(&bytes).ok()?;
        let envelope: Envelope<T> = serde_json::from_slice(&plain).ok()?;
        (envelope.purpose == self.purpose && envelope.domain == settings.domain && envelope.expires_at > now())
            .then_some(envelope.state)
    }

    /// What the session store records when the cookie `value` completed its flow, so that
    /// it completes once, on any instance.
    pub fn claim_key(&self, value: &str) -> [u8; 32] {
        let mut hash = Sha256::new();
        hash.update(self.purpose.as_bytes());
        hash.update(b"-claim\0");
        hash.update(value.as_bytes());
        hash.finalize().into()
    }

    /// How long a claim must be remembered.
    pub fn claim_ttl(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.lifetime_secs.unsigned_abs())
    }
}
