//! The gRPC adapter: Envoy's `envoy.service.auth.v3.Authorization/Check`, for the
//! `ext_authz` filter's `grpc_service` and Istio's CUSTOM action. It reads the original
//! request from the structured `attributes` instead of headers, has the same
//! [`check`](super::check::check) judge it, and answers with headers to set and remove
//! instead of a response to copy:
//!
//! - the target is `attributes.request.http`'s scheme, host (the `:authority` Envoy routed
//!   by), path (with query, as sent) and method, validated as every other target;
//!   `X-Forwarded-Host`, `-Uri` and `X-Original-URL` in the forwarded headers are the
//!   client's and are not read;
//! - the client's address: `attributes.source` (Envoy's downstream peer) stands in for the
//!   connection's peer only when the gRPC caller is a trusted proxy, then the usual
//!   X-Forwarded-For rules apply; an untrusted caller is itself the client;
//! - allowed: `OK` with the `Remote-*` identity headers as overwrites, and every other
//!   `Remote-*` header (client-sent, or an identity value that cannot be sent) in
//!   `headers_to_remove`. Envoy applies removals after additions, so a name is never in
//!   both;
//! - refused: `DENIED` (`PERMISSION_DENIED` or `UNAUTHENTICATED`) with the status, header
//!   and body the HTTP endpoints answer (302/303 + Location, 401, 403, 407, 400);
//! - a store that was down while judging a request that is not allowed: the gRPC status
//!   `UNAVAILABLE`, which Envoy turns into a refusal under `failure_mode_allow: false`
//!   rather than sending the user to a portal that cannot log them in.

use std::net::IpAddr;
use std::sync::Arc;

use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::config::core::v3::header_value_option::HeaderAppendAction;
use envoy_types::pb::envoy::config::core::v3::{HeaderValue, HeaderValueOption};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::HttpRequest;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::Authorization;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{CheckRequest, CheckResponse, DeniedHttpResponse, OkHttpResponse};
use envoy_types::pb::envoy::r#type::v3::HttpStatus;
use envoy_types::pb::google::rpc;
use http::{HeaderMap, HeaderName, StatusCode};

use super::check::{self, Denial, IDENTITY_HEADERS, Identity, Outcome};
use super::extract::{self, Target};
use crate::flows::audit::Context;
use crate::server::App;

/// The gRPC method Envoy calls.
pub const CHECK_PATH: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The gRPC service name, as health checks name it.
pub const SERVICE_NAME: &str = "envoy.service.auth.v3.Authorization";

/// Largest `CheckRequest` accepted: the original request's headers (Envoy's own limit is
/// 60 KiB by default) with room to spare. Bodies (`with_request_body`) are not read; a
/// request over the limit is refused with `RESOURCE_EXHAUSTED`, which Envoy denies.
pub const MAX_CHECK_REQUEST: usize = 256 * 1024;

/// The connection a gRPC call came in on, put in the call's extensions by the server.
#[derive(Clone, Debug, Default)]
pub struct Caller {
    /// The connection's peer (the proxy).
    pub peer: Option<IpAddr>,
    /// The call's request ID, as logged.
    pub request_id: crate::server::RequestId,
}

/// The HTTP status a check decided (200 when allowed), put in the response's extensions
/// for the access log.
#[derive(Clone, Copy, Debug)]
pub struct Verdict(pub u16);

/// The `Authorization` service of one `ExtAuthzGRPC` endpoint.
pub struct ExtAuthz {
    app: Arc<App>,
    /// Index into [`App::authz`].
    endpoint: usize,
}

impl ExtAuthz {
    /// The service for `app`'s endpoint number `endpoint`.
    pub fn new(app: Arc<App>, endpoint: usize) -> Self {
        Self { app, endpoint }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: tonic::Request<CheckRequest>,
    ) -> Result<tonic::Response<CheckResponse>, tonic::Status> {
        let caller = request.extensions().get::<Caller>().cloned().unwrap_or_default();
        let request = request.into_inner();
        let Some(endpoint) = self.app.authz.get(self.endpoint) else {
            return Err(tonic::Status::internal("no ExtAuthzGRPC endpoint"));
        };
        let original = match Original::read(&request) {
            Ok(original) => original,
            Err(why) => {
                tracing::warn!(endpoint = %endpoint.name, "bad authorization request: {why}");
                return Ok(respond(denied(&Denial {
                    status: StatusCode::BAD_REQUEST,
                    header: None,
                    body: "400 Bad Request: the original request's URL or method is missing, malformed or ambiguous\n",
                })));
            }
        };
        let user_agent = original.headers.get(http::header::USER_AGENT).and_then(|v| v.to_str().ok());
        let context = Context {
            ip: self.app.client_ip_behind(caller.peer, original.source, &original.headers),
            user_agent: user_agent.unwrap_or_default().to_string(),
            request_id: caller.request_id,
        };
        let outcome =
            check::check(&self.app, endpoint, &original.target, &original.headers, &context, &check::Asked::default())
                .await;
        answer(outcome, &original.headers).map(respond)
    }
}

