//! The gRPC load generator of the authz load harness (`integration/bench/authz_load.py`):
//! `envoy.service.auth.v3.Authorization/Check` calls as Envoy makes them (a browser GET
//! of `https://app.example.com/` with a session cookie), `concurrency` calls in flight at
//! all times over `connections` HTTP/2 connections (Envoy keeps one per worker thread),
//! for `seconds`. Every answer is checked: a call that fails or does not decide
//! `expect` counts as unexpected. Prints one JSON object: requests, requests per
//! second, p50 and p99 latency in milliseconds, unexpected answers.
//!
//! Usage: `grpc_check_load ADDRESS COOKIE SECONDS CONNECTIONS CONCURRENCY [EXPECT]`
//! (`ADDRESS` as `http://127.0.0.1:PORT`; `SECONDS` 0 makes one call and prints the
//! status it decided; `EXPECT` defaults to 200).

use std::time::{Duration, Instant};

use envoy_types::pb::envoy::config::core::v3::address::Address;
use envoy_types::pb::envoy::config::core::v3::{self as core, SocketAddress};
use envoy_types::pb::envoy::service::auth::v3::attribute_context::{HttpRequest, Peer, Request};
use envoy_types::pb::envoy::service::auth::v3::authorization_client::AuthorizationClient;
use envoy_types::pb::envoy::service::auth::v3::check_response::HttpResponse;
use envoy_types::pb::envoy::service::auth::v3::{AttributeContext, CheckRequest};
use tonic::transport::Channel;

fn check_request(cookie: &str) -> CheckRequest {
    let headers = [
        (":authority", "app.example.com"),
        (":method", "GET"),
        (":path", "/"),
        (":scheme", "https"),
        ("accept", "text/html"),
        ("cookie", cookie),
        ("user-agent", "grpc_check_load"),
        ("x-forwarded-for", "203.0.113.50"),
        ("x-forwarded-proto", "https"),
    ];
    CheckRequest {
        attributes: Some(AttributeContext {
            source: Some(Peer {
                address: Some(core::Address {
                    address: Some(Address::SocketAddress(SocketAddress {
                        address: "203.0.113.50".into(),
                        ..Default::default()
                    })),
                }),
                ..Default::default()
            }),
            request: Some(Request {
                time: None,
                http: Some(HttpRequest {
                    method: "GET".into(),
                    scheme: "https".into(),
                    host: "app.example.com".into(),
                    path: "/".into(),
                    protocol: "HTTP/1.1".into(),
                    size: -1,
                    headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
    }
}

/// The HTTP status a Check decided (200 allowed), or 0 when the call failed.
async fn call(client: &mut AuthorizationClient<Channel>, request: CheckRequest) -> u16 {
    match client.check(request).await.map(|r| r.into_inner().http_response) {
        Ok(Some(HttpResponse::OkResponse(_))) => 200,
        Ok(Some(HttpResponse::DeniedResponse(d))) => d.status.and_then(|s| u16::try_from(s.code).ok()).unwrap_or(0),
        _ => 0,
    }
}

fn usage() -> ! {
    eprintln!("usage: grpc_check_load ADDRESS COOKIE SECONDS CONNECTIONS CONCURRENCY [EXPECT]");
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if !(5..=6).contains(&args.len()) {
        usage();
    }
    let number = |i: usize| args[i].parse::<u64>().unwrap_or_else(|_| usage());
    let (address, cookie) = (args[0].clone(), args[1].clone());
    let (seconds, connections, concurrency) = (number(2), number(3).max(1), number(4).max(1));
    let expect = args.get(5).map_or(200, |_| number(5) as u16);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async move {
        let mut channels = Vec::new();
        for _ in 0..connections {
            let endpoint = Channel::from_shared(address.clone()).unwrap_or_else(|_| usage());
            channels.push(endpoint.connect().await.expect("connect"));
        }
        let request = check_request(&cookie);
        if seconds == 0 {
            println!("{}", call(&mut AuthorizationClient::new(channels[0].clone()), request).await);
            return;
        }
        let started = Instant::now();
        let until = started + Duration::from_secs(seconds);
        let tasks: Vec<_> = (0..concurrency)
            .map(|i| {
                let mut client = AuthorizationClient::new(channels[(i % connections) as usize].clone());
                let request = request.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut unexpected = 0u64;
                    while Instant::now() < until {
                        let sent = Instant::now();
                        if call(&mut client, request.clone()).await != expect {
                            unexpected += 1;
                        }
                        latencies.push(sent.elapsed().as_micros() as u64);
                    }
                    (latencies, unexpected)
                })
            })
            .collect();
        let mut latencies = Vec::new();
        let mut unexpected = 0;
        for task in tasks {
            let (l, u) = task.await.expect("load task");
            latencies.extend(l);
            unexpected += u;
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort_unstable();
        let percentile = |p: f64| {
            let i = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
            latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{{\"requests\": {}, \"requests_per_sec\": {:.1}, \"p50_ms\": {:.3}, \"p99_ms\": {:.3}, \"unexpected\": {}}}",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            percentile(0.50),
            percentile(0.99),
            unexpected
        );
    });
}
