//! Typed operations, shared by every adapter: the JSON API, the portal's pages, the
//! authorization endpoints (for Basic credentials), and later the admin console and the
//! seed APIs. An adapter decodes its request into typed inputs, opens the [`Caller`]
//! (cookie domain, session, client address), calls an operation, and encodes the typed
//! outcome or [`Error`]; no JSON, form or cookie text passes between adapters.
//!
//! - [`credentials`]: the one regulated credential check every secret goes through.
//! - [`login`]: by password or passkey. [`second_factor`]: TOTP, recovery, emailed code,
//!   security key. [`elevation`]: proving identity again before sensitive changes.
//! - [`password`]: reset by mailed link, change. [`account`]: facts and preferences.
//! - [`totp`], [`security_keys`]: managing the user's second factors.
//! - [`bootstrap`]: bootstrap tokens and the first administrator.
//! - [`api_tokens`]: personal API tokens, created, listed, revoked and verified.

pub mod account;
pub mod account_api;
pub mod admin;
pub mod api_tokens;
pub mod audit;
pub mod bootstrap;
mod caller;
pub mod credentials;
pub mod device_links;
pub mod elevation;
mod error;
pub mod login;
mod mailed_code;
mod notify;
pub mod oidc;
pub mod own_sessions;
pub mod passkey_state;
pub mod password;
pub mod sealed_cookie;
pub mod second_factor;
pub mod security_keys;
pub mod session_handoff;
pub mod totp;
pub mod upstream_oidc;

pub use caller::Caller;
pub use error::{Error, Factor, Pending, Result};
