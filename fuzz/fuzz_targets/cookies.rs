//! Finding the session ID in arbitrary `Cookie` headers.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use portcullis::config::Configuration;
use portcullis::session::CookieSettings;

fn settings() -> &'static CookieSettings {
    static SETTINGS: OnceLock<CookieSettings> = OnceLock::new();
    SETTINGS.get_or_init(|| {
        let yaml = "session:\n  cookies:\n    - domain: example.com\n      authelia_url: 'https://auth.example.com/'\n";
        let config: Configuration = serde_yaml::from_str(yaml).expect("fuzz session");
        CookieSettings::from_config(&config.session).remove(0)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(header) = std::str::from_utf8(data) else { return };
    if let Some(id) = settings().session_id(header) {
        // Only well-formed IDs come out, and they round-trip.
        assert!(portcullis::session::SessionId::parse(id.as_str()).is_some());
    }
    let _ = settings().covers(header);
});
