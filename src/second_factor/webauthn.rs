//! WebAuthn for security keys (second factor) and passkeys (passwordless login), one
//! relying party per cookie domain: the RP ID is the cookie domain and the allowed origin
//! is that domain's portal URL, so a credential registered on one domain is useless on
//! another and an assertion made for another origin is refused.
//!
//! Every credential is kept as the library's `Passkey` with user verification required,
//! stricter than a presence-only tap: a stolen key alone does not pass. Ceremony state is
//! serialized into the session (server-side) and taken out before it is checked, so each
//! challenge is answered at most once.

use std::collections::HashMap;

use serde_json::Value;
use webauthn_rs::prelude::{
    AuthenticationResult, CreationChallengeResponse, CredentialID, DiscoverableAuthentication, Passkey,
    PasskeyAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    RequestChallengeResponse, Url, Uuid, WebauthnError,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::config::Configuration;
use crate::config::schema::WebAuthn as WebAuthnConfig;

/// Why a ceremony failed.
#[derive(Debug, thiserror::Error)]
pub enum CeremonyError {
    /// The request came for a host under no configured cookie domain.
    #[error("no relying party is configured for this domain")]
    UnknownDomain,
    /// The browser's answer did not verify (wrong origin, challenge, signature, ...).
    #[error("the authenticator response was not accepted: {0}")]
    Rejected(WebauthnError),
    /// The counter went backwards: the authenticator may have been cloned.
    #[error("the authenticator's signature counter went backwards")]
    PossibleClone,
    /// Saved state could not be read back.
    #[error("ceremony state is invalid")]
    State,
}

impl From<WebauthnError> for CeremonyError {
    fn from(e: WebauthnError) -> Self {
        match e {
            WebauthnError::CredentialPossibleCompromise => Self::PossibleClone,
            other => Self::Rejected(other),
        }
    }
}

/// What a registration produced.
pub struct Registered {
    /// The credential to store.
    pub passkey: Passkey,
    /// Whether the authenticator made it discoverable (usable without a username).
    pub discoverable: bool,
    /// Attestation format the authenticator used.
    pub attestation_format: String,
}

/// Relying parties for every cookie domain.
pub struct WebAuthnService {
    config: WebAuthnConfig,
    parties: HashMap<String, Webauthn>,
}

impl WebAuthnService {
    /// One relying party per cookie domain of a validated configuration.
    pub fn new(config: &Configuration) -> Result<Self, String> {
        let mut parties = HashMap::new();
        for (i, cookie) in config.session.cookies.iter().enumerate() {
            let (Some(domain), Some(portal)) = (cookie.domain.as_ref(), cookie.authelia_url.as_ref()) else { continue };
            let domain = domain.to_ascii_lowercase();
            let mut origin: Url = portal.url().clone();
            origin.set_path("");
            let party = WebauthnBuilder::new(&domain, &origin)
                .map_err(|e| format!("session.cookies[{i}]: cannot be a WebAuthn relying party: {e}"))?
                .rp_name(&config.webauthn.display_name)
                .timeout(config.webauthn.timeout.get())
                .build()
                .map_err(|e| format!("session.cookies[{i}]: cannot be a WebAuthn relying party: {e}"))?;
            parties.insert(domain, party);
        }
        Ok(Self { config: config.webauthn.clone(), parties })
    }

    /// Whether security keys and passkeys are turned off.
    pub fn disabled(&self) -> bool {
        self.config.disable
    }

    /// Whether passwordless passkey login is on.
    pub fn passkey_login(&self) -> bool {
        !self.config.disable && self.config.enable_passkey_login
    }

    /// Whether a user-verified passkey login counts as two factors.
    pub fn passkey_counts_as_two_factors(&self) -> bool {
        self.config.experimental_enable_passkey_uv_two_factors
    }

    fn party(&self, domain: &str) -> Result<&Webauthn, CeremonyError> {
        self.parties.get(domain).ok_or(CeremonyError::UnknownDomain)
    }

    /// Starts registering a credential for `user_id`. `passkey` asks the authenticator for
    /// a discoverable credential (passwordless login); otherwise discoverability follows
    /// `webauthn.selection_criteria.discoverability`. Returns the options for the browser
    /// and the state to keep.
    pub fn start_registration(
        &self,
        domain: &str,
        user_id: Uuid,
        username: &str,
        display_name: &str,
        exclude: Vec<CredentialID>,
        passkey: bool,
    ) -> Result<(Value, String), CeremonyError> {
        let (challenge, state) = self.party(domain)?.start_passkey_registration(
            user_id,
            username,
            display_name,
            (!exclude.is_empty()).then_some(exclude),
        )?;
        let options = self.adjust_creation_options(challenge, passkey)?;
        Ok((options, serde_json::to_string(&state).map_err(|_| CeremonyError::State)?))
    }

    /// Applies the operator's selection criteria to the options the browser receives.
    /// The library always verifies user verification at the end; these settings only
    /// steer which authenticators and credentials the browser offers.
    fn adjust_creation_options(
        &self,
        challenge: CreationChallengeResponse,
        passkey: bool,
    ) -> Result<Value, CeremonyError> {
        let mut options = serde_json::to_value(&challenge).map_err(|_| CeremonyError::State)?;
        let criteria = &self.config.selection_criteria;
        let public_key = options.get_mut("publicKey").and_then(Value::as_object_mut).ok_or(CeremonyError::State)?;
        let resident = if passkey { "required" } else { criteria.discoverability.as_str() };
        let mut selection = serde_json::Map::new();
        if !criteria.attachment.is_empty() {
            selection.insert("authenticatorAttachment".into(), criteria.attachment.clone().into());
        }
        selection.insert("residentKey".into(), resident.into());
        selection.insert("requireResidentKey".into(), (resident == "required").into());
        selection.insert("userVerification".into(), "required".into());
        public_key.insert("authenticatorSelection".into(), Value::Object(selection));
        public_key.insert("attestation".into(), self.config.attestation_conveyance_preference.clone().into());
        Ok(options)
    }

    /// Finishes a registration started with `state`.
    pub fn finish_registration(
        &self,
        domain: &str,
        response: &RegisterPublicKeyCredential,
        state: &str,
        asked_discoverable: bool,
    ) -> Result<Registered, CeremonyError> {
        let state: PasskeyRegistration = serde_json::from_str(state).map_err(|_| CeremonyError::State)?;
        let passkey = self.party(domain)?.finish_passkey_registration(response, &state)?;
        let discoverable = response.extensions.cred_props.as_ref().and_then(|p| p.rk).unwrap_or(asked_discoverable);
        let attestation_format = serde_json::to_value(&passkey)
            .ok()
            .and_then(|v| v.pointer("/cred/attestation_format").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_default();
        Ok(Registered { passkey, discoverable, attestation_format })
    }

    /// Starts an assertion with the user's credentials (second factor).
    pub fn start_authentication(
        &self,
        domain: &str,
        credentials: &[Passkey],
    ) -> Result<(Value, String), CeremonyError> {
        let (challenge, state): (RequestChallengeResponse, PasskeyAuthentication) =
            self.party(domain)?.start_passkey_authentication(credentials)?;
        let options = serde_json::to_value(&challenge).map_err(|_| CeremonyError::State)?;
        Ok((options, serde_json::to_string(&state).map_err(|_| CeremonyError::State)?))
    }

    /// Finishes an assertion started with `state`.
    pub fn finish_authentication(
        &self,
        domain: &str,
        response: &PublicKeyCredential,
        state: &str,
    ) -> Result<AuthenticationResult, CeremonyError> {
        let state: PasskeyAuthentication = serde_json::from_str(state).map_err(|_| CeremonyError::State)?;
        Ok(self.party(domain)?.finish_passkey_authentication(response, &state)?)
    }

    /// Starts a passwordless login: no user is known yet, the authenticator offers its
    /// discoverable credentials (conditional UI / autofill).
    pub fn start_discoverable(&self, domain: &str) -> Result<(Value, String), CeremonyError> {
        let (challenge, state) = self.party(domain)?.start_discoverable_authentication()?;
        let options = serde_json::to_value(&challenge).map_err(|_| CeremonyError::State)?;
        Ok((options, serde_json::to_string(&state).map_err(|_| CeremonyError::State)?))
    }

    /// Verifies a passwordless login against the stored credential it claims.
    pub fn finish_discoverable(
        &self,
        domain: &str,
        response: &PublicKeyCredential,
        state: &str,
        credential: &Passkey,
    ) -> Result<AuthenticationResult, CeremonyError> {
        let state: DiscoverableAuthentication = serde_json::from_str(state).map_err(|_| CeremonyError::State)?;
        Ok(self.party(domain)?.finish_discoverable_authentication_v2(response, state, credential)?)
    }
}
