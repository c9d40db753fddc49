//! Proving identity out of band: one-time codes sent by mail (session elevation, the
//! `email` second factor) and password reset links.

pub mod account_token;
pub mod codes;
pub mod rate_limit;
pub mod reset_token;
