//! Portcullis: an authentication and authorization server for reverse proxies.
//!
//! The binary is a thin shell over this library; tests and benchmarks call it directly.
//! Data flows one way: request → authn → access control → decision → response.

pub mod access_control;
pub mod authelia_import;
pub mod authn;
pub mod authz;
pub mod cli;
pub mod cli_storage;
pub mod clock;
pub mod config;
pub mod flows;
pub mod handlers;
pub mod hex;
pub mod i18n;
pub mod identity;
pub mod invalidation;
pub mod logging;
pub mod notifier;
pub mod oidc;
pub mod openapi;
pub mod regulation;
pub mod reload;
pub mod second_factor;
pub mod server;
pub mod services;
pub mod session;
pub mod storage;
pub mod telemetry;
pub mod tls;
pub mod upstream_oidc;
