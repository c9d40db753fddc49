//! The floor for the authz load harness (`integration/bench/authz_load.py`): the same HTTP
//! stack as Portcullis (hyper 1 + hyper-util on a multi-threaded tokio runtime, TCP_NODELAY)
//! answering `200` with an empty body to every request, with no routing, parsing or
//! decisions. Portcullis's throughput is reported as a fraction of this server's.
//!
//! Usage: `baseline_server 127.0.0.1:PORT`

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Empty;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

async fn answer(_: Request<hyper::body::Incoming>) -> Result<Response<Empty<Bytes>>, Infallible> {
    Ok(Response::new(Empty::new()))
}

fn main() -> std::io::Result<()> {
    let address: SocketAddr = match std::env::args().nth(1).map(|a| a.parse()) {
        Some(Ok(address)) => address,
        _ => {
            eprintln!("usage: baseline_server HOST:PORT");
            std::process::exit(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::bind(address).await?;
        loop {
            let (stream, _) = match listener.accept().await {
                Ok(accepted) => accepted,
                // Out of file descriptors and the like: keep serving the open connections.
                Err(_) => continue,
            };
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service_fn(answer)).await;
            });
        }
    })
}
