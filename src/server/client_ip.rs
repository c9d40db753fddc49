//! The client's address: the TCP peer, unless the peer is a trusted proxy, in which case
//! X-Forwarded-For is read from the right, skipping trusted proxies. A client talking to
//! Portcullis directly therefore cannot claim another address.

use std::net::IpAddr;

use http::HeaderMap;
use ipnet::IpNet;

/// Default trusted proxies: this machine only.
pub fn default_trusted() -> Vec<IpNet> {
    ["127.0.0.0/8", "::1/128"].iter().filter_map(|n| n.parse().ok()).collect()
}

/// The address access rules and regulation should see.
pub fn client_ip(peer: Option<IpAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    const X_FORWARDED_FOR: http::header::HeaderName = http::header::HeaderName::from_static("x-forwarded-for");
    let mut hops: Vec<IpAddr> = Vec::new();
    for value in headers.get_all(X_FORWARDED_FOR) {
        let Ok(text) = value.to_str() else { return Some(peer) };
        for part in text.split(',') {
            match parse_hop(part.trim()) {
                Some(ip) => hops.push(ip),
                None => return Some(peer),
            }
        }
    }
    // The rightmost address not belonging to a trusted proxy is the client.
    hops.iter().rev().find(|ip| !is_trusted(ip)).or(hops.first()).copied().or(Some(peer))
}

/// The client's address for a proxy that names its own downstream peer (`source`, such
/// as Envoy's `attributes.source` in a gRPC check): that peer stands in for the
/// connection's only when the caller is a trusted proxy, and X-Forwarded-For is then read
/// as usual. An untrusted caller is itself the client, whatever it claims; a trusted one
/// that names no peer is read as an HTTP request from it.
pub fn client_ip_behind(
    caller: Option<IpAddr>,
    source: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
) -> Option<IpAddr> {
    let caller_trusted = caller.is_some_and(|ip| trusted.iter().any(|n| n.contains(&ip)));
    match source {
        Some(source) if caller_trusted => client_ip(Some(source), headers, trusted),
        _ => client_ip(caller, headers, trusted),
    }
}

fn parse_hop(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip.to_canonical());
    }
    // `[v6]:port` or `v4:port`.
    let host =
        text.strip_prefix('[').and_then(|t| t.split(']').next()).or_else(|| text.rsplit_once(':').map(|(h, _)| h))?;
    host.parse::<IpAddr>().ok().map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn cases() {
        let trusted = default_trusted();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Untrusted peer: its own claim is ignored.
        assert_eq!(client_ip(ip("203.0.113.9"), &headers(&["10.0.0.1"]), &trusted), ip("203.0.113.9"));
        // Trusted peer: rightmost untrusted hop.
        assert_eq!(client_ip(ip("127.0.0.1"), &headers(&["10.9.9.9, 198.51.100.7"]), &trusted), ip("198.51.100.7"));
        assert_eq!(
            client_ip(ip("127.0.0.1"), &headers(&["10.9.9.9", "198.51.100.7, 127.0.0.1"]), &trusted),
            ip("198.51.100.7")
        );
        assert_eq!(client_ip(ip("::1"), &headers(&["[2001:db8::1]:443"]), &trusted), ip("2001:db8::1"));
        assert_eq!(client_ip(ip("127.0.0.1"), &headers(&[]), &trusted), ip("127.0.0.1"));
        // Garbage in the header: fall back to the peer.
        assert_eq!(client_ip(ip("127.0.0.1"), &headers(&["not-an-ip"]), &trusted), ip("127.0.0.1"));
        assert_eq!(client_ip(None, &headers(&["1.2.3.4"]), &trusted), None);
    }

    #[test]
    fn a_named_peer_counts_only_from_a_trusted_caller() {
        let trusted = default_trusted();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let none = headers(&[]);
        // Envoy on this machine names the client it sees.
        assert_eq!(client_ip_behind(ip("127.0.0.1"), ip("203.0.113.5"), &none, &trusted), ip("203.0.113.5"));
        // The named client is untrusted: its X-Forwarded-For claim is not read.
        let claim = headers(&["10.1.2.3, 203.0.113.5"]);
        assert_eq!(client_ip_behind(ip("127.0.0.1"), ip("203.0.113.5"), &claim, &trusted), ip("203.0.113.5"));
        // The named peer is itself a trusted proxy: X-Forwarded-For from the right.
        let chain = headers(&["10.1.2.3, 198.51.100.7"]);
        assert_eq!(client_ip_behind(ip("127.0.0.1"), ip("127.0.0.1"), &chain, &trusted), ip("198.51.100.7"));
        // An untrusted caller is the client, whatever peer and header it names.
        assert_eq!(client_ip_behind(ip("192.0.2.1"), ip("10.0.0.1"), &chain, &trusted), ip("192.0.2.1"));
        // No peer named: as an HTTP request from the caller.
        assert_eq!(client_ip_behind(ip("127.0.0.1"), None, &chain, &trusted), ip("198.51.100.7"));
        assert_eq!(client_ip_behind(None, ip("10.0.0.1"), &none, &trusted), None);
    }
}
