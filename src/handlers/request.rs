//! A request as every handler receives it: parts, the bounded body, the peer, the path
//! relative to the base path; and what handlers read from it.

use std::net::IpAddr;

use bytes::Bytes;
use http::header;
use serde::de::DeserializeOwned;

use crate::flows::audit::Context;
use crate::flows::{Caller, Error};
use crate::server::App;

/// What a handler gets from the server.
pub struct Request<'a> {
    /// Method, URI and headers.
    pub parts: &'a http::request::Parts,
    /// The body (already bounded in size).
    pub body: Bytes,
    /// The connecting peer.
    pub remote: Option<IpAddr>,
    /// The path relative to the base path.
    pub path: &'a str,
    /// The request's ID (as in the access log and `X-Request-Id`).
    pub request_id: crate::server::RequestId,
}

impl Request<'_> {
    /// The host (and port, when given) the request was addressed to: `Host`, or the
    /// `:authority` of an HTTP/2 request.
    pub fn host(&self) -> &str {
        self.parts
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| self.parts.uri.authority().map(|a| a.as_str()))
            .unwrap_or_default()
    }

    /// All `Cookie` headers joined (HTTP/2 may split them).
    pub fn cookies(&self) -> Option<String> {
        let values: Vec<&str> =
            self.parts.headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()).collect();
        (!values.is_empty()).then(|| values.join("; "))
    }

    /// The body parsed as JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::InvalidRequest(if self.body.is_empty() {
                "a JSON body is required".to_string()
            } else {
                format!("invalid JSON body: {e}")
            })
        })
    }

    /// The body parsed as JSON; an empty body reads as the default.
    pub fn json_or_default<T: DeserializeOwned + Default>(&self) -> Result<T, Error> {
        if self.body.iter().all(u8::is_ascii_whitespace) { Ok(T::default()) } else { self.json() }
    }

    /// The last path segment (the `{id}` of parameter routes).
    pub fn last_segment(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or_default()
    }

    /// Path segment `index` (0 is the empty one before the first `/`), percent-decoded.
    pub fn segment(&self, index: usize) -> String {
        let raw = self.path.split('/').nth(index).unwrap_or_default();
        percent_encoding::percent_decode_str(raw).decode_utf8_lossy().into_owned()
    }

    /// The query parameters.
    pub fn query(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(self.parts.uri.query().unwrap_or_default().as_bytes()).into_owned().collect()
    }

    /// Where the request came from, as the audit trail records it.
    pub fn context(&self, app: &App) -> Context {
        let user_agent = self.parts.headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or_default();
        Context {
            ip: app.client_ip(self.remote, &self.parts.headers),
            user_agent: user_agent.to_string(),
            request_id: self.request_id,
        }
    }

    /// The request's caller: cookie domain, session and where it came from.
    /// An account API bearer token, when the request bears one, stands for the caller
    /// instead of the session cookie.
    pub async fn caller<'a>(&self, app: &'a App) -> Result<Caller<'a>, Error> {
        if crate::handlers::api::bears_account_token(app, self)
            && let Some(token) = crate::handlers::api::account_api::bearer(self)
        {
            return crate::flows::account_api::bearer_caller(app, self.host(), &token, self.context(app)).await;
        }
        Caller::open(app, self.host(), self.cookies().as_deref(), self.context(app)).await
    }
}
