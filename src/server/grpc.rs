//! gRPC on the HTTP listener. When an endpoint uses ExtAuthzGRPC, HTTP/2 requests with a
//! gRPC content type whose path names Envoy's `Authorization` service or the standard
//! `grpc.health.v1.Health` service go to them instead of the HTTP application: Envoy
//! reaches the check over the same address (TCP or Unix socket) as the HTTP endpoints,
//! with prior-knowledge h2c, under the same connection limit and graceful shutdown.
//!
//! Every call is bounded by `server.timeouts.write` (`DEADLINE_EXCEEDED`), a panic becomes
//! `INTERNAL` rather than a dropped connection, and each call is logged like an HTTP
//! request (target `portcullis::access`).
//!
//! The health service answers `SERVING` for the whole server (`""`) and for
//! `envoy.service.auth.v3.Authorization` while the server runs; `Watch` streams end with
//! `NOT_SERVING` when shutdown begins, so they do not hold the drain open.

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use envoy_types::pb::envoy::service::auth::v3::authorization_server::AuthorizationServer;
use futures_util::FutureExt;
use http::{Request, Response, StatusCode, Version, header};
use tokio::sync::watch;
use tonic::codegen::{Service, StdError};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{self, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tracing::Instrument;

use super::App;
use super::request_id::RequestId;
use crate::authz::grpc::{Caller, ExtAuthz, MAX_CHECK_REQUEST, SERVICE_NAME, Verdict};

/// Paths of the calls routed here (by prefix: the service's unknown methods answer
/// `UNIMPLEMENTED`).
const AUTHORIZATION_PREFIX: &str = "/envoy.service.auth.v3.Authorization/";
const HEALTH_PREFIX: &str = "/grpc.health.v1.Health/";

/// The gRPC services of one server.
pub struct Grpc {
    authz: AuthorizationServer<ExtAuthz>,
    health: HealthServer<Health>,
    timeout: Duration,
}

impl Grpc {
    /// The services for `app`, or `None` when no endpoint uses ExtAuthzGRPC (then gRPC
    /// calls reach the HTTP application, which does not know them). `shutdown` turns
    /// `true` when the server starts draining.
    pub fn new(app: &Arc<App>, shutdown: watch::Receiver<bool>) -> Option<Self> {
        let endpoint = app.authz.iter().position(|e| e.implementation.is_grpc())?;
        let authz =
            AuthorizationServer::new(ExtAuthz::new(app.clone(), endpoint)).max_decoding_message_size(MAX_CHECK_REQUEST);
        let health = HealthServer::new(Health { shutdown }).max_decoding_message_size(1024);
        Some(Self { authz, health, timeout: app.config.server.timeouts.write.get() })
    }

    /// Whether `request` is a gRPC call for these services.
    pub fn wants<B>(&self, request: &Request<B>) -> bool {
        let grpc_content = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v == "application/grpc" || v.starts_with("application/grpc+"));
        let path = request.uri().path();
        request.version() == Version::HTTP_2
            && grpc_content
            && (path.starts_with(AUTHORIZATION_PREFIX) || path.starts_with(HEALTH_PREFIX))
    }

    /// Answers one gRPC call that [`Grpc::wants`]; `remote` is the connection's peer.
    pub async fn call<B>(&self, mut request: Request<B>, remote: Option<IpAddr>) -> Response<tonic::body::Body>
    where
        B: hyper::body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<StdError> + Send + 'static,
    {
        let started = Instant::now();
        let request_id = RequestId::generate();
        let path = request.uri().path().to_owned();
        request.extensions_mut().insert(Caller { peer: remote, request_id });
        let span = crate::telemetry::traces::request_span(&http::Method::POST, request.headers(), || Some(&path));
        let work = async {
            if path.starts_with(HEALTH_PREFIX) {
                self.health.clone().call(request).await
            } else {
                self.authz.clone().call(request).await
            }
        };
        let work = AssertUnwindSafe(work.instrument(span.clone())).catch_unwind();
        let response = match tokio::time::timeout(self.timeout, work).await {
            Ok(Ok(Ok(response))) => response,
            Ok(Ok(Err(never))) => match never {},
            Ok(Err(panic)) => {
                let what = super::panic_message(panic.as_ref());
                tracing::error!(request_id = %request_id, panic = %what, "gRPC handler panicked");
                tonic::Status::internal("internal error").into_http()
            }
            Err(_) => {
                tracing::warn!(request_id = %request_id, "gRPC call exceeded server.timeouts.write");
                tonic::Status::deadline_exceeded("the check took too long").into_http()
            }
        };
        // An error travels in the headers (trailers-only); a success in the trailers.
        let grpc_status = response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(0);
        // For a Check, the HTTP status it decided; otherwise the gRPC response's own.
        let verdict = response.extensions().get::<Verdict>().map(|v| v.0);
        let status = verdict.unwrap_or(response.status().as_u16());
        span.record("http.response.status_code", status);
        if let Some(metrics) = crate::telemetry::metrics::get() {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            metrics.request(&http::Method::POST, code, started.elapsed());
            if verdict.is_some() {
                metrics.authz(code);
            }
        }
        tracing::info!(
            target: "portcullis::access",
            request_id = %request_id,
            method = "POST",
            path = %path,
            status,
            grpc_status,
            elapsed_us = started.elapsed().as_micros() as u64,
            remote = %remote.map(|ip| ip.to_string()).unwrap_or_default(),
            api = false,
            "request"
        );
        response
    }
}

