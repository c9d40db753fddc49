//! Telemetry against the real binary: `/metrics` scraped and read with a Prometheus text
//! parser before and after known traffic; OTLP receivers (gRPC and HTTP/protobuf) taking
//! the spans of a forward-auth request that came with the proxy's `traceparent`; and
//! `/api/health/ready` following Redis down and back.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::RedisServer;
use common::*;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::trace::v1::Span;

fn users_yaml() -> String {
    let hash = argon2_hash("correct horse");
    format!(
        "users:\n  john:\n    displayname: John\n    password: '{hash}'\n    email: john@example.com\n    groups: [dev]\n  \
         mallory:\n    displayname: Mallory\n    password: '{hash}'\n    email: mallory@example.com\n"
    )
}

/// Starts the binary with `extra` YAML and a users file; returns it and its directory.
fn start(extra: &str, env: &[(&str, &str)]) -> Server {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let yaml = config_yaml(port, dir.path(), extra);
    let server = Server::start(Some(&yaml), port, env);
    // The users file lives in `dir`, which must outlive the server.
    std::mem::forget(dir);
    server
}

fn login(port: u16, username: &str, password: &str) -> Response {
    let body = format!(r#"{{"username":"{username}","password":"{password}"}}"#);
    request(port, "POST", "/api/firstfactor", &[], &body)
}

fn cookie_of(r: &Response) -> String {
    r.header("set-cookie").expect("set-cookie").split(';').next().unwrap().to_string()
}

fn forward_auth(port: u16, extra: &[(&str, &str)]) -> Response {
    let mut headers = vec![
        ("X-Forwarded-Method", "GET"),
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "app.example.com"),
        ("X-Forwarded-Uri", "/some/page?x=1"),
    ];
    headers.extend_from_slice(extra);
    get(port, "/api/authz/forward-auth", &headers)
}

// ---------------------------------------------------------------- metrics

/// One scrape, parsed by `prometheus-parse`: every sample by name and sorted labels.
struct Scrape {
    samples: Vec<prometheus_parse::Sample>,
    types: HashMap<String, String>,
}

fn scrape(port: u16) -> Scrape {
    let r = request(port, "GET", "/metrics", &[("Host", "127.0.0.1")], "");
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    let types = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.to_string()))
        .collect();
    let lines = r.body.lines().map(|l| Ok(l.to_string()));
    let parsed = prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format");
    Scrape { samples: parsed.samples, types }
}

impl Scrape {
    /// The value of `metric` with exactly `labels` (0 when absent).
    fn value(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| {
                let mut found: Vec<(&str, &str)> = s.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                found.sort();
                let mut want = labels.to_vec();
                want.sort();
                found == want
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
                prometheus_parse::Value::Summary(_) => 0.0,
            })
            .sum()
    }

    /// Observations of the histogram `metric` across all label values whose labels
    /// include `labels` (its `+Inf` bucket).
    fn observations(&self, metric: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.metric == metric)
            .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.iter().find(|b| b.less_than.is_infinite()).map_or(0.0, |b| b.count)
                }
                _ => 0.0,
            })
            .sum()
    }
}

