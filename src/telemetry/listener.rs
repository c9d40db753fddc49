//! The metrics listener (`telemetry.metrics.address`): a listener of its own, as in
//! Authelia, so that metrics can be reachable from the monitoring network only and never
//! through the proxy in front of the portal. It answers `GET`/`HEAD` on the address's path
//! (`/metrics` by default) with the Prometheus text format, and nothing else.
//!
//! At each scrape the number of sessions is sampled first: the memory store counts its
//! map; Redis is walked with SCAN, so it is counted at most every 30 seconds.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;

use crate::server::{App, Listener};

/// The content type of the Prometheus text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Connections served at once (scrapers are few).
const MAX_CONNECTIONS: usize = 64;
/// How often Redis sessions are counted at most.
const REDIS_SAMPLE_EVERY: Duration = Duration::from_secs(30);

/// Serves metrics on `listener` until `shutdown` completes.
pub async fn serve(listener: Listener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> std::io::Result<()> {
    let config = &app.config.telemetry.metrics;
    let path: Arc<str> =
        if config.address.base_path.is_empty() { "/metrics".into() } else { config.address.base_path.as_str().into() };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.timeouts.read.get())
        .max_buf_size(config.buffers.read.max(8192))
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(config.timeouts.idle.get()));
    let sampler = Arc::new(Sampler::default());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    while let Some(((io, _), slot)) = crate::server::next_connection(&listener, &slots, &mut shutdown, "metrics").await
    {
        let (app, path, sampler) = (app.clone(), path.clone(), sampler.clone());
        let service = service_fn(move |request: Request<Incoming>| {
            let (app, path, sampler) = (app.clone(), path.clone(), sampler.clone());
            async move { Ok::<_, Infallible>(answer(&app, &path, &sampler, request.method(), request.uri().path()).await) }
        });
        let connection = builder.serve_connection(io, service).into_owned();
        let watched = graceful.watch(connection);
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = watched.await {
                tracing::debug!(error = %e, "metrics: connection ended with an error");
            }
        });
    }
    if let Listener::Unix(_, socket) = &listener {
        let _ = std::fs::remove_file(socket);
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(5)) => {}
    }
    Ok(())
}

async fn answer(app: &App, path: &str, sampler: &Sampler, method: &Method, asked: &str) -> Response<Full<Bytes>> {
    if asked != path {
        return plain(StatusCode::NOT_FOUND, "404 Not Found\n");
    }
    if method != Method::GET && method != Method::HEAD {
        let mut r = plain(StatusCode::METHOD_NOT_ALLOWED, "405 Method Not Allowed\n");
        r.headers_mut().insert(header::ALLOW, header::HeaderValue::from_static("GET, HEAD"));
        return r;
    }
    let Some(metrics) = super::metrics::get() else {
        return plain(StatusCode::SERVICE_UNAVAILABLE, "metrics are not enabled\n");
    };
    let write_timeout = app.config.telemetry.metrics.timeouts.write.get();
    let _ = tokio::time::timeout(write_timeout / 2, sampler.sample(app)).await;
    match metrics.render() {
        Ok(body) => {
            let mut r = Response::new(Full::new(Bytes::from(body)));
            r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static(CONTENT_TYPE));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "metrics: cannot render");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "500 Internal Server Error\n")
        }
    }
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *r.status_mut() = status;
    r.headers_mut().insert(header::CONTENT_TYPE, header::HeaderValue::from_static("text/plain; charset=utf-8"));
    r
}

/// Samples the session count, Redis at most every 30 s.
#[derive(Default)]
struct Sampler {
    last: Mutex<Option<Instant>>,
    running: tokio::sync::Mutex<()>,
}

impl Sampler {
    async fn sample(&self, app: &App) {
        let Some(metrics) = super::metrics::get() else { return };
        let store = app.services.sessions.store();
        let redis = store.kind() == "redis";
        let _one = self.running.lock().await;
        if redis {
            let recent = self.last.lock().is_ok_and(|l| l.is_some_and(|at| at.elapsed() < REDIS_SAMPLE_EVERY));
            if recent {
                return;
            }
        }
        match store.count().await {
            Ok(count) => {
                metrics.sessions_active(count);
                if let Ok(mut last) = self.last.lock() {
                    *last = Some(Instant::now());
                }
            }
            Err(e) => tracing::debug!(error = %e, "metrics: cannot count sessions"),
        }
    }
}
