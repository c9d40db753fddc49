//! Sessions: who is logged in, on which cookie domain, at what authentication level.
//!
//! A session lives in a [`SessionStore`] (memory by default, Redis when `session.redis` is
//! configured) under a hash of its ID, so that reading the store does not yield usable
//! cookies. [`Sessions`] applies the cookie domains' rules: expiration, inactivity,
//! remember-me, and a new ID at every change of authentication level.

mod cookies;
mod data;
mod id;
mod manager;
pub mod memory;
pub mod redis;
mod store;
pub mod tracked_cache;

pub use cookies::CookieSettings;
pub use data::{AuthLevel, Ceremony, PENDING_LIFETIME_SECS, PendingTotp, PendingWebAuthn, SessionData};
pub use id::SessionId;
pub use manager::{LoadedSession, Sessions, expires_at};
pub use store::{SessionStore, Store, StoreError, UserSessions};
