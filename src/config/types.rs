//! Value types used by the configuration schema.
//!
//! Each type parses and checks its own syntax while deserializing, so that a bad value
//! is reported with the exact key path it came from (see `load.rs`).

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A span of time written the way Authelia accepts it: `1h30m`, `5 minutes`, `2 days`,
/// or a plain integer number of seconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(pub std::time::Duration);

impl Duration {
    /// A duration of `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(std::time::Duration::from_secs(secs))
    }

    /// The standard-library value.
    pub const fn get(self) -> std::time::Duration {
        self.0
    }

    /// Whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0.as_secs()
    }

    /// True for a zero-length duration.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

/// The longest duration, as in Authelia (the largest Go duration, about 292 years): longer
/// values are capped to it.
pub const MAX_DURATION: std::time::Duration = std::time::Duration::from_nanos(i64::MAX as u64);

fn capped(d: std::time::Duration) -> Duration {
    Duration(d.min(MAX_DURATION))
}

impl FromStr for Duration {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let trimmed = s.trim();
        if trimmed.is_empty() {
            return Err("empty duration".into());
        }
        if let Ok(secs) = trimmed.parse::<u64>() {
            return Ok(capped(std::time::Duration::from_secs(secs)));
        }
        if trimmed.bytes().all(|b| b.is_ascii_digit()) {
            // Too many digits for a u64: longer than any duration Authelia keeps.
            return Ok(Duration(MAX_DURATION));
        }
        if let Ok(secs) = trimmed.parse::<f64>()
            && secs.is_finite()
            && secs >= 0.0
        {
            return Ok(capped(std::time::Duration::try_from_secs_f64(secs).unwrap_or(MAX_DURATION)));
        }
        if let Err(humantime::DurationError::NumberOverflow) = humantime::parse_duration(trimmed) {
            return Ok(Duration(MAX_DURATION));
        }
        humantime::parse_duration(trimmed).map(capped).map_err(|e| {
            format!("invalid duration '{trimmed}' ({e}); use e.g. '90s', '1h30m', '5 minutes' or seconds as an integer")
        })
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Duration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Duration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DurationVisitor;
        impl Visitor<'_> for DurationVisitor {
            type Value = Duration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration such as '1h30m', '5 minutes' or an integer number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
                Ok(capped(std::time::Duration::from_secs(v)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
                u64::try_from(v).map(Duration::from_secs).map_err(|_| E::custom("a duration cannot be negative"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Duration, E> {
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom("a duration cannot be negative"));
                }
                Ok(capped(std::time::Duration::try_from_secs_f64(v).unwrap_or(MAX_DURATION)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_any(DurationVisitor)
    }
}

/// A secret value (password, key). Never printed: `Debug` and `Display` show a placeholder,
/// so a configuration dump or a log line cannot leak it. Accepts numbers too, because an
/// environment variable like `PORTCULLIS_SESSION_SECRET=1234…` arrives typed as a number.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where the value is really needed.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no value was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "Secret(<empty>)" } else { "Secret(<redacted>)" })
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.0.is_empty() { "" } else { "<redacted>" })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a secret string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// A value that YAML may give either alone or as a list (`domain: a.com` or
/// `domain: [a.com, b.com]`), as Authelia allows for most rule criteria.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct OneOrMany<T>(pub Vec<T>);

impl<T> Default for OneOrMany<T> {
    fn default() -> Self {
        Self(Vec::new())
    }
}

impl<T> OneOrMany<T> {
    /// The values, in the order written.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// True when nothing was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for OneOrMany<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape<T> {
            Many(Vec<T>),
            One(T),
        }
        match Shape::<T>::deserialize(deserializer) {
            Ok(Shape::Many(v)) => Ok(Self(v)),
            Ok(Shape::One(v)) => Ok(Self(vec![v])),
            Err(_) => Err(de::Error::custom("expected a value or a list of values of the right type")),
        }
    }
}

/// The address the server listens on, in Authelia's URL form:
/// `tcp://127.0.0.1:9091/`, `tcp://[::1]:9091/auth`, `tcp4://:9091`, `unix:///run/portcullis.sock`.
/// The path part is the base path every route is served under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenAddress {
    /// What kind of socket to open.
    pub network: Network,
    /// Host name or IP; empty means every interface.
    pub host: String,
    /// TCP port (unused for Unix sockets).
    pub port: u16,
    /// Socket file for `unix://` addresses.
    pub socket_path: Option<String>,
    /// Base path without a trailing slash: `""` or `/auth`.
    pub base_path: String,
}

