//! Target extraction for each authorization implementation from arbitrary proxy headers.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use portcullis::authz::Implementation;
use portcullis::authz::extract::extract;

const NAMES: &[&str] = &[
    "x-forwarded-method",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-uri",
    "x-original-method",
    "x-original-url",
    "host",
];

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut lines = text.split('\n');
    let rest = lines.next().unwrap_or("");
    let mut headers = HeaderMap::new();
    for (name, value) in NAMES.iter().zip(lines) {
        if let Ok(v) = HeaderValue::from_str(value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    for implementation in
        [Implementation::ForwardAuth, Implementation::AuthRequest, Implementation::ExtAuthz, Implementation::Legacy]
    {
        if let Ok(target) = extract(implementation, &headers, "GET", rest) {
            // Whatever is extracted is an absolute URL with a host and a valid method.
            assert!(target.url.host_str().is_some());
            assert!(!target.method.is_empty());
        }
    }
});