/// `grpc.health.v1.Health`.
pub struct Health {
    shutdown: watch::Receiver<bool>,
}

impl Health {
    fn status(&self, service: &str) -> ServingStatus {
        if !service.is_empty() && service != SERVICE_NAME {
            ServingStatus::ServiceUnknown
        } else if *self.shutdown.borrow() {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        }
    }
}

/// Where a health watch stands.
enum Phase {
    /// Send this status next.
    Send(ServingStatus),
    /// Wait for shutdown, then send NOT_SERVING.
    AwaitShutdown,
    /// End the stream.
    Done,
}

type WatchStream = Pin<Box<dyn futures_util::Stream<Item = Result<HealthCheckResponse, tonic::Status>> + Send>>;

fn health(status: ServingStatus) -> HealthCheckResponse {
    HealthCheckResponse { status: status as i32 }
}

#[tonic::async_trait]
impl health_server::Health for Health {
    async fn check(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, tonic::Status> {
        match self.status(&request.get_ref().service) {
            ServingStatus::ServiceUnknown => Err(tonic::Status::not_found("unknown service")),
            status => Ok(tonic::Response::new(health(status))),
        }
    }

    type WatchStream = WatchStream;

    async fn watch(
        &self,
        request: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, tonic::Status> {
        let first = self.status(&request.get_ref().service);
        let shutdown = self.shutdown.clone();
        // The current status; then, for a known service, NOT_SERVING once shutdown begins,
        // and the end of the stream.
        let stream = futures_util::stream::unfold((Phase::Send(first), shutdown), |(phase, mut shutdown)| async move {
            match phase {
                Phase::Send(status) => {
                    let next = if status == ServingStatus::Serving { Phase::AwaitShutdown } else { Phase::Done };
                    Some((Ok(health(status)), (next, shutdown)))
                }
                Phase::AwaitShutdown => {
                    let _ = shutdown.wait_for(|down| *down).await;
                    Some((Ok(health(ServingStatus::NotServing)), (Phase::Done, shutdown)))
                }
                Phase::Done => None,
            }
        });
        Ok(tonic::Response::new(Box::pin(stream)))
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use tonic_health::pb::health_server::Health as _;

    use super::*;

    fn request(service: &str) -> tonic::Request<HealthCheckRequest> {
        tonic::Request::new(HealthCheckRequest { service: service.to_string() })
    }

    #[tokio::test]
    async fn health_serves_until_shutdown_and_watches_end_with_it() {
        let (tx, rx) = watch::channel(false);
        let h = Health { shutdown: rx };
        assert_eq!(h.check(request("")).await.unwrap().into_inner().status, ServingStatus::Serving as i32);
        let named = h.check(request(SERVICE_NAME)).await.unwrap().into_inner();
        assert_eq!(named.status, ServingStatus::Serving as i32);
        assert_eq!(h.check(request("other.Service")).await.unwrap_err().code(), tonic::Code::NotFound);

        let mut unknown = h.watch(request("other.Service")).await.unwrap().into_inner();
        assert_eq!(unknown.next().await.unwrap().unwrap().status, ServingStatus::ServiceUnknown as i32);
        assert!(unknown.next().await.is_none());

        let mut stream = h.watch(request("")).await.unwrap().into_inner();
        assert_eq!(stream.next().await.unwrap().unwrap().status, ServingStatus::Serving as i32);
        tx.send(true).unwrap();
        assert_eq!(stream.next().await.unwrap().unwrap().status, ServingStatus::NotServing as i32);
        assert!(stream.next().await.is_none(), "the stream ends, so the drain does not wait for it");
        assert_eq!(h.check(request("")).await.unwrap().into_inner().status, ServingStatus::NotServing as i32);
    }
}