#[test]
fn metrics_move_by_exactly_the_traffic_sent() {
    let metrics_port = free_port();
    let server = start(
        &format!(
            "access_control: {{default_policy: one_factor}}\n\
             regulation: {{max_retries: 2, find_time: 2m, ban_time: 5m}}\n\
             telemetry:\n  metrics:\n    enabled: true\n    address: 'tcp://127.0.0.1:{metrics_port}/metrics'\n"
        ),
        &[],
    );
    let port = server.port;
    let before = scrape(metrics_port);
    assert_eq!(before.types.get("authelia_request").map(String::as_str), Some("counter"));
    assert_eq!(before.types.get("authelia_request_duration").map(String::as_str), Some("histogram"));
    assert!(before.samples.iter().all(|s| !s.metric.starts_with("authelia_") || !s.metric.ends_with("_total")));
    assert_eq!(
        before
            .value("portcullis_build_info", &[("version", env!("CARGO_PKG_VERSION")), ("authelia_compatible", "true")]),
        1.0
    );

    // Known traffic; every answer tallied by (code, method) and authz answers by code.
    let mut requests: HashMap<(u16, &str), f64> = HashMap::new();
    let mut authz: HashMap<u16, f64> = HashMap::new();
    let mut note = |r: &Response, method: &'static str, is_authz: bool| {
        *requests.entry((r.status, method)).or_default() += 1.0;
        if is_authz {
            *authz.entry(r.status).or_default() += 1.0;
        }
    };
    for _ in 0..5 {
        let r = forward_auth(port, &[]);
        note(&r, "GET", true);
    }
    let ok = login(port, "john", "correct horse");
    assert_eq!(ok.status, 200, "{}", ok.body);
    note(&ok, "POST", false);
    let cookie = cookie_of(&ok);
    let ok = login(port, "john", "correct horse");
    note(&ok, "POST", false);
    let bad = login(port, "john", "wrong");
    assert_eq!(bad.status, 401);
    note(&bad, "POST", false);
    for _ in 0..2 {
        let r = login(port, "mallory", "wrong");
        assert_eq!(r.status, 401);
        note(&r, "POST", false);
    }
    let banned = login(port, "mallory", "correct horse");
    assert_ne!(banned.status, 200, "mallory is banned after two failures");
    note(&banned, "POST", false);
    for _ in 0..3 {
        let r = forward_auth(port, &[("Cookie", &cookie)]);
        assert_eq!(r.status, 200, "{}", r.body);
        note(&r, "GET", true);
    }
    let r = get(port, "/api/health", &[]);
    note(&r, "GET", false);
    let r = get(port, "/api/health/ready", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    note(&r, "GET", false);
    let r = request(port, "PROPFIND", "/api/health", &[], "");
    assert_eq!(r.status, 405);
    note(&r, "other", false);

    let after = scrape(metrics_port);
    let delta = |metric: &str, labels: &[(&str, &str)]| after.value(metric, labels) - before.value(metric, labels);
    for ((code, method), n) in &requests {
        let labels = [("code", code.to_string()), ("method", method.to_string())];
        let labels: Vec<(&str, &str)> = labels.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(delta("authelia_request", &labels), *n, "authelia_request{labels:?}");
        let observed = after.observations("authelia_request_duration", &labels)
            - before.observations("authelia_request_duration", &labels);
        assert_eq!(observed, *n, "authelia_request_duration{labels:?}");
    }
    let sent: f64 = requests.values().sum();
    let counted: f64 = after
        .samples
        .iter()
        .filter(|s| s.metric == "authelia_request")
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v) => v,
            _ => 0.0,
        })
        .sum::<f64>()
        - before
            .samples
            .iter()
            .filter(|s| s.metric == "authelia_request")
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v) => v,
                _ => 0.0,
            })
            .sum::<f64>();
    assert_eq!(counted, sent, "nothing else was counted (the scrapes are on their own listener)");
    for (code, n) in &authz {
        assert_eq!(delta("authelia_authz", &[("code", &code.to_string())]), *n, "authelia_authz code {code}");
    }
    assert_eq!(delta("authelia_authn", &[("success", "true"), ("banned", "false")]), 2.0);
    assert_eq!(delta("authelia_authn", &[("success", "false"), ("banned", "false")]), 3.0);
    assert_eq!(delta("authelia_authn", &[("success", "false"), ("banned", "true")]), 1.0);
    assert_eq!(delta("portcullis_regulation_banned_total", &[("factor", "password")]), 1.0);
    let authn_durations =
        after.observations("authelia_authn_duration", &[]) - before.observations("authelia_authn_duration", &[]);
    assert_eq!(authn_durations, 6.0);
    assert!(after.observations("portcullis_session_store_duration_seconds", &[("operation", "load")]) >= 3.0);
    assert!(after.observations("portcullis_session_store_duration_seconds", &[("operation", "save")]) >= 2.0);
    assert!(
        after.observations("portcullis_storage_query_duration_seconds", &[("outcome", "ok")])
            > before.observations("portcullis_storage_query_duration_seconds", &[("outcome", "ok")]),
        "logins write the authentication log"
    );
    assert!(after.observations("portcullis_hashing_wait_seconds", &[]) >= 5.0, "five hashed attempts");
    assert_eq!(after.value("portcullis_hashing_queue_depth", &[]), 0.0);
    assert_eq!(after.value("portcullis_hashing_in_progress", &[]), 0.0);
    assert_eq!(after.value("portcullis_sessions_active", &[]), 2.0, "two logins, two sessions");
    assert!(after.value("process_resident_memory_bytes", &[]) > 0.0);
    // No usernames, paths or addresses in any label.
    for s in &after.samples {
        for value in s.labels.values() {
            for secret in ["john", "mallory", "/api", "127.0.0.1", "app.example.com"] {
                assert!(!value.contains(secret), "{} has label value {value}", s.metric);
            }
        }
    }

    // Every metric the example dashboard charts exists.
    let dashboard = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/grafana/portcullis.json"))
        .expect("the example dashboard");
    let charted = regex::Regex::new(r"\b(?:authelia|portcullis|process)_[a-z_]+").unwrap();
    let mut names: Vec<&str> = charted.find_iter(&dashboard).map(|m| m.as_str()).collect();
    names.sort();
    names.dedup();
    assert!(names.len() > 10, "{names:?}");
    for name in names {
        let family = ["_bucket", "_sum", "_count"].iter().fold(name, |n, suffix| n.strip_suffix(suffix).unwrap_or(n));
        // Families with labels appear at their first sample; no second factor was used here.
        if family != "authelia_authn_second_factor" {
            assert!(after.types.contains_key(family), "the dashboard charts {name}, which is not served");
        }
    }

    // Only GET and HEAD on the metrics path.
    assert_eq!(request(metrics_port, "GET", "/other", &[], "").status, 404);
    assert_eq!(request(metrics_port, "POST", "/metrics", &[], "x").status, 405);
    drop(server);
}

