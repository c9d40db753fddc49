//! The gRPC `envoy.service.auth.v3.Authorization/Check` against the real binary, with a
//! tonic client sending what Envoy's `ext_authz` filter sends: anonymous, one factor, two
//! factors required, deny, Basic credentials, refused targets, the client's address from
//! `attributes.source`, the health service, a session store outage, and shutdown.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::config::core::v3::{self as core, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

const RULES: &str = "
access_control:
  default_policy: deny
  rules:
    - {domain: public.example.com, policy: bypass}
    - {domain: app.example.com, resources: ['^/admin'], subject: 'group:admins', policy: two_factor}
    - {domain: app.example.com, resources: ['^/admin'], policy: deny}
    - {domain: secure.example.com, policy: two_factor}
    - {domain: app.example.com, resources: ['^/internal'], networks: ['192.0.2.0/24'], policy: bypass}
    - {domain: app.example.com, resources: ['^/internal'], policy: deny}
    - {domain: app.example.com, policy: one_factor}
    - {domain: blocked.example.com, policy: deny}
";

/// The ForwardAuth endpoint (to compare with) and the gRPC one, Basic in `Authorization`.
const ENDPOINTS: &str = "  endpoints:\n    authz:\n      \
    forward-auth: {implementation: ForwardAuth, authn_strategies: [{name: HeaderAuthorization}, {name: CookieSession}]}\n      \
    ext-authz-grpc: {implementation: ExtAuthzGRPC, authn_strategies: [{name: HeaderAuthorization}, {name: CookieSession}]}\n";

const JOHN: &str = "john password";
const CLIENT: &str = "203.0.113.50";

fn users() -> String {
    format!(
        "users:\n  john:\n    displayname: John Doe\n    password: '{}'\n    email: john@example.com\n    groups: [admins, dev]\n  mary:\n    displayname: Mary\n    password: '{}'\n    groups: [dev]\n",
        argon2_hash(JOHN),
        argon2_hash("mary password")
    )
}

/// The server with `server_extra` under `server:` and `replace` applied to the YAML, and
/// the directory of its users file.
fn start(server_extra: &str, replace: &[(&str, String)]) -> (Server, tempfile::TempDir) {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users()).unwrap();
    let address = format!("  address: 'tcp://127.0.0.1:{port}/'\n");
    let mut yaml = config_yaml(port, dir.path(), RULES).replace(&address, &format!("{address}{server_extra}"));
    for (from, to) in replace {
        assert!(yaml.contains(from), "{from}");
        yaml = yaml.replacen(from, to, 1);
    }
    (Server::start(Some(&yaml), port, &[]), dir)
}

async fn channel(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}")).unwrap().connect().await.expect("gRPC channel")
}

async fn client(port: u16) -> AuthorizationClient<Channel> {
    AuthorizationClient::new(channel(port).await)
}

fn login(port: u16, user: &str, password: &str) -> String {
    let body = format!(r#"{{"username":"{user}","password":"{password}"}}"#);
    let r = request(port, "POST", "/api/firstfactor", &[], &body);
    assert_eq!(r.status, 200, "{}", r.body);
    r.header("set-cookie").unwrap().split(';').next().unwrap().to_string()
}

/// What Envoy sends for `method url` from `source`, with the request's `headers`.
fn check_request(method: &str, url: &str, headers: &[(&str, &str)], source: &str) -> CheckRequest {
    // Split by hand: a URL parser would resolve the path's dot segments.
    let (scheme, rest) = url.split_once("://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let mut map: HashMap<String, String> =
        headers.iter().map(|(k, v)| (k.to_ascii_lowercase(), v.to_string())).collect();
    map.insert(":authority".into(), host.into());
    map.insert(":method".into(), method.into());
    map.insert(":path".into(), path.into());
    map.insert(":scheme".into(), scheme.into());
    let http = HttpRequest {
        method: method.into(),
        scheme: scheme.into(),
        host: host.into(),
        path: path.into(),
        headers: map,
        protocol: "HTTP/1.1".into(),
        size: -1,
        ..Default::default()
    };
    let peer = Peer {
        address: Some(core::Address {
            address: Some(Address::SocketAddress(SocketAddress { address: source.into(), ..Default::default() })),
        }),
        ..Default::default()
    };
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(peer),
            request: Some(Request { time: None, http: Some(http) }),
            ..Default::default()
        }),
    }
}

