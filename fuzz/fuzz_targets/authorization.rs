//! `Authorization: Basic ...` parsing.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::authz::extract::basic_credentials;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else { return };
    if let Some((login, _password)) = basic_credentials(value) {
        assert!(!login.contains(':'), "the login ends at the first colon");
    }
});
