//! OpenTelemetry traces: spans made with `tracing` under one target, exported over OTLP.
//!
//! Every span Portcullis makes for tracing uses the target [`TARGET`]. The log layers
//! never see that target, so logs read the same with traces on or off; the OTLP layer
//! sees only that target, so log events (which may name users) never leave as span
//! events. With `telemetry.traces.enabled` off no OTLP layer is installed, every span
//! callsite is disabled once, for good, by `tracing`'s interest cache, and the request
//! path neither reads `traceparent` nor allocates a span: tracing off costs nothing.
//!
//! The request span is a SERVER span. A W3C `traceparent` (and `tracestate`) from the
//! proxy makes it a child of the proxy's span, and the sampler follows the proxy's
//! decision; without one, `sampling_ratio` decides. The children are the session store,
//! rule evaluation, the database, password hashing and mail.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{LevelFilter, Targets};

use crate::config::schema::{DEFAULT_OTLP_GRPC_ENDPOINT, DEFAULT_OTLP_HTTP_ENDPOINT, TelemetryTraces};

/// The `tracing` target of every span exported as a trace.
pub const TARGET: &str = "portcullis::trace";

/// How long one export may take before it is abandoned.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

static ENABLED: AtomicBool = AtomicBool::new(false);

/// Whether traces are being exported (the request path skips all tracing work when not).
#[inline]
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// A span of the trace, named `$name`, with optional fields; disabled (and free) when
/// traces are off.
macro_rules! span {
    ($name:literal $(, $($fields:tt)*)?) => {
        tracing::info_span!(target: "portcullis::trace", $name $(, $($fields)*)?)
    };
}
pub(crate) use span;

/// The exporter pipeline; shut it down to send the spans still queued.
pub struct Tracing {
    provider: SdkTracerProvider,
}

impl Tracing {
    /// Sends what is queued and stops the exporter. Blocks, so call it outside async code
    /// (while the runtime that the gRPC exporter uses still runs).
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "traces: the last spans could not be exported");
        }
        ENABLED.store(false, Ordering::Relaxed);
    }
}

use crate::logging::BoxedLayer;

/// Builds the OTLP exporter for `config` and the `tracing` layer feeding it. `None` when
/// traces are off. The gRPC exporter needs a Tokio runtime entered on this thread.
pub fn install(config: &TelemetryTraces) -> Result<Option<(Tracing, BoxedLayer)>, String> {
    if !config.enabled {
        return Ok(None);
    }
    let endpoint = endpoint(config)?;
    // The HTTP exporter's client takes rustls' process-wide provider: ring, as everywhere
    // else (an error only says one is installed already).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let exporter = match config.protocol.as_str() {
        "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(endpoint.clone())
            .with_timeout(EXPORT_TIMEOUT)
            .with_headers(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>())
            .build(),
        _ => {
            let mut headers = http::HeaderMap::new();
            for (name, value) in &config.headers {
                let name = http::HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes())
                    .map_err(|e| format!("telemetry.traces.headers.{name}: {e}"))?;
                let value = http::HeaderValue::from_str(value).map_err(|e| format!("telemetry.traces.headers: {e}"))?;
                headers.insert(name, value);
            }
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .with_timeout(EXPORT_TIMEOUT)
                .with_metadata(opentelemetry_otlp::tonic_types::metadata::MetadataMap::from_headers(headers));
            if endpoint.starts_with("https://") {
                builder = builder.with_tls_config(
                    opentelemetry_otlp::tonic_types::transport::ClientTlsConfig::new().with_native_roots(),
                );
            }
            builder.build()
        }
    }
    .map_err(|e| format!("telemetry.traces: cannot build the OTLP exporter for {endpoint}: {e}"))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
    let resource = opentelemetry_sdk::Resource::builder_empty()
        .with_service_name(config.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("portcullis");
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_threads(false)
        .with_tracked_inactivity(false)
        .with_location(false)
        .with_filter(Targets::new().with_target(TARGET, LevelFilter::TRACE))
        .boxed();
    ENABLED.store(true, Ordering::Relaxed);
    Ok(Some((Tracing { provider }, layer)))
}

/// The URL the exporter sends to: the configured one (with `/v1/traces` added for
/// HTTP/protobuf when it has no path), or the protocol's local default.
pub fn endpoint(config: &TelemetryTraces) -> Result<String, String> {
    let http = config.protocol == "http/protobuf";
    let Some(text) = config.endpoint.as_deref().filter(|e| !e.trim().is_empty()) else {
        return Ok(if http { DEFAULT_OTLP_HTTP_ENDPOINT } else { DEFAULT_OTLP_GRPC_ENDPOINT }.to_string());
    };
    let mut url = crate::config::validate::telemetry::collector_endpoint(text)
        .map_err(|e| format!("telemetry.traces.endpoint: {e}"))?;
    if http && url.path() == "/" {
        url.set_path("/v1/traces");
    }
    let mut out = url.to_string();
    if !http && out.ends_with('/') && url.path() == "/" {
        out.pop();
    }
    Ok(out)
}

/// The span of one HTTP request (disabled when traces are off): a SERVER span named after
/// the route (`GET /api/authz/forward-auth`, found by `route` only when tracing), child of
/// the span the proxy named in `traceparent`, if any.
pub fn request_span<'a>(
    method: &http::Method,
    headers: &http::HeaderMap,
    route: impl FnOnce() -> Option<&'a str>,
) -> tracing::Span {
    if !enabled() {
        return tracing::Span::none();
    }
    let method = super::metrics::method_label(method);
    let route = route();
    let name = match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_string(),
    };
    let span = span!(
        "request",
        otel.name = name,
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = route,
        http.response.status_code = tracing::field::Empty,
    );
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        if let Err(e) = span.set_parent(parent) {
            tracing::debug!(error = ?e, "traces: cannot attach the proxy's span");
        }
    }
    span
}

/// Records the answer on the request span (an error status for 5xx, as for SERVER spans).
pub fn record_status(span: &tracing::Span, status: http::StatusCode) {
    if enabled() {
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
    }
}

/// Reads W3C trace context headers from a request.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traces(yaml: &str) -> TelemetryTraces {
        serde_yaml::from_str(yaml).unwrap()
    }

    #[test]
    fn endpoints_per_protocol() {
        assert_eq!(endpoint(&traces("{}")).unwrap(), "http://localhost:4317");
        assert_eq!(endpoint(&traces("protocol: http/protobuf")).unwrap(), "http://localhost:4318/v1/traces");
        assert_eq!(
            endpoint(&traces("{protocol: http/protobuf, endpoint: 'https://otel.example.com'}")).unwrap(),
            "https://otel.example.com/v1/traces"
        );
        assert_eq!(
            endpoint(&traces("{protocol: http/protobuf, endpoint: 'http://c:4318/custom/path'}")).unwrap(),
            "http://c:4318/custom/path"
        );
        assert_eq!(endpoint(&traces("endpoint: 'http://collector:4317/'")).unwrap(), "http://collector:4317");
        assert!(endpoint(&traces("endpoint: 'collector:4317'")).is_err());
    }

    #[test]
    fn off_installs_nothing() {
        assert!(install(&TelemetryTraces::default()).unwrap().is_none());
        assert!(!enabled());
        assert!(request_span(&http::Method::GET, &http::HeaderMap::new(), || Some("/api/health")).is_none());
    }
}
