//! Who is this: user backends and passwords.

pub mod api_token;
pub mod api_token_cache;
pub mod basic_cache;
pub mod bootstrap;
pub mod hashing_pool;
pub mod ldap;
pub mod password;
pub mod password_policy;
pub mod users;
pub mod users_file;
