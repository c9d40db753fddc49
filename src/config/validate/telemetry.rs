//! `telemetry`: the metrics listener must not collide with the server's, and a trace
//! exporter must name a protocol, an endpoint and headers the OTLP client can send, so
//! that a typo is reported at startup rather than as traces that silently never arrive.

use super::*;
use crate::config::types::{ListenAddress, Network};

/// Protocols `telemetry.traces.protocol` accepts (the OTLP spec's names).
pub const TRACE_PROTOCOLS: &[&str] = &["grpc", "http/protobuf"];

impl Validator {
    pub(super) fn telemetry(&mut self, t: &Telemetry, server: &Server) {
        let m = &t.metrics;
        if m.enabled {
            if same_socket(&m.address, &server.address) {
                self.err(
                    "telemetry.metrics.address",
                    format!("'{}' is the server's own address; metrics need a listener of their own", m.address),
                );
            }
            self.positive("telemetry.metrics.timeouts.read", m.timeouts.read);
            self.positive("telemetry.metrics.timeouts.write", m.timeouts.write);
            self.positive("telemetry.metrics.timeouts.idle", m.timeouts.idle);
            if m.buffers.read < 1024 {
                self.err("telemetry.metrics.buffers.read", "must be at least 1024 bytes");
            }
        }
        let tr = &t.traces;
        self.choice("telemetry.traces.protocol", &tr.protocol, TRACE_PROTOCOLS);
        if !tr.sampling_ratio.is_finite() || !(0.0..=1.0).contains(&tr.sampling_ratio) {
            self.err(
                "telemetry.traces.sampling_ratio",
                format!("{} is out of range; must be 0.0 to 1.0", tr.sampling_ratio),
            );
        }
        if tr.service_name.trim().is_empty() {
            self.err("telemetry.traces.service_name", "must not be empty");
        }
        if let Some(endpoint) = &tr.endpoint
            && let Err(e) = collector_endpoint(endpoint)
        {
            self.err("telemetry.traces.endpoint", e);
        }
        for (name, value) in &tr.headers {
            let path = format!("telemetry.traces.headers.{name}");
            // gRPC metadata keys are lowercase; HTTP header names are case-insensitive.
            let lower = name.to_ascii_lowercase();
            if http::HeaderName::from_bytes(lower.as_bytes()).is_err() || lower.starts_with("grpc-") {
                self.err(path, "not a valid header name");
            } else if http::HeaderValue::from_str(value).is_err() {
                self.err(path, "the value has characters a header cannot carry");
            }
        }
    }
}

/// Whether two listen addresses would bind the same socket.
fn same_socket(a: &ListenAddress, b: &ListenAddress) -> bool {
    match (a.network, b.network) {
        (Network::Unix, Network::Unix) => a.socket_path == b.socket_path,
        (Network::Unix, _) | (_, Network::Unix) => false,
        _ => a.port == b.port && (a.host == b.host || a.host.is_empty() || b.host.is_empty()),
    }
}

/// Parses an OTLP collector endpoint: an absolute `http` or `https` URL with a host.
pub fn collector_endpoint(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text.trim())
        .map_err(|e| format!("invalid URL '{text}': {e}; expected e.g. 'http://localhost:4317'"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme '{}' is not allowed; use 'http' or 'https'", url.scheme()));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("'{text}' has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("'{text}' must not have a query or fragment"));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::super::problem_paths;
    use super::*;

    const BASE: &str = "notifier: {filesystem: {filename: /tmp/n}}\n";

    fn problems(yaml: &str) -> Vec<String> {
        problem_paths(&format!("{BASE}{yaml}")).into_iter().filter(|p| p.starts_with("telemetry")).collect()
    }

    #[test]
    fn defaults_are_valid_and_match_authelia() {
        assert!(problems("").is_empty());
        assert!(problems("telemetry: {metrics: {enabled: true}, traces: {enabled: true}}").is_empty());
        let t = Telemetry::default();
        assert_eq!(t.metrics.address.to_string(), "tcp://:9959/metrics/");
        assert_eq!(t.traces.protocol, "grpc");
        assert!(!t.metrics.enabled && !t.traces.enabled);
    }

    #[test]
    fn the_metrics_listener_is_not_the_server() {
        let clash = "server: {address: 'tcp://:9091/'}\ntelemetry: {metrics: {enabled: true, address: 'tcp://127.0.0.1:9091/metrics'}}";
        assert_eq!(problems(clash), ["telemetry.metrics.address"]);
        // Disabled, the address is never bound.
        let off = "server: {address: 'tcp://:9091/'}\ntelemetry: {metrics: {address: 'tcp://127.0.0.1:9091/metrics'}}";
        assert!(problems(off).is_empty());
        let apart = "telemetry: {metrics: {enabled: true, address: 'tcp://127.0.0.1:9960/metrics'}}";
        assert!(problems(apart).is_empty());
        let unix = "telemetry: {metrics: {enabled: true, address: 'unix:///run/metrics.sock'}}";
        assert!(problems(unix).is_empty());
    }

    #[test]
    fn metrics_timeouts_and_buffers() {
        let yaml = "telemetry: {metrics: {enabled: true, timeouts: {read: 0s}, buffers: {read: 10}}}";
        assert_eq!(problems(yaml), ["telemetry.metrics.timeouts.read", "telemetry.metrics.buffers.read"]);
    }

    #[test]
    fn trace_settings() {
        for (yaml, path) in [
            ("telemetry: {traces: {protocol: http/json}}", "telemetry.traces.protocol"),
            ("telemetry: {traces: {sampling_ratio: 1.5}}", "telemetry.traces.sampling_ratio"),
            ("telemetry: {traces: {sampling_ratio: -0.1}}", "telemetry.traces.sampling_ratio"),
            ("telemetry: {traces: {sampling_ratio: .nan}}", "telemetry.traces.sampling_ratio"),
            ("telemetry: {traces: {service_name: ' '}}", "telemetry.traces.service_name"),
            ("telemetry: {traces: {endpoint: 'localhost:4317'}}", "telemetry.traces.endpoint"),
            ("telemetry: {traces: {endpoint: 'ftp://collector'}}", "telemetry.traces.endpoint"),
            ("telemetry: {traces: {endpoint: 'http://collector:4318/v1/traces?x=1'}}", "telemetry.traces.endpoint"),
            ("telemetry: {traces: {headers: {'bad name': x}}}", "telemetry.traces.headers.bad name"),
            ("telemetry: {traces: {headers: {x-key: \"a\\nb\"}}}", "telemetry.traces.headers.x-key"),
        ] {
            assert_eq!(problems(yaml), [path], "{yaml}");
        }
        let good = "telemetry: {traces: {enabled: true, protocol: http/protobuf, endpoint: 'https://otel.example.com', \
                    sampling_ratio: 0, headers: {x-api-key: secret}}}";
        assert!(problems(good).is_empty());
    }

    #[test]
    fn endpoints() {
        assert_eq!(collector_endpoint("http://localhost:4317").unwrap().port(), Some(4317));
        assert!(collector_endpoint("https://otel.example.com/v1/traces").is_ok());
        assert!(collector_endpoint("http://").is_err());
    }
}
