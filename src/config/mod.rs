//! Configuration: Authelia-compatible keys, loaded with figment from the embedded default or
//! YAML files, then `PORTCULLIS_*` environment variables, validated with a key path on
//! every problem.

pub mod embedded;
pub mod keys;
mod load;
pub mod oidc;
pub mod schema;
pub mod types;
pub mod validate;

pub use load::{ENV_PREFIX, LoadError, LoadOptions, Loaded, Problem, load};
pub use schema::Configuration;
