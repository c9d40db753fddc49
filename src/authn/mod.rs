//! Who is this: user backends and passwords.

pub mod users_file;