/// A Check answer, flattened.
#[derive(Debug, PartialEq)]
enum Answer {
    /// OK: headers set, headers removed.
    Ok(Vec<(String, String)>, Vec<String>),
    /// DENIED: gRPC code, HTTP status, headers, body.
    Denied(i32, u16, HashMap<String, String>, String),
}

impl Answer {
    fn status(&self) -> u16 {
        match self {
            Answer::Ok(..) => 200,
            Answer::Denied(_, status, ..) => *status,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        match self {
            Answer::Ok(set, _) => set.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str()),
            Answer::Denied(_, _, headers, _) => headers.get(name).map(String::as_str),
        }
    }

    fn removed(&self) -> &[String] {
        match self {
            Answer::Ok(_, removed) => removed,
            Answer::Denied(..) => panic!("denied: {self:?}"),
        }
    }
}

/// A Check of `method url` with `headers` from the client address [`CLIENT`].
async fn ask(client: &mut AuthorizationClient<Channel>, method: &str, url: &str, headers: &[(&str, &str)]) -> Answer {
    check(client, check_request(method, url, headers, CLIENT)).await.expect("Check")
}

async fn check(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> Result<Answer, tonic::Status> {
    let response = client.check(request).await?.into_inner();
    let code = response.status.as_ref().map_or(-1, |s| s.code);
    let pairs = |headers: &[core::HeaderValueOption]| -> Vec<(String, String)> {
        headers.iter().map(|h| h.header.as_ref().unwrap()).map(|h| (h.key.clone(), h.value.clone())).collect()
    };
    Ok(match response.http_response {
        Some(HttpResponse::OkResponse(ok)) => {
            assert_eq!(code, 0, "OK response with status {code}");
            Answer::Ok(pairs(&ok.headers), ok.headers_to_remove)
        }
        Some(HttpResponse::DeniedResponse(d)) => {
            assert_ne!(code, 0, "denied response with status OK");
            let status = u16::try_from(d.status.unwrap().code).unwrap();
            Answer::Denied(code, status, pairs(&d.headers).into_iter().collect(), d.body)
        }
        other => panic!("unexpected http_response: {other:?}"),
    })
}

const UNAUTHENTICATED: i32 = 16;
const PERMISSION_DENIED: i32 = 7;

#[tokio::test]
async fn check_decides_as_the_http_endpoints() {
    let (server, _dir) = start(ENDPOINTS, &[]);
    let port = server.port;
    let mut c = client(port).await;
    let html = ("accept", "text/html,application/xhtml+xml");

    // Anonymous browser GET: 302 to the portal, as ForwardAuth says for the same target.
    let r = ask(&mut c, "GET", "https://app.example.com/page?x=1", &[html]).await;
    let Answer::Denied(code, 302, headers, body) = &r else { panic!("{r:?}") };
    assert_eq!(*code, UNAUTHENTICATED);
    let location = "https://auth.example.com/?rd=https%3A%2F%2Fapp.example.com%2Fpage%3Fx%3D1&rm=GET";
    assert_eq!(headers.get("location").map(String::as_str), Some(location));
    assert!(body.starts_with("302"), "{body}");
    let over_http = get(
        port,
        "/api/authz/forward-auth",
        &[
            ("X-Forwarded-Method", "GET"),
            ("X-Forwarded-Proto", "https"),
            ("X-Forwarded-Host", "app.example.com"),
            ("X-Forwarded-Uri", "/page?x=1"),
            ("Accept", html.1),
        ],
    );
    assert_eq!((over_http.status, over_http.header("location")), (302, Some(location)));

    let r = ask(&mut c, "POST", "https://app.example.com/form", &[html]).await;
    assert_eq!(r.status(), 303);
    assert!(r.header("location").unwrap().ends_with("&rm=POST"));
    let r = ask(&mut c, "GET", "https://app.example.com/api", &[html, ("x-requested-with", "XMLHttpRequest")]).await;
    assert_eq!((r.status(), r.header("location")), (401, Some(location.replace("page%3Fx%3D1", "api").as_str())));
    assert_eq!(
        ask(&mut c, "GET", "https://app.example.com/api", &[("accept", "application/json")]).await.status(),
        401
    );

    // A bypass rule: nobody, so every Remote-* is removed, a forged one too.
    let r = ask(&mut c, "GET", "https://public.example.com/", &[("remote-user", "admin")]).await;
    assert_eq!(
        r,
        Answer::Ok(vec![], ["remote-user", "remote-groups", "remote-name", "remote-email"].map(String::from).to_vec())
    );

    let r = ask(&mut c, "GET", "https://blocked.example.com/", &[html]).await;
    assert!(matches!(r, Answer::Denied(PERMISSION_DENIED, 403, ..)), "{r:?}");
    assert_eq!(ask(&mut c, "GET", "https://app.example.com/admin", &[html]).await.status(), 302, "might be an admin");

    // Logged in: the identity as overwrites; a forged Remote-User is overwritten and any
    // other client-sent Remote-* removed.
    let john = login(port, "john", JOHN);
    let forged = [("cookie", john.as_str()), html, ("remote-user", "admin"), ("remote-role", "root")];
    let r = ask(&mut c, "GET", "https://app.example.com/page", &forged).await;
    let Answer::Ok(set, removed) = &r else { panic!("{r:?}") };
    let expected = [
        ("remote-user", "john"),
        ("remote-groups", "admins,dev"),
        ("remote-name", "John Doe"),
        ("remote-email", "john@example.com"),
    ];
    assert_eq!(set, &expected.map(|(k, v)| (k.to_string(), v.to_string())).to_vec());
    assert_eq!(removed, &["remote-role".to_string()]);

    // One factor is not enough for two_factor rules.
    let r = ask(&mut c, "GET", "https://secure.example.com/", &[("cookie", &john), html]).await;
    assert_eq!(r.status(), 302);
    assert_eq!(r.header("location"), Some("https://auth.example.com/?rd=https%3A%2F%2Fsecure.example.com%2F&rm=GET"));
    let mary = login(port, "mary", "mary password");
    assert_eq!(ask(&mut c, "GET", "https://app.example.com/admin", &[("cookie", &mary), html]).await.status(), 403);
    // Mary has no email: Remote-Email is removed rather than sent empty.
    let r = ask(&mut c, "GET", "https://app.example.com/x", &[("cookie", &mary), ("remote-email", "ceo@example.com")])
        .await;
    assert_eq!(r.header("remote-user"), Some("mary"));
    assert_eq!(r.removed(), ["remote-email"]);

    // Basic credentials (the default strategies put them first).
    use base64::Engine;
    let basic = |secret: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(secret));
    let good = basic(&format!("john:{JOHN}"));
    let r = ask(&mut c, "GET", "https://app.example.com/api", &[("authorization", &good)]).await;
    assert_eq!(r.header("remote-user"), Some("john"));
    let r = ask(&mut c, "GET", "https://app.example.com/api", &[("authorization", &basic("john:wrong"))]).await;
    assert_eq!((r.status(), r.header("www-authenticate")), (401, Some("Basic realm=\"Authorization Required\"")));

    // Refused targets never allow.
    for (url, status) in [
        ("http://app.example.com/", 400),
        ("https://elsewhere.org/", 403),
        ("https://app.example.com/public/%2e%2e/admin", 400),
        ("https://app.example.com/a%5c..%5cadmin", 400),
    ] {
        let r = ask(&mut c, "GET", url, &[("cookie", &john)]).await;
        assert_eq!(r.status(), status, "{url}: {r:?}");
    }
    let mut bad_host = check_request("GET", "https://app.example.com/admin", &[], CLIENT);
    bad_host.attributes.as_mut().unwrap().request.as_mut().unwrap().http.as_mut().unwrap().host =
        "app.example.com:#".into();
    assert_eq!(check(&mut c, bad_host).await.unwrap().status(), 400);
    let no_attributes = check(&mut c, CheckRequest { attributes: None }).await.unwrap();
    assert!(matches!(no_attributes, Answer::Denied(PERMISSION_DENIED, 400, ..)), "{no_attributes:?}");
    // Forwarded headers in the request name no other target.
    let spoofed = [
        html,
        ("x-forwarded-host", "public.example.com"),
        ("x-forwarded-uri", "/"),
        ("x-original-url", "https://public.example.com/"),
    ];
    assert_eq!(ask(&mut c, "GET", "https://app.example.com/dashboard", &spoofed).await.status(), 302);

    // The gRPC endpoint has no HTTP route; HTTP still works on the same listener.
    assert_eq!(get(port, "/api/authz/ext-authz-grpc", &[]).status, 404);
    assert_eq!(get(port, "/api/health", &[]).status, 200);
    let log = server.wait_for_log("/envoy.service.auth.v3.Authorization/Check");
    let line = log.lines().find(|l| l.contains("/envoy.service.auth.v3.Authorization/Check")).unwrap();
    assert!(line.contains("status=302") && line.contains("grpc_status=0"), "the decision is in the access log: {line}");
}

