//! Facts about the logged-in user's account (name, addresses, which second factors are
//! set up, the method to offer first) and the choices they make about it.

use serde::Serialize;

use super::audit::{self, Event, Outcome};
use super::{Caller, Error, Result};
use crate::config::Configuration;
use crate::second_factor::Method;
use crate::server::App;
use crate::session::AuthLevel;

/// The account as `/api/user/info` and the portal's account page show it.
#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    /// Name to show.
    pub display_name: String,
    /// Addresses, primary first.
    pub emails: Vec<String>,
    /// Groups.
    pub groups: Vec<String>,
    /// The method to offer first (empty when none is enabled).
    pub method: String,
    /// A TOTP device is registered.
    pub has_totp: bool,
    /// A security key or passkey is registered.
    pub has_webauthn: bool,
    /// Emailed codes are on and the user has an address.
    pub has_email: bool,
    /// Duo is not supported (Authelia's field, always false).
    pub has_duo: bool,
    /// Unused recovery codes.
    pub recovery_codes_remaining: i64,
}

impl Facts {
    /// Whether the user has `method` set up.
    pub fn has(&self, method: Method) -> bool {
        match method {
            Method::Totp => self.has_totp,
            Method::WebAuthn => self.has_webauthn,
            Method::Email => self.has_email,
            Method::Recovery => self.recovery_codes_remaining > 0,
            Method::Passkey | Method::Password => false,
        }
    }

    /// The method to ask for after the password: the preferred one when the user has it,
    /// else the first one they have; `None` when they have none.
    pub fn second_factor_to_ask(&self) -> Option<Method> {
        let preferred = Method::preferable(&self.method);
        preferred.into_iter().chain(Method::PREFERABLE).find(|m| self.has(*m))
    }
}

/// The second-factor methods the operator turned on, in the order the portal offers them.
pub fn enabled_methods(c: &Configuration) -> Vec<Method> {
    let mut methods = Vec::new();
    if !c.totp.disable {
        methods.push(Method::Totp);
    }
    if !c.webauthn.disable {
        methods.push(Method::WebAuthn);
    }
    if c.email_otp.enable {
        methods.push(Method::Email);
    }
    methods
}

/// The caller's account facts. The method reported is the user's preference when still
/// enabled, else the configured default, else one the user has set up, else the first
/// enabled one.
pub async fn facts(app: &App, caller: &Caller<'_>) -> Result<Facts> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let storage = &app.services.storage;
    let username = &data.username;
    let preferred = storage.preferred_method(username).await?;
    let has_totp = storage.totp_exists(username).await?;
    let has_webauthn = storage.webauthn_count(username).await? > 0;
    let recovery_codes_remaining = storage.recovery_remaining(username).await?;
    let enabled = enabled_methods(&app.config);
    let has_email = app.config.email_otp.enable && !data.emails.is_empty();
    let usable = |m: &Method| enabled.contains(m);
    let has = |m: &Method| match m {
        Method::Totp => has_totp,
        Method::WebAuthn => has_webauthn,
        Method::Email => has_email,
        _ => false,
    };
    let method = preferred
        .as_deref()
        .and_then(Method::preferable)
        .filter(usable)
        .or_else(|| Method::preferable(&app.config.default_2fa_method).filter(usable))
        .or_else(|| Method::PREFERABLE.into_iter().find(|m| has(m) && usable(m)))
        .or_else(|| enabled.first().copied())
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    Ok(Facts {
        display_name: data.display_name.clone(),
        emails: data.emails.clone(),
        groups: data.groups.clone(),
        method,
        has_totp,
        has_webauthn,
        has_email,
        has_duo: false,
        recovery_codes_remaining,
    })
}

/// Records the preferred second-factor method (one the operator enabled).
pub async fn set_preferred_method(app: &App, caller: &Caller<'_>, method: &str) -> Result<()> {
    let data = caller.require(AuthLevel::OneFactor)?;
    let enabled = enabled_methods(&app.config);
    let Some(method) = Method::preferable(method).filter(|m| enabled.contains(m)) else {
        let names: Vec<&str> = enabled.iter().map(|m| m.as_str()).collect();
        return Err(Error::UnknownMethod(names.join(", ")));
    };
    app.services.storage.set_preferred_method(&data.username, method.as_str()).await?;
    Ok(())
}

/// Ends every session of the user, this one included.
pub async fn sign_out_everywhere(app: &App, caller: &mut Caller<'_>) -> Result<()> {
    let username = caller.require(AuthLevel::OneFactor)?.username.clone();
    let ended = app.services.sessions.end_all_for(&username, None).await?;
    crate::invalidation::user_changed(app, &username).await;
    caller.forget();
    tracing::info!(username = %username, "signed out everywhere");
    let detail = serde_json::json!({"sessions": ended});
    let event =
        Event { name: "sessions.revoked", outcome: Outcome::Success, actor: &username, subject: &username, detail };
    audit::record(app, caller.context(), event).await;
    Ok(())
}
