//! Portcullis: an authentication and authorization server for reverse proxies.
//!
//! The binary is a thin shell over this library; tests and benchmarks call it directly.

pub mod config;
