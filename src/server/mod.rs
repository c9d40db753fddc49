//! The HTTP server: listener, connection handling (HTTP/1.1 and h2c, or both over TLS
//! when `server.tls` is set), graceful shutdown.
//! gRPC calls for an ExtAuthzGRPC endpoint share the listener ([`grpc`]).
//!
//! On shutdown the listener closes at once (new connections are refused), requests in
//! flight finish, idle keep-alive connections are closed, and `serve` returns.

mod app;
pub mod client_ip;
pub mod grpc;
mod header_maps;
pub mod host_mode;
mod request_id;
pub mod response;
pub mod router;

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Either;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, UnixListener};

pub use app::{App, MAX_API_BODY};
pub use request_id::RequestId;

use crate::config::types::{ListenAddress, Network};

/// How long in-flight requests may take to finish after shutdown begins.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// A bound listening socket.
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// Unix domain socket (and the path, removed on drop of the server).
    Unix(UnixListener, std::path::PathBuf),
}

impl Listener {
    /// Binds `address`.
    pub async fn bind(address: &ListenAddress) -> io::Result<Self> {
        match address.network {
            Network::Unix => {
                let path = std::path::PathBuf::from(address.socket_path.clone().unwrap_or_default());
                if path.exists() {
                    std::fs::remove_file(&path)?;
                }
                Ok(Self::Unix(UnixListener::bind(&path)?, path))
            }
            network => {
                let target = address.bind_target();
                let mut last_error =
                    io::Error::new(io::ErrorKind::AddrNotAvailable, format!("cannot resolve {target}"));
                for addr in tokio::net::lookup_host(&target).await? {
                    let family_ok = match network {
                        Network::Tcp4 => addr.is_ipv4(),
                        Network::Tcp6 => addr.is_ipv6(),
                        _ => true,
                    };
                    if !family_ok {
                        continue;
                    }
                    match TcpListener::bind(addr).await {
                        Ok(listener) => return Ok(Self::Tcp(listener)),
                        Err(e) => last_error = e,
                    }
                }
                Err(last_error)
            }
        }
    }

