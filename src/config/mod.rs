//! Configuration: Authelia-compatible keys, loaded with figment from the embedded default or
//! YAML files (or directories of them, optionally filtered), then `AUTHELIA_*` and
//! `PORTCULLIS_*` environment variables, validated with a key path on every problem.

mod deprecated;
pub mod embedded;
pub mod filters;
pub mod keys;
mod load;
pub mod oidc;
pub mod schema;
pub mod types;
pub mod validate;

pub use load::{
    AUTHELIA_ENV_PREFIX, ENV_PREFIX, LoadError, LoadOptions, Loaded, Problem, load, load_access_control,
    load_storage_of_authelia,
};
pub use schema::Configuration;