/// Socket family of a [`ListenAddress`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Network {
    /// IPv4 or IPv6, as the host resolves.
    Tcp,
    /// IPv4 only.
    Tcp4,
    /// IPv6 only.
    Tcp6,
    /// A Unix domain socket.
    Unix,
}

impl Default for ListenAddress {
    fn default() -> Self {
        Self { network: Network::Tcp, host: String::new(), port: 9091, socket_path: None, base_path: String::new() }
    }
}

impl ListenAddress {
    /// `host:port` suitable for binding (empty host means all interfaces).
    pub fn bind_target(&self) -> String {
        let host = match (self.host.as_str(), self.network) {
            ("", Network::Tcp6) => "[::]".to_string(),
            ("", _) => "0.0.0.0".to_string(),
            (h, _) if h.contains(':') => format!("[{h}]"),
            (h, _) => h.to_string(),
        };
        format!("{host}:{}", self.port)
    }
}

impl FromStr for ListenAddress {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = s.trim();
        // Authelia accepts a bare `host:port` or `:port`; treat it as tcp.
        let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("tcp://{raw}") };
        let url = url::Url::parse(&with_scheme.replace("tcp://:", "tcp://0.0.0.0:"))
            .map_err(|e| format!("invalid address '{raw}': {e}; expected e.g. 'tcp://127.0.0.1:9091/'"))?;
        let network = match url.scheme() {
            "tcp" => Network::Tcp,
            "tcp4" => Network::Tcp4,
            "tcp6" => Network::Tcp6,
            "unix" => Network::Unix,
            other => {
                return Err(format!("unsupported address scheme '{other}': use tcp, tcp4, tcp6 or unix"));
            }
        };
        if url.query().is_some_and(|q| !q.starts_with("umask=")) || url.fragment().is_some() {
            return Err(format!("address '{raw}' must not have a query or fragment"));
        }
        if network == Network::Unix {
            let path = url.path();
            if path.len() <= 1 {
                return Err("a unix address needs a socket path, e.g. 'unix:///run/portcullis.sock'".into());
            }
            return Ok(Self {
                network,
                host: String::new(),
                port: 0,
                socket_path: Some(path.to_string()),
                base_path: String::new(),
            });
        }
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(h) => {
                let h = h.to_string();
                let unspecified = raw.contains("://:") || raw.starts_with(':');
                if h == "0.0.0.0" && unspecified { String::new() } else { h }
            }
            None => String::new(),
        };
        let port = url.port().unwrap_or(9091);
        if port == 0 {
            return Err("port 0 is not allowed; choose a fixed port".into());
        }
        // The URL parser resolves dot segments, so refuse them on the raw text.
        let raw_path = raw.split_once("://").map_or(raw, |(_, rest)| rest);
        if raw_path.split(['/', '?']).any(|seg| seg == "." || seg == "..") {
            return Err(format!("base path of '{raw}' must not contain '.' or '..' segments"));
        }
        let base_path = normalize_base_path(url.path())?;
        Ok(Self { network, host, port, socket_path: None, base_path })
    }
}

/// Turns `/`, `/auth/` or `auth` into `""` or `/auth`, refusing characters that would make
/// route matching ambiguous.
fn normalize_base_path(path: &str) -> Result<String, String> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        return Ok(String::new());
    }
    for segment in trimmed.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(format!("base path '{path}' has an empty or dot segment"));
        }
        if !segment.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c)) {
            return Err(format!("base path '{path}' may only contain letters, digits, '-', '.', '_' and '~'"));
        }
    }
    Ok(format!("/{trimmed}"))
}

impl fmt::Display for ListenAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.network {
            Network::Tcp => "tcp",
            Network::Tcp4 => "tcp4",
            Network::Tcp6 => "tcp6",
            Network::Unix => "unix",
        };
        if let Some(path) = &self.socket_path {
            return write!(f, "{scheme}://{path}");
        }
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        write!(f, "{scheme}://{host}:{}{}/", self.port, self.base_path)
    }
}