    /// The bound address, for logs (`127.0.0.1:9091` or the socket path).
    pub fn local_description(&self) -> String {
        match self {
            Self::Tcp(l) => l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            Self::Unix(_, path) => path.display().to_string(),
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then drains gracefully.
pub async fn serve(listener: Listener, app: Arc<App>, shutdown: impl Future<Output = ()>) -> io::Result<()> {
    let config = &app.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.timeouts.read.get())
        // hyper refuses buffers under 8 KiB; the configured read buffer is the head limit.
        .max_buf_size(config.buffers.read.max(8192))
        // The end of a client's input while its request is in flight is not taken for an
        // abandoned request (decision 0032): a client that shuts its sending side once its
        // request is sent still gets the answer, and the connection closes after it.
        // Watching for that end cost a fresh 8 KiB read buffer per request (the request
        // still holds the old one), to cancel early a handler `server.timeouts.write`
        // bounds anyway.
        .half_close(true)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(config.buffers.read.max(8192)).unwrap_or(u32::MAX))
        .keep_alive_interval(Some(config.timeouts.idle.get()));

    let tls = if config.tls.enabled() {
        let server_config = crate::tls::server_config(&config.tls).map_err(io::Error::other)?;
        Some(tokio_rustls::TlsAcceptor::from(Arc::new(server_config)))
    } else {
        None
    };
    let handshake_timeout = config.timeouts.read.get();
    let builder = Arc::new(builder);

    let (draining, drain_watch) = tokio::sync::watch::channel(false);
    let grpc = grpc::Grpc::new(&app, drain_watch).map(Arc::new);
    let graceful = GracefulShutdown::new();
    // A slot per connection: at the limit, nothing more is accepted until one closes, so
    // a flood of connections waits in the kernel's backlog instead of in memory.
    let slots = Arc::new(tokio::sync::Semaphore::new(
        config.max_connections.unwrap_or(crate::config::schema::DEFAULT_MAX_CONNECTIONS),
    ));
    tokio::pin!(shutdown);
    while let Some(((io, remote), slot)) = next_connection(&listener, &slots, &mut shutdown, "server").await {
        let app = app.clone();
        let grpc = grpc.clone();
        let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
            let app = app.clone();
            let grpc = grpc.clone();
            async move {
                let response = match grpc.as_deref().filter(|g| g.wants(&request)) {
                    // Boxed: the gRPC call's future is several times the size of the
                    // HTTP one, and this future is copied whole for every request.
                    Some(grpc) => Box::pin(grpc.call(request, remote)).await.map(Either::Right),
                    None => {
                        let mut response = app.handle(request, remote).await;
                        // An accepted WebSocket runs on its own once the connection upgrades.
                        if let Some(accepted) = crate::handlers::ws::take(&mut response) {
                            crate::handlers::ws::spawn(app.clone(), accepted);
                        }
                        response.map(Either::Left)
                    }
                };
                Ok::<_, std::convert::Infallible>(response)
            }
        });
        let builder = builder.clone();
        let tls = tls.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _slot = slot;
            let io = match tls {
                None => io,
                Some(acceptor) => {
                    let handshake = tokio::time::timeout(handshake_timeout, acceptor.accept(io.into_inner())).await;
                    match handshake {
                        Ok(Ok(stream)) => TokioIo::new(Box::new(stream) as Box<dyn Connection>),
                        Ok(Err(e)) => {
                            tracing::debug!(error = %e, "TLS handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!("TLS handshake timed out");
                            return;
                        }
                    }
                }
            };
            let connection = builder.serve_connection_with_upgrades(io, service);
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
        });
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
    drop(listener);
    // gRPC health watches report NOT_SERVING and end.
    draining.send_replace(true);
    tracing::info!("shutting down: no new connections; waiting for requests in flight");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
    Ok(())
}

pub(crate) type Accepted = (TokioIo<Box<dyn Connection>>, Option<IpAddr>);

/// A byte stream the server can speak HTTP over.
pub trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Connection for T {}

/// Accepts one connection (with the peer's address; loopback for a Unix socket).
/// Waits for a connection slot, then for a connection: `None` once `shutdown` completes
/// or the slots are closed. A failed accept (typically EMFILE) is logged under `what` and
/// retried after a short pause instead of spinning. The slot goes with the connection.
pub(crate) async fn next_connection(
    listener: &Listener,
    slots: &Arc<tokio::sync::Semaphore>,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    what: &str,
) -> Option<(Accepted, tokio::sync::OwnedSemaphorePermit)> {
    let slot = tokio::select! {
        biased;
        () = shutdown.as_mut() => return None,
        slot = slots.clone().acquire_owned() => slot.ok()?,
    };
    loop {
        let accepted = tokio::select! {
            biased;
            () = shutdown.as_mut() => return None,
            accepted = accept(listener) => accepted,
        };
        match accepted {
            Ok(pair) => return Some((pair, slot)),
            Err(e) => {
                tracing::warn!(error = %e, "{what}: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// What a caught panic says, for the log.
pub(crate) fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default()
}

pub(crate) async fn accept(listener: &Listener) -> io::Result<Accepted> {
    match listener {
        Listener::Tcp(l) => {
            let (stream, peer) = l.accept().await?;
            stream.set_nodelay(true)?;
            Ok((TokioIo::new(Box::new(stream)), Some(peer.ip().to_canonical())))
        }
        Listener::Unix(l, _) => {
            let (stream, _) = l.accept().await?;
            // A Unix socket peer is on this machine.
            Ok((TokioIo::new(Box::new(stream)), Some(IpAddr::V4(Ipv4Addr::LOCALHOST))))
        }
    }
}

/// Resolves when SIGTERM or SIGINT arrives.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("SIGINT received"),
        () = term => tracing::info!("SIGTERM received"),
    }
}
