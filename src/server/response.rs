//! Response builders shared by every handler: Authelia's JSON envelope, plain errors, and
//! the headers every response carries.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Response, StatusCode};
use http_body_util::Full;
use serde::Serialize;

/// The response type of every handler.
pub type HttpResponse = Response<Full<Bytes>>;

const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Room for the headers a response usually ends with (its own, the security headers, the
/// request ID; an allowed authorization adds four identity headers): growing from the
/// default capacity would allocate and rehash on the way.
const USUAL_HEADERS: usize = 12;

/// A response with `status`, `content_type` and `body`, with room for the usual headers.
fn with_body(status: StatusCode, content_type: HeaderValue, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    let mut headers = super::header_maps::take(USUAL_HEADERS);
    headers.insert(header::CONTENT_TYPE, content_type);
    *response.headers_mut() = headers;
    response
}

/// A response with `body` and `content_type`.
pub fn bytes(status: StatusCode, content_type: &'static str, body: impl Into<Bytes>) -> HttpResponse {
    with_body(status, HeaderValue::from_static(content_type), body.into())
}

/// `{"status":"OK"}`.
pub fn ok() -> HttpResponse {
    json_body(StatusCode::OK, Bytes::from_static(br#"{"status":"OK"}"#))
}

/// `{"status":"OK","data":<data>}`.
pub fn ok_data<T: Serialize>(data: &T) -> HttpResponse {
    #[derive(Serialize)]
    struct Envelope<'a, T> {
        status: &'static str,
        data: &'a T,
    }
    match serde_json::to_vec(&Envelope { status: "OK", data }) {
        Ok(body) => json_body(StatusCode::OK, body.into()),
        Err(e) => {
            tracing::error!(error = %e, "cannot serialize a response body");
            ko(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
        }
    }
}

/// `{"status":"KO","message":<message>}` with `status`.
pub fn ko(status: StatusCode, message: &str) -> HttpResponse {
    #[derive(Serialize)]
    struct Envelope<'a> {
        status: &'static str,
        message: &'a str,
    }
    let body = serde_json::to_vec(&Envelope { status: "KO", message })
        .unwrap_or_else(|_| br#"{"status":"KO","message":"Internal Server Error"}"#.to_vec());
    json_body(status, body.into())
}

fn json_body(status: StatusCode, body: Bytes) -> HttpResponse {
    with_body(status, JSON, body)
}

/// Default Content-Security-Policy for HTML pages: nothing from elsewhere, no framing.
pub const DEFAULT_CSP: &str = "default-src 'self'; script-src 'self' 'nonce-${NONCE}'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// Adds the headers every response carries, and for HTML the framing and content policies.
/// `csp` is the policy template for HTML (`${NONCE}` is replaced by `nonce` when given).
pub fn apply_security_headers(headers: &mut HeaderMap, csp: &str, nonce: Option<&str>) {
    // Constants: names and values are checked once at compile time, not per response.
    const NOSNIFF: HeaderValue = HeaderValue::from_static("nosniff");
    const REFERRER: HeaderValue = HeaderValue::from_static("strict-origin-when-cross-origin");
    const PERMISSIONS_POLICY: HeaderName = HeaderName::from_static("permissions-policy");
    const PERMISSIONS: HeaderValue =
        HeaderValue::from_static("accelerometer=(), camera=(), geolocation=(), microphone=(), payment=(), usb=()");
    const NO_STORE: HeaderValue = HeaderValue::from_static("no-store");
    const DENY: HeaderValue = HeaderValue::from_static("DENY");
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, NOSNIFF);
    headers.insert(header::REFERRER_POLICY, REFERRER);
    headers.insert(PERMISSIONS_POLICY, PERMISSIONS);
    headers.entry(header::CACHE_CONTROL).or_insert(NO_STORE);
    let is_html =
        headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|ct| ct.starts_with("text/html"));
    if is_html {
        headers.insert(header::X_FRAME_OPTIONS, DENY);
        // A page that needs a narrower policy of its own (a form posting to a client) set it.
        let policy = csp.replace("${NONCE}", nonce.unwrap_or(""));
        if !headers.contains_key(header::CONTENT_SECURITY_POLICY)
            && let Ok(value) = HeaderValue::from_str(&policy)
        {
            headers.insert(header::CONTENT_SECURITY_POLICY, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelopes() {
        let r = ko(StatusCode::NOT_FOUND, "Not \"Found\"");
        assert_eq!(r.status(), 404);
        assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json; charset=utf-8");
        let r = ok_data(&serde_json::json!({"a": 1}));
        assert_eq!(r.status(), 200);
    }

    #[test]
    fn html_gets_framing_and_csp() {
        let mut html = bytes(StatusCode::OK, "text/html; charset=utf-8", "<p>hi</p>");
        apply_security_headers(html.headers_mut(), DEFAULT_CSP, Some("abc"));
        let h = html.headers();
        assert_eq!(h[header::X_FRAME_OPTIONS], "DENY");
        assert!(h[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("'nonce-abc'"));
        assert_eq!(h[header::X_CONTENT_TYPE_OPTIONS], "nosniff");

        let mut json = ok();
        apply_security_headers(json.headers_mut(), DEFAULT_CSP, None);
        assert!(json.headers().get(header::CONTENT_SECURITY_POLICY).is_none());
        assert_eq!(json.headers()[header::CACHE_CONTROL], "no-store");
    }
}
