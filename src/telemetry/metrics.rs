//! The metrics: one process-wide registry, installed at startup when
//! `telemetry.metrics.enabled`, read by the metrics listener.
//!
//! Authelia's metrics keep Authelia's names, label names, types and histogram buckets, and
//! like Authelia (Go's client library) counters are written without a `_total` suffix, so
//! dashboards and alerts written for Authelia read Portcullis unchanged. Portcullis' own
//! metrics follow Prometheus' naming conventions under `portcullis_`.
//!
//! The recording functions are free when metrics are off (one load of an unset
//! `OnceLock`), which lets the hooks in the request path, storage, sessions and hashing
//! stay one line each. Every label value comes from a fixed set (status codes, methods,
//! operation names): no usernames, paths or addresses, so the number of series is bounded.

use std::sync::OnceLock;
use std::time::Duration;

use http::{Method, StatusCode};
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// Authelia's buckets for `authelia_request_duration` (seconds).
const REQUEST_BUCKETS: &[f64] =
    &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0];

/// Authelia's buckets for `authelia_authn_duration` (seconds).
const AUTHN_BUCKETS: &[f64] = &[
    0.0005, 0.00075, 0.001, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 0.9, 1.0, 5.0, 10.0,
    15.0, 30.0, 60.0,
];

/// Buckets for calls to the session store and the database: from a memory lookup (tens of
/// microseconds) to a database at its connection timeout.
const BACKEND_BUCKETS: &[f64] =
    &[0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Buckets for the wait for a password hashing slot (bounded by the pool's 2 s wait).
const WAIT_BUCKETS: &[f64] = &[0.0001, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0];

/// Every metric Portcullis exposes.
pub struct Metrics {
    registry: Registry,
    request: IntCounterVec,
    request_duration: HistogramVec,
    authz: IntCounterVec,
    authn: IntCounterVec,
    authn_duration: HistogramVec,
    authn_second_factor: IntCounterVec,
    session_store: HistogramVec,
    storage: HistogramVec,
    hashing_queue: IntGauge,
    hashing_running: IntGauge,
    hashing_wait: Histogram,
    hashing_refused: IntCounter,
    banned: IntCounterVec,
    sessions_active: IntGauge,
    config_reloads: IntCounterVec,
    dependency_up: IntGaugeVec,
    /// The local Redis session cache's hits, misses and flushes (children resolved once:
    /// a hit is on the authorization path).
    session_cache: [IntCounter; 3],
}

/// What happened in the local session cache (decision 0031).
#[derive(Clone, Copy, Debug)]
pub enum SessionCacheEvent {
    /// A session answered from process memory.
    Hit = 0,
    /// A session read from Redis while the cache was in use.
    Miss = 1,
    /// Everything dropped: a disconnect, an error, a flush of Redis.
    Flush = 2,
}

static METRICS: OnceLock<Metrics> = OnceLock::new();

/// The installed metrics, or `None` when metrics are off.
#[inline]
pub fn get() -> Option<&'static Metrics> {
    METRICS.get()
}

/// Installs the process-wide metrics (idempotent: a second call returns the first set).
pub fn install() -> Result<&'static Metrics, String> {
    if let Some(m) = METRICS.get() {
        return Ok(m);
    }
    let metrics = Metrics::new().map_err(|e| format!("cannot register the metrics: {e}"))?;
    Ok(METRICS.get_or_init(|| metrics))
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> prometheus::Result<IntCounterVec> {
    let c = IntCounterVec::new(Opts::new(name, help), labels)?;
    registry.register(Box::new(c.clone()))?;
    Ok(c)
}

fn histogram(
    registry: &Registry,
    name: &str,
    help: &str,
    buckets: &[f64],
    labels: &[&str],
) -> prometheus::Result<HistogramVec> {
    let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
    registry.register(Box::new(h.clone()))?;
    Ok(h)
}

fn gauge(registry: &Registry, name: &str, help: &str) -> prometheus::Result<IntGauge> {
    let g = IntGauge::new(name, help)?;
    registry.register(Box::new(g.clone()))?;
    Ok(g)
}

impl Metrics {
    /// A fresh registry with every metric registered (tests build their own).
    pub fn new() -> prometheus::Result<Self> {
        let r = Registry::new();
        #[cfg(target_os = "linux")]
        r.register(Box::new(prometheus::process_collector::ProcessCollector::for_self()))?;
        let build_info = IntGaugeVec::new(
            Opts::new("portcullis_build_info", "The running version; always 1."),
            &["version", "authelia_compatible"],
        )?;
        build_info.with_label_values(&[env!("CARGO_PKG_VERSION"), "true"]).set(1);
        r.register(Box::new(build_info))?;
        let hashing_wait = Histogram::with_opts(
            HistogramOpts::new("portcullis_hashing_wait_seconds", "Time a password check waited for a hashing slot.")
                .buckets(WAIT_BUCKETS.to_vec()),
        )?;
        r.register(Box::new(hashing_wait.clone()))?;
        let hashing_refused = IntCounter::new(
            "portcullis_hashing_refused_total",
            "Password checks refused because no slot freed in time.",
        )?;
        r.register(Box::new(hashing_refused.clone()))?;
        let dependency_up = IntGaugeVec::new(
            Opts::new(
                "portcullis_dependency_up",
                "Whether a dependency answered the last readiness check (1) or not (0).",
            ),
            &["dependency"],
        )?;
        r.register(Box::new(dependency_up.clone()))?;
        let banned = counter(
            &r,
            "portcullis_regulation_banned_total",
            "Authentication attempts refused because the account or client was banned.",
            &["factor"],
        )?;
        let config_reloads = counter(
            &r,
            "portcullis_config_reloads_total",
            "Reloads of configuration read at run time: `configuration` (access rules, mail templates) and `users_file`.",
            &["source", "result"],
        )?;
        // Known series start at zero, so that rates and alerts see their first event.
        for factor in ["password", "second_factor"] {
            banned.with_label_values(&[factor]);
        }
        for source in ["configuration", "users_file"] {
            for result in ["success", "failure"] {
                config_reloads.with_label_values(&[source, result]);
            }
        }
        let session_cache = counter(
            &r,
            "portcullis_session_cache_total",
            "The local Redis session cache: `hit` (no Redis read), `miss` (read from Redis), `flush` (everything \
             dropped after a disconnect, an error or a flushed Redis).",
            &["event"],
        )?;
        let session_cache = ["hit", "miss", "flush"].map(|event| session_cache.with_label_values(&[event]));
        Ok(Self {
            session_cache,
            request: counter(&r, "authelia_request", "The number of HTTP requests processed.", &["code", "method"])?,
            request_duration: histogram(
                &r,
                "authelia_request_duration",
                "The time a HTTP request takes to process in seconds.",
                REQUEST_BUCKETS,
                &["code", "method"],
            )?,
            authz: counter(&r, "authelia_authz", "The number of authz requests processed.", &["code"])?,
            authn: counter(
                &r,
                "authelia_authn",
                "The number of 1FA authentications processed.",
                &["success", "banned"],
            )?,
            authn_duration: histogram(
                &r,
                "authelia_authn_duration",
                "The time an authentication attempt takes in seconds.",
                AUTHN_BUCKETS,
                &["success"],
            )?,
            authn_second_factor: counter(
                &r,
                "authelia_authn_second_factor",
                "The number of 2FA authentications processed.",
                &["success", "banned", "type"],
            )?,
            session_store: histogram(
                &r,
                "portcullis_session_store_duration_seconds",
                "Time of session store operations.",
                BACKEND_BUCKETS,
                &["operation"],
            )?,
            storage: histogram(
                &r,
                "portcullis_storage_query_duration_seconds",
                "Time of database calls, from asking for a connection to the answer.",
                BACKEND_BUCKETS,
                &["outcome"],
            )?,
            hashing_queue: gauge(&r, "portcullis_hashing_queue_depth", "Password checks waiting for a hashing slot.")?,
            hashing_running: gauge(&r, "portcullis_hashing_in_progress", "Password hashes being computed.")?,
            hashing_wait,
            hashing_refused,
            banned,
            sessions_active: gauge(
                &r,
                "portcullis_sessions_active",
                "Sessions in the store (sampled at scrape time).",
            )?,
            config_reloads,
            dependency_up,
            registry: r,
        })
    }

    /// Everything, in the Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> Result<Vec<u8>, String> {
        let mut out = Vec::with_capacity(16 * 1024);
        TextEncoder::new().encode(&self.registry.gather(), &mut out).map_err(|e| e.to_string())?;
        Ok(out)
    }

    /// Records one answered HTTP request.
    pub fn request(&self, method: &Method, status: StatusCode, elapsed: Duration) {
        let labels = [status.as_str(), method_label(method)];
        self.request.with_label_values(&labels).inc();
        self.request_duration.with_label_values(&labels).observe(elapsed.as_secs_f64());
    }

    /// Records the answer of an authorization endpoint.
    pub fn authz(&self, status: StatusCode) {
        self.authz.with_label_values(&[status.as_str()]).inc();
    }

    /// Records a decided first-factor attempt.
    pub fn authn(&self, success: bool, banned: bool, elapsed: Duration) {
        self.authn.with_label_values(&[bool_label(success), bool_label(banned)]).inc();
        self.authn_duration.with_label_values(&[bool_label(success)]).observe(elapsed.as_secs_f64());
        if banned {
            self.banned.with_label_values(&["password"]).inc();
        }
    }

    /// Records a decided second-factor attempt of `kind` (`totp`, `webauthn`, ...).
    pub fn authn_second_factor(&self, success: bool, banned: bool, kind: &'static str) {
        self.authn_second_factor.with_label_values(&[bool_label(success), bool_label(banned), kind]).inc();
        if banned {
            self.banned.with_label_values(&["second_factor"]).inc();
        }
    }

    /// Records a session store operation.
    pub fn session_store(&self, operation: &'static str, elapsed: Duration) {
        self.session_store.with_label_values(&[operation]).observe(elapsed.as_secs_f64());
    }

    /// Records an event of the local session cache.
    pub fn session_cache(&self, event: SessionCacheEvent) {
        self.session_cache[event as usize].inc();
    }

    /// Records a database call.
    pub fn storage(&self, ok: bool, elapsed: Duration) {
        self.storage.with_label_values(&[if ok { "ok" } else { "error" }]).observe(elapsed.as_secs_f64());
    }

    /// A password check starts waiting for a slot.
    pub fn hashing_queued(&self) {
        self.hashing_queue.inc();
    }

    /// It got one after `waited` (`admitted`), or gave up and was refused.
    pub fn hashing_dequeued(&self, waited: Duration, admitted: bool) {
        self.hashing_queue.dec();
        self.hashing_wait.observe(waited.as_secs_f64());
        if admitted {
            self.hashing_running.inc();
        } else {
            self.hashing_refused.inc();
        }
    }

    /// A check left the queue because its caller went away.
    pub fn hashing_abandoned(&self) {
        self.hashing_queue.dec();
    }

    /// A hash finished.
    pub fn hashing_done(&self) {
        self.hashing_running.dec();
    }

    /// The number of sessions last counted.
    pub fn sessions_active(&self, count: u64) {
        self.sessions_active.set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// A reload of run-time configuration from `source` succeeded or failed.
    pub fn config_reload(&self, source: &'static str, ok: bool) {
        self.config_reloads.with_label_values(&[source, if ok { "success" } else { "failure" }]).inc();
    }

    /// The outcome of a readiness check of `dependency`.
    pub fn dependency(&self, dependency: &'static str, up: bool) {
        self.dependency_up.with_label_values(&[dependency]).set(i64::from(up));
    }
}

fn bool_label(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

/// The method as a label: the standard ones by name, anything else as `other` (methods
/// are client-chosen tokens and must not grow the series without bound).
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        Method::PATCH => "PATCH",
        Method::TRACE => "TRACE",
        Method::CONNECT => "CONNECT",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render().unwrap()).unwrap()
    }

    #[test]
    fn authelia_names_are_written_as_authelia_writes_them() {
        let m = Metrics::new().unwrap();
        m.request(&Method::GET, StatusCode::OK, Duration::from_millis(3));
        m.authz(StatusCode::FOUND);
        m.authn(false, true, Duration::from_millis(1));
        m.authn_second_factor(true, false, "totp");
        let t = text(&m);
        for line in [
            "# TYPE authelia_request counter",
            "authelia_request{code=\"200\",method=\"GET\"} 1",
            "# TYPE authelia_request_duration histogram",
            "authelia_request_duration_bucket{code=\"200\",method=\"GET\",le=\"0.005\"} 1",
            "authelia_authz{code=\"302\"} 1",
            "authelia_authn{banned=\"true\",success=\"false\"} 1",
            "authelia_authn_duration_count{success=\"false\"} 1",
            "authelia_authn_second_factor{banned=\"false\",success=\"true\",type=\"totp\"} 1",
            "portcullis_regulation_banned_total{factor=\"password\"} 1",
            "portcullis_build_info{authelia_compatible=\"true\",version=\"",
        ] {
            assert!(t.contains(line), "missing {line:?} in\n{t}");
        }
        assert!(!t.contains("authelia_request_total"), "no _total on Authelia's counters");
    }

    #[test]
    fn unknown_methods_share_one_label() {
        let m = Metrics::new().unwrap();
        for name in ["PROPFIND", "X1", "X2"] {
            m.request(&Method::from_bytes(name.as_bytes()).unwrap(), StatusCode::METHOD_NOT_ALLOWED, Duration::ZERO);
        }
        assert!(text(&m).contains("authelia_request{code=\"405\",method=\"other\"} 3"));
    }

    #[test]
    fn hashing_queue_goes_up_and_down() {
        let m = Metrics::new().unwrap();
        m.hashing_queued();
        m.hashing_queued();
        assert!(text(&m).contains("portcullis_hashing_queue_depth 2"));
        m.hashing_dequeued(Duration::from_millis(2), true);
        m.hashing_dequeued(Duration::from_secs(2), false);
        let t = text(&m);
        assert!(t.contains("portcullis_hashing_queue_depth 0"), "{t}");
        assert!(t.contains("portcullis_hashing_in_progress 1"), "{t}");
        assert!(t.contains("portcullis_hashing_refused_total 1"), "{t}");
        assert!(t.contains("portcullis_hashing_wait_seconds_count 2"), "{t}");
        m.hashing_done();
        assert!(text(&m).contains("portcullis_hashing_in_progress 0"));
    }
}
