//! Configuration text: YAML into the schema, then validation. Nothing may panic; invalid
//! input must come back as errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use portcullis::config::Configuration;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(config) = serde_yaml::from_str::<Configuration>(text) {
        let _ = portcullis::config::validate::validate(&config);
        let _ = portcullis::access_control::AccessControl::compile(&config);
    }
});