#[tokio::test]
async fn the_client_address_is_envoys_source_only_from_a_trusted_caller() {
    // Loopback (this test's connection) is trusted by default: Envoy's source counts.
    let (trusting, _d1) = start(ENDPOINTS, &[]);
    let mut c = client(trusting.port).await;
    let internal = "https://app.example.com/internal";
    let from = |source: &str, xff: &'static str| {
        let headers: &[(&str, &str)] = if xff.is_empty() { &[] } else { &[("x-forwarded-for", xff)] };
        check_request("GET", internal, headers, source)
    };
    assert_eq!(check(&mut c, from("192.0.2.10", "")).await.unwrap().status(), 200);
    assert_eq!(check(&mut c, from("::ffff:192.0.2.10", "")).await.unwrap().status(), 200, "mapped IPv4");
    assert_eq!(check(&mut c, from(CLIENT, "")).await.unwrap().status(), 403);
    // The source is the client; what the client claims in X-Forwarded-For is not read.
    assert_eq!(check(&mut c, from(CLIENT, "192.0.2.10")).await.unwrap().status(), 403);
    // A source that is itself a trusted proxy: X-Forwarded-For from the right.
    assert_eq!(check(&mut c, from("127.0.0.1", "198.51.100.1, 192.0.2.10")).await.unwrap().status(), 200);

    // When the caller is not a trusted proxy, it is the client, whatever it names.
    let (strict, _d2) = start(&format!("{ENDPOINTS}  trusted_proxies: ['10.255.255.1']\n"), &[]);
    let mut c = client(strict.port).await;
    assert_eq!(check(&mut c, from("192.0.2.10", "192.0.2.10")).await.unwrap().status(), 403);
}

