//! HTTP handlers: thin adapters from requests to services and back.

pub mod admin;
pub mod api;
pub mod authz;
pub mod oidc;
pub mod origin;
pub mod portal;
mod request;
pub mod ws;

pub use request::Request;