#[test]
fn metrics_are_off_unless_enabled() {
    let metrics_port = free_port();
    let server = start(&format!("telemetry: {{metrics: {{address: 'tcp://127.0.0.1:{metrics_port}/metrics'}}}}"), &[]);
    assert!(std::net::TcpStream::connect(("127.0.0.1", metrics_port)).is_err(), "no metrics listener");
    assert_eq!(server.get("/metrics").status, 404, "and nothing on the server's own listener");
}

// ---------------------------------------------------------------- traces

/// Spans an OTLP receiver took.
#[derive(Clone, Default)]
struct Received {
    spans: Arc<Mutex<Vec<Span>>>,
    services: Arc<Mutex<Vec<String>>>,
}

impl Received {
    fn take(&self, request: ExportTraceServiceRequest) {
        for resource in request.resource_spans {
            let name = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .and_then(|a| a.value.as_ref())
                .map(|v| format!("{:?}", v.value))
                .unwrap_or_default();
            self.services.lock().unwrap().push(name);
            for scope in resource.scope_spans {
                self.spans.lock().unwrap().extend(scope.spans);
            }
        }
    }

    /// Waits until the spans of `trace_id` include one named `name`, then returns them all.
    fn trace(&self, trace_id: &[u8], name: &str) -> Vec<Span> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let spans: Vec<Span> =
                self.spans.lock().unwrap().iter().filter(|s| s.trace_id == trace_id).cloned().collect();
            if spans.iter().any(|s| s.name == name) {
                // The children end before the request span, so they were exported with it
                // or before it.
                return spans;
            }
            assert!(Instant::now() < deadline, "no span {name} for the trace; got {spans:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.take(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

/// A gRPC OTLP collector on a free port, on its own runtime.
fn grpc_receiver(runtime: &tokio::runtime::Runtime) -> (Received, u16) {
    let received = Received::default();
    let port = free_port();
    let service = TraceServiceServer::new(received.clone());
    runtime.spawn(async move {
        let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        tonic::transport::Server::builder().add_service(service).serve(address).await.unwrap();
    });
    wait_listening(port);
    (received, port)
}

/// An HTTP/protobuf OTLP collector (`POST /v1/traces`) on a free port.
fn http_receiver(runtime: &tokio::runtime::Runtime) -> (Received, u16) {
    use http_body_util::BodyExt;
    use prost::Message;
    let received = Received::default();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let sink = received.clone();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let sink = sink.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    let sink = sink.clone();
                    async move {
                        assert_eq!(request.uri().path(), "/v1/traces");
                        assert_eq!(request.headers()["x-api-key"], "k3y");
                        assert_eq!(request.headers()["content-type"], "application/x-protobuf");
                        let body = request.into_body().collect().await.unwrap().to_bytes();
                        sink.take(ExportTraceServiceRequest::decode(body).expect("OTLP protobuf"));
                        let reply = ExportTraceServiceResponse { partial_success: None }.encode_to_vec();
                        Ok::<_, std::convert::Infallible>(
                            http::Response::builder()
                                .header("content-type", "application/x-protobuf")
                                .body(http_body_util::Full::new(bytes::Bytes::from(reply)))
                                .unwrap(),
                        )
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (received, port)
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "receiver did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PROXY_SPAN: &str = "00f067aa0ba902b7";

fn hex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// Logs in, then sends one forward-auth request carrying the proxy's `traceparent`, and
/// checks the spans `received` got for it.
fn one_traced_forward_auth(server: &Server, received: &Received, service: &str) {
    let ok = login(server.port, "john", "correct horse");
    assert_eq!(ok.status, 200, "{}", ok.body);
    let cookie = cookie_of(&ok);
    let traceparent = format!("00-{TRACE_ID}-{PROXY_SPAN}-01");
    let r = forward_auth(server.port, &[("Cookie", &cookie), ("traceparent", &traceparent)]);
    assert_eq!(r.status, 200, "{}", r.body);

    let spans = received.trace(&hex(TRACE_ID), "GET /api/authz/forward-auth");
    let request = spans.iter().find(|s| s.name == "GET /api/authz/forward-auth").unwrap();
    assert_eq!(request.parent_span_id, hex(PROXY_SPAN), "the request span is the child of the proxy's");
    assert_eq!(request.kind, 2, "SERVER");
    let attribute = |span: &Span, key: &str| {
        span.attributes.iter().find(|a| a.key == key).and_then(|a| a.value.as_ref()).map(|v| format!("{:?}", v.value))
    };
    assert!(attribute(request, "http.response.status_code").unwrap().contains("200"), "{request:?}");
    assert!(attribute(request, "http.route").unwrap().contains("/api/authz/forward-auth"));
    for child in ["session", "access_control.evaluate"] {
        let span = spans.iter().find(|s| s.name == child).unwrap_or_else(|| panic!("no {child} span in {spans:?}"));
        assert_eq!(span.parent_span_id, request.span_id, "{child} is a child of the request span");
        assert_eq!(span.kind, 1, "INTERNAL");
    }
    assert!(spans.iter().all(|s| s.name != "request"), "every request span is renamed after its route");
    assert!(received.services.lock().unwrap().iter().all(|s| s.contains(service)));
    // The login had a trace of its own, with the password check and the database in it.
    let all = received.spans.lock().unwrap().clone();
    let login_span = all.iter().find(|s| s.name == "POST /api/firstfactor").expect("the login's request span");
    assert!(login_span.parent_span_id.is_empty(), "no traceparent: a root span");
    let in_login = |name: &str| all.iter().any(|s| s.name == name && s.trace_id == login_span.trace_id);
    assert!(in_login("password.verify") && in_login("storage") && in_login("session"), "{all:?}");
}

#[test]
fn a_forward_auth_request_is_traced_over_grpc_as_the_proxy_spans_child() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (received, collector) = grpc_receiver(&runtime);
    let server = start(
        &format!(
            "access_control: {{default_policy: one_factor}}\n\
             telemetry:\n  traces:\n    enabled: true\n    endpoint: 'http://127.0.0.1:{collector}'\n    \
             service_name: auth-edge\n    headers: {{x-api-key: k3y}}\n"
        ),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    one_traced_forward_auth(&server, &received, "auth-edge");
    // Logs are unchanged: no span context in them.
    let log = server.wait_for_log("POST");
    assert!(!log.contains("request{"), "{log}");
}

#[test]
fn a_forward_auth_request_is_traced_over_http_protobuf() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (received, collector) = http_receiver(&runtime);
    let server = start(
        &format!(
            "access_control: {{default_policy: one_factor}}\n\
             telemetry:\n  traces:\n    enabled: true\n    protocol: http/protobuf\n    \
             endpoint: 'http://127.0.0.1:{collector}'\n    headers: {{x-api-key: k3y}}\n"
        ),
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    );
    one_traced_forward_auth(&server, &received, "portcullis");
}

#[test]
fn spans_queued_at_shutdown_are_sent_and_unsampled_proxies_are_followed() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (received, collector) = grpc_receiver(&runtime);
    // A long batch delay: only the flush at shutdown sends the spans.
    let mut server = start(
        &format!(
            "telemetry:\n  traces:\n    enabled: true\n    endpoint: 'http://127.0.0.1:{collector}'\n    sampling_ratio: 1.0\n"
        ),
        &[("OTEL_BSP_SCHEDULE_DELAY", "60000")],
    );
    let unsampled = format!("00-{}-{PROXY_SPAN}-00", "1".repeat(32));
    assert_eq!(get(server.port, "/api/health", &[("traceparent", &unsampled)]).status, 200);
    let sampled = format!("00-{TRACE_ID}-{PROXY_SPAN}-01");
    assert_eq!(get(server.port, "/api/health", &[("traceparent", &sampled)]).status, 200);
    server.terminate();
    assert!(server.wait_exit(Duration::from_secs(20)).success());
    let spans = received.trace(&hex(TRACE_ID), "GET /api/health");
    assert_eq!(spans.len(), 1);
    let all = received.spans.lock().unwrap();
    assert!(all.iter().all(|s| s.trace_id != hex(&"1".repeat(32))), "the proxy did not sample that one");
}

// ---------------------------------------------------------------- readiness

fn ready(port: u16) -> Response {
    get(port, "/api/health/ready", &[])
}

/// Polls readiness until it answers `status` (answers are reused for a second).
fn wait_ready(port: u16, status: u16) -> Response {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = ready(port);
        if r.status == status {
            return r;
        }
        assert!(Instant::now() < deadline, "readiness stayed {}: {}", r.status, r.body);
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn readiness_follows_redis_down_and_back() {
    let mut redis = RedisServer::start();
    let metrics_port = free_port();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let session = format!(
        "session:\n  secret: 'a-session-secret-for-redis'\n  redis:\n    host: 127.0.0.1\n    port: {}\n    timeout: 1s\n",
        redis.port
    );
    let extra = format!(
        "telemetry: {{metrics: {{enabled: true, address: 'tcp://127.0.0.1:{metrics_port}/'}}}}\n\
         access_control: {{default_policy: one_factor}}"
    );
    let yaml = config_yaml(port, dir.path(), &extra).replace("session:\n", &session);
    let server = Server::start(Some(&yaml), port, &[]);

    let up = wait_ready(port, 200);
    let body = up.json();
    assert_eq!(body["status"], "OK");
    assert_eq!(body["data"]["session_store"]["kind"], "redis");
    assert_eq!(body["data"]["session_store"]["status"], "up");
    assert_eq!(body["data"]["storage"]["kind"], "sqlite");
    assert_eq!(body["data"]["storage"]["status"], "up");
    assert_eq!(body["data"]["notifier"]["kind"], "filesystem");
    assert_eq!(body["data"]["notifier"]["status"], "up");
    assert_eq!(request(port, "HEAD", "/api/health/ready", &[], "").status, 200);
    assert_eq!(scrape(metrics_port).value("portcullis_dependency_up", &[("dependency", "session_store")]), 1.0);

    // The local session cache: a hot session is a hit; a lost connection a flush.
    let cache = |event: &str| scrape(metrics_port).value("portcullis_session_cache_total", &[("event", event)]);
    let flushes = cache("flush");
    let r = login(port, "john", "correct horse");
    assert_eq!(r.status, 200, "{}", r.body);
    let cookie = cookie_of(&r);
    let hits = cache("hit");
    for _ in 0..5 {
        assert_eq!(forward_auth(port, &[("Cookie", &cookie)]).status, 200);
    }
    assert!(cache("hit") >= hits + 4.0, "hits counted: {} then {}", hits, cache("hit"));
    assert!(cache("miss") >= 1.0, "the first read after the login went to Redis");

    redis.kill();
    let down = wait_ready(port, 503);
    assert!(cache("flush") > flushes, "the cache was flushed when Redis went away");
    let body = down.json();
    assert_eq!(body["status"], "KO");
    assert_eq!(body["data"]["session_store"]["status"], "down");
    assert_eq!(body["data"]["storage"]["status"], "up");
    assert!(body["message"].as_str().unwrap().contains("session_store"), "{body}");
    assert_eq!(server.get("/api/health").status, 200, "liveness does not depend on Redis");
    assert_eq!(scrape(metrics_port).value("portcullis_dependency_up", &[("dependency", "session_store")]), 0.0);

    redis.restart();
    let back = wait_ready(port, 200);
    assert_eq!(back.json()["data"]["session_store"]["status"], "up");
    drop(server);
}

#[test]
fn readiness_reports_a_file_notifier_that_cannot_write() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("users.yml"), users_yaml()).unwrap();
    let mail_dir = dir.path().join("mail");
    std::fs::create_dir(&mail_dir).unwrap();
    let yaml = config_yaml(port, dir.path(), "")
        .replace(&format!("{}/notifications.txt", dir.path().display()), &format!("{}/n.txt", mail_dir.display()));
    let server = Server::start(Some(&yaml), port, &[]);
    wait_ready(port, 200);

    std::fs::remove_dir_all(&mail_dir).unwrap();
    let down = wait_ready(port, 503);
    assert_eq!(down.json()["data"]["notifier"]["status"], "down", "{}", down.body);
    std::fs::create_dir(&mail_dir).unwrap();
    wait_ready(port, 200);
    drop(server);
}