impl Serialize for ListenAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ListenAddress {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        raw.parse().map_err(de::Error::custom)
    }
}

/// An absolute URL (`https://auth.example.com/`), parsed while loading.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AbsoluteUrl(pub url::Url);

impl AbsoluteUrl {
    /// The parsed URL.
    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl fmt::Display for AbsoluteUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl Serialize for AbsoluteUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for AbsoluteUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        let url = url::Url::parse(raw.trim()).map_err(|e| {
            de::Error::custom(format!(
                "invalid URL '{raw}': {e}; expected an absolute URL like 'https://auth.example.com/'"
            ))
        })?;
        if url.cannot_be_a_base() || url.host_str().is_none() {
            return Err(de::Error::custom(format!("invalid URL '{raw}': it has no host")));
        }
        Ok(Self(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_accept_authelia_forms() {
        let cases = [
            ("1h30m", 5400),
            ("5 minutes", 300),
            ("90", 90),
            ("2d", 172_800),
            ("1w", 604_800),
            ("45s", 45),
            ("1 hour 2 minutes", 3720),
        ];
        for (text, secs) in cases {
            let parsed: Duration = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.as_secs(), secs, "{text}");
        }
        let from_int: Duration = serde_json::from_value(serde_json::json!(300)).unwrap();
        assert_eq!(from_int.as_secs(), 300);
    }

    #[test]
    fn durations_reject_garbage_and_negatives() {
        for bad in ["", "soon", "5 parsecs", "-5"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad} should fail");
        }
        assert!(serde_json::from_value::<Duration>(serde_json::json!(-1)).is_err());
        assert!(serde_json::from_value::<Duration>(serde_json::json!(true)).is_err());
    }

    #[test]
    fn listen_address_forms() {
        let a: ListenAddress = "tcp://127.0.0.1:9091/".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port, a.base_path.as_str()), ("127.0.0.1", 9091, ""));
        assert_eq!(a.bind_target(), "127.0.0.1:9091");

        let b: ListenAddress = "tcp://:9092/auth/".parse().unwrap();
        assert_eq!((b.host.as_str(), b.port, b.base_path.as_str()), ("", 9092, "/auth"));
        assert_eq!(b.bind_target(), "0.0.0.0:9092");

        let c: ListenAddress = "tcp6://[::1]:9000/a/b".parse().unwrap();
        assert_eq!((c.host.as_str(), c.base_path.as_str()), ("::1", "/a/b"));
        assert_eq!(c.bind_target(), "[::1]:9000");
        assert_eq!(c.to_string(), "tcp6://[::1]:9000/a/b/");

        let d: ListenAddress = "127.0.0.1:8080".parse().unwrap();
        assert_eq!((d.network, d.port), (Network::Tcp, 8080));

        let u: ListenAddress = "unix:///run/p.sock".parse().unwrap();
        assert_eq!(u.socket_path.as_deref(), Some("/run/p.sock"));
    }

    #[test]
    fn listen_address_rejects_bad_input() {
        for bad in [
            "http://127.0.0.1:9091/",
            "tcp://127.0.0.1:99999/",
            "tcp://h:1/a/../b",
            "tcp://h:1/a b",
            "unix://",
            "tcp://h:0/",
        ] {
            assert!(bad.parse::<ListenAddress>().is_err(), "{bad} should fail");
        }
    }

    #[test]
    fn one_or_many_accepts_both_shapes() {
        let one: OneOrMany<String> = serde_json::from_value(serde_json::json!("a")).unwrap();
        let many: OneOrMany<String> = serde_json::from_value(serde_json::json!(["a", "b"])).unwrap();
        assert_eq!(one.0, vec!["a"]);
        assert_eq!(many.0, vec!["a", "b"]);
        assert!(serde_json::from_value::<OneOrMany<String>>(serde_json::json!({"x": 1})).is_err());
    }

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<redacted>\"");
        let n: Secret = serde_json::from_value(serde_json::json!(12345678)).unwrap();
        assert_eq!(n.expose(), "12345678");
    }
}