#[tokio::test]
async fn health_service_and_no_grpc_without_an_endpoint() {
    let (server, _dir) = start(ENDPOINTS, &[]);
    let mut health = HealthClient::new(channel(server.port).await);
    for service in ["", "envoy.service.auth.v3.Authorization"] {
        let r = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }
    let unknown = health.check(HealthCheckRequest { service: "other.Service".into() }).await.unwrap_err();
    assert_eq!(unknown.code(), tonic::Code::NotFound);

    // The default endpoints have no ExtAuthzGRPC: gRPC calls reach the HTTP application,
    // which does not know them.
    let (plain, _d2) = start("", &[]);
    let mut c = client(plain.port).await;
    let refused = check(&mut c, check_request("GET", "https://public.example.com/", &[], CLIENT)).await;
    assert!(refused.is_err(), "{refused:?}");
    let mut health = HealthClient::new(channel(plain.port).await);
    assert!(health.check(HealthCheckRequest { service: String::new() }).await.is_err());
}

#[tokio::test]
async fn a_session_store_outage_is_unavailable_and_bypass_still_allowed() {
    let mut redis = RedisServer::start();
    let session = format!(
        "session:\n  secret: 'a-session-secret-for-redis'\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s\n",
        redis.port
    );
    let (server, _dir) = start(ENDPOINTS, &[("session:\n", session)]);
    let mut c = client(server.port).await;
    let john = login(server.port, "john", JOHN);
    let with_cookie = || check_request("GET", "https://app.example.com/", &[("cookie", john.as_str())], CLIENT);
    assert_eq!(check(&mut c, with_cookie()).await.unwrap().header("remote-user"), Some("john"));

    redis.kill();
    // Once the local session cache has seen its connection close (decision 0031).
    server.wait_for_log("session cache saw its connection fail");
    let down = check(&mut c, with_cookie()).await.unwrap_err();
    assert_eq!(down.code(), tonic::Code::Unavailable, "{down:?}");
    // Without a session cookie the store is not asked: the usual refusal.
    let anonymous = check(&mut c, check_request("GET", "https://app.example.com/", &[], CLIENT)).await;
    assert_eq!(anonymous.unwrap().status(), 401);
    let bypass = check(&mut c, check_request("GET", "https://public.example.com/", &[], CLIENT)).await;
    assert_eq!(bypass.unwrap().status(), 200, "a bypass rule needs no store");

    // Back: the session is gone with the store's memory, and nobody is let in by mistake.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    let answer = loop {
        match check(&mut c, with_cookie()).await {
            Ok(answer) => break answer,
            Err(e) => assert!(Instant::now() < deadline, "no recovery: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(answer.status(), 401, "{answer:?}");
}

// Worker threads keep the client's connection answering (pings, GOAWAY) while the test
// thread waits for the process, as Envoy would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_health_watches_and_exits_promptly() {
    let (mut server, _dir) = start(ENDPOINTS, &[]);
    let mut health = HealthClient::new(channel(server.port).await);
    let mut watch = health.watch(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(watch.message().await.unwrap().unwrap().status, ServingStatus::Serving as i32);
    let asked = Instant::now();
    server.terminate();
    assert_eq!(watch.message().await.unwrap().unwrap().status, ServingStatus::NotServing as i32);
    assert!(watch.message().await.unwrap().is_none(), "the watch ends");
    let status = server.wait_exit(Duration::from_secs(15));
    assert!(status.success(), "{status}");
    assert!(asked.elapsed() < Duration::from_secs(15), "an open watch does not hold the 30 s drain");
}

#[tokio::test]
async fn checks_are_counted_in_the_authz_metrics() {
    let metrics_port = free_port();
    let telemetry = format!(
        "telemetry: {{metrics: {{enabled: true, address: 'tcp://127.0.0.1:{metrics_port}/metrics'}}}}\naccess_control:"
    );
    let (server, _dir) = start(ENDPOINTS, &[("access_control:", telemetry)]);
    let mut c = client(server.port).await;
    assert_eq!(ask(&mut c, "GET", "https://public.example.com/", &[]).await.status(), 200);
    for _ in 0..2 {
        let anonymous = ask(&mut c, "GET", "https://app.example.com/", &[("accept", "text/html")]).await;
        assert_eq!(anonymous.status(), 302, "{anonymous:?}");
    }
    let scraped = get(metrics_port, "/metrics", &[]);
    assert_eq!(scraped.status, 200, "{}", scraped.body);
    let lines: Vec<&str> = scraped.body.lines().collect();
    for expected in [
        "authelia_authz{code=\"200\"} 1",
        "authelia_authz{code=\"302\"} 2",
        "authelia_request{code=\"200\",method=\"POST\"} 1",
        "authelia_request{code=\"302\",method=\"POST\"} 2",
    ] {
        assert!(lines.contains(&expected), "{expected} in\n{}", scraped.body);
    }
}