/// The response, with the decided HTTP status in its extensions.
fn respond(answer: CheckResponse) -> tonic::Response<CheckResponse> {
    let status = match &answer.http_response {
        Some(HttpResponse::DeniedResponse(d)) => d.status.as_ref().and_then(|s| u16::try_from(s.code).ok()),
        _ => Some(200),
    };
    let mut response = tonic::Response::new(answer);
    response.extensions_mut().insert(Verdict(status.unwrap_or(403)));
    response
}

/// The original request, as Envoy describes it.
#[derive(Debug)]
pub struct Original {
    /// The target, validated.
    pub target: Target,
    /// Its headers (pseudo-headers and names or values HTTP cannot carry left out).
    pub headers: HeaderMap,
    /// Envoy's downstream peer, when it is an IP address (a Unix socket peer counts as
    /// this machine).
    pub source: Option<IpAddr>,
}

impl Original {
    /// Reads `request`; an error names what is missing or invalid.
    pub fn read(request: &CheckRequest) -> Result<Self, String> {
        let attributes = request.attributes.as_ref().ok_or("no attributes")?;
        let http = attributes.request.as_ref().and_then(|r| r.http.as_ref()).ok_or("no attributes.request.http")?;
        let target = extract::from_attributes(&http.scheme, &http.host, &http.path, &http.method)?;
        let source = attributes.source.as_ref().and_then(|peer| peer.address.as_ref()).and_then(|a| match &a.address {
            Some(Address::SocketAddress(socket)) => socket.address.parse::<IpAddr>().ok().map(|ip| ip.to_canonical()),
            Some(Address::Pipe(_)) => Some(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
            _ => None,
        });
        Ok(Self { target, headers: headers(http), source })
    }
}

/// The original request's headers: the raw list when Envoy sends one
/// (`encode_raw_headers`), otherwise the merged map.
fn headers(http: &HttpRequest) -> HeaderMap {
    let mut out = HeaderMap::new();
    let mut add = |name: &str, value: &[u8]| {
        if name.starts_with(':') {
            return;
        }
        if let (Ok(name), Ok(value)) = (HeaderName::from_bytes(name.as_bytes()), http::HeaderValue::from_bytes(value)) {
            out.append(name, value);
        }
    };
    match http.header_map.as_ref().filter(|m| !m.headers.is_empty()) {
        Some(raw) => {
            for h in &raw.headers {
                let value = if h.raw_value.is_empty() { h.value.as_bytes() } else { &h.raw_value };
                add(&h.key, value);
            }
        }
        None => {
            for (name, value) in &http.headers {
                add(name, value.as_bytes());
            }
        }
    }
    out
}

/// The `CheckResponse` for `outcome`; `headers` are the original request's (their
/// `Remote-*` names are removed when allowed).
pub fn answer(outcome: Outcome, headers: &HeaderMap) -> Result<CheckResponse, tonic::Status> {
    let judgement = match outcome {
        Outcome::Refused(refusal) => return Ok(denied(&refusal.denial())),
        Outcome::Judged(judgement) => judgement,
    };
    match (judgement.denial(), judgement.unavailable) {
        (Some(_), Some(unavailable)) => {
            Err(tonic::Status::unavailable(format!("{unavailable} cannot be read: the user cannot be identified")))
        }
        (Some(denial), None) => Ok(denied(&denial)),
        (None, _) => Ok(allowed(judgement.identity.as_ref(), headers)),
    }
}

fn status(code: tonic::Code) -> Option<rpc::Status> {
    Some(rpc::Status { code: code as i32, message: String::new(), details: Vec::new() })
}

fn overwrite(name: &str, value: String) -> HeaderValueOption {
    HeaderValueOption {
        header: Some(HeaderValue { key: name.to_string(), value, raw_value: Vec::new() }),
        // Envoy 1.40 drops an appended header the client had not sent, and its "append if
        // exists or add" acts as an overwrite: identity headers are plain overwrites (and
        // the deprecated `append` is left unset).
        append_action: HeaderAppendAction::OverwriteIfExistsOrAdd as i32,
        keep_empty_value: false,
        ..Default::default()
    }
}

/// `OK`: the identity's headers set, every other `Remote-*` removed.
fn allowed(identity: Option<&Identity>, request_headers: &HeaderMap) -> CheckResponse {
    let mut set = Vec::new();
    let mut remove: Vec<String> = Vec::new();
    let values = identity.map(Identity::header_values);
    for (i, name) in IDENTITY_HEADERS.into_iter().enumerate() {
        // Envoy drops empty values instead of sending them, which would leave a forged
        // header in place; a value HTTP cannot carry is left out, as over HTTP.
        match values.as_ref().map(|v| &v[i]) {
            Some(value) if !value.is_empty() && http::HeaderValue::from_str(value).is_ok() => {
                set.push(overwrite(name, value.clone()));
            }
            _ => remove.push(name.to_string()),
        }
    }
    for name in request_headers.keys() {
        let name = name.as_str();
        if name.starts_with("remote-") && !IDENTITY_HEADERS.contains(&name) {
            remove.push(name.to_string());
        }
    }
    CheckResponse {
        status: status(tonic::Code::Ok),
        http_response: Some(HttpResponse::OkResponse(OkHttpResponse {
            headers: set,
            headers_to_remove: remove,
            ..Default::default()
        })),
        dynamic_metadata: None,
    }
}

/// `DENIED` with the response the client gets.
fn denied(denial: &Denial) -> CheckResponse {
    let code = match denial.status {
        StatusCode::FORBIDDEN | StatusCode::BAD_REQUEST => tonic::Code::PermissionDenied,
        _ => tonic::Code::Unauthenticated,
    };
    let mut headers = vec![overwrite("content-type", "text/plain; charset=utf-8".to_string())];
    if let Some((name, value)) = &denial.header
        && http::HeaderValue::from_str(value).is_ok()
    {
        headers.push(overwrite(name, value.clone()));
    }
    CheckResponse {
        status: status(code),
        http_response: Some(HttpResponse::DeniedResponse(DeniedHttpResponse {
            status: Some(HttpStatus { code: i32::from(denial.status.as_u16()) }),
            headers,
            body: denial.body.to_string(),
        })),
        dynamic_metadata: None,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use envoy_types::pb::envoy::config::core::v3::{self as core, SocketAddress};
    use envoy_types::pb::envoy::service::auth::v3::AttributeContext;
    use envoy_types::pb::envoy::service::auth::v3::attribute_context::{Peer, Request};

    use super::*;
    use crate::authz::Strategy;
    use crate::authz::check::{Judgement, Refusal, Unavailable};
    use crate::authz::decision::{LoginStatus, Reply};

    fn request(
        scheme: &str,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        source: Option<Address>,
    ) -> CheckRequest {
        let http = HttpRequest {
            method: "GET".into(),
            scheme: scheme.into(),
            host: host.into(),
            path: path.into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
            ..Default::default()
        };
        CheckRequest {
            attributes: Some(AttributeContext {
                source: source
                    .map(|a| Peer { address: Some(core::Address { address: Some(a) }), ..Default::default() }),
                request: Some(Request { time: None, http: Some(http) }),
                ..Default::default()
            }),
        }
    }

    fn socket(ip: &str) -> Address {
        Address::SocketAddress(SocketAddress { address: ip.into(), ..Default::default() })
    }

    #[test]
    fn the_target_comes_from_the_attributes_not_the_forwarded_headers() {
        let forged = [
            (":authority", "app.example.com"),
            ("x-forwarded-host", "public.example.com"),
            ("x-forwarded-uri", "/public"),
            ("x-original-url", "https://public.example.com/"),
            ("cookie", "authelia_session=abc"),
        ];
        let r = request("https", "app.example.com:8443", "/admin/../x?q=1", &forged, Some(socket("192.0.2.7")));
        let original = Original::read(&r).unwrap();
        assert_eq!(original.target.url.as_str(), "https://app.example.com:8443/x?q=1");
        assert_eq!(original.target.path, "/admin/../x", "the path as sent is what the rules judge");
        assert_eq!(original.target.method, "GET");
        assert_eq!(original.source, Some("192.0.2.7".parse().unwrap()));
        assert!(original.headers.get(":authority").is_none());
        assert_eq!(original.headers.get("cookie").unwrap(), "authelia_session=abc");

        let pipe = request("https", "app.example.com", "/", &[], Some(Address::Pipe(core::Pipe::default())));
        assert_eq!(Original::read(&pipe).unwrap().source, Some("127.0.0.1".parse().unwrap()));
        let v6 = request("https", "app.example.com", "/", &[], Some(socket("::ffff:192.0.2.9")));
        assert_eq!(Original::read(&v6).unwrap().source, Some("192.0.2.9".parse().unwrap()));
        assert_eq!(Original::read(&request("https", "app.example.com", "/", &[], None)).unwrap().source, None);
    }

    #[test]
    fn raw_headers_keep_repeated_values() {
        let mut r = request("https", "app.example.com", "/", &[], None);
        let http = r.attributes.as_mut().unwrap().request.as_mut().unwrap().http.as_mut().unwrap();
        let raw = |key: &str, value: &str| core::HeaderValue {
            key: key.into(),
            value: String::new(),
            raw_value: value.as_bytes().to_vec(),
        };
        http.header_map = Some(core::HeaderMap {
            headers: vec![
                raw("x-forwarded-for", "198.51.100.1"),
                raw("x-forwarded-for", "127.0.0.1"),
                raw("bad name", "x"),
            ],
        });
        let original = Original::read(&r).unwrap();
        let xff: Vec<_> = original.headers.get_all("x-forwarded-for").iter().collect();
        assert_eq!(xff, ["198.51.100.1", "127.0.0.1"]);
        assert_eq!(original.headers.len(), 2, "a name HTTP cannot carry is left out");
    }

    #[test]
    fn targets_are_validated_as_over_http() {
        for (scheme, host, path) in [
            ("https", "app.example.com:#", "/"),
            ("https", "app.example.com:@evil", "/"),
            ("https", "", "/"),
            ("", "app.example.com", "/"),
            ("https", "app.example.com", "/a#b"),
        ] {
            assert!(Original::read(&request(scheme, host, path, &[], None)).is_err(), "{scheme} {host} {path}");
        }
        let mut r = request("https", "app.example.com", "/", &[], None);
        r.attributes.as_mut().unwrap().request.as_mut().unwrap().http.as_mut().unwrap().method = "get".into();
        assert!(Original::read(&r).is_err(), "methods are upper case");
        assert!(Original::read(&CheckRequest { attributes: None }).is_err());
        let empty_path = Original::read(&request("https", "app.example.com", "", &[], None)).unwrap();
        assert_eq!(empty_path.target.path, "/");
    }

    fn judged(reply: Reply, identity: Option<Identity>, unavailable: Option<Unavailable>) -> Outcome {
        let login_url = matches!(reply, Reply::Login(_)).then(|| "https://auth.example.com/?rd=x".to_string());
        Outcome::Judged(Judgement { reply, identity, login_url, unavailable })
    }

    fn john() -> Identity {
        john_named("John Doe")
    }

    fn john_named(display_name: &str) -> Identity {
        Identity::of_user(std::sync::Arc::new(crate::authn::users_file::User {
            username: "john".into(),
            display_name: display_name.into(),
            password_hash: String::new(),
            emails: Vec::new(),
            groups: vec!["admins".into(), "dev".into()],
            disabled: false,
        }))
    }

    fn ok_parts(response: &CheckResponse) -> (Vec<(String, String)>, Vec<String>) {
        assert_eq!(response.status.as_ref().unwrap().code, 0);
        let Some(HttpResponse::OkResponse(ok)) = &response.http_response else { panic!("{response:?}") };
        for h in &ok.headers {
            assert_eq!(h.append_action, HeaderAppendAction::OverwriteIfExistsOrAdd as i32);
        }
        let set = ok.headers.iter().map(|h| h.header.as_ref().unwrap()).map(|h| (h.key.clone(), h.value.clone()));
        (set.collect(), ok.headers_to_remove.clone())
    }

    fn denied_parts(response: &CheckResponse) -> (i32, u16, Vec<(String, String)>) {
        let Some(HttpResponse::DeniedResponse(d)) = &response.http_response else { panic!("{response:?}") };
        let headers = d.headers.iter().map(|h| h.header.as_ref().unwrap()).map(|h| (h.key.clone(), h.value.clone()));
        let status = u16::try_from(d.status.as_ref().unwrap().code).unwrap();
        (response.status.as_ref().unwrap().code, status, headers.collect())
    }

    #[test]
    fn allowed_sets_the_identity_and_removes_every_other_remote_header() {
        let mut client = HeaderMap::new();
        client.insert("remote-user", "admin".parse().unwrap());
        client.insert("remote-admin", "yes".parse().unwrap());
        client.insert("accept", "*/*".parse().unwrap());
        let response = answer(judged(Reply::Allow, Some(john()), None), &client).unwrap();
        let (set, remove) = ok_parts(&response);
        assert_eq!(
            set,
            [
                ("remote-user".to_string(), "john".to_string()),
                ("remote-groups".into(), "admins,dev".into()),
                ("remote-name".into(), "John Doe".into())
            ]
        );
        assert_eq!(remove, ["remote-email", "remote-admin"], "the empty email is removed, not sent empty");
        assert!(set.iter().all(|(name, _)| !remove.contains(name)), "Envoy removes a name in both lists");

        // Nobody (a bypass rule): nothing set, all four removed.
        let (set, remove) = ok_parts(&answer(judged(Reply::Allow, None, None), &client).unwrap());
        assert!(set.is_empty());
        assert_eq!(remove, ["remote-user", "remote-groups", "remote-name", "remote-email", "remote-admin"]);

        // A value HTTP cannot carry is removed rather than sent.
        let odd = john_named("John\nDoe");
        let (set, remove) = ok_parts(&answer(judged(Reply::Allow, Some(odd), None), &HeaderMap::new()).unwrap());
        assert!(!set.iter().any(|(n, _)| n == "remote-name"));
        assert!(remove.contains(&"remote-name".to_string()));
        // A bypass does not need the store: allowed even while it is down.
        let (_, remove) =
            ok_parts(&answer(judged(Reply::Allow, None, Some(Unavailable::SessionStore)), &client).unwrap());
        assert_eq!(remove.len(), 5);
    }

    #[test]
    fn refusals_carry_the_http_endpoints_response() {
        let h = HeaderMap::new();
        let location = ("location".to_string(), "https://auth.example.com/?rd=x".to_string());
        let content_type = ("content-type".to_string(), "text/plain; charset=utf-8".to_string());
        let cases = [
            (Reply::Login(LoginStatus::Found), 16, 302, Some(location.clone())),
            (Reply::Login(LoginStatus::SeeOther), 16, 303, Some(location.clone())),
            (Reply::Login(LoginStatus::Unauthorized), 16, 401, Some(location)),
            (Reply::Forbidden, 7, 403, None),
            (
                Reply::Challenge(Strategy::HeaderAuthorization),
                16,
                401,
                Some(("www-authenticate".to_string(), "Basic realm=\"Authorization Required\"".to_string())),
            ),
            (
                Reply::Challenge(Strategy::HeaderProxyAuthorization),
                16,
                407,
                Some(("proxy-authenticate".to_string(), "Basic realm=\"Authorization Required\"".to_string())),
            ),
        ];
        for (reply, code, http_status, header) in cases {
            let (c, s, headers) = denied_parts(&answer(judged(reply, None, None), &h).unwrap());
            let mut expected = vec![content_type.clone()];
            expected.extend(header);
            assert_eq!((c, s, headers), (code, http_status, expected), "{reply:?}");
        }
        let (c, s, _) = denied_parts(&answer(Outcome::Refused(Refusal::AmbiguousPath), &h).unwrap());
        assert_eq!((c, s), (7, 400));
        let (c, s, _) = denied_parts(&answer(Outcome::Refused(Refusal::NoCookieDomain), &h).unwrap());
        assert_eq!((c, s), (7, 403));
    }

    #[test]
    fn a_store_down_is_unavailable_unless_allowed() {
        let h = HeaderMap::new();
        for unavailable in [Unavailable::SessionStore, Unavailable::Storage] {
            for reply in [Reply::Login(LoginStatus::Found), Reply::Challenge(Strategy::HeaderAuthorization)] {
                let status = answer(judged(reply, None, Some(unavailable)), &h).unwrap_err();
                assert_eq!(status.code(), tonic::Code::Unavailable, "{reply:?}");
            }
        }
    }
}
