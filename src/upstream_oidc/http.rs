//! The HTTP client the OpenID Connect library calls: reqwest's, with redirects never
//! followed (a token endpoint that redirects is refused, not chased with the code and the
//! client secret), a timeout, and a cap on what a response may weigh.

use std::time::Duration;

use openidconnect::{HttpRequest, HttpResponse};

/// Largest response body read from the upstream (discovery, keys, tokens, userinfo).
const MAX_BODY_BYTES: usize = 1 << 20;

/// How long one request to the upstream may take.
const TIMEOUT: Duration = Duration::from_secs(10);

/// Why a request to the upstream failed.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct HttpError(String);

/// A client trusting the system's certificate authorities and `certificates_directory`'s.
pub fn client(certificates_directory: Option<&std::path::Path>) -> Result<reqwest::Client, String> {
    let anchors = crate::tls::trust_anchors(certificates_directory)?;
    let tls = crate::tls::client_config("upstream_oidc", &crate::config::schema::Tls::default(), &anchors)?;
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("upstream_oidc: cannot build the HTTP client: {e}"))
}

/// The client as the OpenID Connect library takes it. Its future is boxed and `Send`, so
/// the handlers' futures that await it stay `Send` (a closure here would not).
pub struct Http<'a>(pub &'a reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for Http<'_> {
    type Error = HttpError;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<HttpResponse, HttpError>> + Send + 'c>>;

    fn call(&'c self, request: HttpRequest) -> Self::Future {
        Box::pin(send(self.0, request))
    }
}

/// Sends `request` and reads the whole answer (at most [`MAX_BODY_BYTES`]).
pub async fn send(client: &reqwest::Client, request: HttpRequest) -> Result<HttpResponse, HttpError> {
    let (parts, body) = request.into_parts();
    let mut response = client
        .request(parts.method, parts.uri.to_string())
        .headers(parts.headers)
        .body(body)
        .send()
        .await
        .map_err(|e| HttpError(format!("request to {} failed: {e}", parts.uri)))?;
    let mut answer = http::Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = response.headers().clone();
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| HttpError(format!("reading {}: {e}", parts.uri)))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(HttpError(format!("the answer of {} is larger than {MAX_BODY_BYTES} bytes", parts.uri)));
        }
        body.extend_from_slice(&chunk);
    }
    answer.body(body).map_err(|e| HttpError(e.to_string()))
}
